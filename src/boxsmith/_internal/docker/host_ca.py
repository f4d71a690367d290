"""The host's CA bundle, trusted inside builds and containers on machines with local CAs.

Machines behind a TLS-inspecting proxy trust a local CA that images do not know. When the host has
local CAs (`/usr/local/share/ca-certificates/*.crt`, or `BOXSMITH_BUILD_CA=<file>`), builds copy
its bundle to `CA_IN_IMAGE` (`boxsmith._internal.build.parity`) and every variable of
`CA_VARIABLES` points pip, npm, curl, git and OpenSSL at it: as build ARGs, and in the environment
of containers started like sandboxes (`boxsmith._internal.docker.boot`). `BOXSMITH_BUILD_CA=off`
turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from boxsmith.errors import UsageError

__all__ = ["CA_IN_IMAGE", "CA_VARIABLES", "ca_environment", "host_ca_bundle"]

CA_IN_IMAGE = "/usr/local/share/boxsmith/host-ca.pem"
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
)


def host_ca_bundle(environ: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle to trust inside builds, or None; UsageError for a BOXSMITH_BUILD_CA file
    that does not exist."""
    env = os.environ if environ is None else environ
    chosen = env.get("BOXSMITH_BUILD_CA", "auto")
    if chosen.lower() in ("off", "no", "0", "false", "none"):
        return None
    if chosen.lower() != "auto":
        path = Path(chosen)
        if not path.is_file():
            raise UsageError(
                f"BOXSMITH_BUILD_CA={chosen}: no such file", "point it at a PEM bundle, or off"
            )
        return path
    local = Path("/usr/local/share/ca-certificates")
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file() and local.is_dir() and any(local.rglob("*.crt")):
        return bundle
    return None


def ca_environment(trusted: bool) -> dict[str, str]:
    """The variables pointing at the bundle in the image, when the host CA is `trusted`."""
    return dict.fromkeys(CA_VARIABLES, CA_IN_IMAGE) if trusted else {}
