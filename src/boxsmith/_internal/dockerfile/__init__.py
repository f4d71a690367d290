"""Dockerfile syntax shared by render, lint, builds and the backend.

Modules: `quoting` (a value as ENV/ARG writes it), `parse` (statements and their line spans),
`source_map` (the instructions a render writes, and which one wrote a line of a Dockerfile).
"""
