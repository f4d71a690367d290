"""The `process.ProcessEvent`s the envd process service streams, with envd's conventions: the
start event with the pid, stdout and stderr data, keepalives, and the end event (exit 0 has no
error; death by signal n, which docker exec reports as 128+n, is exit -1 "signal: <name>").
"""

from __future__ import annotations

from typing import Literal

from e2b.envd.process import process_pb
from protobuf import Oneof

__all__ = ["KEEPALIVE", "Event", "data_event", "end_event", "start_event"]

Event = process_pb.ProcessEvent
# Go's names (envd reports `ProcessState.String()`).
_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    6: "aborted",
    9: "killed",
    11: "segmentation fault",
    13: "broken pipe",
    15: "terminated",
}
_KEEPALIVE_EVENT: Oneof[Literal["keepalive"], process_pb.ProcessEvent.KeepAlive]
_KEEPALIVE_EVENT = Oneof("keepalive", Event.KeepAlive())
KEEPALIVE = Event(event=_KEEPALIVE_EVENT)


def start_event(pid: int) -> process_pb.ProcessEvent:
    """The first event of a process: its pid."""
    start: Oneof[Literal["start"], process_pb.ProcessEvent.StartEvent]
    start = Oneof("start", Event.StartEvent(pid=pid))
    return Event(event=start)


def data_event(stream: int, data: bytes) -> process_pb.ProcessEvent:
    """Output of docker's stream 1 (stdout) or 2 (stderr)."""
    if stream == 2:
        stderr: Oneof[Literal["stderr"], bytes] = Oneof("stderr", data)
        chunk = Event.DataEvent(output=stderr)
    else:
        stdout: Oneof[Literal["stdout"], bytes] = Oneof("stdout", data)
        chunk = Event.DataEvent(output=stdout)
    event: Oneof[Literal["data"], process_pb.ProcessEvent.DataEvent] = Oneof("data", chunk)
    return Event(event=event)


def end_event(code: int | None) -> process_pb.ProcessEvent:
    """The last event: `code` is docker's exit code, None when the container went away."""
    if code is None:  # the container went away under the process
        code = 128 + 9
    signal_name = _SIGNAL_NAMES.get(code - 128) if code > 128 else None
    if signal_name is not None:
        exit_code, status = -1, f"signal: {signal_name}"
    else:
        exit_code, status = code, f"exit status {code}"
    end = Event.EndEvent(
        exit_code=exit_code,
        exited=signal_name is None,
        status=status,
        error=status if exit_code else None,
    )
    event: Oneof[Literal["end"], process_pb.ProcessEvent.EndEvent] = Oneof("end", end)
    return Event(event=event)
