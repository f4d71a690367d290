"""envd's process service (`/process.Process/*`), served host-side with `docker exec`.

Every command is one `docker exec` in the sandbox's container, attached over Docker's hijacked
socket (stdin when asked for; stdout and stderr as Docker's multiplexed frames), read by a worker
thread that feeds the event loop. A small `sh` wrapper prints its pid, then execs the command:
that pid is the one the SDK sees. runc makes every exec'd process a session and process-group
leader (the wrapper falls back to `setsid` where a runtime does not), so SendSignal and the
`Connect-Timeout-Ms` lifetime kill the whole group with a second exec as root. Processes live in
memory per sandbox and die with the backend, as they do with envd. An unknown sandbox gets 502
"... was not found" from `guard_sandbox`, which the SDK turns into its not-running exception.
The docker side of one exec is `envd_exec.py`; the events it streams, `envd_events.py`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import posixpath
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof

from boxsmith._internal.backend.envd import docker_exec as envd_exec
from boxsmith._internal.backend.envd.events import KEEPALIVE, data_event, end_event, start_event
from boxsmith._internal.backend.runtime import (
    Sandboxes,
    SandboxGone,
    SandboxHandle,
    guard_sandbox,
    not_found,
)
from boxsmith._internal.docker import buildenv

__all__ = ["ProcessApp", "ProcessService", "guard_sandbox", "process_app"]

# $0 is a label; "$@" the command. The pid line comes first, before any output of the command.
_WRAPPER = (
    'read -r _ _ _ _ g _ </proc/$$/stat; echo "$$"; [ "${g:-$$}" = "$$" ] && exec "$@"; '
    'exec setsid "$@"'
)
_KILL = 'kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null; true'
_SIGNALS = {process_pb.Signal.SIGKILL: "KILL", process_pb.Signal.SIGTERM: "TERM"}
_KEEPALIVE_DEFAULT = 50.0
_GONE = object()  # queued to followers when the sandbox is forgotten
_log = logging.getLogger(__name__)


def process_app(sandboxes: Sandboxes, client: docker.DockerClient) -> ProcessApp:
    """The SDK's generated ASGI app (path `/process.Process`) serving a new ProcessService,
    which is also its `service` attribute (call `service.forget(id)` when a sandbox stops)."""
    return ProcessApp(ProcessService(sandboxes, client))


@dataclass(eq=False)
class _Process:
    """One command started through Start, until its end event."""

    sandbox_id: str
    container_id: str
    config: process_pb.ProcessConfig  # as the client sent it, for List
    tag: str | None
    stdin: bool
    lifetime: float | None  # seconds, from Connect-Timeout-Ms
    exec_id: str = ""
    sock: Any = None  # docker's attached exec socket (a SocketIO over the engine connection)
    pid: int = 0
    subscribers: set[asyncio.Queue[Any]] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    forgotten: bool = False


class ProcessService(process_connect.Process):
    """envd's `process.Process` over `docker exec` (see the module docstring).

    Update (PTY resize) and StreamInput answer UNIMPLEMENTED: no PTY is offered (a Start with
    `pty` is refused) and the SDK's stdin path uses SendInput.

    Args:
        sandboxes: the registry of running sandboxes.
        client: a docker client, used from worker threads.
    """

    def __init__(self, sandboxes: Sandboxes, client: docker.DockerClient) -> None:
        self._sandboxes = sandboxes
        self._client = client
        self._procs: dict[str, dict[int, _Process]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- RPCs ----------------------------------------------------------------------------------

    async def start(
        self, request: process_pb.StartRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[process_pb.StartResponse]:
        """Run a command; stream start, output, keepalives and its end."""
        handle = self._handle(ctx)
        config = request.process
        if config is None or not config.cmd:
            raise ConnectError(Code.INVALID_ARGUMENT, "process.cmd is required")
        if request.pty is not None:
            raise ConnectError(Code.UNIMPLEMENTED, "PTY is not supported by the local backend")
        user = _user(ctx, handle.user)
        timeout_ms = ctx.timeout_ms
        proc = _Process(
            sandbox_id=handle.id,
            container_id=handle.container_id,
            config=config,
            tag=request.tag if request.has_field("tag") else None,
            stdin=bool(request.stdin),
            lifetime=timeout_ms / 1000 if timeout_ms is not None else None,
        )
        queue = self._subscribe(proc)
        try:
            await self._spawn(proc, handle, user)
            yield process_pb.StartResponse(event=start_event(proc.pid))
            async for event in self._follow(proc, queue, _keepalive(ctx), None):
                yield process_pb.StartResponse(event=event)
        finally:
            proc.subscribers.discard(queue)

    async def connect(
        self, request: process_pb.ConnectRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[process_pb.ConnectResponse]:
        """Attach to a running process: start, then only new output and its end."""
        proc = self._find(self._handle(ctx).id, request.process)
        queue = self._subscribe(proc)
        timeout_ms = ctx.timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms is not None else None
        try:
            yield process_pb.ConnectResponse(event=start_event(proc.pid))
            async for event in self._follow(proc, queue, _keepalive(ctx), deadline):
                yield process_pb.ConnectResponse(event=event)
        finally:
            proc.subscribers.discard(queue)

    async def list(
        self, request: process_pb.ListRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.ListResponse:
        """The running processes started through this service in the sandbox."""
        procs = self._procs.get(self._handle(ctx).id, {})
        return process_pb.ListResponse(
            processes=[
                process_pb.ProcessInfo(pid=p.pid, config=p.config, tag=p.tag)
                for p in sorted(procs.values(), key=lambda p: p.pid)
            ]
        )

    async def send_signal(
        self, request: process_pb.SendSignalRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.SendSignalResponse:
        """Send SIGKILL or SIGTERM to the process's whole group."""
        proc = self._find(self._handle(ctx).id, request.process)
        name = _SIGNALS.get(request.signal)
        if name is None:
            raise ConnectError(Code.INVALID_ARGUMENT, f"unsupported signal {request.signal}")
        await self._kill(proc, name)
        return process_pb.SendSignalResponse()

    async def send_input(
        self, request: process_pb.SendInputRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.SendInputResponse:
        """Write to the process's stdin (it must have been started with stdin)."""
        proc = self._with_stdin(self._find(self._handle(ctx).id, request.process))
        data = request.input.input if request.input is not None else None
        match data:
            case Oneof(field="stdin", value=chunk):
                async with proc.write_lock:
                    await envd_exec.in_thread(envd_exec.raw(proc.sock).sendall, chunk)
            case _:
                raise ConnectError(Code.INVALID_ARGUMENT, "only stdin input is supported")
        return process_pb.SendInputResponse()

    async def close_stdin(
        self, request: process_pb.CloseStdinRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.CloseStdinResponse:
        """Close the process's stdin (EOF): Docker closes it when the socket's write side shuts."""
        proc = self._with_stdin(self._find(self._handle(ctx).id, request.process))
        async with proc.write_lock:  # after any write in flight
            with contextlib.suppress(OSError):  # already closed, or the process ended
                envd_exec.raw(proc.sock).shutdown(socket.SHUT_WR)
        return process_pb.CloseStdinResponse()

    # update (PTY resize) and stream_input keep the protocol's UNIMPLEMENTED defaults.

    def forget(self, sandbox_id: str) -> None:
        """Drop a stopped sandbox's processes: followers get "was not found", readers stop.

        Safe to call from any thread (the sandbox reaper calls it from its own).
        """
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._drop(sandbox_id)
        else:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to drop
                loop.call_soon_threadsafe(self._drop, sandbox_id)

    # -- lookups -------------------------------------------------------------------------------

    def _handle(self, ctx: RequestContext[Any, Any]) -> SandboxHandle:
        self._loop = asyncio.get_running_loop()
        sandbox_id = ctx.request_headers.get("e2b-sandbox-id", "")
        try:
            return self._sandboxes.get(sandbox_id)
        except SandboxGone as exc:
            # Normally answered by guard_sandbox; this covers a sandbox stopping mid-request.
            raise ConnectError(Code.UNAVAILABLE, not_found(sandbox_id)) from exc

    def _find(self, sandbox_id: str, selector: process_pb.ProcessSelector | None) -> _Process:
        procs = self._procs.get(sandbox_id, {})
        match selector.selector if selector is not None else None:
            case Oneof(field="pid", value=pid):
                proc = procs.get(int(pid))
                what = f"process with pid {pid}"
            case Oneof(field="tag", value=tag):
                proc = next((p for p in procs.values() if p.tag == tag), None)
                what = f"process with tag {tag!r}"
            case _:
                raise ConnectError(Code.INVALID_ARGUMENT, "a process pid or tag is required")
        if proc is None:
            raise ConnectError(Code.NOT_FOUND, f"{what} not found")
        return proc

    @staticmethod
    def _with_stdin(proc: _Process) -> _Process:
        if not proc.stdin:
            raise ConnectError(
                Code.FAILED_PRECONDITION, f"process {proc.pid} was not started with stdin"
            )
        return proc

    # -- process lifecycle (event loop side) ---------------------------------------------------

    @staticmethod
    def _subscribe(proc: _Process) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        proc.subscribers.add(queue)
        return queue

    async def _spawn(self, proc: _Process, handle: SandboxHandle, user: str) -> None:
        """Create and attach the exec, start its reader; return once the pid is known."""
        config = proc.config
        home = _home(handle, user)
        cwd = config.cwd if config.has_field("cwd") and config.cwd else handle.workdir or home
        # the template's ENV is not there once the sandbox is ready (as on E2B)
        env, prelude = buildenv.for_command(
            handle.build_env, {"USER": user, "LOGNAME": user, **handle.env, **dict(config.envs)}
        )
        cmd = ["/bin/sh", "-c", prelude + _WRAPPER, "boxsmith-process", config.cmd, *config.args]
        attach = functools.partial(
            envd_exec.attach,
            self._client,
            handle.container_id,
            cmd=cmd,
            user=user,
            cwd=posixpath.join(home, cwd),
            env=env,
            stdin=proc.stdin,
        )
        exec_id, sock = await envd_exec.in_thread(attach)
        proc.exec_id, proc.sock = exec_id, sock
        loop = asyncio.get_running_loop()
        started: asyncio.Future[int] = loop.create_future()
        thread = threading.Thread(
            target=self._pump, args=(proc, loop, started), name="envd-process", daemon=True
        )
        thread.start()
        try:
            await started
        except _StartFailed as exc:
            detail = f": {exc.output.strip()}" if exc.output.strip() else ""
            raise ConnectError(
                Code.INVALID_ARGUMENT,
                f"cannot start {config.cmd!r} as {user!r} in {cwd!r} (exit {exc.code}){detail}",
            ) from exc

    def _started(self, proc: _Process, pid: int, started: asyncio.Future[int]) -> None:
        proc.pid = pid
        self._procs.setdefault(proc.sandbox_id, {})[pid] = proc
        if proc.lifetime is not None:
            loop = asyncio.get_running_loop()
            proc.timer = loop.call_later(proc.lifetime, self._expire, proc)
        if not started.done():
            started.set_result(pid)

    def _expire(self, proc: _Process) -> None:
        # envd treats the Start deadline as the process lifetime (infra envd process/start.go).
        task = asyncio.get_running_loop().create_task(self._kill(proc, "KILL"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _publish(proc: _Process, item: Any) -> None:
        for queue in proc.subscribers:
            queue.put_nowait(item)

    def _finish(self, proc: _Process, code: int | None) -> None:
        if proc.timer is not None:
            proc.timer.cancel()
        procs = self._procs.get(proc.sandbox_id, {})
        if procs.get(proc.pid) is proc:
            del procs[proc.pid]
        if not proc.forgotten:
            self._publish(proc, end_event(code))

    def _drop(self, sandbox_id: str) -> None:
        for proc in self._procs.pop(sandbox_id, {}).values():
            proc.forgotten = True
            if proc.timer is not None:
                proc.timer.cancel()
            self._publish(proc, _GONE)
            with contextlib.suppress(OSError):  # wakes the reader thread, which closes it
                envd_exec.raw(proc.sock).shutdown(socket.SHUT_RDWR)

    async def _follow(
        self,
        proc: _Process,
        queue: asyncio.Queue[Any],
        keepalive: float,
        deadline: float | None,
    ) -> AsyncIterator[process_pb.ProcessEvent]:
        """The events for one subscriber until the end event; keepalives when silent."""
        while True:
            wait = keepalive
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise ConnectError(Code.DEADLINE_EXCEEDED, "the connection timed out")
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if deadline is None or time.monotonic() < deadline:
                    yield KEEPALIVE
                continue
            if item is _GONE:
                raise ConnectError(Code.UNAVAILABLE, not_found(proc.sandbox_id))
            yield item
            if item.event is not None and item.event.field == "end":
                return

    async def _kill(self, proc: _Process, signal_name: str) -> None:
        cmd = ["/bin/sh", "-c", _KILL, "boxsmith-kill", signal_name, str(proc.pid)]
        await envd_exec.in_thread(envd_exec.run_root, self._client, proc.container_id, cmd)

    # -- docker (worker threads) ---------------------------------------------------------------

    def _pump(
        self, proc: _Process, loop: asyncio.AbstractEventLoop, started: asyncio.Future[int]
    ) -> None:
        """Reader thread: the pid line, then output frames, then the exit code, to the loop."""

        def post(callback: Any, *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed (server shutdown)
                loop.call_soon_threadsafe(callback, *args)

        head = b""  # stdout until the pid line
        early: list[bytes] = []  # stderr before it (only the wrapper's own errors)
        pid = 0
        try:
            for stream, chunk in envd_exec.frames(proc.sock):
                data = chunk
                if not pid and stream == 1:
                    head += chunk
                    line, newline, data = head.partition(b"\n")
                    if not newline:
                        continue
                    if not line.strip().isdigit():
                        break
                    pid = int(line)
                    post(self._started, proc, pid, started)
                    for err in early:
                        post(self._publish, proc, data_event(2, err))
                    if not data:
                        continue
                if pid:
                    post(self._publish, proc, data_event(stream, data))
                else:
                    early.append(data)
        except OSError:
            pass  # the socket was shut down (forget) or the engine connection dropped
        except Exception:  # the end must still be reported, or followers wait forever
            _log.exception("reading the output of %s failed", proc.exec_id)
        finally:
            envd_exec.close(proc.sock)
        code = envd_exec.exit_code(self._client, proc.exec_id, lambda: proc.forgotten)
        if pid:
            post(self._finish, proc, code)
        else:
            text = (head + b"".join(early)).decode("utf-8", "replace")
            post(_fail, started, _StartFailed(code, text))


class ProcessApp(process_connect.ProcessASGIApplication):
    """The SDK's generated `ProcessASGIApplication`, keeping its service at hand."""

    def __init__(self, service: ProcessService) -> None:
        super().__init__(service)
        self.service = service


class _StartFailed(Exception):
    def __init__(self, code: int | None, output: str) -> None:
        super().__init__(output)
        self.code, self.output = code, output


def _fail(future: asyncio.Future[int], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def _user(ctx: RequestContext[Any, Any], default: str) -> str:
    """The user of `Authorization: Basic base64("<user>:")`, else the sandbox's default."""
    scheme, _, value = ctx.request_headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return default
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectError(Code.UNAUTHENTICATED, "invalid Authorization header") from exc
    return decoded.partition(":")[0] or default


def _home(handle: SandboxHandle, user: str) -> str:
    if user == handle.user:
        return handle.home
    return "/root" if user in ("root", "0") else f"/home/{user}"


def _keepalive(ctx: RequestContext[Any, Any]) -> float:
    raw = ctx.request_headers.get("keepalive-ping-interval", "")
    try:
        return max(float(raw), 0.1)
    except ValueError:
        return _KEEPALIVE_DEFAULT
