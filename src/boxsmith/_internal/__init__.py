"""boxsmith's internals: every module under here may change without notice.

The public API is `boxsmith` (its `__all__`) and `boxsmith.sandbox`; see docs/architecture.md.
"""
