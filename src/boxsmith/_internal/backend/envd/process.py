"""envd's process service (`/process.Process/*`), served host-side with `docker exec`.

The RPCs (Start, Connect, List, SendSignal, SendInput, CloseStdin) of the SDK's generated Connect
service. Every command is one `docker exec` in the sandbox's container, attached over Docker's
hijacked socket (stdin when asked for; stdout and stderr as Docker's multiplexed frames); the
processes themselves, their output and their end are kept by `process_table`, the docker side of
one exec is `docker_exec`, the events streamed `events`. An unknown sandbox gets 502 "... was not
found" from `runtime.guard_sandbox`, which the SDK turns into its not-running exception.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import docker
import docker.errors
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof

from boxsmith._internal.backend.envd import docker_exec as envd_exec
from boxsmith._internal.backend.envd.events import start_event
from boxsmith._internal.backend.envd.process_table import Process, ProcessTable
from boxsmith._internal.backend.runtime import (
    Sandboxes,
    SandboxGone,
    SandboxHandle,
    not_found,
)

__all__ = ["ProcessApp", "ProcessService", "process_app"]

_SIGNALS = {process_pb.Signal.SIGKILL: "KILL", process_pb.Signal.SIGTERM: "TERM"}
_KEEPALIVE_DEFAULT = 50.0


def process_app(sandboxes: Sandboxes, client: docker.DockerClient) -> ProcessApp:
    """The SDK's generated ASGI app (path `/process.Process`) serving a new ProcessService,
    which is also its `service` attribute (call `service.forget(id)` when a sandbox stops)."""
    return ProcessApp(ProcessService(sandboxes, client))


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
        self._table = ProcessTable(client, self._gone)
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
        proc = Process(
            sandbox_id=handle.id,
            container_id=handle.container_id,
            config=config,
            tag=request.tag if request.has_field("tag") else None,
            stdin=bool(request.stdin),
            lifetime=timeout_ms / 1000 if timeout_ms is not None else None,
        )
        queue = self._table.subscribe(proc)
        try:
            await self._table.spawn(proc, handle, user)
            yield process_pb.StartResponse(event=start_event(proc.pid))
            async for event in self._table.follow(proc, queue, _keepalive(ctx), None):
                if proc.expired and _killed(event):
                    # envd ends the Start stream with its context's error when the request's
                    # deadline (the command's timeout) kills the process: the SDK's timeout.
                    raise ConnectError(Code.DEADLINE_EXCEEDED, "context deadline exceeded")
                yield process_pb.StartResponse(event=event)
        finally:
            proc.subscribers.discard(queue)

    async def connect(
        self, request: process_pb.ConnectRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[process_pb.ConnectResponse]:
        """Attach to a running process: start, then only new output and its end."""
        proc = self._table.find(self._handle(ctx).id, request.process)
        queue = self._table.subscribe(proc)
        timeout_ms = ctx.timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms is not None else None
        try:
            yield process_pb.ConnectResponse(event=start_event(proc.pid))
            async for event in self._table.follow(proc, queue, _keepalive(ctx), deadline):
                yield process_pb.ConnectResponse(event=event)
        finally:
            proc.subscribers.discard(queue)

    async def list(
        self, request: process_pb.ListRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.ListResponse:
        """The running processes started through this service in the sandbox."""
        procs = self._table.listed(self._handle(ctx).id)
        return process_pb.ListResponse(
            processes=[process_pb.ProcessInfo(pid=p.pid, config=p.config, tag=p.tag) for p in procs]
        )

    async def send_signal(
        self, request: process_pb.SendSignalRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.SendSignalResponse:
        """Send SIGKILL or SIGTERM to the process's whole group."""
        proc = self._table.find(self._handle(ctx).id, request.process)
        name = _SIGNALS.get(request.signal)
        if name is None:
            raise ConnectError(Code.INVALID_ARGUMENT, f"unsupported signal {request.signal}")
        await self._table.kill(proc, name)
        return process_pb.SendSignalResponse()

    async def send_input(
        self, request: process_pb.SendInputRequest, ctx: RequestContext[Any, Any]
    ) -> process_pb.SendInputResponse:
        """Write to the process's stdin (it must have been started with stdin)."""
        proc = self._with_stdin(self._table.find(self._handle(ctx).id, request.process))
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
        proc = self._with_stdin(self._table.find(self._handle(ctx).id, request.process))
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
            self._table.drop(sandbox_id)
        else:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to drop
                loop.call_soon_threadsafe(self._table.drop, sandbox_id)

    # -- lookups -------------------------------------------------------------------------------

    def _gone(self, sandbox_id: str) -> bool:
        try:
            self._sandboxes.get(sandbox_id)
        except SandboxGone:
            return True
        return False

    def _handle(self, ctx: RequestContext[Any, Any]) -> SandboxHandle:
        self._loop = asyncio.get_running_loop()
        sandbox_id = ctx.request_headers.get("e2b-sandbox-id", "")
        try:
            return self._sandboxes.get(sandbox_id)
        except SandboxGone as exc:
            # Normally answered by guard_sandbox; this covers a sandbox stopping mid-request.
            raise ConnectError(Code.UNAVAILABLE, not_found(sandbox_id)) from exc

    @staticmethod
    def _with_stdin(proc: Process) -> Process:
        if not proc.stdin:
            raise ConnectError(
                Code.FAILED_PRECONDITION, f"process {proc.pid} was not started with stdin"
            )
        return proc


class ProcessApp(process_connect.ProcessASGIApplication):
    """The SDK's generated `ProcessASGIApplication`, keeping its service at hand."""

    def __init__(self, service: ProcessService) -> None:
        super().__init__(service)
        self.service = service


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


def _killed(event: process_pb.ProcessEvent) -> bool:
    """Whether `event` is an end by a signal."""
    match event.event:
        case Oneof(field="end", value=process_pb.ProcessEvent.EndEvent() as end):
            return not end.exited
    return False


def _keepalive(ctx: RequestContext[Any, Any]) -> float:
    raw = ctx.request_headers.get("keepalive-ping-interval", "")
    try:
        return max(float(raw), 0.1)
    except ValueError:
        return _KEEPALIVE_DEFAULT
