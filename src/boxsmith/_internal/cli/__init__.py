"""The `boxsmith` command line: `app` (entry point and the table of commands), `parser` (the
arguments), `outcome` (errors to exit codes), `options` (checks of option values), and one module
per subcommand whose `run(...)` prints its output and returns an exit code.

The CLI and the invoke tasks (`tasks.py`) both call those `run(...)` functions, never a second
copy. Machine output (`--json`) goes to `out` (stdout); human logs go to `err` (stderr).
"""
