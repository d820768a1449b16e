"""Text as every export can write it: what no XML 1.0 document can hold becomes U+FFFD.

The validator refuses such characters in new plans (`cell.control_character`), but plans
stored before that rule, and text from elsewhere, may still hold them. Every export (the
team template, the master workbook, the Google push) passes its text through `printable`,
so one stored value can never make a download fail.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# Outside XML 1.0's Char production: C0 controls but tab, LF and CR; U+FFFE and U+FFFF; and the
# surrogates, which in a str are always unpaired (a pair is one code point) and cannot be UTF-8.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold, and every unpaired surrogate, replaced by U+FFFD."""
    if text.isprintable() or _NOT_XML.search(text) is None:
        return text  # the common case, decided in C
    return _NOT_XML.sub(REPLACEMENT, text)


def printable_value(value: object) -> object:
    """`printable` for text; any other value (numbers, dates, None) as it is."""
    return printable(value) if isinstance(value, str) else value


def uploaded_name(name: str | None) -> str | None:
    """An uploaded file's name as the client gave it, cut to 255 characters and without control characters."""
    return "".join(ch for ch in name or "" if ch.isprintable())[:255] or None
