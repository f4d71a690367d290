"""The Docker engine boundary: the client, booting a container like a sandbox, a template's build
env."""
