"""The one text rule: what a cell of text may hold, for plans and for every import alike.

No control character (C0, DEL, C1, an unpaired surrogate: what no spreadsheet can store or what
turns one cell into several lines), no bidirectional override or isolate (U+202A–U+202E,
U+2066–U+2069: they make a text display as something other than what it is, as in
"Trojan Source"), and no more characters than the field holds. Each refusal says what was found,
by its code point, and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from addin.issues import Rule

SINGLE_LINE_ILLEGAL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
MULTI_LINE_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_CHARACTER_NAMES = {"\t": "a tab", "\n": "a line break", "\r": "a line break"}


def illegal_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of `value` the rule refuses, or None."""
    hit = (MULTI_LINE_ILLEGAL if multiline else SINGLE_LINE_ILLEGAL).search(value)
    return hit.group() if hit else None


def character_message(label: str, char: str, *, multiline_hint: str = "") -> str:
    """Why `char` is refused in the field called `label`, and what to do."""
    code = f"U+{ord(char):04X}"
    if char in _CHARACTER_NAMES:
        return (
            f"{label} contains {_CHARACTER_NAMES[char]} ({code}), but it must be one line of text; "
            f"retype it on one line{multiline_hint}"
        )
    if 0xD800 <= ord(char) <= 0xDFFF:
        return (
            f"{label} contains {code}, half of a character pair (an unpaired surrogate), which no spreadsheet "
            "can store; retype the text, or send the whole character (an emoji, for example) and not half of it"
        )
    if 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069:
        return (
            f"{label} contains {code}, a bidirectional override that makes the text display as something other "
            "than what it is; retype the text without it"
        )
    return (
        f"{label} contains the control character {code}, which no spreadsheet can store; "
        "retype the text, or paste it as plain text"
    )


def text_problem(value: str, label: str, max_length: int, *, multiline: bool = False) -> tuple[Rule, str] | None:
    """(rule, message) of the first way `value` breaks the text rule, or None when it keeps it."""
    char = illegal_character(value, multiline=multiline)
    if char is not None:
        return Rule.CONTROL_CHARACTER, character_message(label, char)
    if len(value) > max_length:
        return Rule.TOO_LONG, f"{label} is {len(value):,} characters long; keep it to {max_length:,}"
    return None


def keep_rule(values: Sequence[str], max_length: int) -> np.ndarray:
    """For a whole column of single-line text at once: which values `text_problem` has nothing to say about.

    One search over the column's text finds no refused character in the usual column; only when it
    finds one are the values searched one by one.
    """
    keep = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) <= max_length
    if SINGLE_LINE_ILLEGAL.search("".join(values)) is not None:
        keep &= np.fromiter((SINGLE_LINE_ILLEGAL.search(v) is None for v in values), dtype=bool, count=len(values))
    return keep
