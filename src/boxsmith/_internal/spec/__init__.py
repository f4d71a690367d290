"""Spec stage: load YAML with positions, resolve extends/vars/matrix, validate the models.

Modules, in the order a spec file meets them: `located` (YAML with the position of every key and
value), `merge` (`extends`), `expand` (`vars` and `matrix`, with `jinja_env` and `jinja_limits`:
the bounded Jinja of spec strings), `models` with `steps`, `checks`, `fields` and `names` (the
schema, declared once), `diagnostics` (validation errors as located issues with a fix), `loader`
(one validation run over every file), `build_context` (the files a template copies), `template`
(Template and Catalog), `catalog` (`load_catalog`, the entry point) and `schema` (the JSON Schema
for editors, generated from the models).
"""
