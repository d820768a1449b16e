"""Currency conversion of integer cents at exact decimal rates, rounded half away from zero per value.

Each line's amount is converted and rounded on its own (as the template's ROUND formulas
do), so a consolidated total is the sum of the converted lines, to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from sheet_templates.config import OrgConfig
from sheet_templates.errors import PlansheetError
from sheet_templates.money import scale_by_ratios, scale_cents

__all__ = ["UnknownCurrency", "convert_cents", "scale_cents"]


class UnknownCurrency(PlansheetError):
    """A line's currency has no rate."""


def convert_cents(cents: np.ndarray, currencies: np.ndarray, rates: Mapping[str, Decimal]) -> np.ndarray:
    """Convert each value in `cents` from its currency to the target at `rates[currency]`."""
    cents = np.asarray(cents, dtype=np.int64)
    if not len(cents):
        return np.zeros(0, dtype=np.int64)
    return scale_by_ratios(cents, *rate_fractions(currencies, rates))


def rate_fractions(currencies: np.ndarray, rates: Mapping[str, Decimal]) -> tuple[np.ndarray, np.ndarray]:
    """Each value's rate as an exact fraction: (numerators, denominators), int64 where they fit.

    UnknownCurrency for a currency (or a blank) without a rate.
    """
    codes, found = pd.factorize(np.asarray(currencies, dtype=object))  # hashing, not sorting; -1 for a blank
    ratios = []
    for code in found.tolist():
        if code not in rates:
            raise UnknownCurrency(f"no rate for currency {code!r}; known: {', '.join(rates)}")
        ratios.append(rates[code].as_integer_ratio())
    if (codes < 0).any():
        raise UnknownCurrency(f"no rate for currency {None!r}; known: {', '.join(rates)}")
    num = np.array([n for n, _ in ratios] or [0], dtype=object)[codes]
    den = np.array([d for _, d in ratios] or [1], dtype=object)[codes]
    if all(abs(n) < 2**62 and d < 2**62 for n, d in ratios):
        num, den = num.astype(np.int64), den.astype(np.int64)
    return num, den


def cross_rate(config: OrgConfig, source: str, target: str, month: str | None = None) -> Fraction:
    """Units of `target` per unit of `source` in a fiscal month (plan rates when it has none), exactly."""
    for code in (source, target):
        if code not in config.plan_rates:
            raise UnknownCurrency(f"no rate for currency {code!r}; known: {', '.join(config.plan_rates)}")
    return Fraction(config.rate(source, month)) / Fraction(config.rate(target, month))


def convert_between(
    cents: np.ndarray,
    sources: np.ndarray,
    target: str,
    config: OrgConfig,
    months: np.ndarray | None = None,
) -> np.ndarray:
    """Convert each amount from its currency to `target`, at its fiscal month's rate (m01..m12 or None)."""
    cents = np.asarray(cents, dtype=np.int64)
    sources = np.asarray(sources, dtype=object)
    months = np.full(len(cents), None, dtype=object) if months is None else np.asarray(months, dtype=object)
    out = np.zeros(len(cents), dtype=np.int64)
    keys = {(s, m) for s, m in zip(sources.tolist(), months.tolist(), strict=True)}
    for source, month in keys:
        mask = (
            (sources == source) & (months == month)
            if month is not None
            else (sources == source)
            & (
                months == None  # noqa: E711 - elementwise comparison with None
            )
        )
        out[mask] = scale_cents(cents[mask], cross_rate(config, source, target, month))
    return out


def convert_pairs(cents: np.ndarray, sources: np.ndarray, targets: np.ndarray, config: OrgConfig) -> np.ndarray:
    """Convert each amount (each row, for a 2-D array) from its own currency to its own target, at plan rates.

    One exact conversion per (source, target) pair, whatever the number of amounts, each value
    rounded on its own as `convert_between` rounds it. An amount whose pair names a currency
    without a rate is left as it is.
    """
    cents = np.asarray(cents, dtype=np.int64)
    out = cents.copy()
    if not len(cents):
        return out
    source_codes, source_names = pd.factorize(np.asarray(sources, dtype=object), use_na_sentinel=False)
    target_codes, target_names = pd.factorize(np.asarray(targets, dtype=object), use_na_sentinel=False)
    pair = source_codes.astype(np.int64) * len(target_names) + target_codes
    for code in np.unique(pair).tolist():
        source, target = source_names[code // len(target_names)], target_names[code % len(target_names)]
        if source == target:
            continue
        try:
            rate = cross_rate(config, source, target)
        except UnknownCurrency:
            continue
        rows = np.flatnonzero(pair == code)
        block = cents[rows]
        out[rows] = scale_cents(block.ravel(), rate).reshape(block.shape)
    return out
