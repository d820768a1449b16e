"""An index of one view of the master for the live functions: every cell a dictionary look-up.

A live cell asks for a sum over the lines of a scope (a region or a team), optionally one
channel and one campaign (by name or code): planned spend by fiscal month, committed and
actual spend. Filtering the master's lines for every cell costs a pass over all of them per
cell; a workbook of 1,000 live cells then costs 1,000 passes. Instead, when a view of a master
is first asked for, every line's money is added once to every key it can answer to, in one
vectorised group-by:

    (scope, channel or "", campaign or "")  for scope in (its team, its region),
                                            channel in (all, its channel),
                                            campaign in (all, its name, its code)

so a cell is one dictionary look-up and a sum of at most twelve month columns. A key no line
answers to sums to zero, exactly as an empty filter did. The figures are the read model's own
reporting cents (`Master.months`, `committed`, `actual`): the index only regroups them, so the
one grain and the one answer are kept; the oracle test compares it with an independent sum.

An index belongs to one master (immutable: its inputs never change) and one user's scope, and
is kept beside the master (`Master.derived`), so it is built once per master version per scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_service.master.model import Master

ALL = ""  # the key part that means "every channel" or "every campaign"
TEAM, REGION = "team\x1f", "region\x1f"  # scope prefixes: a team named like a region stays apart
PLANNED, COMMITTED, ACTUAL, ESTIMATE = slice(0, 12), 12, 13, slice(14, 26)
INVOICED, ACCRUED = 26, slice(27, 39)


@dataclass(frozen=True)
class LiveIndex:
    """Sums of reporting cents by (scope, channel, campaign), for one view of one master."""

    rows: dict[tuple[str, str, str], int]  # key -> row of `planned` and `spent`; scope is TEAM+id or REGION+name
    planned: np.ndarray  # int64, keys x 13: planned spend of the first k fiscal months in column k (0: none)
    spent: np.ndarray  # int64, keys x 2: committed, actual
    teams: dict[str, str]  # casefolded team id -> (team id): the teams this view may name
    team_region: dict[str, str]  # team id -> region
    regions: dict[str, str]  # casefolded region -> region, every region of the organisation
    readable: frozenset[str]  # the regions this view may name as a scope
    readable_text: str  # those, for a refusal
    allocations: Mapping[tuple[str, str, str], int]  # the view's allocations, (region, quarter, channel) -> cents
    # The latest estimate (`Master.estimate`), as `planned` is kept: of the first k fiscal months in column k.
    estimate: np.ndarray | None = None
    closed: tuple[int, ...] = ()  # the closed months' indexes
    estimate_by_month: bool = True  # False: the closed months' actuals are known as the year to date only
    invoiced: np.ndarray | None = None  # int64, keys: invoiced against the POs of the key's lines
    accrued: np.ndarray | None = None  # int64, keys x 12: the accrual at each fiscal month's end
    accrual_month: int = 0  # the month being closed (the first whose accrual is not closed)

    def planned_cents(self, key: tuple[str, str, str], first: int, end: int) -> int:
        """Planned spend of fiscal months first..end-1 (0-based) of a key's lines; 0 when no line answers."""
        row = self.rows.get(key)
        return 0 if row is None else int(self.planned[row, end] - self.planned[row, first])

    def estimate_cents(self, key: tuple[str, str, str], first: int, end: int) -> int | None:
        """The latest estimate of fiscal months first..end-1 of a key's lines; None when it is not known.

        Not known: a period with some closed months but not all of the year's, when the finance
        export has no months (the rule of `Master.estimate`).
        """
        row = self.rows.get(key)
        inside = {m for m in self.closed if first <= m < end}
        if not self.estimate_by_month and inside:
            if first != 0 or end != 12:
                return None
            return 0 if row is None else int(self.estimate[row, 12] + self.spent[row, ACTUAL - COMMITTED])
        return 0 if row is None else int(self.estimate[row, end] - self.estimate[row, first])

    def invoiced_cents(self, key: tuple[str, str, str]) -> int:
        """Invoiced against the POs of a key's lines; 0 when no line answers."""
        row = self.rows.get(key)
        return 0 if row is None or self.invoiced is None else int(self.invoiced[row])

    def accrued_cents(self, key: tuple[str, str, str], month: int) -> int:
        """The accrual at fiscal month `month`'s end (0-based) of a key's lines; 0 when no line answers."""
        row = self.rows.get(key)
        return 0 if row is None or self.accrued is None else int(self.accrued[row, month])

    def spent_cents(self, key: tuple[str, str, str], which: int) -> int:
        """Committed (COMMITTED) or actual (ACTUAL) spend of a key's lines; 0 when no line answers."""
        row = self.rows.get(key)
        return 0 if row is None else int(self.spent[row, which - COMMITTED])


