"""The names this module held before it was cut into `parse`, `quoting` and `source_map`.

Kept only so that older imports keep working; import from those modules instead.
"""

from boxsmith._internal.dockerfile.parse import Statement, parse
from boxsmith._internal.dockerfile.quoting import env_quoted
from boxsmith._internal.dockerfile.source_map import SourceMap

__all__ = ["SourceMap", "Statement", "env_quoted", "parse"]
