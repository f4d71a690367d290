"""A corpus of bad specs: every one must fail `render` with exit code 2, an error located at
`file:line:column` (1-based, at the offending value, or at the key for unknown keys), a `fix:` line,
and a generated folder left exactly as it was.

The rows under "injection", "YAML that would hang" and "Jinja that would hang" are the security
corpus (a value that would break its Dockerfile line, an alias or merge bomb, an expression that
would take minutes or gigabytes): each one's expected message names the bound that stopped it, so
the row passes only when that bound was hit, not merely when the run was fast.

Rows with `bug=` are strict xfails: they state the behaviour we expect, which boxsmith lacks today.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, snapshot, write_tree

SPEC = "template_specs/app.yaml"
BASE = "template_specs/bases/b.yaml"
A_UUID = "460355b3-4f64-48f9-9a16-4442817f79f5"

# The required keys, one per line (lines 1-4); `app()` appends the case's body from line 5.
REQUIRED = {
    "name": "app",
    "version": '"1.0.0"',
    "description": "test template",
    "base_image": "debian:bookworm-slim",
}

# A hand-written file in generated/: a failed render must leave it (and everything else) alone.
MARKER = {"generated/keep.txt": "written by hand; render must not touch it\n"}


@dataclass(frozen=True)
class Link:
    """A symlink to `target` (relative to the link's own folder) in a case's file tree."""

    target: str


def app(body: str = "", **fields: str | None) -> dict[str, str]:
    """template_specs/app.yaml: the required keys (override one, None drops it), then body."""
    values = {**REQUIRED, **fields}
    head = "".join(f"{key}: {value}\n" for key, value in values.items() if value is not None)
    return {SPEC: head + body}


def base(body: str, name: str = "b") -> dict[str, str]:
    """An abstract base spec in template_specs/bases/ (body starts at line 3)."""
    return {f"template_specs/bases/{name}.yaml": f"name: {name}\nabstract: true\n" + body}


def make_project(root: Path, files: dict[str, Any]) -> None:
    """Write a case's files under root, creating `Link` entries as symlinks."""
    write_tree(root, {rel: c for rel, c in files.items() if not isinstance(c, Link)})
    for rel, content in files.items():
        if isinstance(content, Link):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(content.target)


@dataclass(frozen=True)
class Bad:
    """One row of the corpus."""

    files: dict[str, Any]  # relative path -> text, bytes or Link
    where: str  # the exact `file:line:column` of the expected error
    message: str  # a fragment of that error line
    fix: str  # a fragment of the `fix:` line that follows it
    errors: int | None  # how many errors the run reports in all (None: not checked)


def case(
    id_: str,
    files: dict[str, Any],
    where: str,
    message: str,
    fix: str = "",
    *,
    errors: int | None = 1,
    bug: str = "",
) -> Any:
    """A row of the table; `bug` marks a known bug (a strict xfail stating what we expect)."""
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {bug}")] if bug else []
    return pytest.param(Bad(files, where, message, fix, errors), id=id_, marks=marks)


# A "billion laughs": nine levels of nine aliases would expand to 9**9 values.
LAUGHS = "vars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def _merge_bomb(levels: int = 8) -> str:
    """Merge keys (<<) whose merged mappings merge others, ten each: 10**levels keys."""
    node = "&m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}"
    for i in range(1, levels):
        node = f"&m{i} {{<<: [{node}, {', '.join([f'*m{i - 1}'] * 9)}]}}"
    return f"vars:\n  bomb: {{<<: [{node}]}}\n"


MERGES = _merge_bomb()
# Each var doubles the one before: h would be 128 000 characters.
_DOUBLED = "".join(
    f"  {b}: '{{{{ vars.{a} }}}}{{{{ vars.{a} }}}}'\n"
    for a, b in zip("abcdefg", "bcdefgh", strict=True)
)
DOUBLING = f"vars:\n  a: '{'x' * 1000}'\n{_DOUBLED}"


# One row per case: the formatter would spread every row over five to eight lines.
# fmt: off
CASES = [
    # --- YAML that cannot be read -------------------------------------------------------------
    case("yaml-colon-in-value", app(description="a: b"), f"{SPEC}:3:15",
         "YAML syntax: mapping values are not allowed", "quote the value"),
    case("yaml-bad-indent", app("resources:\n  cpu_count: 2\n   memory_mb: 512\n"), f"{SPEC}:7:13",
         "YAML syntax: mapping values are not allowed", "quote the value"),
    case("yaml-unclosed-flow-list", app("labels: {a: [b\n"), f"{SPEC}:6:1",
         "YAML syntax: did not find expected ',' or ']'", "fix the YAML syntax"),
    case("tab-indent", app("resources:\n\tcpu_count: 2\n"), f"{SPEC}:6:1",
         "YAML syntax: found character that cannot start any token"),
    case("tab-indent-hint-names-tabs", app("resources:\n\tcpu_count: 2\n"), f"{SPEC}:6:1", "tab",
         "indent with spaces, not tabs"),
    case("duplicate-top-level-key", app("name: other\n"), f"{SPEC}:5:1",
         "duplicate key 'name' (first at line 1)", "keep one of them"),
    case("duplicate-nested-key", app("resources:\n  cpu_count: 2\n  cpu_count: 4\n"), f"{SPEC}:7:3",
         "duplicate key 'cpu_count' (first at line 6)", "keep one of them"),
    case("several-documents", app("---\nname: second\n"), f"{SPEC}:5:1",
         "expected a single document"),
    case("several-documents-hint", app("---\nname: second\n"), f"{SPEC}:5:1",
         "expected a single document", "keep one template per file"),
    case("top-level-list", {SPEC: "- name: app\n- version: '1.0.0'\n"}, f"{SPEC}:1:1",
         "a spec must be a mapping of keys", "start with `name:`"),
    case("top-level-scalar", {SPEC: "just a string\n"}, f"{SPEC}:1:1",
         "a spec must be a mapping of keys", "start with `name:`"),
    case("empty-file", {SPEC: ""}, f"{SPEC}:1:1", "a spec must be a mapping of keys",
         "start with `name:`"),
    case("comments-only", {SPEC: "# nothing here yet\n"}, f"{SPEC}:1:1",
         "a spec must be a mapping of keys", "start with `name:`"),
    case("non-string-key", app("1: one\n"), f"{SPEC}:5:1", "key 1 is not a string",
         "quote the key"),
    case("not-utf8", {SPEC: b"name: app\ndescription: caf\xe9\n"}, SPEC, "not UTF-8 text",
         "save the file as UTF-8"),
    # --- unknown and missing keys ----------------------------------------------------------------
    case("unknown-top-level-key", app("descripton: typo\n"), f"{SPEC}:5:1",
         "descripton: unknown key 'descripton'", "did you mean 'description'?"),
    case("unknown-resources-key", app("resources:\n  memroy_mb: 512\n"), f"{SPEC}:6:3",
         "resources.memroy_mb: unknown key", "did you mean 'memory_mb'?"),
    case("unknown-port-check-key", app("smoke:\n  - port: 80\n    retires: 3\n"), f"{SPEC}:7:5",
         "smoke[0].retires: unknown key", "did you mean 'retries'?"),
    case("unknown-command-check-key", app("smoke:\n  - command: echo hi\n    exit_cod: 0\n"),
         f"{SPEC}:7:5", "smoke[0].exit_cod: unknown key", "did you mean 'exit_code'?"),
    case("unknown-run-step-key", app("steps:\n  - run:\n      cmd: ls\n      usr: root\n"),
         f"{SPEC}:8:7", "steps[0].run.usr: unknown key 'usr'", "did you mean 'user'?"),
    case("unknown-step-kind", app("steps:\n  - rnu: ls\n"), f"{SPEC}:6:5",
         "steps[0].rnu: unknown key 'rnu'", "did you mean 'run'?"),
    case("unknown-ready-helper", app("ready_cmd:\n  wait_for_prot: 3000\n"), f"{SPEC}:6:3",
         "ready_cmd.wait_for_prot: unknown key", "did you mean 'wait_for_port'?"),
    case("pip-packages-near-miss", app("pip_package: [numpy]\n"), f"{SPEC}:5:1",
         "pip_package: unknown key 'pip_package'", "did you mean 'pip_packages'?"),
    case("npm-packages-near-miss", app("npm_pkgs: [typescript]\n"), f"{SPEC}:5:1",
         "npm_pkgs: unknown key 'npm_pkgs'", "did you mean 'npm_packages'?"),
    case("pip-packages-hyphen", app("pip-packages: [numpy]\n"), f"{SPEC}:5:1",
         "unknown key 'pip-packages'", "did you mean 'pip_packages'?"),
    # another tool's word for a key: what it means, not the nearest spelling (pip_packages)
    case("apt-packages-means-system", app("apt_packages: [curl]\n"), f"{SPEC}:5:1",
         "unknown key 'apt_packages'", "did you mean 'system_packages'?"),
    case("python-packages-means-pip", app("python_packages: [numpy]\n"), f"{SPEC}:5:1",
         "unknown key 'python_packages'", "did you mean 'pip_packages'?"),
    case("node-packages-means-npm", app("node_packages: [typescript]\n"), f"{SPEC}:5:1",
         "unknown key 'node_packages'", "did you mean 'npm_packages'?"),
    case("missing-name", app(name=None), f"{SPEC}:1:1", "required key 'name' is missing",
         "add `name:` here"),
    case("copy-whole-spec-folder", app("files:\n  - {src: ./, dest: /app}\n"), f"{SPEC}:6:11",
         "is the whole spec folder", "put the files in a folder next to the spec"),
    case("run-trailing-backslash", app("steps:\n  - run: 'echo hi \\\\'\n"), f"{SPEC}:6:10",
         "ends with a backslash", "remove the trailing backslash"),
    case("missing-name-with-a-base", {**base("description: shared\n"),
                                      **app(name=None, description=None, body="extends: b\n")},
         f"{SPEC}:1:1", "required key 'name' is missing", "add `name:` here"),
    case("missing-version", app(version=None), f"{SPEC}:1:1", "required key 'version' is missing",
         "add `version:` here"),
    case("missing-description", app(description=None), f"{SPEC}:1:1",
         "required key 'description' is missing", "add `description:` here"),
    case("missing-base-image", app(base_image=None), f"{SPEC}:1:1",
         "required key 'base_image' is missing", "add `base_image:` here"),
    case("missing-file-src", app("files:\n  - dest: /x\n"), f"{SPEC}:6:5",
         "files[0]: required key 'src' is missing", "add `src:` here"),
    # --- pip and npm packages --------------------------------------------------------------------
    case("pip-package-apt-style-pin", app("pip_packages: [six, numpy=2.1]\n"), f"{SPEC}:5:21",
         "pip_packages[1]: 'numpy=2.1' is not a pip package", "pip pins with =="),
    case("pip-package-with-spaces", app("pip_packages: ['numpy >= 2']\n"), f"{SPEC}:5:16",
         "pip_packages[0]: 'numpy >= 2' is not a pip package", "write it without spaces"),
    case("pip-requirements-file", app("pip_packages:\n  - -r requirements.txt\n"), f"{SPEC}:6:5",
         "pip_packages[0]: '-r requirements.txt' is not a pip package", "use a run step"),
    case("pip-package-url", app("pip_packages: ['git+https://github.com/a/b']\n"), f"{SPEC}:5:16",
         "is not a pip package", "URLs, direct references and markers need a run step"),
    case("pip-package-twice", app("pip_packages: [Numpy, numpy==2.1.*]\n"), f"{SPEC}:5:15",
         "pip_packages: numpy is listed twice: 'Numpy' and 'numpy==2.1.*'",
         "keep one item per package"),
    case("npm-package-pip-style-pin", app("npm_packages: [lodash==4]\n"), f"{SPEC}:5:16",
         "npm_packages[0]: 'lodash==4' is not an npm package", "npm pins with @"),
    case("npm-package-git", app("npm_packages: ['github:a/b']\n"), f"{SPEC}:5:16",
         "is not an npm package", "git, file, alias and URL sources need a run step"),
    case("npm-package-uppercase", app("npm_packages: [Lodash]\n"), f"{SPEC}:5:16",
         "is not an npm package", "npm package names are lowercase"),
    case("npm-package-twice", app("npm_packages: ['semver@^7', semver@8]\n"), f"{SPEC}:5:15",
         "npm_packages: semver is listed twice", "keep one item per package"),
    case("pip-package-line-break", app('pip_packages: ["six\\nRUN id"]\n'), f"{SPEC}:5:16",
         "is not a pip package"),
    # --- bad values ------------------------------------------------------------------------------
    case("name-uppercase", app(name="MyApp"), f"{SPEC}:1:7", "name 'MyApp' breaks E2B's rule",
         "e.g. 'myapp'"),
    case("name-too-long", app(name="a" * 129), f"{SPEC}:1:7", "(at most 128 characters)",
         "use lowercase letters, digits"),
    case("name-null", app(name=""), f"{SPEC}:1:6", "name: expected a string, got None",
         "write a string here"),
    case("version-unquoted-number", app(version="1.0"), f"{SPEC}:2:10",
         "version must be a quoted semantic version string, got 1.0", "quote it"),
    case("version-not-semver", app(version='"1.0"'), f"{SPEC}:2:10",
         "version '1.0' is not a semantic version", "MAJOR.MINOR.PATCH"),
    case("version-build-metadata", app(version='"1.0.0+build.5"'), f"{SPEC}:2:10",
         "'1.0.0+build.5' cannot be an E2B tag", "drop +build metadata"),
    case("description-empty", app(description='""'), f"{SPEC}:3:14", "description is empty",
         "say in one line"),
    case("base-image-invalid", app(base_image="Debian Bookworm"), f"{SPEC}:4:13",
         "base_image 'Debian Bookworm' is not an image reference", "e.g. debian:bookworm"),
    case("cpu-count-odd", app("resources:\n  cpu_count: 3\n"), f"{SPEC}:6:14",
         "cpu_count must be 1 or an even number from 2 to 32, got 3", "use 1, 2, 4, 8, 16"),
    case("cpu-count-over-32", app("resources:\n  cpu_count: 34\n"), f"{SPEC}:6:14",
         "cpu_count must be 1 or an even number from 2 to 32, got 34", "use 1, 2, 4, 8, 16"),
    case("cpu-count-not-int", app("resources:\n  cpu_count: two\n"), f"{SPEC}:6:14",
         "expected an integer, got 'two'", "write an integer here"),
    case("memory-odd", app("resources:\n  memory_mb: 513\n"), f"{SPEC}:6:14",
         "memory_mb must be an even number of MiB, at least 128, got 513", "use 514"),
    case("memory-below-128", app("resources:\n  memory_mb: 64\n"), f"{SPEC}:6:14",
         "at least 128, got 64", "use 128"),
    case("team-id-not-uuid", app("team_id: not-a-uuid\n"), f"{SPEC}:5:10",
         "team_id 'not-a-uuid' is not a UUID", "E2B dashboard"),
    case("env-key-invalid", app("env:\n  1BAD: x\n"), f"{SPEC}:6:3",
         "env.1BAD: env name '1BAD' is not a valid variable name", "letters, digits and _"),
    case("env-key-invalid-not-first", app("env:\n  GOOD: x\n  BAD-NAME: y\n"), f"{SPEC}:7:3",
         "env name 'BAD-NAME' is not a valid variable name"),
    case("step-env-key-invalid", app("steps:\n  - env:\n      1X: a\n"), f"{SPEC}:7:7",
         "steps[0].env.1X: env name '1X'", "letters, digits and _"),
    case("env-value-two-lines", app('env:\n  A: "one\\ntwo"\n'), f"{SPEC}:6:6",
         "env.A: an ENV value must be one line", "write it on one line"),
    case("step-env-value-two-lines",
         app("steps:\n  - env:\n      A: |\n        one\n        two\n"), f"{SPEC}:7:10",
         "steps[0].env.A: an ENV value must be one line"),
    case("env-value-list", app("env:\n  A: [1]\n"), f"{SPEC}:6:6",
         "env.A: expected a string, got a list", "write a string here"),
    case("apt-package-invalid", app("system_packages: [curl, Git]\n"), f"{SPEC}:5:25",
         "'Git' is not a Debian package name", "name=version"),
    case("workdir-relative", app("workdir: home/user\n"), f"{SPEC}:5:10",
         "workdir must be an absolute path, got 'home/user'", "write it as '/home/user'"),
    case("tag-is-uuid", app(f"tags: [stable, {A_UUID}]\n"), f"{SPEC}:5:16",
         f"tag '{A_UUID}' is a UUID", "rename it"),
    case("tag-uppercase", app("tags:\n  - Stable\n"), f"{SPEC}:6:5",
         "tag 'Stable' breaks E2B's rule", "use a-z, 0-9"),
    case("ready-two-helpers", app("ready_cmd:\n  wait_for_port: 3000\n  wait_for_file: /x\n"),
         f"{SPEC}:6:3", "ready_cmd takes exactly one helper", "use one of wait_for_port"),
    case("ready-multi-line", app("ready_cmd: |\n  test -f /a\n  test -f /b\n"), f"{SPEC}:5:12",
         "ready_cmd spans several lines", "folded scalar"),
    # --- files and copy steps --------------------------------------------------------------------
    case("src-missing-near-file",
         {**app("files:\n  - src: app/strat.sh\n    dest: /usr/local/bin/start\n"),
          "template_specs/app/start.sh": "#!/bin/sh\n"},
         f"{SPEC}:6:10", "src 'app/strat.sh' does not exist in template_specs",
         "did you mean 'app/start.sh'?"),
    case("src-missing-path-format",
         {**app("files:\n  - src: app/strat.sh\n    dest: /usr/local/bin/start\n"),
          "template_specs/app/start.sh": "#!/bin/sh\n"},
         f"{SPEC}:6:10", "files[0].src: src 'app/strat.sh' does not exist"),
    case("src-missing-spec-in-subfolder",
         {"template_specs/sub/app.yaml": app("files:\n  - src: strat.sh\n    dest: /x\n")[SPEC],
          "template_specs/sub/start.sh": "#!/bin/sh\n"},
         "template_specs/sub/app.yaml:6:10", "does not exist in template_specs/sub",
         "did you mean 'start.sh'?"),
    case("copy-step-src-missing", app("steps:\n  - copy:\n      src: nope.sh\n      dest: /x\n"),
         f"{SPEC}:7:12", "src 'nope.sh' does not exist", "create the file next to the spec"),
    case("src-escapes-folder", app("files:\n  - src: ../x\n    dest: /x\n"), f"{SPEC}:6:10",
         "src '../x' points outside the spec's folder", "without leading / or .."),
    case("src-absolute", app("files:\n  - src: /etc/passwd\n    dest: /x\n"), f"{SPEC}:6:10",
         "src '/etc/passwd' points outside the spec's folder", "without leading / or .."),
    case("src-symlink-outside",
         {**app("files:\n  - src: link.txt\n    dest: /x\n"), "secret.txt": "outside\n",
          "template_specs/link.txt": Link("../secret.txt")},
         f"{SPEC}:6:10", "src 'link.txt' resolves outside the spec's folder",
         "copy the file into the spec's folder"),
    case("src-folder-holds-symlink-outside",
         {**app("files:\n  - src: app\n    dest: /opt/app\n"), "secret.txt": "outside\n",
          "template_specs/app/ok.txt": "fine\n",
          "template_specs/app/link.txt": Link("../../secret.txt")},
         f"{SPEC}:6:10", "app/link.txt links outside the spec's folder",
         "replace the link with the file"),
    case("src-folder-symlink-message-path",
         {**app("files:\n  - src: app\n    dest: /opt/app\n"), "secret.txt": "outside\n",
          "template_specs/app/ok.txt": "fine\n",
          "template_specs/app/link.txt": Link("../../secret.txt")},
         f"{SPEC}:6:10", "src: template_specs/app/link.txt links outside"),
    case("mode-unquoted",
         {**app("files:\n  - src: a.sh\n    dest: /a\n    mode: 0755\n"),
          "template_specs/a.sh": "#!/bin/sh\n"},
         f"{SPEC}:8:11", "mode must be a quoted octal string like '0755', got 493", "quote it"),
    case("dest-relative",
         {**app("files:\n  - src: a.sh\n    dest: usr/bin/a\n"),
          "template_specs/a.sh": "#!/bin/sh\n"},
         f"{SPEC}:7:11", "dest must be an absolute path, got 'usr/bin/a'",
         "write it as '/usr/bin/a'"),
    # --- steps -----------------------------------------------------------------------------------
    case("step-two-kinds", app("steps:\n  - run: ls\n    workdir: /tmp\n"), f"{SPEC}:6:5",
         "steps[0]: a step needs exactly one of run, copy, env, workdir, user",
         "one list item per step"),
    case("step-no-kind", app("steps:\n  - {}\n"), f"{SPEC}:6:5",
         "a step needs exactly one of run, copy, env, workdir, user", "one list item per step"),
    case("step-run-empty", app("steps:\n  - run:\n"), f"{SPEC}:6:5",
         "steps[0]: step `run` has no value", "give `run:` a value"),
    case("run-multi-line", app("steps:\n  - run: |\n      echo a\n      echo b\n"), f"{SPEC}:6:10",
         "steps[0].run.cmd: cmd spans several lines", "folded scalar"),
    case("run-empty-list", app("steps:\n  - run: []\n"), f"{SPEC}:6:10", "cmd is empty",
         "give the shell command to run"),
    case("steps-not-a-list", app("steps:\n  run: ls\n"), f"{SPEC}:6:3",
         "steps: expected a list, got a mapping", "write a list here"),
    # --- smoke checks ----------------------------------------------------------------------------
    case("smoke-check-no-kind", app("smoke:\n  - name: nothing\n    timeout: 5\n"), f"{SPEC}:6:5",
         "smoke[0]: a smoke check needs exactly one of command, file, port",
         "start the check with one of command:"),
    case("smoke-check-two-kinds", app("smoke:\n  - port: 80\n    process: nginx\n"), f"{SPEC}:6:5",
         "a smoke check needs exactly one of", "start the check with one of"),
    case("smoke-invalid-regex", app('smoke:\n  - command: echo hi\n    stdout: "(oops"\n'),
         f"{SPEC}:7:13", "smoke[0].stdout: pattern is not a valid regular expression: missing )",
         "fix the pattern"),
    case("smoke-duplicate-names",
         app("smoke:\n  - name: up\n    port: 80\n  - name: up\n    port: 81\n"), f"{SPEC}:8:11",
         "smoke[1].name: smoke check name 'up' is used twice",
         "give each check a distinct `name:`"),
    case("http-check-not-url", app("smoke:\n  - http: localhost:3000\n"), f"{SPEC}:6:11",
         "http must be an http(s) URL, got 'localhost:3000'", "write http://localhost:PORT/"),
    case("port-check-out-of-range", app("smoke:\n  - port: 70000\n"), f"{SPEC}:6:11",
         "less than or equal to 65535, got 70000", "fit the limit"),
    case("file-check-relative", app("smoke:\n  - file: tmp/x\n"), f"{SPEC}:6:11",
         "file must be an absolute path, got 'tmp/x'", "write it as '/tmp/x'"),
    # --- extends ---------------------------------------------------------------------------------
    case("extends-missing-base", {**app("extends: [pyhton-app]\n"), **base("", "python-app")},
         f"{SPEC}:5:11", "extends unknown spec 'pyhton-app'", "did you mean 'python-app'?"),
    case("extends-not-a-list", app("extends: {b: c}\n"), f"{SPEC}:5:10",
         "extends must be a spec name or a list of names", "extends: [base-name]"),
    case("extends-cycle",
         {**base("extends: [b]\n", "a"), **base("extends: [a]\n", "b")}, f"{BASE}:3:11",
         "extends cycle: template_specs/bases/a.yaml -> template_specs/bases/b.yaml -> "
         "template_specs/bases/a.yaml",
         "remove one of the extends"),
    case("extends-itself", base("extends: b\n"), f"{BASE}:3:10", "extends cycle",
         "remove one of the extends"),
    case("extends-matrix-spec",
         {**app("extends: [data]\n"),
          "template_specs/data.yaml": app("matrix:\n  py: ['3']\n", name="data")[SPEC]},
         f"{SPEC}:5:11", "cannot extend 'data': it has a matrix",
         "move the shared parts into an abstract base"),
    case("abstract-without-name", {BASE: "abstract: true\nlabels:\n  tier: web\n"}, f"{BASE}:1:1",
         "name: an abstract spec needs a literal name", "add `name: my-base`"),
    case("abstract-not-bool", app("abstract: maybe\n"), f"{SPEC}:5:11",
         "abstract must be true or false", "abstract: true"),
    case("error-in-base", {**app("extends: [b]\n"), **base("resources:\n  cpu_count: 3\n")},
         f"{BASE}:4:14", "resources.cpu_count: cpu_count must be 1 or an even number",
         "use 1, 2, 4"),
    case("unknown-key-in-base", {**app("extends: [b]\n"), **base("lables:\n  tier: web\n")},
         f"{BASE}:3:1", "unknown key 'lables'", "did you mean 'labels'?"),
    case("bad-regex-in-base-check",
         {**app("extends: [b]\nsmoke:\n  - port: 80\n"),
          **base("smoke:\n  - command: x\n    stdout: '('\n")},
         f"{BASE}:5:13", "smoke[0].stdout: pattern is not a valid regular expression"),
    case("undefined-var-in-base",
         {**app("extends: [b]\n"), **base('resources:\n  memory_mb: "{{ vars.mem }}"\n')},
         f"{BASE}:4:14", "resources.memory_mb: undefined var 'mem'", "define it under `vars:`"),
    case("base-env-key-invalid",
         {**app("extends: [b]\nenv:\n  A: x\n"), **base("env:\n  1BAD: x\n")}, f"{BASE}:4:3",
         "env name '1BAD'"),
    case("unused-base-step-two-kinds", base("steps:\n  - run: ls\n    workdir: /x\n"),
         f"{BASE}:4:5", "a step needs exactly one of"),
    case("base-package-invalid",
         {**app("extends: [b]\nsystem_packages: [curl]\n"),
          **base("system_packages: [git, Bad_Pkg]\n")},
         f"{BASE}:3:24", "'Bad_Pkg' is not a Debian package name"),
    # --- vars, matrix and Jinja ------------------------------------------------------------------
    case("undefined-var-did-you-mean",
         app("vars:\n  python: '3.11'\nenv:\n  PY: '{{ vars.pyhton }}'\n"), f"{SPEC}:8:7",
         "env.PY: undefined var 'pyhton'", "did you mean 'python'?"),
    case("undefined-var-no-vars", app("env:\n  PY: '{{ vars.python }}'\n"), f"{SPEC}:6:7",
         "undefined var 'python'", "define it under `vars:`"),
    case("vars-not-a-mapping", app("vars: [a]\n"), f"{SPEC}:5:7", "vars must be a mapping",
         "vars: {name: value}"),
    case("undefined-matrix-no-matrix", app("env:\n  PY: '{{ matrix.y }}'\n"), f"{SPEC}:6:7",
         "undefined matrix 'y'", "this spec has no matrix"),
    case("undefined-matrix-axis",
         app("matrix:\n  python: ['311', '312']\nenv:\n  PY: '{{ matrix.pyton }}'\n",
             name="'app-{{ matrix.python }}'"),
         f"{SPEC}:8:7", "undefined matrix 'pyton'", "did you mean 'python'?"),
    case("jinja-syntax-error", app("vars:\n  x: 1\nenv:\n  X: '{{ vars.x | }}'\n"), f"{SPEC}:8:6",
         "env.X: template syntax: expected token 'name'", "fix the {{ }} expression"),
    case("jinja-unclosed-block", app("env:\n  X: '{% if %}'\n"), f"{SPEC}:6:6",
         "template syntax: Expected an expression", "fix the {{ }} expression"),
    case("jinja-unknown-filter", app("env:\n  X: \"{{ 'a' | shout }}\"\n"), f"{SPEC}:6:6",
         "No filter named 'shout'", "fix the {{ }} expression"),
    # a random pick would make rendering irreproducible (drift on every run)
    case("jinja-random-filter", app("env:\n  X: \"{{ ['a', 'b'] | random }}\"\n"), f"{SPEC}:6:6",
         "No filter named 'random'", "fix the {{ }} expression"),
    case("jinja-runtime-error", app("vars:\n  n: 0\nenv:\n  X: '{{ 1 // vars.n }}'\n"),
         f"{SPEC}:8:6", "env.X: template: ZeroDivisionError: integer division or modulo by zero",
         "fix the {{ }} expression"),
    case("build-host-not-a-host", app("build_hosts: ['https://example.com']\n"), f"{SPEC}:5:15",
         "'https://example.com' is not a host or host:port", "write a host name like"),
    case("process-check-bad-regex", app("smoke:\n  - process: 'node('\n"), f"{SPEC}:6:14",
         "process is not a valid regular expression", "fix the pattern"),
    case("matrix-name-collision", app("matrix:\n  python: ['311', '312']\n"), f"{SPEC}:1:7",
         "both make the name 'app'", "put every matrix axis in name"),
    case("matrix-empty-axis", app("matrix:\n  python: []\n", name="'app-{{ matrix.python }}'"),
         f"{SPEC}:6:11", "matrix axis 'python' needs a non-empty list of values",
         "write `python: [a, b]`"),
    case("matrix-no-axes", app("matrix: {}\n"), f"{SPEC}:5:9", "matrix has no axes", "add an axis"),
    case("matrix-not-a-mapping", app("matrix: [a]\n"), f"{SPEC}:5:9", "matrix must be a mapping",
         "matrix: {axis: [values]}"),
    case("matrix-exclude-unknown-axis",
         app("matrix:\n  python: ['311', '312']\n  exclude:\n    - pyhton: '311'\n",
             name="'app-{{ matrix.python }}'"),
         f"{SPEC}:8:7", "matrix.exclude names unknown axis 'pyhton'", "did you mean 'python'?"),
    case("matrix-exclude-not-a-list",
         app("matrix:\n  python: ['311', '312']\n  exclude: {python: '311'}\n",
             name="'app-{{ matrix.python }}'"),
         f"{SPEC}:7:12", "matrix.exclude must be a list of mappings", "exclude: [{axis: value}]"),
    # --- names across files ----------------------------------------------------------------------
    case("duplicate-names-across-files",
         {"template_specs/a.yaml": app()[SPEC], "template_specs/b.yaml": app()[SPEC]},
         "template_specs/b.yaml:1:7", "name 'app' is already used by template_specs/a.yaml",
         "rename one of them", errors=None),
    case("duplicate-names-reported-once",
         {"template_specs/a.yaml": app()[SPEC], "template_specs/b.yaml": app()[SPEC]},
         "template_specs/b.yaml:1:7", "'app' is already"),
    case("duplicate-name-from-matrix",
         {"template_specs/a.yaml": app("matrix:\n  n: ['', '2']\n", name="app{{ matrix.n }}")[SPEC],
          "template_specs/b.yaml": app()[SPEC]},
         "template_specs/b.yaml:1:7", "'app' is already defined in template_specs/a.yaml",
         "names are unique across files"),
    # --- injection: every value that becomes (part of) one e2b.Dockerfile line or e2b.toml value
    case("inject-workdir-newline", app('workdir: "/home/user\\nRUN touch /tmp/x"\n'),
         f"{SPEC}:5:10",
         "workdir: this value holds a line break (\\n)", "write the value on one line"),
    case("inject-workdir-carriage-return", app('workdir: "/srv\\rRUN touch /tmp/x"\n'),
         f"{SPEC}:5:10", "holds a carriage return (\\r)", "write the value on one line"),
    case("inject-workdir-trailing-backslash", app("workdir: '/srv\\'\n"), f"{SPEC}:5:10",
         "workdir: this value ends with a backslash", "remove the trailing backslash"),
    case("inject-step-workdir-newline", app('steps:\n  - workdir: "/srv\\nRUN touch /x"\n'),
         f"{SPEC}:6:14",
         "steps[0].workdir: this value holds a line break", "write the value on one line"),
    case("inject-user-newline", app('user: "user\\nRUN touch /x"\n'), f"{SPEC}:5:7",
         "user: this value holds a line break", "write the value on one line"),
    case("inject-step-user-newline", app('steps:\n  - user: "root\\nRUN touch /x"\n'),
         f"{SPEC}:6:11", "steps[0].user: this value holds a line break"),
    case("inject-run-user-newline",
         app('steps:\n  - run:\n      cmd: ls\n      user: "root\\nRUN touch /x"\n'),
         f"{SPEC}:8:13", "steps[0].run.user: this value holds a line break"),
    case("run-user-not-a-name", app("steps:\n  - run:\n      cmd: ls\n      user: 'root; rm'\n"),
         f"{SPEC}:8:13", "user 'root; rm' is not a valid user name", "use a name like 'user'"),
    case("inject-run-nul", app('steps:\n  - run: "echo \\0hi"\n'), f"{SPEC}:6:10",
         "steps[0].run.cmd: this value holds a NUL byte", "without control characters"),
    case("inject-run-carriage-return", app('steps:\n  - run: "echo a\\rRUN touch /x"\n'),
         f"{SPEC}:6:10", "holds a carriage return"),
    case("inject-run-list-item-newline", app('steps:\n  - run: [ls, "echo\\nRUN touch /x"]\n'),
         f"{SPEC}:6:10", "steps[0].run.cmd: cmd spans several lines"),
    case("inject-run-line-separator", app('steps:\n  - run: "echo a\\u2028RUN x"\n'),
         f"{SPEC}:6:10", "the control character U+2028"),
    case("inject-copy-dest-newline",
         {**app('files:\n  - src: a.sh\n    dest: "/a\\nRUN touch /x"\n'),
          "template_specs/a.sh": "x\n"},
         f"{SPEC}:7:11", "files[0].dest: this value holds a line break"),
    case("inject-copy-dest-trailing-backslash",
         {**app("files:\n  - src: a.sh\n    dest: '/a\\'\n"), "template_specs/a.sh": "x\n"},
         f"{SPEC}:7:11", "files[0].dest: this value ends with a backslash"),
    case("inject-copy-src-newline",
         app('files:\n  - src: "a.sh\\nRUN touch /x"\n    dest: /a\n'), f"{SPEC}:6:10",
         "files[0].src: this value holds a line break"),
    case("inject-copy-owner-newline",
         {**app('files:\n  - src: a.sh\n    dest: /a\n    owner: "user\\nRUN x"\n'),
          "template_specs/a.sh": "x\n"},
         f"{SPEC}:8:12", "files[0].owner: this value holds a line break"),
    case("inject-copy-mode-newline",
         {**app('files:\n  - src: a.sh\n    dest: /a\n    mode: "0755\\n"\n'),
          "template_specs/a.sh": "x\n"},
         f"{SPEC}:8:11", "mode '0755\\n' is not an octal permission"),
    case("inject-step-copy-dest-newline",
         {**app('steps:\n  - copy:\n      src: a.sh\n      dest: "/a\\nRUN x"\n'),
          "template_specs/a.sh": "x\n"},
         f"{SPEC}:8:13", "steps[0].copy.dest: this value holds a line break"),
    case("inject-env-name-newline", app('env:\n  "A\\nRUN touch /x": y\n'), f"{SPEC}:6:3",
         "env['A\\nRUN touch /x']: env name 'A\\nRUN touch /x' is not a valid variable name"),
    case("inject-env-name-trailing-newline", app('env:\n  "A\\n": y\n'), f"{SPEC}:6:3",
         "env name 'A\\n' is not a valid variable name"),
    case("inject-env-value-nul", app('env:\n  A: "x\\0y"\n'), f"{SPEC}:6:6",
         "env.A: an ENV value must be one line: it holds a NUL byte"),
    case("inject-env-value-carriage-return", app('env:\n  A: "x\\rRUN touch /x"\n'), f"{SPEC}:6:6",
         "an ENV value must be one line: it holds a carriage return"),
    case("inject-step-env-value-vertical-tab", app('steps:\n  - env:\n      A: "x\\vy"\n'),
         f"{SPEC}:7:10",
         "steps[0].env.A: an ENV value must be one line: it holds the control character U+000B"),
    case("inject-base-image-newline", app(base_image='"debian:bookworm-slim\\nRUN touch /x"'),
         f"{SPEC}:4:13", "base_image: this value holds a line break"),
    case("inject-base-image-trailing-newline", app(base_image='"debian:bookworm-slim\\n"'),
         f"{SPEC}:4:13", "base_image: this value holds a line break"),
    case("inject-name-trailing-newline", app(name='"app\\n"'), f"{SPEC}:1:7",
         "name: this value holds a line break"),
    case("inject-version-trailing-newline", app(version='"1.0.0\\n"'), f"{SPEC}:2:10",
         "version: this value holds a line break"),
    case("inject-description-nul", app(description='"a\\0b"'), f"{SPEC}:3:14",
         "description: this text holds a NUL byte", "remove the control character"),
    case("inject-team-id-newline", app(f'team_id: "\\n{A_UUID[1:]}"\n'), f"{SPEC}:5:10",
         "team_id: this value holds a line break"),
    case("inject-label-value-newline", app('labels:\n  tier: "web\\nRUN x"\n'), f"{SPEC}:6:9",
         "labels.tier: this value holds a line break"),
    case("inject-label-key-newline", app('labels:\n  "a\\nb": web\n'), f"{SPEC}:6:3",
         "this value holds a line break"),
    case("inject-start-cmd-carriage-return", app('start_cmd: "node a\\rRUN x"\n'), f"{SPEC}:5:12",
         "start_cmd: this value holds a carriage return"),
    case("inject-start-cmd-trailing-backslash", app("start_cmd: 'node app \\'\n"), f"{SPEC}:5:12",
         "start_cmd: this value ends with a backslash"),
    case("inject-ready-cmd-nul", app('ready_cmd: "test -f /a\\0"\n'), f"{SPEC}:5:12",
         "this value holds a NUL byte"),
    case("inject-wait-for-file-newline", app('ready_cmd:\n  wait_for_file: "/a\\nb"\n'),
         f"{SPEC}:6:18", "ready_cmd.wait_for_file: this value holds a line break"),
    case("inject-wait-for-url-newline",
         app('ready_cmd:\n  wait_for_url: "http://localhost/\\nx"\n'), f"{SPEC}:6:17",
         "this value holds a line break"),
    case("inject-wait-for-process-newline", app('ready_cmd:\n  wait_for_process: "node\\nx"\n'),
         f"{SPEC}:6:21", "ready_cmd.wait_for_process: this value holds a line break"),
    case("inject-apt-package-newline", app('system_packages: ["curl\\n"]\n'), f"{SPEC}:5:19",
         "is not a Debian package name"),
    case("inject-build-host-newline", app('build_hosts: ["example.com\\n"]\n'), f"{SPEC}:5:15",
         "is not a host or host:port"),
    case("inject-lint-code-newline", app('lint:\n  ignore: ["DL3008\\n"]\n'), f"{SPEC}:6:11",
         "is not a lint rule code"),
    case("inject-workdir-from-var",
         app('vars:\n  dir: "/srv\\nRUN touch /x"\nworkdir: "{{ vars.dir }}"\n'), f"{SPEC}:7:10",
         "workdir: this value holds a line break"),
    case("inject-env-in-base",
         {**app("extends: [b]\n"), **base('env:\n  A: "x\\ny"\n')}, f"{BASE}:4:6",
         "env.A: an ENV value must be one line"),
    # --- YAML that would hang or exhaust -----------------------------------------------------
    case("yaml-billion-laughs", app(LAUGHS), f"{SPEC}:6:52",
         "YAML aliases expand to more than 1000 copies", "write the repeated values out"),
    case("yaml-merge-key-bomb", app(MERGES), f"{SPEC}:6:35",
         "YAML merge keys (<<) here bring in more than", "write the repeated values out"),
    case("yaml-file-too-large", app("labels:\n  big: " + "x" * (1 << 20) + "\n"), f"{SPEC}:1:1",
         "the spec file is larger than 1024 KiB", "split it"),
    case("yaml-too-many-values", app("labels: [" + "a," * 100_001 + "a]\n"), f"{SPEC}:5:199998",
         "the file holds more than 100000 values", "split the file"),
    case("yaml-too-deep", app("labels: " + "[" * 150 + "]" * 150 + "\n"), f"{SPEC}:5:109",
         "values nest more than 100 levels deep", "flatten the structure"),
    # --- Jinja that would hang or exhaust ----------------------------------------------------
    case("jinja-huge-power", app("env:\n  X: '{{ 9 ** 99999999 }}'\n"), f"{SPEC}:6:6",
         "env.X: template: 9 ** 99999999 would make an integer", "docs/spec.md"),
    case("jinja-huge-repetition", app("env:\n  X: \"{{ 'x' * 10**9 }}\"\n"), f"{SPEC}:6:6",
         "template: the repetition would make a value of 1000000000 characters", "docs/spec.md"),
    case("jinja-huge-range", app("env:\n  X: '{{ range(10**9) | list }}'\n"), f"{SPEC}:6:6",
         "Range too big"),
    case("jinja-huge-join", app("env:\n  X: \"{{ range(99999) | join('x' * 9999) }}\"\n"),
         f"{SPEC}:6:6", "the join would make a value of", "docs/spec.md"),
    case("jinja-nested-loops",
         app("env:\n  X: '{% for i in range(99999) %}{% for j in range(99999) %}"
             "{% endfor %}{% endfor %}'\n"), f"{SPEC}:6:6",
         "the expression takes more than 50000 steps", "docs/spec.md"),
    case("jinja-macro-recursion",
         app("env:\n  X: '{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
             "{% endmacro %}{{ f(60) }}'\n"), f"{SPEC}:6:6",
         "the expression takes more than 50000 steps"),
    case("jinja-concat-doubling",
         app("env:\n  X: \"{% set ns = namespace(s='x') %}{% for i in range(99) %}"
             "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}\"\n"), f"{SPEC}:6:6",
         "the ~ concatenation makes a value of"),
    case("jinja-int-squaring",
         app("env:\n  X: \"{% set ns = namespace(n=3) %}{% for i in range(99) %}"
             "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}\"\n"), f"{SPEC}:6:6",
         "the product would make an integer"),
    case("jinja-printf-width", app("env:\n  X: \"{{ '%0999999999d' % 1 }}\"\n"), f"{SPEC}:6:6",
         "printf formatting with a width or count of 999999999"),
    case("jinja-str-format-width", app("env:\n  X: \"{{ '{:>999999999}'.format(1) }}\"\n"),
         f"{SPEC}:6:6", "str.format is not available in spec values"),
    case("jinja-replace-empty",
         app("env:\n  X: \"{{ ('x' * 9999) | replace('', 'y' * 9999) }}\"\n"),
         f"{SPEC}:6:6", "the replace would make a value of"),
    case("jinja-center-width", app("env:\n  X: \"{{ 'x' | center(10**9) }}\"\n"), f"{SPEC}:6:6",
         "the center filter with a width or count of 1000000000"),
    case("jinja-ljust-width", app("env:\n  X: \"{{ 'x'.ljust(10**9) }}\"\n"), f"{SPEC}:6:6",
         "str.ljust with a width or count of 1000000000"),
    case("jinja-output-in-set-block",
         app("env:\n  X: '{% set x %}{% for i in range(99999) %}xxxxxxxxxx{% endfor %}{% endset %}"
             "{{ x | length }}'\n"), f"{SPEC}:6:6", "the output would make a value of"),
    case("jinja-sum-of-lists", app("env:\n  X: '{{ [[1]] * 9999 | sum(start=[]) }}'\n"),
         f"{SPEC}:6:6", "the sum filter adds numbers only"),
    case("jinja-recursive-loop",
         app("env:\n  X: '{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}'\n"),
         f"{SPEC}:6:6", "template syntax: recursive loops are not available"),
    # --- vars that use vars ------------------------------------------------------------------
    case("vars-doubling-chain", app(DOUBLING), f"{SPEC}:13:6",
         "characters long", "docs/spec.md"),
    case("vars-cycle",
         app("vars:\n  a: '{{ vars.b }}'\n  b: 'x-{{ vars.a }}'\nenv:\n  A: '{{ vars.a }}'\n"),
         f"{SPEC}:6:6", "vars cycle: a -> b -> a", "remove one of the references"),
    case("vars-self-reference", app("vars:\n  a: 'x{{ vars.a }}'\n"), f"{SPEC}:6:6",
         "vars cycle: a -> a"),
    case("vars-undefined-in-var", app("vars:\n  a: '{{ vars.nope }}'\nenv:\n  A: '{{ vars.a }}'\n"),
         f"{SPEC}:6:6", "vars.a: undefined var 'nope'"),
]
# fmt: on


@pytest.mark.parametrize("bad", CASES)
def test_bad_spec_is_rejected(project: Path, bad: Bad) -> None:
    make_project(project, {**MARKER, **bad.files})
    before = snapshot(project / "generated")

    started = time.monotonic()
    run = cli(project, "render")
    elapsed = time.monotonic() - started

    assert run.code == 2, run.err
    # The message checked below shows which bound stopped the spec; this only catches a spec
    # that runs away without hitting one (a bounded run takes well under a second even on a
    # busy machine, so 60 s never flakes).
    assert elapsed < 60, f"took {elapsed:.1f} s"
    assert "internal error" not in run.err
    assert "Traceback" not in run.err
    assert run.out == ""
    lines = run.err.splitlines()
    heads = [i for i, line in enumerate(lines) if ": error: " in line]
    found = [
        i for i in heads if lines[i].startswith(f"{bad.where}: error: ") and bad.message in lines[i]
    ]
    assert found, f"no error at {bad.where} mentioning {bad.message!r} in:\n{run.err}"
    fix_line = lines[found[0] + 1]
    assert fix_line.startswith("  fix: "), run.err
    assert bad.fix in fix_line, run.err
    for i in heads:  # every error, not only the expected one, comes with a fix
        assert lines[i + 1].startswith("  fix: "), run.err
    if bad.errors is not None:
        assert len(heads) == bad.errors, run.err
    plural = "s" if len(heads) != 1 else ""
    assert lines[-1] == f"{len(heads)} spec error{plural}; nothing was written"
    assert snapshot(project / "generated") == before


def test_corpus_ids_are_unique_and_enough_cases_pass() -> None:
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids))
    assert sum(not param.marks for param in CASES) >= 32


