"""The local E2B-compatible backend: the unchanged `e2b` SDK builds templates and boots sandboxes
on Docker.

One ASGI application on 127.0.0.1 serves both planes: the REST control plane (`api.py`: template
builds v2, sandboxes) and the envd data plane (`envd_process.py`, `envd_files.py`,
`envd_transfer.py`, `envd_shell.py`), routed by the `E2b-Sandbox-Id` header. A sandbox is a
container (`sandboxes.py`); state lives in SQLite (`store.py`). See docs/architecture.md and
docs/backend.md.
"""
