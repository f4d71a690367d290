"""What a booted sandbox container promises to code that never talks to Docker.

`docker.boot` boots containers the way E2B starts sandboxes, and re-exports these; the smoke
checks, `smoke --target e2b` and `release` read them without loading the Docker SDK, which is
the `build` extra's (issue 14: the `e2b` extra alone publishes and smokes on E2B).
"""

from __future__ import annotations

__all__ = ["DEFAULT_READY_TIMEOUT", "OWN_MARKER"]

DEFAULT_READY_TIMEOUT = 600.0  # seconds for ready_cmd to pass: E2B's limit, 10 minutes
# In the command line of every process boxsmith starts in a container besides the user's own (the
# start command's wrapper), so process checks can leave them out.
OWN_MARKER = ": boxsmith-own;"
