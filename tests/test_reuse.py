"""extends (merge rules), vars and matrix, through the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxsmith._internal.spec.catalog import Catalog, load_catalog
from boxsmith.config import load_settings
from boxsmith.errors import SpecError
from tests.helpers import write_tree

BASES = {
    "template_specs/bases/root.yaml": """\
        name: root
        abstract: true
        base_image: debian:bookworm-slim
        description: from root
        env: {A: root, B: root}
        labels: {tier: base}
        system_packages: [curl, git]
        files:
          - {src: files/one.txt, dest: /one}
        steps:
          - run: echo root
        smoke:
          - {name: shared, command: "true"}
          - {name: only-root, port: 80}
        tags: [stable]
        vars: {greeting: hi, who: root}
        """,
    "template_specs/bases/mid.yaml": """\
        name: mid
        abstract: true
        extends: root
        env: {B: mid, C: mid}
        system_packages: [git, jq]
        steps:
          - run: echo mid
        resources: {cpu_count: 4}
        """,
    "template_specs/bases/other.yaml": """\
        name: other
        abstract: true
        resources: {memory_mb: 2048}
        ready_cmd: {wait_for_port: 80}
        files:
          - {src: files/two.txt, dest: /one}
        """,
    "template_specs/bases/files/one.txt": "one\n",
    "template_specs/bases/files/two.txt": "two\n",
}


def catalog(root: Path) -> Catalog:
    return load_catalog(load_settings(root))


def test_merge_rules(project: Path) -> None:
    write_tree(
        project,
        {
            **BASES,
            "template_specs/app.yaml": """\
                name: app
                version: "1.0.0"
                extends: [mid, other]
                env: {C: app}
                labels: {team: web}
                system_packages: [curl, make]
                steps:
                  - run: echo app
                smoke:
                  - {name: shared, command: "false"}
                ready_cmd: "test -f /x"
                tags: [stable, edge]
                vars: {who: app}
                description: "{{ vars.greeting }} {{ vars.who }}"
                """,
        },
    )
    (app,) = catalog(project).templates
    s = app.spec
    assert s.description == "hi app"  # vars merge, the spec's value wins
    assert s.env == {"A": "root", "B": "mid", "C": "app"}
    assert s.labels == {"tier": "base", "team": "web"}
    assert s.system_packages == ["curl", "git", "jq", "make"]
    assert s.tags == ["stable", "edge"]
    assert (s.resources.cpu_count, s.resources.memory_mb) == (4, 2048)
    assert [st.run.commands for st in s.steps if st.run] == [
        ["echo root"], ["echo mid"], ["echo app"],
    ]  # fmt: skip
    assert s.ready_cmd == "test -f /x"  # replaced whole, not merged with the helper
    # smoke: same name replaced in place, others kept in order
    assert [(c.name, getattr(c, "command", None)) for c in s.smoke] == [
        ("shared", "false"), ("only-root", None),
    ]  # fmt: skip
    # files: same dest -> the later base's entry replaces the earlier one
    assert [(f.src, f.dest) for f in s.files] == [("files/two.txt", "/one")]
    assert [c.rel for c in app.context] == ["bases/files/two.txt"]


def test_package_lists_merge_by_package(project: Path) -> None:
    """A later item for the same package (another version) replaces the earlier one in place:
    a spec can pin what its base installs without a 'listed twice' error."""
    write_tree(
        project,
        {
            "template_specs/bases/py.yaml": """\
                name: py
                abstract: true
                base_image: python:3.11-slim
                description: a Python base
                pip_packages: ["numpy==2.1.*", pandas, "Scikit_Learn>=1.5"]
                npm_packages: ["typescript@5.6.3", "@types/node"]
                """,
            "template_specs/app.yaml": """\
                name: app
                version: "1.0.0"
                extends: py
                pip_packages: ["numpy==2.2.*", scipy, "scikit-learn>=1.6"]
                npm_packages: ["typescript@^5.7"]
                """,
        },
    )
    (app,) = catalog(project).templates
    assert app.spec.pip_packages == ["numpy==2.2.*", "pandas", "scikit-learn>=1.6", "scipy"]
    assert app.spec.npm_packages == ["typescript@^5.7", "@types/node"]


def test_positions_follow_the_file_that_set_a_value(project: Path) -> None:
    write_tree(
        project,
        {
            **BASES,
            "template_specs/app.yaml": 'name: app\nversion: "1.0.0"\nextends: mid\n',
        },
    )
    (app,) = catalog(project).templates
    env_pos = app.position("env", "B")
    assert env_pos is not None
    assert env_pos.file == "template_specs/bases/mid.yaml"
    steps_pos = app.position("steps", 0)
    assert steps_pos is not None
    assert steps_pos.file == "template_specs/bases/root.yaml"
    name_pos = app.position("name")
    assert name_pos is not None
    assert (name_pos.file, name_pos.line) == ("template_specs/app.yaml", 1)


def test_matrix_expands_with_exclude(project: Path) -> None:
    write_tree(
        project,
        {
            "template_specs/py.yaml": """\
                name: "py-{{ matrix.python | replace('.', '') }}-{{ matrix.flavor }}"
                version: "2.0.0"
                description: "Python {{ matrix.python }} ({{ matrix.flavor }})"
                base_image: "python:{{ matrix.python }}-{{ matrix.flavor }}"
                matrix:
                  python: ["3.11", "3.12"]
                  flavor: [slim, bookworm]
                  exclude:
                    - {python: "3.12", flavor: bookworm}
                """,
        },
    )
    templates = catalog(project).templates
    assert [t.name for t in templates] == ["py-311-bookworm", "py-311-slim", "py-312-slim"]
    slim = templates[1]
    assert slim.spec.base_image == "python:3.11-slim"
    assert slim.variant == {"python": "3.11", "flavor": "slim"}


def test_matrix_values_may_be_mappings(project: Path) -> None:
    write_tree(
        project,
        {
            "template_specs/node.yaml": """\
                name: "node-{{ matrix.node.major }}"
                version: "1.0.0"
                description: node
                base_image: "node:{{ matrix.node.major }}-slim"
                resources: {cpu_count: "{{ matrix.node.cpu }}"}
                matrix:
                  node:
                    - {major: 20, cpu: 2}
                    - {major: 22, cpu: 4}
                """,
        },
    )
    templates = catalog(project).templates
    assert [(t.name, t.spec.resources.cpu_count) for t in templates] == [
        ("node-20", 2), ("node-22", 4),
    ]  # fmt: skip


def test_selection_by_name_glob_and_label(project: Path) -> None:
    write_tree(
        project,
        {
            f"template_specs/{name}.yaml": f"""\
                name: {name}
                version: "1.0.0"
                description: d
                base_image: debian:bookworm
                labels: {{tier: {tier}}}
                """
            for name, tier in [("web-a", "web"), ("web-b", "web"), ("db", "data")]
        },
    )
    cat = catalog(project)
    assert [t.name for t in cat.select(["web-*"])] == ["web-a", "web-b"]
    assert [t.name for t in cat.select([], ["tier=data"])] == ["db"]
    assert [t.name for t in cat.select(["web-*"], ["tier=data"])] == []


def test_catalog_is_reused_only_while_inputs_are_unchanged(project: Path) -> None:
    write_tree(
        project,
        {
            "template_specs/app.yaml": """\
                name: app
                version: "1.0.0"
                description: d
                base_image: debian:bookworm
                files: [{src: conf, dest: /etc/app}]
                """,
            "template_specs/conf/a.ini": "a=1\n",
        },
    )
    first = catalog(project)
    assert catalog(project) is first
    (project / "template_specs/conf/b.ini").write_text("b=1\n")  # a file added to a copied folder
    second = catalog(project)
    assert second is not first
    assert [c.rel for c in second.templates[0].context] == ["conf/a.ini", "conf/b.ini"]
    spec = project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.0.1"'))  # same size, same inode
    assert catalog(project).templates[0].version == "1.0.1"


def test_a_spec_that_lists_a_package_twice_is_told_so_also_over_a_base(project: Path) -> None:
    """Merging replaces what a base listed, never one of the spec's own items by another: the
    spec's own duplicate stays an error, as without a base."""
    write_tree(
        project,
        {
            "template_specs/bases/py.yaml": (
                "name: py\nabstract: true\nbase_image: python:3.11-slim\n"
                "description: a Python base\npip_packages: [numpy]\n"
            ),
            "template_specs/app.yaml": (
                'name: app\nversion: "1.0.0"\nextends: py\n'
                'pip_packages: ["numpy==1.26.*", "numpy>=2"]\n'
            ),
        },
    )
    with pytest.raises(SpecError) as raised:
        catalog(project)
    assert "numpy is listed twice: 'numpy==1.26.*' and 'numpy>=2'" in raised.value.format()