# --- several errors at once ----------------------------------------------------------------------

MANY = app(
    "descripton: typo\n"  # 5
    "resources:\n"
    "  cpu_count: 3\n"  # 7
    "  memory_mb: 513\n"  # 8
    "team_id: nope\n"  # 9
    "workdir: home\n"  # 10
    "steps:\n"
    "  - run: ls\n"  # 12: a step with two kinds
    "    user: root\n"
    "  - workdir: tmp\n"  # 14: relative
    "smoke:\n"
    "  - name: lost\n"  # 16: a check with no kind
    "  - command: x\n"
    "    stdout: '('\n"  # 18
    "  - http: localhost\n"  # 19
)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


def test_every_error_in_one_file_is_reported_at_once(project: Path) -> None:
    make_project(project, {**MARKER, **MANY})
    before = snapshot(project / "generated")

    run = cli(project, "render")

    assert run.code == 2
    heads = error_lines(run.err)
    assert [line.split(": error: ")[0] for line in heads] == [
        f"{SPEC}:5:1",
        f"{SPEC}:7:14",
        f"{SPEC}:8:14",
        f"{SPEC}:9:10",
        f"{SPEC}:10:10",
        f"{SPEC}:12:5",
        f"{SPEC}:14:14",
        f"{SPEC}:16:5",
        f"{SPEC}:18:13",
        f"{SPEC}:19:11",
    ]
    assert run.err.count("\n  fix: ") == len(heads) == 10
    assert run.err.endswith("10 spec errors; nothing was written\n")
    assert snapshot(project / "generated") == before
    # validate reports exactly the same errors
    assert cli(project, "validate").err == run.err


