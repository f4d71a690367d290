"""Packages from the npm registry for the node stand-ins: resolve, download, verify, unpack.

Plain HTTP(S) with the standard library, so the host needs neither node nor npm. The registry is
`$npm_config_registry` (npm's own setting) or registry.npmjs.org. Every tarball is checked against
the registry's `dist.integrity` (sha512) before anything is unpacked; http errors are translated
into `BuildFailed` here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boxsmith._internal.docker.client import BuildFailed

__all__ = ["REGISTRY", "Package", "download", "install_global", "resolve", "unpack"]

# npm reads its settings from the environment in any case (npm_config_registry, usually).
REGISTRY = next(
    (v.rstrip("/") for k, v in os.environ.items() if k.lower() == "npm_config_registry" and v),
    "https://registry.npmjs.org",
)
_ABBREVIATED = "application/vnd.npm.install-v1+json"


@dataclass(frozen=True, slots=True)
class Package:
    """One resolved version of a registry package."""

    name: str
    version: str
    tarball: str
    integrity: str
    bin: dict[str, str]


def _get_json(url: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise BuildFailed(
            f"npm registry: GET {url} failed: {exc}",
            "check the network, or set npm_config_registry to a registry you can reach",
        ) from exc


def _package(name: str, data: dict[str, Any]) -> Package:
    dependencies = set(data.get("dependencies") or {})
    bundled = set(data.get("bundleDependencies") or data.get("bundledDependencies") or [])
    if dependencies - bundled:
        raise BuildFailed(
            f"{name}@{data['version']} needs unbundled dependencies "
            f"({', '.join(sorted(dependencies - bundled))}); boxsmith only unpacks self-contained "
            "packages"
        )
    raw_bin = data.get("bin") or {}
    bins = {name: raw_bin} if isinstance(raw_bin, str) else dict(raw_bin)
    return Package(
        name=name,
        version=str(data["version"]).lstrip("v"),
        tarball=data["dist"]["tarball"],
        integrity=data["dist"]["integrity"],
        bin={str(k): str(v) for k, v in bins.items()},
    )


def resolve(name: str, spec: str) -> Package:
    """`spec` is an exact version (`10.5.0`) or a major (`21`: its newest release)."""
    if re.fullmatch(r"\d+", spec) is None:
        return _package(name, _get_json(f"{REGISTRY}/{name}/{spec}"))
    versions: dict[str, Any] = _get_json(f"{REGISTRY}/{name}", _ABBREVIATED)["versions"]
    releases = [v for v in versions if re.fullmatch(rf"{spec}\.\d+\.\d+", v)]
    if not releases:
        raise BuildFailed(f"npm registry: {name} has no {spec}.x release")
    newest = max(releases, key=lambda v: tuple(int(p) for p in v.split(".")))
    return _package(name, versions[newest])


def download(package: Package, folder: Path) -> Path:
    """Fetch the tarball into `folder` and check its sha512 integrity; returns its path."""
    algorithm, _, expected = package.integrity.partition("-")
    if algorithm != "sha512":
        raise BuildFailed(f"{package.name}@{package.version}: unsupported integrity {algorithm}")
    target = folder / f"{package.name}-{package.version}.tgz"
    digest = hashlib.sha512()
    try:
        with (
            urllib.request.urlopen(package.tarball, timeout=60) as response,
            target.open("wb") as out,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError) as exc:
        raise BuildFailed(f"npm registry: GET {package.tarball} failed: {exc}") from exc
    if base64.b64encode(digest.digest()).decode() != expected:
        target.unlink()
        raise BuildFailed(
            f"{package.name}@{package.version}: the tarball does not match the registry's "
            "sha512 integrity",
            "retry; if it persists, the registry or a proxy serves a different file",
        )
    return target


def unpack(tgz: Path, dest: Path, *, only: Sequence[str] = ()) -> None:
    """Extract `package/<path>` to `dest/<path>`: regular files, folders and relative symlinks.

    `only` limits extraction to these paths (a trailing `/` means a folder and all below it).
    """
    with tarfile.open(tgz, "r:gz") as archive:
        for member in archive:
            rel = posixpath.normpath(member.name).split("/", 1)[-1]
            if member.name.count("/") == 0 or rel.startswith(("..", "/")):
                continue
            if only and not any(rel == o or (o.endswith("/") and rel.startswith(o)) for o in only):
                continue
            path = dest / rel
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                path.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                path.write_bytes(source.read())
                path.chmod(0o755 if member.mode & 0o111 else 0o644)
            elif member.issym() and not posixpath.isabs(member.linkname):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.symlink_to(member.linkname)


def install_global(package: Package, tgz: Path, prefix: Path) -> None:
    """Lay a package out as `npm install -g` does under `prefix` (e.g. <rootfs>/usr/local)."""
    home = prefix / "lib/node_modules" / package.name
    unpack(tgz, home)
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    for command, script in package.bin.items():
        target = home / script
        target.chmod(0o755)
        link = prefix / "bin" / command
        link.unlink(missing_ok=True)
        link.symlink_to(f"../lib/node_modules/{package.name}/{posixpath.normpath(script)}")
