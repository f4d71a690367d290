"""The located YAML loader: same values as yaml.safe_load, plus positions."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from boxsmith._internal.spec.located import LDict, LList, Pos, YamlIssue, load_yaml, locate

DOC = textwrap.dedent(
    """\
    base: &base
      cpu: 2
      tags: [a, b]
    app:
      <<: *base
      cpu: 4
      name: "007"
      port: 0x1F
      ratio: 1.5e3
      enabled: yes
      disabled: false
      none: ~
      empty:
      text: |
        line one
        line two
      folded: >-
        one
        two
      explicit: !!str 123
      when: 2024-01-02
      list:
        - *base
        - - nested
    """
)


def plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_values_match_safe_load() -> None:
    assert plain(load_yaml(DOC, "f.yaml")) == yaml.safe_load(DOC)


def test_containers_and_positions() -> None:
    data = load_yaml(DOC, "f.yaml")
    assert isinstance(data, LDict)
    assert isinstance(data["app"]["list"], LList)
    assert data.key_pos["app"] == Pos("f.yaml", 4, 1)
    assert locate(data, ("app", "port")) == Pos("f.yaml", 8, 9)
    assert locate(data, ("app", "port"), key=True) == Pos("f.yaml", 8, 3)
    assert locate(data, ("app", "list", 1, 0)) == Pos("f.yaml", 24, 9)
    # merged keys keep the position where the anchor defined them
    assert locate(data, ("app", "tags")) == Pos("f.yaml", 3, 9)
    assert locate(data, ("app", "cpu")) == Pos("f.yaml", 6, 8)


def test_empty_document_is_none() -> None:
    assert load_yaml("", "f.yaml") is None
    assert load_yaml("# only a comment\n", "f.yaml") is None


def test_yaml_1_1_boolean_keys_are_refused() -> None:
    with pytest.raises(YamlIssue) as info:
        load_yaml("on: push\n", "f.yaml")
    assert info.value.issue.message == "key True is not a string"
    assert info.value.issue.hint == "quote the key"
