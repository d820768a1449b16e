"""Variance the way finance reads a cost line: plan minus actual, under-spend favourable.

All amounts are integer cents; a percentage is a float, and NaN where the plan is zero
(there is no percentage of nothing), so no division ever fails.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class Flag(StrEnum):
    FAVOURABLE = "favourable"
    UNFAVOURABLE = "unfavourable"
    ON_PLAN = "on plan"


def variance(plan: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """`plan - actual` in cents: positive when less was spent than planned (favourable)."""
    return np.asarray(plan, dtype=np.int64) - np.asarray(actual, dtype=np.int64)


def variance_pct(plan: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Variance as a fraction of the plan (0.1 = 10% under plan); NaN where the plan is zero."""
    plan = np.asarray(plan, dtype=np.int64)
    out = np.full(plan.shape, np.nan)
    nonzero = plan != 0
    out[nonzero] = variance(plan, actual)[nonzero] / plan[nonzero]
    return out


def variance_flag(plan: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Favourable, unfavourable or on plan, for each pair."""
    diff = variance(plan, actual)
    out = np.full(diff.shape, Flag.ON_PLAN.value, dtype=object)
    out[diff > 0] = Flag.FAVOURABLE.value
    out[diff < 0] = Flag.UNFAVOURABLE.value
    return out


def remaining(allocation: np.ndarray, committed: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """What is left to commit: allocation minus committed minus actual spend, in cents."""
    return (
        np.asarray(allocation, dtype=np.int64)
        - np.asarray(committed, dtype=np.int64)
        - np.asarray(actual, dtype=np.int64)
    )
