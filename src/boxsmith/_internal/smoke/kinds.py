"""The smoke check kinds: one attempt of each, only through the `CheckTarget` protocol.

Each kind is a small class with `expected(check)` (what passing means, in words) and
`attempt(target, check)` (run once, say what came); `KINDS` is the one registry the runner reads.
Nothing here touches the host's network: ports come from /proc/net, HTTP requests and process
listings run inside the target, so the same checks work in a container and in an E2B sandbox. The
one exception is the page check (`boxsmith._internal.smoke.page`): a browser on the host opens
the port at the URL the target names for it.
"""

from __future__ import annotations

import math
import re
import shlex
import uuid
from typing import Any, Protocol, TypeVar

from boxsmith._internal.docker.conventions import OWN_MARKER
from boxsmith._internal.smoke.page import PageKind
from boxsmith._internal.smoke.protocol import (
    Attempt,
    CheckTarget,
    CommandResult,
    trim,
)
from boxsmith._internal.spec.checks import (
    CommandCheck,
    FileCheck,
    HttpCheck,
    PageCheck,
    PortCheck,
    ProcessCheck,
)

__all__ = [
    "KINDS",
    "NO_HTTP_CLIENT",
    "Attempt",
    "Check",
    "CheckKind",
    "http_command",
    "list_processes",
    "listening_ports",
    "trim",
]

Check = CommandCheck | FileCheck | PortCheck | HttpCheck | ProcessCheck | PageCheck

C_contra = TypeVar("C_contra", contravariant=True)

NO_HTTP_CLIENT = "no HTTP client (curl, wget or python3) in the image"


class CheckKind(Protocol[C_contra]):
    """One kind of smoke check."""

    def expected(self, check: C_contra) -> str:
        """What passing means, in words (`exit 0, stdout matching /v1/`)."""
        ...

    def attempt(self, target: CheckTarget, check: C_contra) -> Attempt:
        """Run the check once. Raises TargetError when the target is gone."""
        ...


def _quote(text: str, *, tail: bool = False, limit: int = 100) -> str:
    text = text.strip()
    if len(text) > limit:
        text = "..." + text[-limit:] if tail else text[:limit] + "..."
    return repr(text)


def _search(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.MULTILINE) is not None


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _streams(result: CommandResult) -> str:
    if not result.stderr:
        return trim(result.stdout)
    if not result.stdout:
        return trim(result.stderr)
    return trim(f"--- stdout\n{result.stdout.rstrip()}\n--- stderr\n{result.stderr.rstrip()}\n")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class CommandKind:
    """`command:` exit code and regexes on stdout and stderr."""

    def expected(self, check: CommandCheck) -> str:
        parts = [f"exit {check.exit_code}"]
        if check.stdout is not None:
            parts.append(f"stdout matching /{check.stdout}/")
        if check.stderr is not None:
            parts.append(f"stderr matching /{check.stderr}/")
        return ", ".join(parts)

    def attempt(self, target: CheckTarget, check: CommandCheck) -> Attempt:
        result = target.run(
            check.command,
            user=check.user,
            cwd=check.cwd,
            env=check.env or None,
            timeout=check.timeout,
        )
        output = _streams(result)
        if result.exit_code is None:
            return Attempt(False, f"no exit within {_seconds(check.timeout)}", output)
        passed = result.exit_code == check.exit_code
        parts = [f"exit {result.exit_code}"]
        if check.stdout is not None:
            passed = passed and _search(check.stdout, result.stdout)
            parts.append(f"stdout: {_quote(result.stdout)}")
        if check.stderr is not None:
            passed = passed and _search(check.stderr, result.stderr)
        if check.stderr is not None or (not passed and result.stderr.strip()):
            parts.append(f"stderr: {_quote(result.stderr, tail=True)}")
        return Attempt(passed, ", ".join(parts), output)


class FileKind:
    """`file:` exists (or not), optionally with content matching a regex."""

    def expected(self, check: FileCheck) -> str:
        if check.contains is None:
            return "exists" if check.exists else "missing"
        if check.exists:
            return f"exists, content matching /{check.contains}/"
        return f"missing, or content not matching /{check.contains}/"

    def attempt(self, target: CheckTarget, check: FileCheck) -> Attempt:
        if check.contains is None:
            result = target.run(f"test -e {shlex.quote(check.file)}", timeout=check.timeout)
            if result.exit_code is None:
                return Attempt(False, f"no answer within {_seconds(check.timeout)}")
            if result.exit_code not in (0, 1):
                return Attempt(False, f"`test -e` exited {result.exit_code}", _streams(result))
            present = result.exit_code == 0
            return Attempt(present == check.exists, "exists" if present else "missing")
        data = target.read_file(check.file, timeout=check.timeout)
        if data is None:
            return Attempt(not check.exists, "missing")
        text = data.decode("utf-8", "replace")
        found = _search(check.contains, text)
        actual = f"exists, {len(data)} bytes, {'content matches' if found else 'no match'}"
        return Attempt(found == check.exists, actual, trim(text))


