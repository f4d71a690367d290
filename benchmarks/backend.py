"""Latency and throughput of the local E2B-compatible backend, against raw docker SDK calls.

What it measures (in this process, with the unchanged e2b SDK against a `boxsmith backend serve`
it starts, and with the docker Python SDK as the baseline, each call timed with
`time.perf_counter`; p50, p95 and best are reported):

(a) `Sandbox.create(template)` plus the first `commands.run("true")` (to the end of that run),
    `--create-repeat` times (default 20), against docker SDK `containers.run(image, ["sh", "-c",
    "sleep infinity"], detach=True, init=True)` plus `exec_run(["/bin/bash", "-l", "-c", "true"])`
    of the same image, with the same cpu and memory limits, as the sandbox's user in its workdir
    (what the backend does for a sandbox and a command). Killing the sandbox and removing the
    container are untimed. Each side is split into create and first command. Targets: sandbox
    p50 under 0.5 s, and p50 sandbox / p50 docker at most 1.5.
(b) `commands.run("true")` in one running sandbox, `--run-repeat` times (default 50) after 3
    untimed ones, against `exec_run` of the same in one running container. Target: p50 sandbox /
    p50 docker at most 1.3.
(c) `--concurrent` sandboxes (default 20) created at once from as many threads, then
    `--commands` `commands.run("true")` in each (default 10), all at once; every call is bounded
    (`--concurrent-timeout`). Reported: errors, wall time of each phase, creates/s, commands/s and
    the per-call p50 and max; the same with the docker SDK for context. Target: no errors.

(d) port routing (preview URLs): an HTTP GET through `sandbox.get_host(port)` (to the backend's
    listener with that Host header, as a browser sends it; Python's resolver does not resolve
    `*.localhost`) against the same GET to the container's address directly, `--route-repeat`
    times (default 200) after 10 untimed pairs, each side with its own keep-alive httpx client.
    The server in the sandbox is a few lines of Perl (perl-base is in every Debian image) that
    answers each request and closes the connection, so both sides open one upstream connection
    per request. Target: p50 through the preview URL / p50 direct at most 1.5.

Repeats of the compared calls are interleaved (sandbox, container, sandbox, ...), so load changes
on a shared machine hit both sides; `--warmup` untimed pairs of (a) come first.

Setup, untimed: a backend on a free loopback port with its data folder and project in a fresh
temporary folder, and one template built through the SDK (`Template().from_image(...)` plus one
RUN, no start command, so a sandbox is ready as soon as its container runs). It starts from a
private tag `bench-base/<base>:backend-<run>` of `--base` (same image id), so the parity base the
backend makes for it is the benchmark's own and can be removed without touching anyone else's.
The baseline uses the image the backend built, found by its `dev.boxsmith.backend` label.

At the end the benchmark kills its sandboxes, stops the backend with SIGTERM (which kills any
sandbox left), counts the containers labelled with this backend's id that remain (there should be
none) and removes them and its baseline containers; then it removes the template image, its
private parity base and the private base tag, unless `--keep` (which keeps the folder too).

Verdicts (PASS/FAIL) compare p50s with the targets. The script reports and never gates: it exits
0 whatever the figures, and 2 only when the setup fails (no engine, the backend does not start,
the template does not build, a timed call fails).

    .venv/bin/python benchmarks/backend.py [--create-repeat 20] [--run-repeat 50] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import httpx
from common import (
    Conditions,
    Figure,
    Goal,
    SetupError,
    Watch,
    at_least,
    children,
    free_port,
    main_of,
    new_parser,
    verdict_lines,
)
from docker.models.containers import Container
from e2b import Sandbox, Template

T = TypeVar("T")
TARGET_CREATE_S = 0.5  # (a): p50 of create + first command
TARGET_CREATE_RATIO = 1.5  # (a): p50 sandbox / p50 docker run + exec
TARGET_RUN_RATIO = 1.3  # (b): p50 commands.run / p50 docker exec
TARGET_ROUTE_RATIO = 1.5  # (d): p50 GET through get_host / p50 GET to the container directly
ROUTE_PORT = 8080  # (d): where the sandbox's HTTP server listens
ROUTE_WARMUP = 10  # (d): untimed GETs per side before the timed ones
# (d): an HTTP server in perl-base only: one request per connection, a 2-byte answer
ROUTE_SERVER = (
    "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => "
    f"{ROUTE_PORT}, Listen => 64, ReuseAddr => 1) or die $!; "
    "while ($c = $s->accept) { while (<$c>) { last if /^\\r?$/ } "
    'print $c "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"; '
    "close $c }'"
)
TARGET_CONCURRENT = (20, 10)  # (c): the sandboxes and commands each the target is stated for
RUN_WARMUP = 3  # (b): untimed commands per side before the timed ones
START_TIMEOUT_S = 60  # the backend answering /health
BUILD_TIMEOUT_S = 600
CALL_TIMEOUT_S = 60  # every SDK request and command
# Labels boxsmith puts on what the backend makes (its sandboxes' and images' backend id, and
# the parity base's base image); the benchmark's own baseline containers carry RUN_LABEL.
BACKEND_LABEL = "dev.boxsmith.backend"
PARITY_OF_LABEL = "dev.boxsmith.parity-of"
RUN_LABEL = "dev.boxsmith.bench-run"
SANDBOX_LABEL = "dev.boxsmith.sandbox"
PRIVATE_BASE_REPO = "bench-base"
COMMAND = ["/bin/bash", "-l", "-c", "true"]  # what commands.run("true") runs in the sandbox


def p95(times: Sequence[float]) -> float:
    """The 95th percentile (linear between the closest ranks), the value itself for one run."""
    if len(times) < 2:
        return times[0]
    return statistics.quantiles(times, n=20, method="inclusive")[18]


def figure_json(figure: Figure) -> dict[str, Any]:
    """A Figure's JSON with its p95 (a Figure's median is the p50)."""
    return {**figure.as_json(), "p95_s": round(p95(figure.times), 4)}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


# --------------------------------------------------------------------------------- measuring


@dataclass
class Crowd:
    """(c) for one side: many creates at once, then many commands at once."""

    label: str
    creates: list[float] = field(default_factory=list)  # seconds of each successful create
    commands: list[float] = field(default_factory=list)  # seconds of each successful command
    create_wall: float = 0.0
    command_wall: float = 0.0
    cleanup_wall: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def stats(times: list[float]) -> dict[str, Any]:
            if not times:
                return {"count": 0}
            return {
                "count": len(times),
                "p50_s": round(statistics.median(times), 4),
                "max_s": round(max(times), 4),
            }

        return {
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:5],
            "create_phase_s": round(self.create_wall, 4),
            "command_phase_s": round(self.command_wall, 4),
            "creates_per_s": _rate(self.creates, self.create_wall),
            "commands_per_s": _rate(self.commands, self.command_wall),
            "create": stats(self.creates),
            "command": stats(self.commands),
            "cleanup_phase_s": round(self.cleanup_wall, 4),
        }


def _rate(done: list[float], wall: float) -> float:
    return round(len(done) / wall, 2) if done else 0.0


@dataclass
class Results:
    conditions: Conditions
    docker: str
    sdk: str
    base: str
    image: str
    limits: dict[str, Any]
    create_repeat: int
    run_repeat: int
    concurrent: int
    commands: int
    create: list[Figure]  # sandbox: total, create, first run; docker: total, run, exec
    run: list[Figure]  # sandbox command, docker exec
    crowds: list[Crowd]  # sandboxes, containers
    route_repeat: int
    route: list[Figure]  # through get_host, direct to the container
    leftover_containers: int


class Bench:
    """One benchmark run: the backend it started and everything it made (for the clean-up)."""

    def __init__(self, args: argparse.Namespace, project: Path) -> None:
        self.args = args
        self.project = project
        self.box, self.env = children(args, project)
        self.data = project / "data"
        self.run_id = uuid.uuid4().hex[:12]
        self.template = f"bench-{self.run_id}"
        base_name = re.sub(r"[^a-z0-9_.-]+", "-", args.base.lower().replace(":", "-"))
        self.private_base = f"{PRIVATE_BASE_REPO}/{base_name}:backend-{self.run_id}"
        self.log = project / "backend.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""  # the backend's, once it answers
        self.backend_id = ""  # from the template image's label
        self.image = ""  # the template image (id)
        self.limits: dict[str, Any] = {}  # the sandbox containers' cpu and memory limits
        self.sandboxes: list[Sandbox] = []  # alive, killed in the clean-up if still there
        try:
            self.docker = docker.from_env(max_pool_size=4 * max(args.concurrent, 10))
            self.docker.ping()
        except docker.errors.DockerException as exc:
            raise SetupError(f"no Docker engine: {exc}") from exc

    # -- setup -------------------------------------------------------------------------------

    def start_backend(self) -> None:
        """`boxsmith backend serve` on a free port; point the SDK at it once /health answers."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [self.box, "-C", str(self.project), "backend", "serve", "--port", str(port)]
        command += ["--data-dir", str(self.data)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.project, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise SetupError(f"the backend exited {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SetupError(f"the backend did not answer in {START_TIMEOUT_S} s") from None
                time.sleep(0.1)
        key = (self.data / "api_key").read_text(encoding="utf-8").strip()
        self.url = url
        os.environ.update({"E2B_API_URL": url, "E2B_SANDBOX_URL": url, "E2B_API_KEY": key})

    def tail(self) -> str:
        """The end of the backend's log (its stderr)."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def build_template(self) -> None:
        """The template, built through the SDK; its image and the sandboxes' limits."""
        try:
            self.docker.images.get(self.args.base).tag(self.private_base)
        except docker.errors.DockerException as exc:
            raise SetupError(f"base image {self.args.base}: {exc}") from exc
        tpl = Template().from_image(self.private_base).run_cmd("echo bench > /tmp/bench.txt")
        try:
            Template.build(tpl, self.template, request_timeout=BUILD_TIMEOUT_S)
        except Exception as exc:  # the SDK's build and API errors
            raise SetupError(f"the template did not build: {_short(exc)}\n{self.tail()}") from exc
        images = self.docker.images.list(
            filters={"label": BACKEND_LABEL, "reference": f"boxsmith-local/{self.template}"}
        )
        if len(images) != 1:
            raise SetupError(f"expected one image boxsmith-local/{self.template}, got {images}")
        self.image = str(images[0].id)
        self.backend_id = images[0].labels[BACKEND_LABEL]
        config = images[0].attrs["Config"]
        sandbox = self.create()
        try:
            (container,) = self.docker.containers.list(
                filters={"label": f"{BACKEND_LABEL}={self.backend_id}"}
            )
            host = container.attrs["HostConfig"]
            self.limits = {
                "nano_cpus": host.get("NanoCpus") or None,
                "mem_limit": host.get("Memory") or None,
                "user": config.get("User") or "user",  # as the backend runs commands
                "workdir": config.get("WorkingDir") or "/home/user",
            }
        finally:
            self.kill(sandbox)

    # -- the two sides -----------------------------------------------------------------------

    def create(self) -> Sandbox:
        sandbox = Sandbox.create(self.template, timeout=1800, request_timeout=CALL_TIMEOUT_S)
        self.sandboxes.append(sandbox)
        return sandbox

    def kill(self, sandbox: Sandbox) -> None:
        sandbox.kill(request_timeout=CALL_TIMEOUT_S)
        self.sandboxes.remove(sandbox)

    @staticmethod
    def command(sandbox: Sandbox) -> None:
        result = sandbox.commands.run(
            "true", timeout=CALL_TIMEOUT_S, request_timeout=CALL_TIMEOUT_S
        )
        if result.exit_code != 0:
            raise RuntimeError(f"`true` exited {result.exit_code} in a sandbox")

    def container(self) -> Container:
        return self.docker.containers.run(
            self.image,
            ["sh", "-c", "sleep infinity"],
            detach=True,
            init=True,
            labels={RUN_LABEL: self.run_id},
            nano_cpus=self.limits["nano_cpus"],
            mem_limit=self.limits["mem_limit"],
        )

    def exec(self, container: Container) -> None:
        user, workdir = self.limits["user"], self.limits["workdir"]
        code, out = container.exec_run(COMMAND, user=user, workdir=workdir)
        if code != 0:
            raise RuntimeError(f"`true` exited {code} in a container: {out!r:.300}")

    def sandbox_pair(self) -> tuple[float, float]:
        """(create, first command) seconds of one new sandbox, killed afterwards (untimed)."""
        start = time.perf_counter()
        sandbox = self.create()
        created = time.perf_counter()
        try:
            self.command(sandbox)
            return created - start, time.perf_counter() - created
        finally:
            self.kill(sandbox)

    def container_pair(self) -> tuple[float, float]:
        """(run, first exec) seconds of one new container, removed afterwards (untimed)."""
        start = time.perf_counter()
        container = self.container()
        created = time.perf_counter()
        try:
            self.exec(container)
            return created - start, time.perf_counter() - created
        finally:
            container.remove(force=True)

    # -- (d) ---------------------------------------------------------------------------------

    def route(self, route: list[Figure]) -> None:
        """`--route-repeat` GETs through the sandbox's preview host and straight to its
        container's address, interleaved, into `route` (through, direct)."""
        sandbox = self.create()
        try:
            sandbox.commands.run(ROUTE_SERVER, background=True, request_timeout=CALL_TIMEOUT_S)
            (container,) = self.docker.containers.list(
                filters={"label": f"{SANDBOX_LABEL}={sandbox.sandbox_id}"}
            )
            address = container.attrs["NetworkSettings"]["IPAddress"]
            host = sandbox.get_host(ROUTE_PORT)
            with (
                httpx.Client(base_url=self.url, headers={"Host": host}) as through,
                httpx.Client(base_url=f"http://{address}:{ROUTE_PORT}") as direct,
            ):
                _until_served(direct)
                for index in range(ROUTE_WARMUP + self.args.route_repeat):
                    for figure, client in zip(route, (through, direct), strict=True):
                        start = time.perf_counter()
                        answer = client.get("/", timeout=CALL_TIMEOUT_S)
                        elapsed = time.perf_counter() - start
                        if answer.status_code != 200 or answer.text != "ok":
                            raise RuntimeError(
                                f"{figure.label}: {answer.status_code} {answer.text[:300]!r}"
                            )
                        if index >= ROUTE_WARMUP:
                            figure.times.append(elapsed)
        finally:
            self.kill(sandbox)

    # -- (c) ---------------------------------------------------------------------------------

    def crowd(
        self,
        crowd: Crowd,
        create: Callable[[], T],
        command: Callable[[T], None],
        remove: Callable[[T], None],
    ) -> Crowd:
        """`--concurrent` creates at once, then `--commands` commands in each, all at once."""
        n, timeout = self.args.concurrent, self.args.concurrent_timeout

        def timed(func: Callable[..., Any], *args: Any) -> tuple[float, Any]:
            start = time.perf_counter()
            value = func(*args)
            return time.perf_counter() - start, value

        def many(
            pool: ThreadPoolExecutor,
            calls: list[tuple[Callable[..., Any], tuple[Any, ...]]],
            times: list[float],
        ) -> tuple[float, list[Any]]:
            start = time.perf_counter()
            futures = [pool.submit(timed, func, *args) for func, args in calls]
            _, late = wait(futures, timeout=timeout)
            wall = time.perf_counter() - start
            values = []
            for future in futures:
                if future in late:
                    crowd.errors.append(f"not done within {timeout:g} s")
                elif (exc := future.exception()) is not None:
                    crowd.errors.append(_short(exc))
                else:
                    elapsed, value = future.result()
                    times.append(elapsed)
                    values.append(value)
            return wall, values

        with ThreadPoolExecutor(max_workers=n) as pool:
            crowd.create_wall, made = many(pool, [(create, ())] * n, crowd.creates)
            calls = [(command, (one,)) for one in made for _ in range(self.args.commands)]
            crowd.command_wall, _ = many(pool, calls, crowd.commands)
            cleanup: list[float] = []
            crowd.cleanup_wall, _ = many(pool, [(remove, (one,)) for one in made], cleanup)
        return crowd

    # -- clean-up ----------------------------------------------------------------------------

    def stop_backend(self) -> int:
        """Kill the sandboxes still alive, SIGTERM the backend; the containers it left behind
        (there should be none) are removed, and counted."""
        for sandbox in list(self.sandboxes):
            try:
                self.kill(sandbox)
            except Exception as exc:  # reported; the backend's shutdown kills it anyway
                sys.stderr.write(f"clean-up: kill {sandbox.sandbox_id}: {_short(exc)}\n")
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"clean-up: backend pid {self.process.pid} ignored SIGTERM\n")
                self.process.kill()
                self.process.wait(timeout=10)
        if not self.backend_id:
            return 0
        return self.remove_containers(f"{BACKEND_LABEL}={self.backend_id}")

    def remove_containers(self, label: str) -> int:
        left = self.docker.containers.list(all=True, filters={"label": label})
        for container in left:
            try:
                container.remove(force=True)
            except docker.errors.DockerException as exc:
                sys.stderr.write(f"clean-up: remove {container.short_id}: {exc}\n")
        return len(left)

    def clean(self) -> None:
        """Remove the baseline's containers and (unless --keep) the images the run made."""
        self.remove_containers(f"{RUN_LABEL}={self.run_id}")
        if self.args.keep:
            made = self.image or "no template image"
            sys.stderr.write(f"kept (--keep): {made}, its parity base, {self.private_base}\n")
            return
        images = []
        if self.backend_id:
            images += self.docker.images.list(
                filters={"label": f"{BACKEND_LABEL}={self.backend_id}"}
            )
        images += self.docker.images.list(
            filters={"label": f"{PARITY_OF_LABEL}={self.private_base}"}
        )
        refs = [str(i.id) for i in images] + [self.private_base]
        for ref in refs:  # the template first, then its parity base, then the private tag
            try:
                self.docker.images.remove(ref, force=ref != self.private_base)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.DockerException as exc:
                sys.stderr.write(f"clean-up: remove image {ref}: {exc}\n")


def _until_served(client: httpx.Client) -> None:
    """Wait (up to START_TIMEOUT_S) for the sandbox's HTTP server to accept connections."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.get("/", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure(bench: Bench) -> Results:
    args = bench.args
    watch = Watch(bench.env)
    engine = bench.docker.version()
    with watch.noting_edits():
        bench.start_backend()
        bench.build_template()
    # A Figure's command: here the calls it times (in this process, not a command line).
    sandbox_call = ["Sandbox.create", bench.template]
    container_call = ["containers.run", "--init", bench.image[7:19], "sh", "-c", "sleep infinity"]
    command_call = ["commands.run", "true"]
    exec_call = ["exec_run", "-u", bench.limits["user"], *COMMAND]
    create = [
        Figure("Sandbox.create + commands.run(true)", [*sandbox_call, "then", *command_call]),
        Figure("  Sandbox.create", sandbox_call),
        Figure("  first commands.run(true)", command_call),
        Figure("containers.run + exec_run (docker SDK)", [*container_call, "then", *exec_call]),
        Figure("  containers.run(detach, init)", container_call),
        Figure("  first exec_run(bash -l -c true)", exec_call),
    ]
    run = [
        Figure("commands.run(true)", command_call),
        Figure("exec_run(bash -l -c true) (docker SDK)", exec_call),
    ]
    route = [
        Figure("GET / through get_host (Host header)", ["GET", f"{ROUTE_PORT}-<id>.<domain>"]),
        Figure("GET / to the container directly", ["GET", f"<container ip>:{ROUTE_PORT}"]),
    ]

    def record(side: list[Figure], parts: tuple[float, float]) -> None:
        side[0].times.append(sum(parts))
        side[1].times.append(parts[0])
        side[2].times.append(parts[1])

    try:
        for _ in range(args.warmup):
            bench.sandbox_pair()
            bench.container_pair()
        for _ in range(args.create_repeat):
            record(create[:3], bench.sandbox_pair())
            record(create[3:], bench.container_pair())

        sandbox, container = bench.create(), bench.container()
        try:
            for _ in range(RUN_WARMUP):
                bench.command(sandbox)
                bench.exec(container)
            for _ in range(args.run_repeat):
                start = time.perf_counter()
                bench.command(sandbox)
                middle = time.perf_counter()
                bench.exec(container)
                run[0].times.append(middle - start)
                run[1].times.append(time.perf_counter() - middle)
        finally:
            bench.kill(sandbox)
            container.remove(force=True)
        bench.route(route)
    except Exception as exc:  # a timed call failed: the figures would not mean anything
        raise SetupError(f"a timed call failed: {_short(exc)}\n{bench.tail()}") from exc

    crowds = [
        bench.crowd(Crowd("sandboxes (e2b SDK)"), bench.create, bench.command, bench.kill),
        bench.crowd(
            Crowd("containers (docker SDK)"),
            bench.container,
            bench.exec,
            lambda c: c.remove(force=True),
        ),
    ]
    leftovers = bench.stop_backend()
    return Results(
        conditions=watch.conditions(),
        docker=f"engine {engine.get('Version', '?')}, docker SDK {docker.__version__}",
        sdk=f"e2b SDK {version('e2b')}",
        base=args.base,
        image=bench.image,
        limits=bench.limits,
        create_repeat=args.create_repeat,
        run_repeat=args.run_repeat,
        concurrent=args.concurrent,
        commands=args.commands,
        create=create,
        run=run,
        crowds=crowds,
        route_repeat=args.route_repeat,
        route=route,
        leftover_containers=leftovers,
    )


# ---------------------------------------------------------------------------------- reporting


def goals(res: Results) -> list[Goal]:
    p50 = res.create[0].median
    create_ratio = p50 / res.create[3].median
    run_ratio = res.run[0].median / res.run[1].median
    route_ratio = res.route[0].median / res.route[1].median
    sandboxes = res.crowds[0]
    note = ""
    if (res.concurrent, res.commands) != TARGET_CONCURRENT:
        note = f"target is stated for {TARGET_CONCURRENT[0]} x {TARGET_CONCURRENT[1]}"
    create_note = (
        f"needs create + first command <= {res.create[3].median * TARGET_CREATE_RATIO:.3f} s "
        "on this machine"
    )
    return [
        Goal(
            f"(a) create + first command p50 under {TARGET_CREATE_S:g} s",
            p50,
            "s",
            TARGET_CREATE_S,
            p50 < TARGET_CREATE_S,
            stat="p50",
        ),
        Goal(
            f"(a) p50 sandbox / p50 docker run + exec at most {TARGET_CREATE_RATIO:g}",
            create_ratio,
            "x",
            TARGET_CREATE_RATIO,
            create_ratio <= TARGET_CREATE_RATIO,
            create_note,
            stat="p50",
        ),
        Goal(
            f"(b) p50 commands.run / p50 docker exec at most {TARGET_RUN_RATIO:g}",
            run_ratio,
            "x",
            TARGET_RUN_RATIO,
            run_ratio <= TARGET_RUN_RATIO,
            f"needs commands.run <= {res.run[1].median * TARGET_RUN_RATIO:.3f} s here",
            stat="p50",
        ),
        Goal(
            f"(c) {res.concurrent} sandboxes at once, {res.commands} commands each: no errors",
            len(sandboxes.errors),
            "errors",
            0,
            not sandboxes.errors and len(sandboxes.commands) == res.concurrent * res.commands,
            note,
            stat="count",
        ),
        Goal(
            f"(d) p50 GET through get_host / p50 GET direct at most {TARGET_ROUTE_RATIO:g}",
            route_ratio,
            "x",
            TARGET_ROUTE_RATIO,
            route_ratio <= TARGET_ROUTE_RATIO,
            f"needs a routed GET <= {res.route[1].median * TARGET_ROUTE_RATIO * 1000:.2f} ms here",
            stat="p50",
        ),
    ]


def as_json(res: Results) -> dict[str, Any]:
    create, run = res.create, res.run
    return {
        **res.conditions.as_json(),
        "docker": res.docker,
        "sdk": res.sdk,
        "base_image": res.base,
        "template_image": res.image,
        "sandbox_limits": res.limits,
        "create_and_first_command": {
            "repeat": res.create_repeat,
            "sandbox": {f.label.strip(): figure_json(f) for f in create[:3]},
            "docker": {f.label.strip(): figure_json(f) for f in create[3:]},
            "ratio_p50": round(create[0].median / create[3].median, 3),
            "ratio_p95": round(p95(create[0].times) / p95(create[3].times), 3),
        },
        "command": {
            "repeat": res.run_repeat,
            "warmup": RUN_WARMUP,
            "sandbox": figure_json(run[0]),
            "docker": figure_json(run[1]),
            "ratio_p50": round(run[0].median / run[1].median, 3),
        },
        "concurrent": {
            "sandboxes": res.concurrent,
            "commands_each": res.commands,
            "backend": res.crowds[0].as_json(),
            "docker": res.crowds[1].as_json(),
        },
        "port_routing": {
            "repeat": res.route_repeat,
            "warmup": ROUTE_WARMUP,
            "through_get_host": figure_json(res.route[0]),
            "direct": figure_json(res.route[1]),
            "ratio_p50": round(res.route[0].median / res.route[1].median, 3),
        },
        "containers_left_behind": res.leftover_containers,
        "targets": [t.as_json() for t in goals(res)],
    }


def as_table(res: Results) -> str:
    def row(f: Figure) -> str:
        return f"  {f.label:46} {f.median:7.3f}s {p95(f.times):7.3f}s {f.best:7.3f}s"

    def ratio(a: Figure, b: Figure) -> str:
        return (
            f"  {'ratio sandbox / docker':46} {a.median / b.median:7.2f}x "
            f"{p95(a.times) / p95(b.times):7.2f}x {a.best / b.best:7.2f}x"
        )

    head = f"{'p50':>8} {'p95':>8} {'best':>8}"
    create, run = res.create, res.run
    lines = res.conditions.table_head(
        "boxsmith backend benchmark",
        f"docker {res.docker}, {res.sdk}",
        f"(a) {res.create_repeat} and (b) {res.run_repeat} calls per side, interleaved",
        each="in-process SDK calls against a served backend",
    )
    lines += [
        f"template image {res.image[:19]} from {res.base}; limits {res.limits}",
        "",
        f"{'(a) create + first command':48} {head}",
        *(row(f) for f in create),
        ratio(create[0], create[3]),
        "",
        f"{'(b) one command in a running sandbox':48} {head}",
        *(row(f) for f in run),
        ratio(run[0], run[1]),
        "",
        f"(c) {res.concurrent} at once, {res.commands} commands each",
        f"  {'':24} {'errors':>6} {'creates':>8} {'create/s':>9} {'create p50/max':>15} "
        f"{'commands':>9} {'cmd/s':>7} {'cmd p50/max':>13} {'cleanup':>8}",
    ]
    for crowd in res.crowds:
        c = crowd.as_json()
        mid = f"{c['create'].get('p50_s', 0):.2f}/{c['create'].get('max_s', 0):.2f}s"
        cmd = f"{c['command'].get('p50_s', 0):.3f}/{c['command'].get('max_s', 0):.2f}s"
        lines.append(
            f"  {crowd.label:24} {c['errors']:6d} {crowd.create_wall:7.2f}s "
            f"{c['creates_per_s']:9.1f} {mid:>15} {crowd.command_wall:8.2f}s "
            f"{c['commands_per_s']:7.1f} {cmd:>13} {crowd.cleanup_wall:7.2f}s"
        )
        lines += [f"    error: {e}" for e in c["error_samples"]]
    lines += [
        "  (creates, commands, cleanup: wall time of each phase, all calls at once)",
        "",
        f"{'(d) port routing, ' + str(res.route_repeat) + ' GETs per side':48} {head}",
        *(row(f) for f in res.route),
        ratio(res.route[0], res.route[1]),
        "",
        f"containers left behind by the backend after SIGTERM: {res.leftover_containers}",
        "",
        *verdict_lines(goals(res)),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__, base_image=True)
    parser.add_argument(
        "--create-repeat",
        type=at_least(1),
        default=20,
        help="timed creates per side, (a) (default 20)",
    )
    parser.add_argument(
        "--run-repeat",
        type=at_least(1),
        default=50,
        help="timed commands per side, (b) (default 50)",
    )
    parser.add_argument(
        "--concurrent", type=at_least(1), default=20, help="sandboxes at once, (c) (default 20)"
    )
    parser.add_argument(
        "--commands", type=at_least(1), default=10, help="commands per sandbox, (c) (default 10)"
    )
    parser.add_argument(
        "--concurrent-timeout",
        type=float,
        default=300.0,
        help="seconds each phase of (c) may take (default 300)",
    )
    parser.add_argument(
        "--route-repeat",
        type=at_least(1),
        default=200,
        help="timed GETs per side, (d) (default 200)",
    )
    args = parser.parse_args(argv)
    if args.concurrent_timeout <= 0:
        parser.error("--concurrent-timeout must be positive")
    return args


def measure_in(args: argparse.Namespace, project: Path) -> Results:
    """Measure with the backend's folders in `project`; then remove what the run made."""
    bench = Bench(args, project)
    try:
        return measure(bench)
    finally:
        bench.stop_backend()
        bench.clean()


def main(argv: Sequence[str] | None = None) -> int:
    return main_of(parse_args(argv), measure_in, as_json, as_table, name="backend")


if __name__ == "__main__":
    sys.exit(main())
