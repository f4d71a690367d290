"""The envd data plane of the local backend: process and filesystem RPCs and /files, over docker
exec."""
