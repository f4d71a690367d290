"""`python -m boxsmith`."""

from boxsmith._internal.cli.app import entry

entry()
