"""`boxsmith backend serve | env | status | stop`: run the local backend, tell clients where.

The data folder (default `.boxsmith/backend` in the project) holds the API key (`api_key`, made
on first start; its form, `e2b_local_<40 hex digits>`, is what `boxsmith backend reset` trusts),
the state (`state.sqlite3` and SQLite's `-wal`/`-shm`), build-context uploads
(`uploads/`), the log of a backend started in the background (`server.log`) and, while the
server runs, `server.json` (pid, URL, limits). All of it is the owner's only: the folders 0700,
the files 0600. `make_private` creates the folder that way (and any parent it has to create,
such as `.boxsmith`) and, at every start, puts back those modes on what the backend keeps there
(a folder made by an older version, or loosened by hand), never following a symlink and never
touching what another user owns; the serving process runs with umask 077, so files it creates
later are private too. One uvicorn listener on 127.0.0.1 serves both planes:
envd paths (`/process.Process/*`, `/filesystem.Filesystem/*`, `/files`, and `/health` with an
`E2b-Sandbox-Id` header) go to the envd shim, everything else to the REST control plane.

One data folder has one backend: the server holds an exclusive lock (flock) on `server.lock` in
the folder for its whole life (the kernel releases it when the process ends, kill -9 too). A
second server for the folder refuses to start, whatever its port, so its start-up never touches
the first one's sandboxes; `server.json` counts only while its pid runs and the lock is held,
and only the server holding the lock writes or removes it. Starting one in the background
(`commands.backend.ensure_running`) is serialized by `start.lock`: of two commands starting a
stopped backend at once, the second waits and attaches to the server the first started.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from boxsmith._internal.backend.runtime import ASGIApp, Receive, Scope, Send
from boxsmith.errors import EXIT_OK, BoxsmithError, UsageError

if TYPE_CHECKING:
    from boxsmith._internal.backend.limits import Limits

__all__ = [
    "DEFAULT_PORT",
    "LOCK_FILE",
    "OWN_FILES",
    "START_LOCK",
    "BackendInfo",
    "acquire",
    "backend_id",
    "data_dir",
    "env_lines",
    "lock_held",
    "make_private",
    "open_log",
    "pid_alive",
    "read_info",
    "serve",
]

DEFAULT_PORT = 49990
SERVER_FILE = "server.json"
KEY_FILE = "api_key"
LOG_FILE = "server.log"
UPLOADS = "uploads"
LOCK_FILE = "server.lock"  # held by the running server
START_LOCK = "start.lock"  # held by a command starting one in the background
# What the backend keeps in its data folder besides uploads/: the only files it chmods there
# (and the only ones `boxsmith backend reset` deletes).
OWN_FILES = (
    KEY_FILE,
    KEY_FILE + ".tmp",
    SERVER_FILE,
    LOG_FILE,
    LOCK_FILE,
    START_LOCK,
    *(f"state.sqlite3{suffix}" for suffix in ("", "-wal", "-shm", "-journal")),
)
# How long a starting server retries the folder lock: other commands take it for an instant
# to see whether a server holds it (`lock_held`).
_LOCK_RETRY = 2.0


class BackendUnavailable(BoxsmithError):
    """The local backend is not running, or does not answer (exit 3)."""


def data_dir(root: Path, explicit: str | None = None) -> Path:
    """`--data-dir`, else BOXSMITH_BACKEND_DIR, else `<project>/.boxsmith/backend`."""
    raw = explicit or os.environ.get("BOXSMITH_BACKEND_DIR") or str(root / ".boxsmith/backend")
    return Path(raw).resolve()


def backend_id(folder: Path) -> str:
    """The id of the backend of data folder `folder`: a label on every image and container it
    makes, so runs of other backends on the same engine never touch them."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def api_key(folder: Path) -> str:
    """The backend's API key, made (mode 0600) on first use."""
    path = folder / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8").strip()
    _mkdir_private(folder)
    key = "e2b_local_" + secrets.token_hex(20)
    with _private_file(path.with_suffix(".tmp"), os.O_TRUNC) as handle:
        handle.write(key.encode() + b"\n")
    os.replace(path.with_suffix(".tmp"), path)
    return key


def make_private(folder: Path) -> None:
    """Create the data folder (mode 0700, so are the parents it creates) or make it private
    again: 0700 on it and `uploads/`, 0600 on the files the backend keeps there.

    Raises:
        BackendUnavailable: another user owns the folder, or it cannot be made (exit 3).
    """
    try:
        _mkdir_private(folder)
        mine = _restrict(folder, 0o700, stat.S_ISDIR)
        if mine:
            for name in OWN_FILES:
                _restrict(folder / name, 0o600, stat.S_ISREG)
            uploads = folder / UPLOADS
            if _restrict(uploads, 0o700, stat.S_ISDIR):
                with os.scandir(uploads) as entries:
                    for entry in entries:
                        _restrict(Path(entry.path), 0o600, stat.S_ISREG)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot make the backend's data folder {folder} private: {exc.strerror or exc}",
            "make sure you may write there, or use another (--data-dir, BOXSMITH_BACKEND_DIR)",
        ) from exc
    if not mine:
        raise BackendUnavailable(
            f"the backend's data folder {folder} is not a folder of yours",
            "use a data folder you own (--data-dir or BOXSMITH_BACKEND_DIR)",
        )


