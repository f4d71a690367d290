"""The local backend with E2B's JavaScript SDK: the `e2b` npm package, unchanged, run by Node
over real HTTP against `boxsmith backend serve` (a real process) and the real Docker engine.

tests/js/backend_sdk.mjs builds a template with the JS `Template` builder (COPY from a file
context, RUN, ENV, WORKDIR, USER, start command with a ready check), creates a sandbox from it
(with envs), runs commands (stdout, stderr, envs and cwd, a failing command's CommandExitError),
writes, reads (text and bytes), lists, makes, renames and removes files, connects to the sandbox
again, serves HTTP from the sandbox and reaches it through `getHost(port)` (a preview URL: the
backend's listener, by the Host header), reads its info and kills it; it prints what it saw as
one JSON object, asserted here.

Node: the pinned e2b needs Node >=20.18.1 (its `engines`); Debian bookworm's `nodejs` is 18.20
and Ubuntu 24.04's 18.19, so the test does not use the system's. It fetches a pinned Node.js
binary (the npm registry's `node-linux-<arch>` package) and npm, as the node stand-ins do, each
checked against the registry's sha512, kept under the user's cache; npm then installs the pinned
`e2b` into the test's temporary folder. Needs the npm registry (npm_config_registry is honoured);
fails, never skips, without it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from boxsmith._internal.build import npm_registry as npm
from tests.helpers import Backend

pytestmark = pytest.mark.docker

E2B_JS = "2.51.0"  # the e2b npm package under test
NODE = "22.21.1"  # Node.js LTS, within e2b's engines (>=20.18.1 <21 || >=22)
NPM = "10.9.3"  # the npm shipped with Node.js 22
SCRIPT = Path(__file__).parent / "js" / "backend_sdk.mjs"
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def _node_home() -> Path:
    """<user cache>/boxsmith-tests/node-<NODE>-<NPM>: bin/node and bin/npm, made once (put in
    place by a rename, so concurrent sessions never see half of it)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "boxsmith-tests"
    home = cache / f"node-{NODE}-npm-{NPM}"
    if (home / "bin/node").exists():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".node-") as tmp:
        work, prefix = Path(tmp), Path(tmp) / "prefix"
        node = npm.resolve(f"node-linux-{_ARCH[platform.machine().lower()]}", NODE)
        npm.unpack(npm.download(node, work), prefix, only=("bin/node",))
        tool = npm.resolve("npm", NPM)
        npm.install_global(tool, npm.download(tool, work), prefix)
        try:
            prefix.rename(home)
        except OSError:
            if not (home / "bin/node").exists():
                raise
    return home


@pytest.fixture(scope="module")
def js_sdk(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """(the environment of the pinned Node, the script in a folder where npm installed the
    pinned `e2b`: ESM resolves `import 'e2b'` from the script's folder up)."""
    home = _node_home()
    folder = tmp_path_factory.mktemp("js-sdk")
    env = {**os.environ, "PATH": f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["npm_config_update_notifier"] = "false"
    subprocess.run(
        [home / "bin/npm", "install", "--no-audit", "--no-fund", "--save-exact", f"e2b@{E2B_JS}"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    installed = json.loads((folder / "node_modules/e2b/package.json").read_text())
    assert installed["version"] == E2B_JS
    # NODE is chosen for this range: bumping E2B_JS means checking NODE against its engines
    assert installed["engines"]["node"] == ">=20.18.1 <21 || >=22"
    return env, Path(shutil.copy(SCRIPT, folder))


def test_node_is_the_pinned_one(js_sdk: tuple[dict[str, str], Path]) -> None:
    version = subprocess.run(
        ["node", "--version"], env=js_sdk[0], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"v{NODE}"


def test_js_sdk_builds_creates_runs_files_and_kills(
    backend: Backend, js_sdk: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    node_env, script = js_sdk
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello from the build context\n")
    name = f"js-{uuid.uuid4().hex[:8]}"
    # what `boxsmith backend env` prints, the variables the JS SDK's ConnectionConfig reads
    env = {**node_env, "E2B_API_KEY": backend.key, "E2B_API_URL": backend.url}
    env["E2B_SANDBOX_URL"] = backend.url
    done = subprocess.run(
        ["node", str(script), name, str(context)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["build"]["templateId"]
    assert out["build"]["logLines"] > 0
    assert out["build"]["exists"] is True
    assert out["running"] is True
    assert out["run"] == {
        # a template's ENV is build-time only on E2B (RUN and the start command see it)
        "stdout": "unset t1\n/opt/app\nuser\nbuilt, hi from js\nhello from the build context\n",
        "stderr": "",
        "exitCode": 0,
    }
    assert out["stderr"] == {"stdout": "", "stderr": "oops\n", "exitCode": 0}
    assert out["failing"] == {"raised": True, "exitCode": 3, "stdout": "partial\n"}
    assert out["envs"] == "one-two\n/tmp\n"
    assert out["startEnv"] == "hi from js\n"
    assert out["write"] == {"path": "/home/user/notes/a.txt", "name": "a.txt"}
    assert out["read"] == "first file\n"
    assert out["readByShell"] == "second file\n"
    assert out["readBytes"] == "hello from the build context\n"
    assert out["list"] == [
        {"name": "a.txt", "type": "file", "path": "/home/user/notes/a.txt"},
        {"name": "b.txt", "type": "file", "path": "/home/user/notes/b.txt"},
    ]
    assert out["madeDir"] is True
    assert out["renamed"] == "/home/user/notes/sub/c.txt"
    assert out["afterRemove"] == 0
    assert out["connected"] == "built, hi from js\n"
    assert out["info"] == {"sandboxId": out["sandboxId"], "templateId": out["build"]["templateId"]}
    assert out["exists"] == [True, False]
    assert out["killed"] is True
    assert out["runningAfterKill"] is False
    assert out["listedAfterKill"] is False

    port = backend.url.rsplit(":", 1)[1]
    assert out["host"] == f"8080-{out['sandboxId']}.localhost:{port}"
    # the server in the sandbox answers with the Host header it saw: the preview host, kept
    assert out["served"] == {"status": 200, "body": out["host"]}
    closed = json.loads(out["closedPort"]["body"])
    assert (out["closedPort"]["status"], closed["port"]) == (502, 8081)
    assert closed["message"] == "The sandbox is running but port is not open"
    gone = json.loads(out["servedAfterKill"]["body"])
    assert out["servedAfterKill"]["status"] == 502
    assert gone["message"] == "The sandbox was not found"
    assert gone["sandboxId"] == out["sandboxId"]
