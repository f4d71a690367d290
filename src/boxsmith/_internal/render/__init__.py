"""RENDER stage: a validated template becomes e2b.toml + e2b.Dockerfile + its copied files (and,
with `template_py = true`, a template.py for the e2b SDK's builder).

Modules: `instructions` (steps -> Dockerfile instructions), `folder` (one template's folder, to the
byte, and the Jinja environment of `templates/`), `template_py` (those instructions as the e2b
SDK's builder calls), `pipeline` (`generate`, `render_project`, `check_project`), `outputs`
(claim, plan, atomic apply), `index` (generated/index.json), `stamp` (skip a render when nothing
changed), `templates/`.

The names of the generated files are defined here, for the stages that read them.
"""

DOCKERFILE = "e2b.Dockerfile"
TOML = "e2b.toml"
TEMPLATE_PY = "template.py"
