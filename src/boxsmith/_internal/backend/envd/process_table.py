"""The commands running in sandboxes' containers, one `docker exec` each (`ProcessTable`).

A small `sh` wrapper prints its pid, then execs the command: that pid is the one the SDK sees.
runc makes every exec'd process a session and process-group leader (the wrapper falls back to
`setsid` where a runtime does not), so SendSignal and the `Connect-Timeout-Ms` lifetime kill the
whole group with a second exec as root. A reader thread per process (over Docker's hijacked
socket, `docker_exec`) feeds its output to the event loop, where each subscriber (the Start
stream, any Connect) gets the events (`events`) in order, then the end. Processes live in memory
per sandbox and die with the backend, as they do with envd.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import posixpath
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import docker
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.envd.process import process_pb
from protobuf import Oneof

from boxsmith._internal.backend.envd import docker_exec as envd_exec
from boxsmith._internal.backend.envd.events import KEEPALIVE, data_event, end_event
from boxsmith._internal.backend.runtime import SandboxHandle, not_found, stream_ended
from boxsmith._internal.docker import buildenv

__all__ = ["Process", "ProcessTable"]

# $0 is a label; "$@" the command. The pid line comes first, before any output of the command.
_WRAPPER = (
    'read -r _ _ _ _ g _ </proc/$$/stat; echo "$$"; [ "${g:-$$}" = "$$" ] && exec "$@"; '
    'exec setsid "$@"'
)
_KILL = 'kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null; true'
_GONE = object()  # queued to followers when the sandbox is forgotten
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class Process:
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
    expired: bool = False  # its lifetime ran out and it was sent SIGKILL


class ProcessTable:
    """The processes started in each sandbox, by pid, and their lifecycle: spawn, follow,
    kill, end, forget. Used on the event loop; the reader threads post to it.

    Args:
        client: a docker client, used from worker threads.
        gone: whether a sandbox is no longer running (killed, or past its end): a process that
            ends then ended with it, and its followers' streams break as envd's do.
    """

    def __init__(self, client: docker.DockerClient, gone: Callable[[str], bool]) -> None:
        self._client = client
        self._gone = gone
        self._procs: dict[str, dict[int, Process]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def listed(self, sandbox_id: str) -> list[Process]:
        """The running processes of a sandbox, by pid."""
        return sorted(self._procs.get(sandbox_id, {}).values(), key=lambda p: p.pid)

    def find(self, sandbox_id: str, selector: process_pb.ProcessSelector | None) -> Process:
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
    def subscribe(proc: Process) -> asyncio.Queue[Any]:
        """A new queue that gets `proc`'s events from now on (drop it from `subscribers`)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        proc.subscribers.add(queue)
        return queue

    async def spawn(self, proc: Process, handle: SandboxHandle, user: str) -> None:
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
            # docker's words, when its output came in time; else ask the container itself
            unknown = f"unable to find user {user}:" in exc.output or not await envd_exec.in_thread(
                self._user_exists, handle.container_id, user
            )
            if unknown:  # envd's: the user is looked up before anything starts (as /files does)
                raise ConnectError(Code.UNAUTHENTICATED, f"invalid username: '{user}'") from exc
            detail = f": {exc.output.strip()}" if exc.output.strip() else ""
            raise ConnectError(
                Code.INVALID_ARGUMENT,
                f"cannot start {config.cmd!r} as {user!r} in {cwd!r} (exit {exc.code}){detail}",
            ) from exc

    def _user_exists(self, container_id: str, user: str) -> bool:
        """Whether `user` is a user (a name or a uid) of the container, asked as root; True
        when the container cannot be asked (then the start's own failure is said)."""
        api = self._client.api
        try:
            created = api.exec_create(container_id, ["id", "-u", "--", user], user="root")
            api.exec_start(created["Id"])
            return int(api.exec_inspect(created["Id"])["ExitCode"] or 0) == 0
        except envd_exec.DOCKER_ERRORS:
            return True

    def _started(self, proc: Process, pid: int, started: asyncio.Future[int]) -> None:
        proc.pid = pid
        self._procs.setdefault(proc.sandbox_id, {})[pid] = proc
        if proc.lifetime is not None:
            loop = asyncio.get_running_loop()
            proc.timer = loop.call_later(proc.lifetime, self._expire, proc)
        if not started.done():
            started.set_result(pid)

    def _expire(self, proc: Process) -> None:
        # envd treats the Start deadline as the process lifetime (infra envd process/start.go).
        proc.expired = True
        task = asyncio.get_running_loop().create_task(self.kill(proc, "KILL"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _publish(proc: Process, item: Any) -> None:
        for queue in proc.subscribers:
            queue.put_nowait(item)

    def _finish(self, proc: Process, code: int | None) -> None:
        if proc.timer is not None:
            proc.timer.cancel()
        procs = self._procs.get(proc.sandbox_id, {})
        if procs.get(proc.pid) is proc:
            del procs[proc.pid]
        if proc.forgotten:
            return
        # The sandbox was killed under it (its registry entry goes before its container): the
        # stream breaks, as envd's does, instead of reporting the signal as an exit.
        self._publish(proc, _GONE if self._gone(proc.sandbox_id) else end_event(code))

    def drop(self, sandbox_id: str) -> None:
        """Forget a stopped sandbox's processes: followers get "was not found", the reader
        threads stop (their sockets shut)."""
        for proc in self._procs.pop(sandbox_id, {}).values():
            proc.forgotten = True
            if proc.timer is not None:
                proc.timer.cancel()
            self._publish(proc, _GONE)
            with contextlib.suppress(OSError):  # wakes the reader thread, which closes it
                envd_exec.raw(proc.sock).shutdown(socket.SHUT_RDWR)

    async def follow(
        self,
        proc: Process,
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
                raise self._broken(proc.sandbox_id)
            yield item
            if item.event is not None and item.event.field == "end":
                return

    def _broken(self, sandbox_id: str) -> ConnectError:
        """A follower's stream when its sandbox stopped: E2B's proxy cuts it, which the SDK
        tells apart by probing the sandbox (gone: "killed or reached its end of life"); a
        sandbox forgotten while still registered says "was not found" outright."""
        if self._gone(sandbox_id):
            return ConnectError(Code.UNAVAILABLE, stream_ended(sandbox_id))
        return ConnectError(Code.UNAVAILABLE, not_found(sandbox_id))

    async def kill(self, proc: Process, signal_name: str) -> None:
        """Send signal `signal_name` (KILL, TERM) to the process's group, as root."""
        cmd = ["/bin/sh", "-c", _KILL, "boxsmith-kill", signal_name, str(proc.pid)]
        await envd_exec.in_thread(envd_exec.run_root, self._client, proc.container_id, cmd)

    def _pump(
        self, proc: Process, loop: asyncio.AbstractEventLoop, started: asyncio.Future[int]
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


class _StartFailed(Exception):
    def __init__(self, code: int | None, output: str) -> None:
        super().__init__(output)
        self.code, self.output = code, output


def _fail(future: asyncio.Future[int], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def _home(handle: SandboxHandle, user: str) -> str:
    if user == handle.user:
        return handle.home
    return "/root" if user in ("root", "0") else f"/home/{user}"