def listening_ports(table: bytes, *, tcp: bool) -> set[int]:
    """Local ports in a /proc/net/{tcp,tcp6,udp,udp6} table: TCP in LISTEN, UDP bound."""
    ports: set[int] = set()
    for line in table.decode("ascii", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or (tcp and fields[3] != "0A"):  # 0A: TCP_LISTEN
            continue
        try:
            ports.add(int(fields[1].rpartition(":")[2], 16))
        except ValueError:
            continue
    return ports


class PortKind:
    """`port:` a TCP socket listening on the port, or a UDP socket bound to it."""

    def expected(self, check: PortCheck) -> str:
        return f"port {check.port} listening (TCP) or bound (UDP)"

    def attempt(self, target: CheckTarget, check: PortCheck) -> Attempt:
        found: dict[str, set[int]] = {"tcp": set(), "udp": set()}
        tables = 0
        for name in ("tcp", "tcp6", "udp", "udp6"):
            table = target.read_file(f"/proc/net/{name}", timeout=check.timeout)
            if table is None:
                continue
            tables += 1
            protocol = name[:3]
            found[protocol] |= listening_ports(table, tcp=protocol == "tcp")
            if check.port in found[protocol]:
                state = "listening" if protocol == "tcp" else "bound"
                return Attempt(True, f"{protocol.upper()} port {check.port} {state}")
        if not tables:
            return Attempt(False, "no /proc/net/tcp in the target (is /proc mounted?)")
        listening = ", ".join(str(port) for port in sorted(found["tcp"]))
        return Attempt(
            False,
            f"not listening; listening TCP ports: {listening}"
            if listening
            else "not listening; no TCP port is listening",
        )


# Run with `python3 -c CODE URL TIMEOUT BODYFILE`: prints the status, writes the body to BODYFILE.
# Redirects are not followed: a 3xx raises HTTPError, whose status and body are used as they are.
_HTTP_PY = """\
import sys, urllib.error, urllib.request
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
try:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    r = opener.open(sys.argv[1], timeout=float(sys.argv[2]))
except urllib.error.HTTPError as e:
    r = e
except Exception as e:
    sys.exit("python3 urllib: %s" % (getattr(e, "reason", None) or e))
with open(sys.argv[3], "wb") as f:
    f.write(r.read())
print(r.getcode())
"""

# Needs $u (URL), $t (seconds) and $py (_HTTP_PY). On an answer: exit 0, stdout is the line
# `boxsmith-http-status NNN` then the body as it came. Otherwise exit 1 (127: no client) with
# the client's error on stderr. The URL is inside the target, so proxy settings are bypassed.
# wget: GNU flags when it has them, else BusyBox's (which follow redirects; -T only when
# built in, other builds crash on it).
_HTTP_SH = r"""
f=$(mktemp 2>/dev/null) || f=/tmp/.boxsmith-http.$$
e="$f.err"
trap 'rm -f "$f" "$e"' EXIT
if command -v curl >/dev/null 2>&1; then
  code=$(curl -sS --noproxy '*' -o "$f" -w '%{http_code}' --max-time "$t" "$u" 2>"$e")
elif command -v wget >/dev/null 2>&1; then
  if wget --help 2>&1 | grep -q -e --max-redirect; then
    wget -S --no-proxy -t 1 -T "$t" --max-redirect=0 --content-on-error -O "$f" "$u" 2>"$e"
  else
    o=; wget --help 2>&1 | grep -q -e '-T SEC' && o="-T $t"
    wget -S -Y off $o -O "$f" "$u" 2>"$e"
  fi
  code=$(sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$e" | tail -n 1)
elif command -v python3 >/dev/null 2>&1; then
  code=$(python3 -c "$py" "$u" "$t" "$f" 2>"$e")
else
  echo "no HTTP client (curl, wget or python3) in the image" >&2
  exit 127
fi
case "$code" in
  [1-5][0-9][0-9]) printf 'boxsmith-http-status %s\n' "$code"; cat "$f"; exit 0 ;;
esac
cat "$e" >&2
exit 1
"""

_STATUS_RE = re.compile(r"^boxsmith-http-status (\d{3})\n", re.MULTILINE)


def http_command(url: str, timeout: float) -> str:
    """The shell snippet that GETs `url` inside the target with curl, wget or python3."""
    head = f"u={shlex.quote(url)} t={math.ceil(timeout)} py={shlex.quote(_HTTP_PY)}"
    return head + _HTTP_SH


class HttpKind:
    """`http:` a GET from inside the target answers with a status and a body matching a regex."""

    def expected(self, check: HttpCheck) -> str:
        body = f", body matching /{check.body}/" if check.body is not None else ""
        return f"status {check.status}{body}"

    def attempt(self, target: CheckTarget, check: HttpCheck) -> Attempt:
        # The client's own --max-time ends first, so its error message arrives.
        result = target.run(http_command(check.http, check.timeout), timeout=check.timeout + 5)
        if result.exit_code is None:
            return Attempt(False, f"no answer within {_seconds(check.timeout)}", _streams(result))
        if result.exit_code == 127 and NO_HTTP_CLIENT in result.stderr:
            return Attempt(False, NO_HTTP_CLIENT, final=True)
        match = _STATUS_RE.search(result.stdout)
        if result.exit_code != 0 or match is None:
            error = _last_line(result.stderr) or f"no answer (exit {result.exit_code})"
            actual = "connection refused" if "refused" in error.lower() else error
            return Attempt(False, actual, _streams(result))
        status, body = int(match[1]), result.stdout[match.end() :]
        passed = status == check.status
        actual = f"status {status}"
        if check.body is not None:
            passed = passed and _search(check.body, body)
            actual += f", body: {_quote(body)}"
        return Attempt(passed, actual, trim(body))


# One line per process: pid, comm and the cmdline with NULs (and tabs, newlines) as spaces.
# The glob is expanded before the loop forks anything, so the shell's own children (tr) are not
# listed; the shell itself is skipped by pid and its wrappers by the marker in their cmdline.
_PS_SH = r"""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  read -r c 2>/dev/null <"$d/comm" || continue
  a=$(tr '\000\t\n' '   ' 2>/dev/null <"$d/cmdline")
  printf '%s\t%s\t%s\n' "$p" "$c" "$a"
done
"""


def list_processes(target: CheckTarget, timeout: float) -> list[tuple[int, str, str]] | str:
    """(pid, comm, cmdline) of every process in the target, or why they could not be listed."""
    marker = f"boxsmith-ps-{uuid.uuid4().hex}"
    result = target.run(f": {marker}{_PS_SH}", timeout=timeout)
    if result.exit_code is None:
        return f"no process list within {_seconds(timeout)}"
    processes = []
    for line in result.stdout.splitlines():
        pid, _, rest = line.partition("\t")
        comm, _, cmdline = rest.partition("\t")
        if marker not in line and pid.isdigit():
            processes.append((int(pid), comm, cmdline.strip()))
    if not processes:
        return f"could not list processes: {_last_line(result.stderr) or 'none found'}"
    return processes


def _program(cmdline: str) -> str:
    return cmdline.split(" ", 1)[0]


class ProcessKind:
    """`process:` a process whose name (comm, or its program path: argv[0]) matches a regex, like
    pgrep; with `full: true` the whole command line, like pgrep -f. Processes boxsmith itself
    runs in the target (the start wrapper, the listing shell) never count."""

    def expected(self, check: ProcessCheck) -> str:
        where = "command line" if check.full else "name"
        return f"a process whose {where} matches /{check.process}/"

    def attempt(self, target: CheckTarget, check: ProcessCheck) -> Attempt:
        try:  # the spec schema does not check this pattern
            pattern = re.compile(check.process)
        except re.error as exc:
            return Attempt(False, f"/{check.process}/ is not a valid regex: {exc}", final=True)
        processes = list_processes(target, check.timeout)
        if isinstance(processes, str):
            return Attempt(False, processes)
        for pid, comm, cmdline in processes:
            if OWN_MARKER in cmdline:
                continue
            if check.full:
                hit = bool(pattern.search(cmdline))
            else:
                hit = bool(pattern.search(comm) or pattern.search(_program(cmdline)))
            if hit:
                return Attempt(True, f"pid {pid}: {_quote(cmdline or comm)}")
        names = sorted({comm for _pid, comm, _cmdline in processes})
        more = f" and {len(names) - 12} more" if len(names) > 12 else ""
        listing = "\n".join(f"{pid} {cmdline or f'[{comm}]'}" for pid, comm, cmdline in processes)
        return Attempt(False, f"no match; running: {', '.join(names[:12])}{more}", trim(listing))


KINDS: dict[str, CheckKind[Any]] = {
    "command": CommandKind(),
    "file": FileKind(),
    "port": PortKind(),
    "http": HttpKind(),
    "process": ProcessKind(),
    "page": PageKind(),
}
