"""The sheet functions the issue asked for, by name."""

from __future__ import annotations

ISSUE_NAMES = {
    "PS_VALIDATE",
    "PS_ROLLUP",
    "PS_VARIANCE",
    "PS_VARIANCE_PCT",
    "PS_FX",
    "PS_FORECAST",
    "PS_PACING",
    "PS_REMAINING",
    "PS_KPI",
}
