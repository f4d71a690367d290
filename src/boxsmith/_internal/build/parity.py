"""The parity layer: what E2B adds around a template, added at build time only.

Local builds (`boxsmith._internal.build.builder`) and the local backend's template builds
(`boxsmith._internal.backend.builds`) both start FROM a parity base image
`boxsmith/parity:<base>-<key>`, made once per base image and parity layer. It holds what E2B's
provisioning of a template's base image adds: sudo, curl, ca-certificates and iproute2 when
missing, the `user` account with passwordless sudo and /home/user, `USER root` and `WORKDIR /`.
The same script, left in the image at SCRIPT_IN_IMAGE, runs E2B's finalize after the template's
steps: /home/user owned by `user`, everything under /usr/local mode 777, and /code (777).

Machines behind a TLS-inspecting proxy trust a local CA that containers do not know. When the host
has local CAs (`/usr/local/share/ca-certificates/*.crt`, or `BOXSMITH_BUILD_CA=<file>`), its CA
bundle goes into the parity base and `ARG`s (`ca_args`) point pip, npm, curl, git and OpenSSL at
it during the build (ARGs do not persist into the image). `BOXSMITH_BUILD_CA=off` turns it off.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from boxsmith._internal.build.base_images import (
    SOURCE_LABEL,
    STAND_IN_LABEL,
    ImageUnavailable,
    ensure_image,
)
from boxsmith._internal.docker.client import Engine
from boxsmith._internal.docker.host_ca import CA_IN_IMAGE, CA_VARIABLES

__all__ = [
    "PARITY_KEY_LABEL",
    "PARITY_OF_LABEL",
    "PARITY_SCRIPT",
    "PARITY_VERSION",
    "SCRIPT_IN_IMAGE",
    "Parity",
    "ca_args",
    "parity_base",
]

PARITY_VERSION = "1"
PARITY_KEY_LABEL = "dev.boxsmith.parity-key"
PARITY_OF_LABEL = "dev.boxsmith.parity-of"
SCRIPT_IN_IMAGE = "/usr/local/share/boxsmith/parity.sh"
_EPOCH = 946684800  # 2000-01-01: fixed mtimes keep the context tar reproducible

# E2B's provisioning and finalize, as a script so the Dockerfile stays readable. `prepare` runs
# before the template's steps, `finalize` after them, both as root.
PARITY_SCRIPT = r"""#!/bin/sh
# boxsmith parity layer: what E2B's provisioning and finalize add around a template.
set -eu
prepare() {
  missing=""
  command -v sudo >/dev/null 2>&1 || missing="$missing sudo"
  command -v curl >/dev/null 2>&1 || missing="$missing curl"
  command -v ss >/dev/null 2>&1 || missing="$missing iproute2"
  [ -e /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"
  if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
      apt-get clean
      rm -rf /var/lib/apt/lists/*
    elif command -v apk >/dev/null 2>&1; then
      apk add --no-cache $missing
    else
      echo "boxsmith parity: cannot install$missing here (no apt-get or apk)" >&2
    fi
  fi
  if ! id user >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
      useradd -m -s /bin/bash user
    else
      adduser -D -s /bin/sh user
    fi
  fi
  mkdir -p /home/user
  chown user:user /home/user
  if [ -d /etc/sudoers.d ]; then
    echo 'user ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/e2b-user
    chmod 0440 /etc/sudoers.d/e2b-user
  fi
  getent group sudo >/dev/null 2>&1 && usermod -aG sudo user 2>/dev/null || true
}
finalize() {
  find /home/user \( ! -user user -o ! -group user \) \
    -exec chown -h user:user {} + 2>/dev/null || true
  find /usr/local ! -type l ! -perm 0777 -exec chmod 0777 {} + 2>/dev/null || true
  mkdir -p /code
  chmod 0777 /code
}
"$1"
"""


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = _EPOCH
    tar.addfile(info, io.BytesIO(data))


def _parity_tag(base: str, key: str) -> str:
    """`boxsmith/parity:<base>-<key>`: runs with another parity layer or CA get their own."""
    return f"boxsmith/parity:{re.sub(r'[^A-Za-z0-9_.-]+', '-', base)[:100]}-{key[:12]}"


@dataclass(frozen=True, slots=True)
class Parity:
    """A parity base image: its id and tag, the id of the base image under it, and notes."""

    id: str
    tag: str
    base_id: str
    notes: list[str]


def ca_args(ca: bool) -> list[str]:
    """ARG lines pointing pip, npm, curl, git and OpenSSL at the host CA during a build."""
    return [f"ARG {name}={CA_IN_IMAGE}" for name in CA_VARIABLES] if ca else []


def parity_base(
    engine: Engine,
    base: str,
    *,
    mirrors: Mapping[str, str],
    ca: bytes | None,
    pull_timeout: int = 20,
    log: Callable[[str], None] = lambda line: None,
    on_line: Callable[[str], None] | None = None,
) -> Parity:
    """Make sure `base` is local (pulled or a stand-in) and its parity base is built.

    Args:
        engine: an entered Engine.
        base: the template's FROM image.
        mirrors: the resolved mirror map (`boxsmith._internal.build.base_images.resolve_mirrors`).
        ca: the host CA bundle to trust during builds (`host_ca_bundle()`), or None.
        log: receives one line per notable event (a stand-in, a parity base being made).
        on_line: receives every build output line of the parity base (may raise to cancel).

    Raises:
        ImageUnavailable: nobody can provide `base`.
        BuildFailed: the parity layer failed to build.
    """
    notes: list[str] = []
    ensure_image(
        engine,
        base,
        mirrors=mirrors,
        pull_timeout=pull_timeout,
        log=lambda line: log(f"images: {line}"),
    )
    info = engine.image(base)
    if info is None:  # ensure_image raised otherwise
        raise ImageUnavailable(f"base image {base} vanished", "run `boxsmith images ensure`")
    if STAND_IN_LABEL in info.labels:
        notes.append(
            f"base image {base} is a local stand-in ({info.labels.get(SOURCE_LABEL, '?')})"
        )
    key = hashlib.sha256(
        "\0".join(
            [PARITY_VERSION, PARITY_SCRIPT, info.id, hashlib.sha256(ca or b"").hexdigest()]
        ).encode()
    ).hexdigest()
    tag = _parity_tag(base, key)
    existing = engine.image(tag)
    if existing is not None and existing.labels.get(PARITY_KEY_LABEL) == key:
        return Parity(existing.id, tag, info.id, notes)
    log(f"build: making the parity base {tag} from {base}")
    image_id = engine.build(
        _parity_context(base, ca),
        tag,
        labels={PARITY_KEY_LABEL: key, PARITY_OF_LABEL: base},
        dockerfile="Dockerfile",
        on_line=on_line,
    )
    return Parity(image_id, tag, info.id, notes)


def _parity_context(base: str, ca: bytes | None) -> io.BytesIO:
    """The parity base's build context: its Dockerfile, the parity script and the host CA."""
    lines = [f"FROM {base}", "USER root"]
    extra: dict[str, bytes] = {"parity.sh": PARITY_SCRIPT.encode()}
    if ca is not None:
        extra["host-ca.pem"] = ca
        lines.append(f"COPY host-ca.pem {CA_IN_IMAGE}")
    lines += [f"COPY parity.sh {SCRIPT_IN_IMAGE}"]
    lines += ca_args(ca is not None)
    lines += [f"RUN sh {SCRIPT_IN_IMAGE} prepare", "WORKDIR /"]
    extra["Dockerfile"] = ("\n".join(lines) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in extra.items():
            _add(tar, name, data)
    buffer.seek(0)
    return buffer
