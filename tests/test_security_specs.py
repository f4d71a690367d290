"""Specs cannot inject, hang or exhaust (issue 10, section 4): the bounds themselves.

The bad-spec corpus (test_bad_specs.py) has one located error per injectable field and per DoS
shape. Here: the shapes run in a real `boxsmith validate` process whose address space is capped
(an unbounded expansion fails with MemoryError, or is killed, instead of exhausting the machine),
the Jinja bounds one by one, what stays allowed, vars that use vars, and header comments.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from boxsmith._internal.spec.jinja_env import render_string
from boxsmith._internal.spec.jinja_limits import (
    MAX_STEPS,
    MAX_TOTAL_CHARS,
    MAX_VALUE_CHARS,
    LimitError,
)
from boxsmith._internal.spec.located import MAX_SPEC_BYTES
from tests.helpers import MINIMAL, cli, write_tree
from tests.test_bad_specs import DOUBLING, LAUGHS, MERGES

BOXSMITH = str(Path(sys.executable).with_name("boxsmith"))
MEMORY = 256 << 20  # address space of the capped process: boxsmith validate needs about 60 MB
CPU_SECONDS = 20  # a backstop: the bounded code needs milliseconds
REFS = ", ".join(["s"] * 2000)  # a list literal holding one long string 2000 times


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def validate_capped(root: Path) -> subprocess.CompletedProcess[str]:
    """`boxsmith validate` in a process with capped memory and CPU time."""
    return subprocess.run(
        [BOXSMITH, "-C", str(root), "validate"],
        preexec_fn=_capped,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def spec(body: str) -> str:
    return MINIMAL.format(name="app") + body


def env_x(expression: str) -> str:
    """The minimal spec with `env: X:` set to `expression` (single-quoted YAML, at line 6)."""
    return spec(f"env:\n  X: '{expression}'\n")


def rendered(project: Path, body: str) -> str:
    """Render template_specs/app.yaml (the minimal spec plus body); its e2b.Dockerfile."""
    write_tree(project, {"template_specs/app.yaml": spec(body)})
    run = cli(project, "render")
    assert run.code == 0, run.err
    return (project / "generated/app/1.0.0/e2b.Dockerfile").read_text()


SHAPES = {
    "billion-laughs": (spec(LAUGHS), "app.yaml:6:52: error: YAML aliases expand"),
    "merge-key-bomb": (spec(MERGES), "app.yaml:6:35: error: YAML merge keys (<<)"),
    "huge-file": (spec("# " + "x" * MAX_SPEC_BYTES + "\n"), "app.yaml:1:1: error: the spec file"),
    "power": (spec("env:\n  X: '{{ 9 ** 99999999 }}'\n"), "app.yaml:6:6: error: env.X: template"),
    "repetition": (spec("env:\n  X: \"{{ 'x' * 10**9 }}\"\n"), "app.yaml:6:6: error: env.X"),
    "range": (spec("env:\n  X: '{{ range(10**9) | list }}'\n"), "app.yaml:6:6: error: env.X"),
    "join": (spec("env:\n  X: \"{{ range(99999) | join('y' * 99999) }}\"\n"), "app.yaml:6:6"),
    "doubling": (
        spec(
            "env:\n  X: \"{% set ns = namespace(s='x') %}{% for i in range(99) %}"
            '{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"\n'
        ),
        "app.yaml:6:6: error: env.X: template: the ~ concatenation",
    ),
    "vars-doubling": (spec(DOUBLING), "app.yaml:13:6: error: vars.h: template"),
    # Each of these is within the per-value length limit step by step, but adds up to gigabytes.
    "list-of-long-strings": (env_x('{{ ["x"*100000]*100000 }}'), "env.X: template: the repetition"),
    "list-join": (env_x('{{ (["x"*100000]*100000) | join }}'), "env.X: template: the repetition"),
    "list-tojson": (env_x('{{ (["x"*100000]*100000) | tojson }}'), "env.X: template: the repet"),
    "printf-arguments": (
        env_x('{{ ("%s"*50000) % (("x"*100000,)*50000) }}'),
        "env.X: template: the repetition",
    ),
    "printf-mapping": (
        env_x('{{ ("%(a)s"*16000) % {"a": "x"*99999} }}'),
        "env.X: template: printf formatting would take the characters handled",
    ),
    "indent-string": (
        env_x('{{ ("a\\n"*50000) | indent("x"*99999, true) }}'),
        "env.X: template: the indent would make a value",
    ),
    "wordwrap-wrapstring": (
        env_x('{{ ("a "*50000) | wordwrap(1, wrapstring="x"*99999) }}'),
        "env.X: template: the wordwrap would take the characters handled",
    ),
    "map-center": (
        env_x('{{ range(40000) | map("center", 99999) | list }}'),
        "env.X: template: the center filter would take the characters handled",
    ),
    # a list var of aliases to one long string: small in memory, 900 MB as text
    "alias-list-var": (
        spec(
            "vars:\n  s: &s " + "x" * 900_000 + "\n  b: [" + ", ".join(["*s"] * 999) + "]\n"
            "env:\n  X: '{{ vars.b }}'\n"
        ),
        "app.yaml:9:6: error: env.X: template: the value would be more than 100000 characters",
    ),
    "list-literal": (
        env_x('{% set s = "x"*99999 %}{{ [' + REFS + "] }}"),
        "env.X: template: the output would take the characters handled",
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_dos_shape_ends_with_a_located_error_in_little_memory(project: Path, shape: str) -> None:
    text, where = SHAPES[shape]
    write_tree(project, {"template_specs/app.yaml": text})

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    run = validate_capped(project)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before

    assert run.returncode == 2, run.stderr[-2000:]
    where = where if where.startswith("app.yaml") else f"app.yaml:6:6: error: {where}"
    assert f"template_specs/{where}" in run.stderr, run.stderr[-2000:]
    assert cpu < 2, f"{cpu:.1f} s of CPU"  # CPU time: other work on the machine does not count
    assert "internal error" not in run.stderr
    assert "MemoryError" not in run.stderr


def test_a_spec_file_at_the_size_limit_is_read(project: Path) -> None:
    head = spec("")
    padding = MAX_SPEC_BYTES - len(head) - len("#\n")
    write_tree(project, {"template_specs/app.yaml": head + "#" + "x" * padding + "\n"})
    assert (project / "template_specs/app.yaml").stat().st_size == MAX_SPEC_BYTES

    assert cli(project, "validate").code == 0


def test_aliases_within_the_limit_still_work(project: Path) -> None:
    dockerfile = rendered(
        project,
        "labels: &common {tier: web}\n"
        "vars:\n  shared: *common\n"
        "steps:\n  - run: &cmd echo hi\n  - run: *cmd\n",
    )
    assert dockerfile.count("RUN echo hi\n") == 2


# --- the Jinja bounds, one by one ----------------------------------------------------------------

REFUSED = {
    "power": ("{{ 9 ** 99999999 }}", "would make an integer"),
    "power-of-a-big-base": ("{{ (2 ** 4000) ** 2 }}", "would make an integer"),
    "product-squaring": (
        "{% set ns = namespace(n=3) %}{% for i in range(99) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}",
        "the product would make an integer",
    ),
    "string-repetition": ("{{ 'x' * 10**9 }}", "the repetition"),
    "repetition-int-first": ("{{ 10**9 * 'x' }}", "the repetition"),
    "list-repetition": ("{{ [1, 2] * 10**9 }}", "the repetition"),
    "concatenation": ("{{ ('x' * 60000) + ('y' * 60000) }}", "the concatenation"),
    "tilde-concatenation": ("{{ ('x' * 60000) ~ ('y' * 60000) }}", "the ~ concatenation"),
    "join-separator": ("{{ range(99999) | join('x' * 99999) }}", "the join would make"),
    "join-method": ("{{ ('x' * 99999).join(range(99999)) }}", "the join would make"),
    "join-result": ("{{ range(99999) | join(',') }}", "the join would make a value"),
    "replace-filter": ("{{ ('x' * 9999) | replace('x', 'y' * 9999) }}", "the replace would"),
    "replace-method": ("{{ ('x' * 9999).replace('', 'y' * 9999) }}", "the replace would"),
    "replace-with-a-number": ("{{ ('x' * 99999) | replace('x', 10**1000) }}", "the replace would"),
    "center-filter": ("{{ 'x' | center(10**9) }}", "the center filter with a width"),
    "indent-filter": ("{{ 'a\nb' | indent(10**9) }}", "the indent filter with a width"),
    "indent-of-many-lines": ("{{ ('a\n' * 50000) | indent(99999) }}", "the indent would make"),
    "indent-string": ("{{ ('a\r' * 50000) | indent('x' * 99) }}", "the indent would make"),
    "batch-filter": ("{{ [1] | batch(10**9, 0) | list }}", "the batch filter with a width"),
    "slice-filter": ("{{ [1] | slice(10**9) | list }}", "the slice filter with a width"),
    "wordwrap-filter": ("{{ 'x' | wordwrap(10**9) }}", "the wordwrap filter with a width"),
    "ljust": ("{{ 'x'.ljust(10**9) }}", "str.ljust with a width"),
    "zfill": ("{{ '1'.zfill(10**9) }}", "str.zfill with a width"),
    "expandtabs": ("{{ '\t'.expandtabs(10**9) }}", "str.expandtabs with a width"),
    "expandtabs-of-many-tabs": ("{{ ('\t' * 99999).expandtabs(99999) }}", "str.expandtabs would"),
    "printf-width": ("{{ '%0999999999d' % 1 }}", "printf formatting with a width"),
    "printf-precision": ("{{ '%.999999999f' % 1.5 }}", "printf formatting with a width"),
    "printf-star": ("{{ '%*d' % (10**9, 1) }}", "given as * is not available"),
    "format-filter-width": ("{{ '%999999999s' | format('x') }}", "printf formatting"),
    "printf-widths-in-all": ("{{ ('%99999s' * 21) % (('x',) * 21) }}", "printf formatting would"),
    "format-filter-mapping": (
        "{{ ('%(a)s' * 16000) | format(a='x' * 99999) }}",
        "printf formatting would",
    ),
    "str-format": ("{{ '{:>999999999}'.format(1) }}", "str.format is not available"),
    "str-format-map": ("{{ '{a}'.format_map({'a': 1}) }}", "str.format is not available"),
    "sum-of-lists": ("{{ [[1]] * 9999 | sum(start=[]) }}", "the sum filter adds numbers only"),
    "nested-loops": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        f"more than {MAX_STEPS} steps",
    ),
    "macro-recursion": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        f"more than {MAX_STEPS} steps",
    ),
    "output": ("{% for i in range(20000) %}xxxxxx{% endfor %}", "the output would make"),
    "output-captured-by-set": (
        "{% set x %}{% for i in range(20000) %}xxxxxx{% endfor %}{% endset %}{{ x | length }}",
        "the output would make",
    ),
    "list-repetition-of-a-long-string": ("{{ ['x' * 99999] * 21 }}", "the repetition would"),
    "list-literal-joined": (
        "{% set s = 'x' * 99999 %}{{ [" + REFS + "] | join }}",
        "the join filter would take the characters handled",
    ),
    "list-literal-concatenated": (
        "{% set s = 'x' * 99999 %}{{ [" + REFS + "] ~ '' }}",
        "the ~ concatenation would take",
    ),
    "list-literal-formatted": (
        "{% set s = 'x' * 99999 %}{{ '%s' % ([" + REFS + "],) }}",
        "the % operator would take",
    ),
    "list-in-a-namespace": (
        "{% set s = 'x' * 99999 %}{% set ns = namespace() %}{% set ns.l = [" + REFS + "] %}"
        "{{ ns }}",
        "the output would take",
    ),
    "dict-items": ("{% set s = 'x' * 99999 %}{{ {'a': [" + REFS + "]}.items() }}", "the call"),
    "nesting-doubling": (
        "{% set ns = namespace(l=1) %}{% for i in range(5000) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l }}",
        "the output would take",
    ),
    "list-measured-in-a-loop": (  # measuring counts too, so a long list read again and again ends
        "{% set l = range(99999) | list %}{% for i in range(40000) %}{{ l | first }}{% endfor %}",
        "the first filter would take",
    ),
    "output-captured-by-a-macro": (
        "{% macro m() %}{% for i in range(9999) %}{{ 'y' * 99 }}{% endfor %}{% endmacro %}"
        "{{ m() | length }}",
        "the output would make",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_jinja_bound(name: str) -> None:
    source, message = REFUSED[name]
    with pytest.raises(LimitError, match=message.replace("*", r"\*").replace("(", r"\(")):
        render_string(source, {"vars": {}, "matrix": {}})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "recursive loops"),
        ("{% set _bx_loop = 1 %}", "reserved"),
    ],
)
def test_jinja_forms_that_would_escape_the_bounds_are_syntax_errors(
    source: str, message: str
) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError, match=message):
        render_string(source, {})


def test_list_mutation_is_not_available() -> None:
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_string("{% set l = [1] %}{{ l.extend(l) }}", {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ vars.py | replace('.', '') }}", "311"),
        ("{{ '%s-%d' | format(vars.py, 2) }}", "3.11-2"),
        ("{{ vars.pkgs | join(' ') }}", "curl git"),
        (
            "{% for p in vars.pkgs %}{{ p }}{% if not loop.last %},{% endif %}{% endfor %}",
            "curl,git",
        ),
        ("{{ 2 ** 10 }} {{ 3 * 4 }} {{ 'ab' * 2 }} {{ 'a' ~ 'b' }}", "1024 12 abab ab"),
        ("{{ vars.mem * 1024 * 1024 }}", str(512 * 1024 * 1024)),
        ("{% macro q(s) %}'{{ s }}'{% endmacro %}{{ q(vars.py) }}", "'3.11'"),
        ("{{ ('x' * 1000) | length }}", "1000"),
        ("{{ range(3) | sum }}", "3"),
        ("{{ 'x' | center(5) }}", "  x  "),
        ("{{ 'a\nb' | indent('> ', true) }}", "> a\n> b"),
        ("{{ 'a b c' | wordwrap(2, wrapstring='|') }}", "a|b|c"),
        ("{{ vars.pkgs | tojson }}", '["curl", "git"]'),
        ("{{ '%(py)s-%(py)s' % vars }}", "3.11-3.11"),
        ("{{ ('y' * 60000) | wordwrap(79) | length }}", "60759"),
        ("{{ vars.missing | default('none') }}", "none"),
    ],
)
def test_ordinary_expressions_still_render(source: str, expected: str) -> None:
    context = {"vars": {"py": "3.11", "pkgs": ["curl", "git"], "mem": 512}, "matrix": {}}
    assert render_string(source, context) == expected


def test_a_value_at_the_length_limit_renders() -> None:
    assert len(render_string(f"{{{{ 'x' * {MAX_VALUE_CHARS} }}}}", {})) == MAX_VALUE_CHARS


def test_a_value_at_the_length_limit_passes_through_several_filters() -> None:
    source = f"{{{{ ('x' * {MAX_VALUE_CHARS}) | upper | lower | trim }}}}"
    assert render_string(source, {}) == "x" * MAX_VALUE_CHARS
    assert MAX_TOTAL_CHARS >= 10 * MAX_VALUE_CHARS


def test_the_budget_is_per_value() -> None:
    loop = "{% for i in range(" + str(MAX_STEPS // 2) + ") %}{% endfor %}ok"
    for _ in range(4):  # several values in a row, each within its own budget
        assert render_string(loop, {}) == "ok"


# --- vars that use vars --------------------------------------------------------------------------


def test_a_var_using_another_var_is_resolved(project: Path) -> None:
    dockerfile = rendered(
        project,
        "vars:\n"
        "  b: 'x-{{ vars.a }}'\n"  # before the var it uses
        "  a: '{{ vars.root }}/app'\n"
        "  root: /srv\n"
        "  port: '{{ vars.base_port + 1 }}'\n"
        "  base_port: 8000\n"
        "workdir: '{{ vars.a }}'\n"
        "env:\n  B: '{{ vars.b }}'\n  PORT: '{{ vars.port }}'\n",
    )
    assert "ENV B=x-/srv/app \\\n    PORT=8001\n" in dockerfile
    assert "WORKDIR /srv/app\n" in dockerfile
    assert "{{" not in dockerfile


def test_vars_using_matrix_values_are_resolved_per_variant(project: Path) -> None:
    write_tree(
        project,
        {
            "template_specs/app.yaml": (
                'name: \'app-{{ matrix.py | replace(".", "") }}\'\n'
                'version: "1.0.0"\n'
                "description: d\n"
                "matrix:\n  py: ['3.11', '3.12']\n"
                "vars:\n  image: 'python:{{ matrix.py }}-slim'\n  tag: '{{ vars.image }}'\n"
                "base_image: '{{ vars.tag }}'\n"
            )
        },
    )

    assert cli(project, "render").code == 0
    for name, image in (("app-311", "python:3.11-slim"), ("app-312", "python:3.12-slim")):
        text = (project / f"generated/{name}/1.0.0/e2b.Dockerfile").read_text()
        assert f"\nFROM {image}\n" in text


# --- the header comments -------------------------------------------------------------------------


def dockerfile_lines(project: Path, folder: str) -> list[str]:
    return (project / "generated" / folder / "e2b.Dockerfile").read_text().splitlines()


def test_a_matrix_value_with_a_line_break_stays_in_its_comment(project: Path) -> None:
    lines = rendered(project, 'matrix:\n  note: ["a\\nRUN touch /tmp/pwned"]\n').splitlines()
    assert not any(line.startswith("RUN") for line in lines)
    assert "(matrix: note=a\\nRUN touch /tmp/pwned)" in lines[0]


def test_a_spec_file_name_with_a_line_break_stays_in_its_comment(project: Path) -> None:
    write_tree(project, {"template_specs/a\nRUN touch x.yaml": spec("")})

    run = cli(project, "render")

    assert run.code == 0, run.err
    lines = dockerfile_lines(project, "app/1.0.0")
    assert lines[0].startswith("# Generated by boxsmith from template_specs/a\\nRUN touch x.yaml")
    assert not any(line.startswith("RUN") for line in lines)
    toml = (project / "generated/app/1.0.0/e2b.toml").read_text().splitlines()
    assert all(line.startswith("#") or " = " in line for line in toml)


def test_an_error_in_a_spec_file_with_a_line_break_in_its_name_stays_on_one_line(
    project: Path,
) -> None:
    write_tree(project, {"template_specs/a\nfake.yaml:1:1: error: x.yaml": spec("bogus: 1\n")})

    run = cli(project, "validate")

    assert run.code == 2
    located = [line for line in run.err.splitlines() if ": error: " in line]
    assert located == [
        "template_specs/a\\nfake.yaml:1:1: error: x.yaml:5:1: error: bogus: unknown key 'bogus'"
    ]
