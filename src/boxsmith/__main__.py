"""`python -m boxsmith`."""

from boxsmith.cli import entry

entry()