def test_errors_in_several_files_are_reported_together(project: Path) -> None:
    make_project(
        project,
        {
            **MARKER,
            "template_specs/a.yaml": "name: [\n",
            "template_specs/b.yaml": app("lables: {}\n", name="bee")[SPEC],
            "template_specs/c.yaml": app("extends: [b]\n", name="cee")[SPEC],
            **base("resources:\n  cpu_count: 3\n"),
        },
    )
    before = snapshot(project / "generated")

    run = cli(project, "render")

    assert run.code == 2
    assert [line.split(": error: ")[0] for line in error_lines(run.err)] == [
        "template_specs/a.yaml:2:1",
        "template_specs/b.yaml:5:1",
        f"{BASE}:4:14",
    ]
    assert run.err.count("\n  fix: ") == 3
    assert snapshot(project / "generated") == before


def test_matrix_variants_report_shared_errors_once(project: Path) -> None:
    make_project(
        project,
        app(
            "matrix:\n  python: ['3.11', '3.12']\nresources:\n  cpu_count: 3\n",
            name="'app-{{ matrix.python }}'",
        ),
    )

    run = cli(project, "render")

    assert run.code == 2
    heads = error_lines(run.err)
    # each variant's name is its own error; the shared cpu_count error is reported once
    assert [line.split(": error: ")[0] for line in heads] == [
        f"{SPEC}:1:7",
        f"{SPEC}:1:7",
        f"{SPEC}:8:14",
    ]
    assert "name 'app-3.11' breaks" in heads[0]
    assert "name 'app-3.12' breaks" in heads[1]
    assert not (project / "generated").exists()


