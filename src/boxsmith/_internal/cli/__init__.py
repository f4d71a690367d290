"""One module per subcommand; each `run(...)` prints its output and returns an exit code.

The CLI (`boxsmith._internal.cli.app`) and the invoke tasks (`tasks.py`) both call these, never a
second copy.
Machine output (`--json`) goes to `out` (stdout); human logs go to `err` (stderr).
"""
