"""Money: the one place where amounts become integer cents and cents become text.

Every amount Plansheet holds is an integer number of cents in a stated currency. A typed
amount ("1,250.50", "$300", "(300)"; the dot is the only decimal mark) or a number from a
cell becomes cents here, rounded half away from zero as spreadsheets' ROUND does,
within one limit; and cents become text here, exactly, never through a float sum.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import numpy as np

from sheet_templates.errors import PlansheetError

MAX_AMOUNT = 10**11  # 100 billion per amount: beyond any plan line; sums of cents stay exact in int64 and float64
MAX_CENTS = MAX_AMOUNT * 100
CURRENCY_SYMBOLS = "$€£¥"
_NUMBER_TEXT = re.compile(r"^[$€£¥]?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
_MAX_TEXT = 64  # longer text is not an amount: it is refused before any arithmetic
# The usual text of an export ("1,234,567.50", "300", "12.5"): read as cents by integer arithmetic alone.
_PLAIN = re.compile(r"(\d{1,3}(?:,\d{3})+|\d{1,13})(?:\.(\d{1,2}))?")


def parse_amount_text(text: str) -> Decimal | None:
    """An amount typed as text, exactly: "1,250.50", "$300", "(300)", "-12.5", "1,250.50-"; None if not one."""
    s = text.strip().replace("\u00a0", "").replace(" ", "")
    if not s or len(s) > _MAX_TEXT:
        return None
    trailing = s.endswith("-") and not any(ch in "-()" for ch in s[:-1])  # "1,250.50-" from accounting exports
    if trailing:
        s = s[:-1]
    negative = trailing or s.startswith("-") or (s.startswith("(") and s.endswith(")"))
    s = s.strip("-()")
    if not s or not _NUMBER_TEXT.match(s) or not any(ch.isdigit() for ch in s):
        return None
    number = Decimal(s.lstrip(CURRENCY_SYMBOLS).replace(",", ""))
    return -number if negative else number


def to_cents(value: Any) -> int | None:
    """An amount (a number, or text as `parse_amount_text` reads it) as whole cents; None if not one or too large.

    Rounded half away from zero. Floats are taken at their shortest decimal form (1234.565 is
    the half it was typed as), the way Excel and LibreOffice show and round them.
    """
    if type(value) is str:
        plain = _PLAIN.fullmatch(value)
        if plain is not None:  # the usual export text: the same cents as the Decimal path below, far faster
            whole, fraction = plain.groups()
            cents = int(whole.replace(",", "")) * 100 + (int(fraction.ljust(2, "0")) if fraction else 0)
            return cents if cents <= MAX_CENTS else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not np.isfinite(value):
            return None
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        number = parse_amount_text(value)
        if number is None:
            return None
    else:
        return None
    if not number.is_finite() or abs(number) > MAX_AMOUNT:
        return None
    try:
        cents = (number * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return int(cents)


# The usual text of an amount in an export, as `to_cents` reads it: digits, a dot and at most two decimals.
_PLAIN_COLUMN = {
    True: re.compile(r"-?[0-9]{1,13}(?:\.[0-9]{1,2})?"),
    False: re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,2})?"),
}


def plain_cents(values: Sequence[str], *, negative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A column of amount text in its usual form ("1234.5", "-300") as cents, in bulk: (which were, their cents).

    Exactly the cents `to_cents` gives each (integer arithmetic on the digits, never a float), for the
    values written as ASCII digits with at most two decimals, a leading minus when `negative`, within
    `MAX_AMOUNT`; any other value ("1,250.50", "(300)", " 12", a number with three decimals) is left
    out (False, 0 cents), for `to_cents` to read on its own.
    """
    n = len(values)
    fullmatch = _PLAIN_COLUMN[negative].fullmatch
    plain = np.fromiter((type(v) is str and fullmatch(v) is not None for v in values), dtype=bool, count=n)
    cents = np.zeros(n, dtype=np.int64)
    if plain.any():
        text = np.asarray(values, dtype=object)[plain].astype(str)  # at most 17 characters each
        dot = np.char.find(text, ".")
        decimals = np.where(dot >= 0, np.char.str_len(text) - dot - 1, 0)
        cents[plain] = np.char.replace(text, ".", "").astype(np.int64) * 10 ** (2 - decimals)
        plain &= np.abs(cents) <= MAX_CENTS
        cents[~plain] = 0
    return plain, cents


