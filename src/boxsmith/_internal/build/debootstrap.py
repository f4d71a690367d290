"""A Debian root filesystem made as Debian's official Docker images are, packed for `docker import`.

`debootstrap --variant=minbase` on the host (it needs root and the debootstrap package, which
`scripts/docker-up` installs), then the settings debuerreotype gives the official images
(policy-rc.d, apt and dpkg tweaks, deb822 sources on deb.debian.org, no host leftovers). The slim
variant also keeps docs, man pages and translations out, now and for later installs. Any suite the
host's debootstrap has a script for and its keyring can verify: bookworm's debootstrap and
debian-archive-keyring (2023.3+deb12u2 has the trixie keys) also make trixie.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from boxsmith._internal.docker.client import BuildFailed

__all__ = ["DEBIAN_MIRROR", "debian_rootfs_tar", "run_logged"]

DEBIAN_MIRROR = os.environ.get("BOXSMITH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
Log = Callable[[str], None]


def run_logged(cmd: Sequence[str], log: Log, logfile: Path) -> None:
    """Run a host command, output to `logfile`; raise BuildFailed with its last lines."""
    log(f"$ {' '.join(cmd)}")
    with logfile.open("ab") as sink:
        code = subprocess.run(list(cmd), stdout=sink, stderr=subprocess.STDOUT, check=False)
    if code.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-20:]
        raise BuildFailed(
            f"`{' '.join(cmd)}` exited {code.returncode}; last lines:\n"
            + "\n".join(f"    {line}" for line in tail),
            f"full log: {logfile}",
        )


_SLIM_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/groff/*",
    "/usr/share/info/*",
    "/usr/share/linda/*",
    "/usr/share/lintian/overrides/*",
    "/usr/share/locale/*",
    "/usr/share/man/*",
)
_SLIM_INCLUDES = (
    "/usr/share/doc/*/copyright",
    "/usr/share/locale/all_languages",
    "/usr/share/locale/currency/*",
    "/usr/share/locale/l10n/*",
    "/usr/share/locale/languages",
    "/usr/share/locale/locale.alias",
)
_APT_CLEAN = (
    '"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
    '/var/cache/apt/*.bin || true";'
)
# The settings Debian's official images carry (written by debuerreotype-minimizing-config).
_DEBIAN_FILES = {
    "usr/sbin/policy-rc.d": "#!/bin/sh\n# Services cannot start during docker build.\nexit 101\n",
    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup": "force-unsafe-io\n",
    "etc/apt/apt.conf.d/docker-autoremove-suggests": (
        'Apt::AutoRemove::SuggestsImportant "false";\n'
    ),
    "etc/apt/apt.conf.d/docker-clean": (
        f"DPkg::Post-Invoke {{ {_APT_CLEAN} }};\nAPT::Update::Post-Invoke {{ {_APT_CLEAN} }};\n"
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/hostname": "",
    "etc/resolv.conf": "",
}
_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: {suite} {suite}-updates
Components: main
Signed-By: {keyring}

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {suite}-security
Components: main
Signed-By: {keyring}
"""
_KEYRING = "usr/share/keyrings/debian-archive-keyring"
# Where debootstrap keeps its per-suite scripts when DEBOOTSTRAP_DIR does not say otherwise.
_DEBOOTSTRAP_DIR = "/usr/share/debootstrap"


def _keyring(root: Path) -> str:
    """The archive keyring as the suite's own sources name it: trixie's keyring package ships
    `.pgp` (the `.gpg` is a link to it), bookworm's only `.gpg`."""
    pgp = root / f"{_KEYRING}.pgp"
    return f"/{_KEYRING}.pgp" if pgp.is_file() and not pgp.is_symlink() else f"/{_KEYRING}.gpg"


