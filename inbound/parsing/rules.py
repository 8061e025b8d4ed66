"""Hand-written rules, named one by one so that a measurement can switch each of them off.

What the reader knows about how mail systems word their reports lives in module-level tuples
of rules (``reasons.WORDINGS``, ``bounces.RECIPIENT_LINES``, ``codes.COMMANDS``, ...), read at
call time. A rule that matches the messages of only one mail system was in effect tuned on it;
the corpus test switches such rules off while it measures that mail system, to see the reader
as a mail system it was never shown would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One hand-written pattern and what it recognises."""

    name: str
    pattern: re.Pattern[str]


def alternatives(pattern: str) -> list[str]:
    """Split a regular expression at its top-level "|"."""
    parts, depth, start, index = [], 0, 0, 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    return [*parts, pattern[start:]]


def rules(
    name: str, pattern: str, flags: int = re.IGNORECASE, prefix: str = "", suffix: str = ""
) -> tuple[Rule, ...]:
    """One rule per top-level alternative of the pattern, each between the common prefix and
    suffix, so that one alternative can be told apart (and switched off) from the others."""
    return tuple(
        Rule(name, re.compile(f"{prefix}(?:{alternative}){suffix}", flags))
        for alternative in alternatives(pattern)
        if alternative.strip()
    )


def search(rules_: Iterable[Rule], text: str) -> re.Match[str] | None:
    """The first match of the first rule that matches the text."""
    for rule in rules_:
        match = rule.pattern.search(text)
        if match:
            return match
    return None
