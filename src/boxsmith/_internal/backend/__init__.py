"""The local E2B-compatible backend: the unchanged `e2b` SDK builds templates and boots sandboxes
on Docker.

One ASGI application on 127.0.0.1 (`server`) serves both planes: the REST control plane (`api`
with `api_builds`, `api_templates`, `api_sandboxes`) and the envd data plane (`envd/`), routed
by the `E2b-Sandbox-Id` header. Builds run in `builds`; a sandbox is a container (`sandboxes`);
state lives in SQLite (`store`, `state_file`) inside the data folder (`datadir`). Other
processes start, find and stop the backend through `control`. See docs/architecture.md and
docs/backend.md.
"""
