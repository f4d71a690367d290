"""Dockerfile syntax shared by render, lint, builds and the backend: quoting, statements, the line
-> spec map."""