@dataclass(frozen=True)
class Keys:
    """Which keys each line answers to: line `line[i]` adds to key `group[i]`; `rows` names the keys."""

    rows: dict[tuple[str, str, str], int]
    line: np.ndarray
    group: np.ndarray

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per key, the sum of its lines' `values` (lines x ...)."""
        out = np.zeros((len(self.rows), *values.shape[1:]), dtype=values.dtype)
        np.add.at(out, self.group, values[self.line])
        return out


def keys(view: Master) -> Keys:
    """Every (scope, channel, campaign) key the lines of `view` answer to, in one vectorised pass."""
    table = view.table
    n = len(table)
    teams = table["team_id"].to_numpy(dtype=object) if n else np.zeros(0, dtype=object)
    regions = table["region"].to_numpy(dtype=object) if n else np.zeros(0, dtype=object)
    channel = _folded(table, "channel", n)
    name = _folded(table, "campaign", n)
    code = _folded(table, "campaign_code", n)
    line = np.arange(n)
    # The campaign parts a line answers to: all, its name, and its code when it differs from the name.
    has_name, has_code = name != "", (code != "") & (code != name)
    campaign_line = np.concatenate([line, line[has_name], line[has_code]])
    campaign_key = np.concatenate([np.full(n, ALL, dtype=object), name[has_name], code[has_code]])
    # Then each of those for every channel and for its own, and for its team and its region.
    parts_line = np.concatenate([campaign_line, campaign_line])
    parts_campaign = np.concatenate([campaign_key, campaign_key])
    parts_channel = np.concatenate([np.full(len(campaign_line), ALL, dtype=object), channel[campaign_line]])
    which = np.concatenate([parts_line, parts_line])
    parts = (
        np.concatenate([TEAM + teams[parts_line], REGION + regions[parts_line]]),
        np.concatenate([parts_channel, parts_channel]),
        np.concatenate([parts_campaign, parts_campaign]),
    )
    # Each key part factorised on its own (a hash of strings, in C), then the three codes as one number:
    # grouping tuples of strings instead costs several times the whole build.
    codes, names = zip(*(pd.factorize(part) for part in parts), strict=True)
    sizes = [max(len(n), 1) for n in names]
    combined = (codes[0].astype(np.int64) * sizes[1] + codes[1]) * sizes[2] + codes[2]
    found, group = np.unique(combined, return_inverse=True)
    scope_code, rest = np.divmod(found, sizes[1] * sizes[2])
    channel_code, campaign_code = np.divmod(rest, sizes[2])
    uniques = list(
        zip(
            names[0][scope_code].tolist() if len(found) else [],
            names[1][channel_code].tolist() if len(found) else [],
            names[2][campaign_code].tolist() if len(found) else [],
            strict=True,
        )
    )
    return Keys({key: i for i, key in enumerate(uniques)}, which, group.reshape(-1))


def build(view: Master) -> LiveIndex:
    """The index of `view` (the master as one user may see it): one pass over its lines."""
    n = len(view.table)
    estimate = view.estimate()
    money = np.zeros((n, 39), dtype=np.int64)
    if n:
        money[:, PLANNED] = view.months
        money[:, COMMITTED] = view.committed
        money[:, ACTUAL] = view.actual
        money[:, ESTIMATE] = estimate.months
        money[:, INVOICED] = view.invoiced
        money[:, ACCRUED] = view.accrued
    found = keys(view)
    sums = found.sums(money)
    planned = np.zeros((len(found.rows), 13), dtype=np.int64)
    np.cumsum(sums[:, PLANNED], axis=1, out=planned[:, 1:])
    estimated = np.zeros((len(found.rows), 13), dtype=np.int64)
    np.cumsum(sums[:, ESTIMATE], axis=1, out=estimated[:, 1:])
    visible = {t: r for t, r in view.regions.items() if view.visible is None or t in view.visible}
    return LiveIndex(
        rows=found.rows,
        planned=planned,
        spent=sums[:, COMMITTED : ACTUAL + 1].copy(),
        teams={t.casefold(): t for t in visible},
        team_region=visible,
        regions={r.casefold(): r for r in view.schema.config.regions},
        readable=frozenset(view.allocation_regions),
        readable_text=", ".join(view.allocation_regions) or "none",
        allocations=dict(view.allocations),
        estimate=estimated,
        closed=estimate.closed,
        estimate_by_month=estimate.by_month,
        invoiced=sums[:, INVOICED].copy(),
        accrued=sums[:, ACCRUED].copy(),
        accrual_month=next(
            (j for j, c in enumerate(view.schema.month_columns) if c.name not in view.accrual_closed), 11
        ),
    )


def _folded(table: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """A text column casefolded, as the functions compare it ('' for blanks)."""
    if not n:
        return np.zeros(0, dtype=object)
    return table[column].astype(str).str.casefold().to_numpy(dtype=object)