def _configure_rootfs(root: Path, suite: str, slim: bool) -> None:
    for rel, text in _DEBIAN_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # hosts and resolv.conf may be symlinks from the host
        path.write_text(text)
        path.chmod(0o755 if text.startswith("#!") else 0o644)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    sources = _SOURCES.format(suite=suite, keyring=_keyring(root))
    (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
    if (root / "etc/machine-id").exists():
        (root / "etc/machine-id").write_text("")
    # Host- and time-dependent leftovers; /dev, /proc and /sys are provided by the runtime.
    for pattern in ("dev/*", "proc/*", "sys/*", "var/lib/apt/lists/*", "var/cache/apt/*.bin",
                    "var/cache/apt/archives/*.deb", "var/log/bootstrap.log",
                    "var/log/apt/history.log", "var/log/apt/term.log"):  # fmt: skip
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    if slim:
        _slimify(root)


def _slimify(root: Path) -> None:
    rules = [f"path-exclude {p}" for p in _SLIM_EXCLUDES]
    rules += [f"path-include {p}" for p in _SLIM_INCLUDES]
    (root / "etc/dpkg/dpkg.cfg.d/docker").write_text("\n".join(rules) + "\n")
    for top in {p.split("/*")[0] for p in _SLIM_EXCLUDES}:
        base = root / top.lstrip("/")
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            for name in [*filenames, *(d for d in dirnames if (Path(dirpath) / d).is_symlink())]:
                path = Path(dirpath) / name
                inside = "/" + path.relative_to(root).as_posix()
                # dpkg matches like fnmatch without FNM_PATHNAME: `*` also crosses `/`.
                if any(fnmatch.fnmatchcase(inside, p) for p in _SLIM_EXCLUDES) and not any(
                    fnmatch.fnmatchcase(inside, p) for p in _SLIM_INCLUDES
                ):
                    path.unlink()
            if Path(dirpath) != base and not any(Path(dirpath).iterdir()):
                Path(dirpath).rmdir()


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


def _remove_rootfs(root: Path, log: Log) -> None:
    """Unmount what an interrupted debootstrap left mounted in `root`, then delete it."""
    for point in sorted(_mounts_under(root), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    left = _mounts_under(root)
    if left:  # never delete through a mount into the host's /proc, /sys or /dev
        log(f"warning: left {root} in place; still mounted: {', '.join(left)}")
        return
    shutil.rmtree(root, ignore_errors=True)


def _check_suite(debootstrap: str, suite: str) -> None:
    """A debootstrap older than `suite` has no script for it: say so before downloading."""
    scripts = Path(os.environ.get("DEBOOTSTRAP_DIR", _DEBOOTSTRAP_DIR)) / "scripts"
    if scripts.is_dir() and not (scripts / suite).exists():
        raise BuildFailed(
            f"this debootstrap ({debootstrap}) cannot make Debian {suite}: it has no "
            f"{scripts / suite} script",
            "install a newer debootstrap (Debian's backports have one), or provide the image "
            "from a registry (see `boxsmith images ensure`)",
        )


def debian_rootfs_tar(suite: str, *, slim: bool, workdir: Path, log: Log) -> Path:
    """Bootstrap `suite` into `workdir` and pack it; returns the tar's path."""
    if os.geteuid() != 0:
        raise BuildFailed(
            "making a Debian stand-in runs debootstrap, which needs root",
            "run as root, or provide the image from a registry (see `boxsmith images ensure`)",
        )
    debootstrap = shutil.which("debootstrap") or shutil.which("/usr/sbin/debootstrap")
    if debootstrap is None:
        raise BuildFailed(
            "making a Debian stand-in needs debootstrap, which is not installed",
            "run `scripts/docker-up` (it installs debootstrap) or `apt-get install debootstrap`",
        )
    _check_suite(debootstrap, suite)
    root = workdir / "rootfs"
    tar = workdir / "rootfs.tar"
    try:
        command = [debootstrap, "--variant=minbase", suite, str(root), DEBIAN_MIRROR]
        run_logged(command, log, workdir / "debootstrap.log")
        _configure_rootfs(root, suite, slim)
        run_logged(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tar), "."],
            log,
            workdir / "tar.log",
        )
    finally:
        _remove_rootfs(root, log)
    return tar
