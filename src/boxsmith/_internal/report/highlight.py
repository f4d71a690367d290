"""Syntax highlighting for the site: a small tokenizer per language (YAML, TOML, Dockerfile)
that wraps comments, keys, strings, numbers and keywords in `<span class="t-...">`.

Every piece of text, matched or not, is HTML-escaped: a spec's text is shown, never run.
"""

from __future__ import annotations

import html
import re

__all__ = ["LANGUAGES", "highlight"]

_STRING = r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"
_NUMBER = r"(?<![\w.-])-?\d+(?:\.\d+)?(?![\w.-])"
_RULES: dict[str, list[tuple[str, str]]] = {
    "yaml": [
        ("c", r"(?:^|(?<=\s))#.*$"),
        ("s", _STRING),
        ("k", r"^[ \t]*(?:- )?[\w.$-]+(?=:(?:\s|$))"),
        ("b", r"(?<![\w-])(?:true|false|null)(?![\w-])"),
        ("n", _NUMBER),
        ("p", r"[|>]-?$|^[ \t]*-(?= )"),
    ],
    "toml": [
        ("c", r"#.*$"),
        ("h", r"^[ \t]*\[\[?[^\]\n]*\]\]?"),
        ("s", _STRING),
        ("k", r"^[ \t]*[\w.\"-]+(?=\s*=)"),
        ("b", r"(?<![\w-])(?:true|false)(?![\w-])"),
        ("n", _NUMBER),
    ],
    "dockerfile": [
        ("c", r"^[ \t]*#.*$"),
        ("i", r"^[ \t]*[A-Za-z]+(?=\s)"),
        ("s", _STRING),
        ("v", r"\$\{[^}\n]*\}|\$\w+"),
        ("f", r"(?<!\S)--[\w-]+(?:=\S*)?"),
    ],
}
_PATTERNS = {
    lang: re.compile("|".join(f"(?P<{k}>{p})" for k, p in rules), re.MULTILINE)
    for lang, rules in _RULES.items()
}
LANGUAGES = tuple(_RULES)


def highlight(text: str, language: str) -> str:
    """`text` as escaped HTML with spans for its tokens (plain escaped text for an unknown
    language)."""
    pattern = _PATTERNS.get(language)
    if pattern is None:
        return html.escape(text)
    parts: list[str] = []
    end = 0
    for match in pattern.finditer(text):
        if match.start() == match.end():
            continue
        parts.append(html.escape(text[end : match.start()]))
        parts.append(f'<span class="t-{match.lastgroup}">{html.escape(match.group())}</span>')
        end = match.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts)