def test_a_matrix_spec_reports_its_errors_after_another_file_had_some(project: Path) -> None:
    make_project(
        project,
        {
            # "a-first.yaml" sorts before app.yaml, so its issue is already on the list
            "template_specs/a-first.yaml": app("resources:\n  cpu_count: 3\n", name="first")[SPEC],
            **app(
                "matrix:\n  python: ['3.11', '3.13']\nresources:\n  cpu_count: 5\n",
                name='\'app-{{ matrix.python | replace(".", "") }}\'',
            ),
        },
    )

    run = cli(project, "validate")

    assert run.code == 2
    assert [line.split(": error: ")[0] for line in error_lines(run.err)] == [
        "template_specs/a-first.yaml:6:14",
        f"{SPEC}:8:14",
    ]


def test_validate_json_lists_every_issue(project: Path) -> None:
    make_project(
        project,
        {
            **app("descripton: typo\nresources:\n  cpu_count: 3\nsmoke:\n  - http: localhost\n"),
            "template_specs/c.yaml": app("extends: [b]\n", name="cee")[SPEC],
            **base("env:\n  PY: '{{ vars.pyhton }}'\nvars:\n  python: '3'\n"),
        },
    )

    run = cli(project, "validate", "--json")

    assert run.code == 2
    assert run.err == ""
    report = json.loads(run.out)
    assert report == {
        "ok": False,
        "errors": [
            {
                "file": SPEC,
                "line": 5,
                "column": 1,
                "path": "descripton",
                "message": "unknown key 'descripton'",
                "hint": "did you mean 'description'?",
            },
            {
                "file": SPEC,
                "line": 7,
                "column": 14,
                "path": "resources.cpu_count",
                "message": "cpu_count must be 1 or an even number from 2 to 32, got 3",
                "hint": "use 1, 2, 4, 8, 16 or another even count up to 32",
            },
            {
                "file": SPEC,
                "line": 9,
                "column": 11,
                "path": "smoke[0].http",
                "message": "http must be an http(s) URL, got 'localhost'",
                "hint": "write http://localhost:PORT/",
            },
            {
                "file": BASE,
                "line": 4,
                "column": 7,
                "path": "env.PY",
                "message": "undefined var 'pyhton'",
                "hint": "did you mean 'python'?",
            },
        ],
    }
    assert not (project / "generated").exists()


def test_undefined_var_does_not_hide_other_errors(project: Path) -> None:
    body = "descripton: typo\nresources:\n  cpu_count: 3\nenv:\n  A: '{{ vars.nope }}'\n"
    make_project(project, app(body))

    run = cli(project, "render")

    assert run.code == 2
    assert [line.split(": error: ")[0] for line in error_lines(run.err)] == [
        f"{SPEC}:5:1",
        f"{SPEC}:7:14",
        f"{SPEC}:9:6",
    ]
