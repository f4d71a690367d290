"""The one place the benchmarks name boxsmith's internal modules.

The benchmarks run the `boxsmith` console script in fresh processes wherever they can: its
commands do not move when the code does. Only two things need the internals, and they are here,
as module paths in text (nothing below is imported by the benchmark itself, so a moved module
fails the one figure that names it, not the script):

- import floors: `python -c "import <module>"`, start-up plus what a command loads before it
  does any work;
- in-process splits (benchmarks/build.py): a child `python -c` that calls the library the way
  a command does and times each phase, to show where a command's time goes.
"""

from __future__ import annotations

__all__ = ["BUILD_PHASES", "IMPORTS", "SMOKE_PHASES"]

# What `python -c "import X"` measures: label -> module.
IMPORTS = {
    "cli": "boxsmith._internal.cli.app",  # every command: the parser and the dispatch table
    "pipeline": "boxsmith._internal.render.pipeline",  # all a full validate/render/check loads
    "build command": "boxsmith._internal.cli.build",
    "smoke command": "boxsmith._internal.cli.smoke",
}

# The full up-to-date check of `boxsmith build` without its record, in process, by phase;
# argv: the project. Prints {"phases": {name: seconds}, "statuses": [...]}.
BUILD_PHASES = r"""
import io, json, sys, time
t0 = time.perf_counter()
from boxsmith._internal.build.builder import build_templates
from boxsmith._internal.build.rendered import select_units
from boxsmith._internal.docker.client import Engine
from boxsmith._internal.progress import Progress
from boxsmith.config import load_settings
t1 = time.perf_counter()
settings = load_settings(sys.argv[1])
units = select_units(settings, [], [])
t2 = time.perf_counter()
with Engine(err=None, project=settings.project_id) as engine:
    t3 = time.perf_counter()
    with Progress(io.StringIO(), "build") as progress:
        results = build_templates(settings, units, engine=engine, progress=progress)
    t4 = time.perf_counter()
t5 = time.perf_counter()
phases = {
    "imports": t1 - t0,
    "settings + catalog": t2 - t1,
    "engine connect": t3 - t2,
    "build_templates (no change)": t4 - t3,
    "engine exit (sweep)": t5 - t4,
}
print(json.dumps({"phases": phases, "statuses": [r.status for r in results]}))
"""

# `boxsmith smoke --local NAME` in process, by phase; argv: the project, the template name.
# Prints {"phases": {name: seconds}, "ready": bool, "statuses": [...]}.
SMOKE_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from boxsmith._internal.build.rendered import select_units
from boxsmith._internal.smoke.container_target import start_sandbox
from boxsmith._internal.docker.client import Engine
from boxsmith._internal.smoke.runner import run_checks
from boxsmith.config import load_settings
t1 = time.perf_counter()
settings = load_settings(sys.argv[1])
(unit,) = select_units(settings, [sys.argv[2]], [])
t2 = time.perf_counter()
started = []
with Engine(err=None, project=settings.project_id) as engine:
    t3 = time.perf_counter()
    engine.image(unit.image)  # `smoke` checks that the image exists first
    t4 = time.perf_counter()
    start_container = engine.start_container
    def timed_start(*args, **kwargs):  # times `docker run -d` inside start_sandbox
        begin = time.perf_counter()
        try:
            return start_container(*args, **kwargs)
        finally:
            started.append(time.perf_counter() - begin)
    engine.start_container = timed_start
    target, readiness = start_sandbox(engine, unit)
    t5 = time.perf_counter()
    checks = run_checks(target, unit.template.spec.smoke)
    t6 = time.perf_counter()
    engine.remove_container(target.container_id)
    t7 = time.perf_counter()
t8 = time.perf_counter()
phases = {
    "imports": t1 - t0,
    "settings + catalog": t2 - t1,
    "engine connect": t3 - t2,
    "image check": t4 - t3,
    "container create + start": started[0],
    "probe + start_cmd + ready_cmd": t5 - t4 - started[0],
    "checks": t6 - t5,
    "teardown (remove container)": t7 - t6,
    "engine exit (sweep)": t8 - t7,
}
print(json.dumps({
    "phases": phases, "ready": readiness.ready, "statuses": [c.status for c in checks]
}))
"""