def _mkdir_private(folder: Path) -> None:
    """`folder` and the parents it lacks, each created 0700; existing ones are left alone."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile: another start won
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # whatever the umask


def _restrict(path: Path, mode: int, kind: Any) -> bool:
    """Set `mode` on `path` when it is of `kind` and ours; False (nothing changed) for a missing
    path, a symlink (never followed) or another user's. The folder is the owner's only by the
    time its entries are looked at, so nobody can swap one for a symlink in between."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not kind(info.st_mode) or info.st_uid != os.getuid():
        return False
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
    return True


@contextlib.contextmanager
def _private_file(path: Path, flags: int) -> Iterator[BinaryIO]:
    """`path` open for writing, mode 0600 whether it is new or not; never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def open_log(folder: Path) -> BinaryIO:
    """The log of a backend started in the background, `folder`/server.log (0600), appended."""
    fd = os.open(folder / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


@contextlib.contextmanager
def _owner_only_umask() -> Iterator[None]:
    """Files and folders this process creates meanwhile (SQLite's WAL and SHM, uploads, temp
    files) are the owner's only, whoever creates them."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def acquire(path: Path, *, wait: float) -> int | None:
    """An fd holding an exclusive flock on `path` (created 0600), or None when another process
    still holds it after `wait` seconds. Closing the fd (or the process ending) releases it.

    The lock is on the file at `path` when this returns: one that was removed and made again
    meanwhile (`boxsmith backend reset` removes them) is locked anew, never the old one."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
            continue
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def lock_held(folder: Path) -> bool:
    """Whether a server holds the folder's lock (runs, starts or stops), probed without
    waiting: a shared lock for an instant, which fails while the server's exclusive one
    is held."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class BackendInfo(dict[str, Any]):
    """`server.json`: pid, url, started."""


