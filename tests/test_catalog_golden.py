"""Golden tests of the bundled catalog: generated/ is exactly what the specs render."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from boxsmith._internal.dockerfile.parse import parse
from boxsmith._internal.render.pipeline import check_project, render_project
from boxsmith.config import load_settings
from tests.helpers import snapshot

REPO = Path(__file__).resolve().parents[1]


def test_committed_generated_matches_a_fresh_render(tmp_path: Path) -> None:
    shutil.copytree(REPO / "template_specs", tmp_path / "template_specs")
    # the index carries the publish records (a release stamps their ids into e2b.toml): input
    (tmp_path / "generated").mkdir()
    shutil.copy2(REPO / "generated/index.json", tmp_path / "generated/index.json")
    render_project(load_settings(tmp_path))
    assert snapshot(tmp_path / "generated") == snapshot(REPO / "generated")


def test_bundled_catalog_has_no_drift() -> None:
    assert check_project(load_settings(REPO)).drift == ()


def test_bundled_templates() -> None:
    names = sorted(p.name for p in (REPO / "generated").iterdir() if p.is_dir())
    assert names == [
        "debian-minimal", "gradio-developer", "nextjs-developer", "python-data-311",
        "python-data-313", "streamlit-developer", "vue-developer",
    ]  # fmt: skip


def test_nextjs_port_does_what_the_original_does() -> None:
    folder = REPO / "generated/nextjs-developer/1.0.1"
    toml = tomllib.loads((folder / "e2b.toml").read_text())
    assert toml["template_name"] == "nextjs-developer"
    assert toml["start_cmd"] == "/compile_page.sh"
    assert (toml["cpu_count"], toml["memory_mb"]) == (4, 4096)
    assert toml["team_id"] == "460355b3-4f64-48f9-9a16-4442817f79f5"
    body = [
        line for line in (folder / "e2b.Dockerfile").read_text().splitlines()
        if not line.startswith("#")
    ]  # fmt: skip
    expected_order = [
        "FROM node:21-slim",
        "COPY nextjs-developer/compile_page.sh /compile_page.sh",
        "WORKDIR /home/user/nextjs-app",
        'RUN npx create-next-app@14.2.20 . --ts --tailwind --no-eslint --import-alias "@/*" '
        "--use-npm --no-app --no-src-dir",
        "COPY nextjs-developer/_app.tsx /home/user/nextjs-app/pages/_app.tsx",
        "RUN npx shadcn@2.1.7 init -d",
        "RUN npx shadcn@2.1.7 add --all",
        "RUN npm install posthog-js",
        "RUN mv /home/user/nextjs-app/* /home/user/ && rm -rf /home/user/nextjs-app",
        "WORKDIR /home/user",
        "USER user",
    ]
    positions = [body.index(line) for line in expected_order]
    assert positions == sorted(positions)
    assert (folder / "nextjs-developer/compile_page.sh").stat().st_mode & 0o111
    assert "PostHogProvider" in (folder / "nextjs-developer/_app.tsx").read_text()


def test_python_matrix_variants() -> None:
    """3.11 and 3.13: the Pythons of Debian 12 and 13, so both build where Docker Hub is out of
    reach (from stand-ins). 1.1.0 moved the matrix from 3.12 to 3.13."""
    for short, version in (("311", "3.11"), ("313", "3.13")):
        dockerfile = (REPO / f"generated/python-data-{short}/1.1.0/e2b.Dockerfile").read_text()
        assert f"FROM python:{version}-slim" in dockerfile
        assert f"(matrix: python={version})" in dockerfile.splitlines()[0]


@pytest.mark.parametrize(
    ("folder", "packages"),
    [
        ("python-data-311/1.1.0", "ipykernel jupyter_kernel_gateway matplotlib numpy pandas scipy"),
        ("gradio-developer/1.0.1", "gradio matplotlib numpy pandas plotly requests seaborn"),
        ("streamlit-developer/1.0.1", "matplotlib numpy pandas plotly requests seaborn streamlit"),
    ],
)
def test_python_templates_install_with_pip_packages(folder: str, packages: str) -> None:
    """The Python templates list their packages in `pip_packages` (one `pip install` as E2B's
    builder runs it, the cache off through PIP_NO_CACHE_DIR), not in a raw `run` step."""
    dockerfile = (REPO / "generated" / folder / "e2b.Dockerfile").read_text()
    runs = [s.args for s in parse(dockerfile) if s.keyword == "RUN" and "pip" in s.args]
    assert runs == [f"pip install {packages}"]
    assert "PIP_NO_CACHE_DIR=1" in dockerfile