def round_half_away(scaled: np.ndarray) -> np.ndarray:
    """Round floats to whole units half away from zero, as spreadsheets' ROUND does.

    The value is first rounded to 6 decimals, so that 1234.565 * 100 (stored as 123456.49999...)
    counts as the half it was typed as.
    """
    cleaned = np.round(scaled, 6)
    return np.sign(cleaned) * np.floor(np.abs(cleaned) + 0.5)


def cents_of(amounts: np.ndarray) -> np.ndarray:
    """Float amounts (already checked to be within `MAX_AMOUNT`) as int64 cents."""
    return round_half_away(np.asarray(amounts, dtype=np.float64) * 100).astype(np.int64)


def money_text(cents: int) -> str:
    """Cents as a plain decimal amount ("-1250.50"), exact: what the API and exports write."""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def display_money(cents: int) -> str:
    """Cents as an amount for people ("1,234,567.80"), exact."""
    return f"{Decimal(int(cents)) / 100:,.2f}"


def units(cents: int) -> float:
    """Cents as the nearest float of units, for a spreadsheet cell (exact for every amount within the limits)."""
    return int(cents) / 100


_INT64_SAFE = 2**62  # below this, intermediate products cannot overflow
_INT64_MAX = 2**63 - 1


def scale_cents(cents: np.ndarray, rate: Decimal | Fraction) -> np.ndarray:
    """`cents * rate`, rounded half away from zero, exactly (integer arithmetic on the rate's fraction)."""
    num, den = rate.as_integer_ratio()
    return scale_by_ratios(cents, num, den)


def scale_by_ratios(cents: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """`cents * num / den` element by element (`num`, `den` broadcast against `cents`), rounded half away from zero.

    The one rounding of the money grain: in int64 where no product can overflow, else in Python
    integers (exact for any amount a plan holds); too large a result to hold is an error.
    """
    cents = np.asarray(cents, dtype=np.int64)
    if not cents.size:
        return cents.copy()
    peak = int(np.abs(cents).max())
    top_num, top_den = _largest(num), _largest(den)
    if max(peak * top_num * 2, top_den * 2) >= _INT64_SAFE:  # would overflow int64
        wide = np.broadcast_arrays(cents.astype(object), np.asarray(num, dtype=object), np.asarray(den, dtype=object))
        out = [_round_ratio(int(c) * int(n), int(d)) for c, n, d in zip(*(a.ravel() for a in wide), strict=True)]
        if any(abs(v) > _INT64_MAX for v in out):
            raise PlansheetError("an amount converted at a plan rate is too large to hold exactly")
        return np.array(out, dtype=np.int64).reshape(wide[0].shape)
    scaled = cents * np.asarray(num, dtype=np.int64)
    if top_den == 1:
        return scaled
    den = np.asarray(den, dtype=np.int64)
    return np.sign(scaled) * ((np.abs(scaled) * 2 + den) // (2 * den))


def _largest(values: Any) -> int:
    """The largest magnitude among `values` (an int or an array of ints, int64 or Python integers)."""
    if isinstance(values, int):
        return abs(values)
    array = np.asarray(values)
    return max(abs(int(array.max())), abs(int(array.min()))) if array.size else 0


def _round_ratio(value: int, den: int) -> int:
    sign = -1 if value < 0 else 1
    return sign * ((abs(value) * 2 + den) // (2 * den))