def read_info(folder: Path) -> BackendInfo | None:
    """The running server's info, or None when none runs: a file left by a server that was
    killed (its pid gone, or now another process's: the folder lock is free) is ignored."""
    try:
        data = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        pid = int(data.get("pid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if pid != _holder(folder) or not _is_server(pid) or not pid_alive(pid):
        return None
    return BackendInfo(data) if lock_held(folder) else None


def _holder(folder: Path) -> int | None:
    """The pid the server holding the folder's lock wrote into it (`_lock_folder`)."""
    try:
        return int((folder / LOCK_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _is_server(pid: int) -> bool:
    """Whether `pid` runs `backend serve` (a pid the kernel gave to another process since does
    not); True where there is no procfs to tell."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone, or no procfs
    except OSError:
        return True
    return b"backend" in argv and b"serve" in argv


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, ValueError, OverflowError):
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no procfs: trust kill(0)
    return fields[0] != "Z"


def env_lines(url: str, key: str) -> list[str]:
    """The lines a shell evaluates to point the e2b SDK at the backend."""
    return [
        f"export E2B_API_URL={url}",
        f"export E2B_SANDBOX_URL={url}",
        f"export E2B_API_KEY={key}",
    ]


def _envd_path(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    if path.startswith(("/process.Process/", "/filesystem.Filesystem/")) or path == "/files":
        return True
    if path == "/health":
        return any(name == b"e2b-sandbox-id" for name, _ in scope.get("headers", []))
    return False


def dispatcher(control: ASGIApp, envd: ASGIApp) -> ASGIApp:
    """One ASGI app: envd paths to `envd`, the rest to `control`; lifespan to `control`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _envd_path(scope):
            await envd(scope, receive, send)
        else:
            await control(scope, receive, send)

    return app


def serve(
    root: Path,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    folder: Path,
    err: TextIO,
    out: TextIO,
    mirrors: dict[str, str],
) -> int:
    """Run the backend until SIGINT/SIGTERM; kills its sandboxes on the way out.

    Raises:
        UsageError: a host others could reach, or another backend holds the folder (exit 2).
        BackendUnavailable: the port is taken (exit 3).
        StateDamaged: the state file is damaged (exit 3; `boxsmith backend reset`).
    """
    from boxsmith._internal.backend.limits import Limits

    _check_host(host)
    limits = Limits.from_env(os.environ)
    with _owner_only_umask():
        make_private(folder)
        lock = _lock_folder(folder)
        try:
            _check_port(host, port)
            return _serve(folder, host, port, limits, err=err, out=out, mirrors=mirrors)
        finally:
            os.close(lock)


def _serve(
    folder: Path,
    host: str,
    port: int,
    limits: Limits,
    *,
    err: TextIO,
    out: TextIO,
    mirrors: dict[str, str],
) -> int:
    """`serve` once the folder is locked and the port free."""
    import uvicorn

    from boxsmith._internal.backend.api import ControlPlane
    from boxsmith._internal.backend.builds import UploadStore
    from boxsmith._internal.backend.envd.app import envd_app
    from boxsmith._internal.backend.sandboxes import SandboxManager
    from boxsmith._internal.backend.store import STATE_FILE, Store
    from boxsmith._internal.build.base_images import resolve_mirrors
    from boxsmith._internal.build.record import host_ca_bundle
    from boxsmith._internal.docker.client import Engine

    key = api_key(folder)
    own_id = backend_id(folder)
    url = f"http://{host}:{port}"
    ca_path = host_ca_bundle()
    with Engine() as engine:
        store = Store(folder / STATE_FILE)
        envd_holder: list[Any] = []

        def forget(sandbox_id: str) -> None:
            for service in envd_holder:
                service.forget(sandbox_id)

        manager = SandboxManager(store, engine, own_id, on_killed=forget)
        reconciled = manager.reconcile()
        control = ControlPlane(
            store,
            engine,
            manager,
            UploadStore(folder / UPLOADS),
            api_key=key,
            base_url=url,
            backend_id=own_id,
            mirrors=resolve_mirrors(mirrors),
            ca=ca_path.read_bytes() if ca_path else None,
            limits=limits,
        )
        envd, services = envd_app(manager, engine.client, limits)
        envd_holder.extend(services)
        manager.start_reaper()
        config = uvicorn.Config(
            dispatcher(control.app(), envd),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        info = {
            "pid": os.getpid(),
            "url": url,
            "started": time.time(),
            "data_dir": str(folder),
            "limits": limits.as_dict(),
        }
        with _private_file(folder / SERVER_FILE, os.O_TRUNC) as handle:
            handle.write(json.dumps(info).encode() + b"\n")
        err.write(f"boxsmith backend on {url} (data {folder}); {reconciled.summary()}\n")
        for reason in reconciled.broken:
            err.write(f"  {reason}\n")
        out.write("\n".join(env_lines(url, key)) + "\n")
        out.flush()
        try:
            server.run()
        finally:
            _forget_info(folder)
            manager.close(kill_all=True)
            control.close()
    return EXIT_OK


def _forget_info(folder: Path) -> None:
    """Remove `server.json` if it is this process's (it is, while it holds the lock; checked
    anyway, so no path removes another server's file)."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        data = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        if int(data.get("pid", 0)) == os.getpid():
            (folder / SERVER_FILE).unlink()


def _lock_folder(folder: Path) -> int:
    """The fd holding the folder's lock for this server's life; UsageError when another server
    (running, starting or stopping) holds it."""
    fd = acquire(folder / LOCK_FILE, wait=_LOCK_RETRY)
    if fd is not None:
        # From here on this process owns the folder: its pid in the lock tells `read_info` which
        # server.json is current, and one left by a killed server goes at once, not after the
        # seconds reconcile takes (its pid may be another process's by now: `stop` would
        # SIGTERM that)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        (folder / SERVER_FILE).unlink(missing_ok=True)
        return fd
    running = read_info(folder)
    where = f" (pid {running['pid']}, {running['url']})" if running else " (starting or stopping)"
    raise UsageError(
        f"a backend already runs for {folder}{where}: one data folder has one backend",
        "use it (`boxsmith backend env`), stop it (`boxsmith backend stop`), or give this one "
        "another --data-dir",
    )


def _check_host(host: str) -> None:
    """UsageError for a host other users could reach."""
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(
        "BOXSMITH_BACKEND_ALLOW_REMOTE"
    ):
        raise UsageError(
            f"refusing to listen on {host}: the backend runs containers for anyone who reaches it",
            "listen on 127.0.0.1, or set BOXSMITH_BACKEND_ALLOW_REMOTE=1 if you really mean it",
        )


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "pick another port with --port, or stop what listens there",
            ) from exc


def stop(folder: Path, *, timeout: float = 20.0) -> bool:
    """SIGTERM the running backend and wait for it; False when none runs (`read_info`: only
    the pid of the server holding the folder's lock is ever signalled)."""
    info = read_info(folder)
    if info is None:
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    raise BackendUnavailable(
        f"the backend (pid {pid}) did not stop within {timeout:g}s", f"kill -9 {pid}"
    )
