"""RENDER stage: a validated template becomes e2b.toml + e2b.Dockerfile + its copied files.

Modules: `instructions` (steps -> Dockerfile instructions), `folder` (one template's folder, to the
byte, and the Jinja environment of `templates/`), `pipeline` (`generate`, `render_project`,
`check_project`), `outputs` (claim, plan, atomic apply), `index` (generated/index.json), `stamp`
(skip a render when nothing changed), `templates/`.

The names of the generated files are defined here, for the stages that read them.
"""

DOCKERFILE = "e2b.Dockerfile"
TOML = "e2b.toml"
