"""Marketing performance: what the spend bought, against the plan's expectation and the targets shared with sales.

Every figure of every surface (the API, the live functions, the dashboard, the master workbook,
the Google push) is computed here, from the read model (`Master`): planned spend and expected
results per line, actual spend (by fiscal month when the finance export has months), and the
results in force from the CRM and marketing automation (`sync_service.results.outcomes`).

The rules, in one place (docs/performance.md says them for users):

- A period's actual result is the sum over its months that some import covers; when no import
  covers any of them the result is *no data* (None), never zero.
- A unit cost or a ratio of results uses only the months both of its results are covered, and
  the actual spend of those same months; the year's spend to date when the finance export has
  no months (a quarter then has no actual spend: no data).
- A line's expected results (its plan's expected leads, MQLs, pipeline, revenue) fall into
  periods in proportion to its planned spend there (evenly when it plans none), split in whole
  hundredths of a lead and whole cents by largest remainder, so the periods add up to the line.
- Targets are per region and fiscal quarter (the organisation file), so they apply to a row
  grouped by region alone; the year's target is the four quarters' when all four are set. A
  target unit cost is the allocation over the target; a target conversion, one target over another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from sheet_templates.calendar import QUARTERS
from sheet_templates.config import TARGET_MEASURES
from sheet_templates.money import money_text, to_cents
from sync_service.master import model as master_model
from sync_service.master.allocations import allocation_of
from sync_service.master.grouping import Period, dimensions, groups, periods
from sync_service.master.index import Keys, keys
from sync_service.master.model import Master
from sync_service.master.outcomes import LABELS, METRICS, MONEY
from sync_service.platform.errors import ServiceError

EXPECTED = TARGET_MEASURES  # the results a plan line expects: leads, mqls, pipeline, revenue
PERIODS = ("year", "quarter", "month")
COUNT, CENTS, PER_UNIT, RATIO = "count", "money", "money per unit", "ratio"
_M = {m: j for j, m in enumerate(METRICS)}
_E = {m: j for j, m in enumerate(EXPECTED)}


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    unit: str
    numerator: str | None = None  # ratios: results (or "spend") over results (or "spend")
    denominator: str | None = None
    net: bool = False  # (numerator - denominator) / denominator: ROI as Salesforce defines it
    difference: bool = False  # numerator - denominator, in cents: the CRM's cost against finance's spend


MEASURES: tuple[Measure, ...] = (
    Measure("spend", "Spend", CENTS),
    *(Measure(m, LABELS[m], CENTS if m in MONEY else COUNT) for m in METRICS),
    Measure("cost_per_lead", "Cost per lead", PER_UNIT, "spend", "leads"),
    Measure("cost_per_mql", "Cost per MQL", PER_UNIT, "spend", "mqls"),
    Measure("pipeline_roi", "Pipeline per unit of spend", RATIO, "pipeline", "spend"),
    Measure("revenue_roi", "Revenue per unit of spend", RATIO, "revenue", "spend"),
    Measure("roi", "ROI (revenue less spend, over spend)", RATIO, "revenue", "spend", net=True),
    Measure("cost_difference", "CRM cost less actual spend", CENTS, "crm_cost", "spend", difference=True),
    Measure("lead_to_mql", "Lead to MQL", RATIO, "mqls", "leads"),
    Measure("mql_to_opportunity", "MQL to opportunity", RATIO, "opportunities", "mqls"),
    Measure("opportunity_to_won", "Opportunity to won", RATIO, "won", "opportunities"),
)
BY_NAME = {m.name: m for m in MEASURES}


# --- per line ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lines:
    """Every line's inputs to the figures, for one view of one master."""

    planned: np.ndarray  # lines x 12, reporting cents
    actual: np.ndarray  # lines, reporting cents (the year to date)
    actual_months: np.ndarray | None  # lines x 12, or None when the finance export has no months
    outcomes: np.ndarray  # lines x METRICS x 12
    cover: np.ndarray  # METRICS x 12
    expected: dict[str, np.ndarray]  # period -> lines x EXPECTED x periods (hundredths of a lead, cents)


def spread(totals: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's total split over its columns in proportion to `weights`, in integers, by largest remainder.

    A row without weight is split evenly; ties go to the earlier column; a negative total is split
    as its absolute value and negated. The parts of a row add up to its total exactly.
    """
    n, p = weights.shape
    weights = np.maximum(weights, 0)
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1)
    whole = weights.sum(axis=1, keepdims=True)
    sign, size = np.sign(totals), np.abs(totals)
    big = (int(size.max()) if n else 0) * (int(whole.max()) if n else 0) >= 2**62
    if big:  # Python integers where int64 would overflow
        num = size.astype(object)[:, None] * weights.astype(object)
        floor, rest = num // whole.astype(object), num % whole.astype(object)
        floor, rest = floor.astype(np.int64), rest.astype(float) / whole.astype(float)
    else:
        num = size[:, None] * weights
        floor, rest = num // whole, (num % whole) / whole
    deficit = size - floor.sum(axis=1)
    order = np.argsort(-rest, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(p)
    parts = floor + (rank < deficit[:, None])
    return parts * sign[:, None]


def lines(view: Master) -> Lines:
    table = view.table
    n = len(table)
    totals = np.zeros((n, len(EXPECTED)), dtype=np.int64)
    if n:
        totals[:, _E["leads"]] = table["leads"].to_numpy(dtype=np.int64) * 100
        totals[:, _E["mqls"]] = table["mqls"].to_numpy(dtype=np.int64) * 100
        from addin import reporting as grain

        totals[:, _E["pipeline"]] = grain.line_cents(table, view.schema, "pipeline")
        totals[:, _E["revenue"]] = grain.line_cents(table, view.schema, "revenue")
    planned = view.months
    weights = {
        "year": planned.sum(axis=1, keepdims=True),
        "quarter": planned.reshape(n, 4, 3).sum(axis=2),
        "month": planned,
    }
    expected = {
        period: np.stack([spread(totals[:, j], w) for j in range(len(EXPECTED))], axis=1)
        if n
        else np.zeros((0, len(EXPECTED), w.shape[1]), dtype=np.int64)
        for period, w in weights.items()
    }
    return Lines(planned, view.actual, view.actual_months, view.outcomes, view.outcome_cover, expected)


# --- sums by group ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sums:
    """The same inputs summed by group (a row per group)."""

    planned: np.ndarray
    actual: np.ndarray
    actual_months: np.ndarray | None
    outcomes: np.ndarray
    cover: np.ndarray
    expected: dict[str, np.ndarray]

    @staticmethod
    def of(per_line: Lines, group: np.ndarray, size: int, line: np.ndarray | None = None) -> Sums:
        """Sums of lines into `size` groups: line `line[i]` (default i) into group `group[i]`."""

        def add(values: np.ndarray) -> np.ndarray:
            out = np.zeros((size, *values.shape[1:]), dtype=values.dtype)
            np.add.at(out, group, values if line is None else values[line])
            return out

        return Sums(
            add(per_line.planned),
            add(per_line.actual),
            None if per_line.actual_months is None else add(per_line.actual_months),
            add(per_line.outcomes),
            per_line.cover,
            {k: add(v) for k, v in per_line.expected.items()},
        )

    @staticmethod
    def by_keys(per_line: Lines, keys: Keys) -> Sums:
        return Sums.of(per_line, keys.group, len(keys.rows), keys.line)


def period_named(view: Master, text: str) -> Period:
    """FY (or the year's label), Q1..Q4 or m01..m12."""
    key = text.strip()
    if key.upper() in ("", "FY", "YEAR", view.schema.calendar.label.upper()):
        return periods(view.schema, "year")[0]
    if key.upper() in QUARTERS:
        return periods(view.schema, "quarter")[QUARTERS.index(key.upper())]
    for p in periods(view.schema, "month"):
        if key.casefold() == p.label:
            return p
    raise ServiceError(f"period {text!r}: use FY, Q1..Q4 or m01..m12")


# --- one figure ----------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measure of one group and period: actual, the plan's expectation, the target, and why any is missing."""

    measure: Measure
    actual: int | float | None = None  # cents, hundredths, cents per unit, or a ratio
    expected: int | float | None = None
    target: int | float | None = None
    notes: list[str] = field(default_factory=list)
    months: tuple[str, ...] = ()  # the fiscal months the actual figure is made of


@dataclass(frozen=True)
class TargetScope:
    """What a target can be compared with: a region, whether the figures are the whole region's, a channel."""

    region: str | None
    whole_region: bool = True
    reason: str = ""


def _cover(sums: Sums, period: Period, metrics: Sequence[str]) -> tuple[int, ...]:
    return tuple(m for m in period.months if all(sums.cover[_M[x], m] for x in metrics))


def _spend(sums: Sums, g: int, months: tuple[int, ...], period: Period, notes: list[str]) -> int | None:
    if sums.actual_months is not None:
        return int(sums.actual_months[g, list(months)].sum()) if months else 0
    if period.kind == "year":
        notes.append("the finance export has no months: the year's actual spend to date is used")
        return int(sums.actual[g])
    notes.append("the finance export has no months, so the actual spend of a quarter or month is unknown")
    return None


def _ratio(measure: Measure, num: int | None, den: int | None) -> int | float | None:
    """A measure's ratio of two sums in their units; None when either is missing or the divisor is zero."""
    if measure.difference:  # the CRM's cost less finance's actual spend of the same months
        return None if num is None or den is None else num - den
    if num is None or den is None or den == 0:
        return None
    if measure.unit == PER_UNIT:  # cents per whole unit: cents * 100 / hundredths, rounded half away from zero
        value = Fraction(num * 100, den)
        return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))
    if measure.net:  # (won revenue - spend) / spend: both money, in reporting cents
        num = num - den
    # a ratio of money to money, or of counts to counts: both sides in the same units
    return float(Fraction(num, den))


def _target(view: Master, scope: TargetScope, period: Period, what: str, notes: list[str]) -> int | None:
    """A region's target in its units (hundredths, cents), or its allocation for "spend"; None with a note."""
    if scope.region is None:
        notes.append(scope.reason or "targets are per region: group by region alone to compare")
        return None
    quarters = period.quarters
    if quarters is None:
        notes.append("targets are per quarter")
        return None
    if what == "spend":
        found = allocation_of(view.allocations, scope.region, quarters, None)
        if found is None:
            notes.append(f"no allocation is set for {scope.region} {' '.join(quarters)}")
        return found
    total = 0
    for q in quarters:
        value = view.schema.config.target(scope.region, q, what)
        if value is None:
            notes.append(f"no {what} target is set for {scope.region} {q}")
            return None
        total += int(value * 100) if what not in MONEY else (to_cents(value) or 0)
    return total


def figure(view: Master, sums: Sums, g: int, period: Period, measure: Measure, scope: TargetScope) -> Figure:
    """One measure for group `g` of `sums` in `period`."""
    fig = Figure(measure)
    notes = fig.notes
    names = [c.name for c in view.schema.month_columns]
    kind, p = period.kind, period.index
    if measure.name == "spend":
        fig.actual = _spend(sums, g, period.months, period, notes)
        fig.months = tuple(names[m] for m in period.months)
        fig.expected = int(sums.planned[g, list(period.months)].sum())
        fig.target = _target(view, scope, period, "spend", notes)
    elif measure.numerator is None:  # a result
        covered = _cover(sums, period, [measure.name])
        fig.months = tuple(names[m] for m in covered)
        if covered:
            fig.actual = int(sums.outcomes[g, _M[measure.name], list(covered)].sum())
        else:
            notes.append("no results imported for these months")
        if measure.name in _E:
            fig.expected = int(sums.expected[kind][g, _E[measure.name], p])
            fig.target = _target(view, scope, period, measure.name, notes)
        else:
            notes.append("the plan has no expected value for this result")
    else:
        results = [x for x in (measure.numerator, measure.denominator) if x != "spend"]
        covered = _cover(sums, period, results)
        fig.months = tuple(names[m] for m in covered)

        def actual_of(x: str) -> int | None:
            if x == "spend":
                return _spend(sums, g, covered, period, notes)
            return int(sums.outcomes[g, _M[x], list(covered)].sum())

        def expected_of(x: str) -> int | None:
            if x == "spend":
                return int(sums.planned[g, list(period.months)].sum())
            return int(sums.expected[kind][g, _E[x], p]) if x in _E else None

        if covered:
            fig.actual = _ratio(measure, actual_of(measure.numerator), actual_of(measure.denominator))
            if fig.actual is None and not any("unknown" in n for n in notes):
                notes.append(f"no {LABELS.get(measure.denominator, measure.denominator).lower()} in these months")
        else:
            notes.append("no results imported for these months")
        fig.expected = _ratio(measure, expected_of(measure.numerator), expected_of(measure.denominator))
        if fig.expected is None and not all(x == "spend" or x in _E for x in results):
            notes.append("the plan has no expected value for this ratio")
        if all(x == "spend" or x in _E for x in (measure.numerator, measure.denominator)):
            target_notes: list[str] = []
            num = _target(view, scope, period, measure.numerator, target_notes)
            den = _target(view, scope, period, measure.denominator, target_notes) if num is not None else None
            fig.target = _ratio(measure, num, den)
            notes.extend(target_notes)
    if fig.target is not None and not scope.whole_region:
        notes.append(f"the target is all of {scope.region}'s; these results are your teams' only")
    fig.notes = list(dict.fromkeys(notes))
    return fig


# --- as answers ------------------------------------------------------------------------------------------------


def units(measure: Measure, value: int | float | None) -> float | None:
    """A figure as a cell shows it: money and per-unit costs in currency units, counts in units, ratios as they are."""
    if value is None:
        return None
    if measure.unit == RATIO:
        return round(float(value), 6)
    return float(Fraction(int(value), 100))


def as_json(fig: Figure) -> dict[str, Any]:
    m = fig.measure

    def show(value: int | float | None) -> Any:
        if value is None:
            return None
        if m.unit in (CENTS, PER_UNIT):
            return money_text(int(value))
        return units(m, value)

    out: dict[str, Any] = {"actual": show(fig.actual), "expected": show(fig.expected), "target": show(fig.target)}
    for key, other in (("vs_expected", fig.expected), ("vs_target", fig.target)):
        if fig.actual is None or other is None:
            out[key] = None
        elif m.unit == RATIO:
            out[key] = round(float(fig.actual) - float(other), 6)
        else:
            out[key] = show(int(fig.actual) - int(other))
    if m.unit in (CENTS, PER_UNIT):
        out["cents"] = {
            k: (None if v is None else int(v))
            for k, v in (("actual", fig.actual), ("expected", fig.expected), ("target", fig.target))
        }
    if fig.notes:
        out["notes"] = fig.notes
    out["months"] = list(fig.months)
    return out


def target_scope(view: Master, dims: list[str], key: tuple[Any, ...]) -> TargetScope:
    if dims != ["region"]:
        return TargetScope(None, reason="targets are per region: group by region alone to compare")
    return TargetScope(str(key[0]), whole_region=view.visible is None)


def performance_json(view: Master, per_line: Lines, by: str | None, period: str | None) -> dict[str, Any]:
    """GET /api/v1/performance: every measure by the `by` dimensions and period."""
    dims = [d for d in dimensions(view.schema, by, "region")]
    kind = period or "quarter"
    spans = periods(view.schema, kind)
    names, codes = groups(view, dims)
    sums = Sums.of(per_line, codes, len(names))
    rows = []
    for g, key in enumerate(names):
        scope = target_scope(view, dims, key)
        for span in spans:
            row: dict[str, Any] = dict(zip(dims, key, strict=True))
            row["period"] = span.label
            row["measures"] = {m.name: as_json(figure(view, sums, g, span, m, scope)) for m in MEASURES}
            rows.append(row)
    return {
        **view.about,
        "by": dims,
        "period": kind,
        "currency": view.schema.config.reporting_currency,
        "actual_spend_by_month": view.actual_months is not None,
        "measures": [{"name": m.name, "label": m.label, "unit": m.unit} for m in MEASURES],
        "rows": rows,
    }


def for_user(store: Any, schema: Any, user: Any) -> tuple[Master, Lines]:
    """`user`'s view of the current master and its lines' performance inputs, made once per master and scope."""
    found = master_model.derived(store, schema, user, "performance", lambda view: (view, lines(view)))
    return found.value


# --- the live functions' index ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceIndex:
    """Performance sums by (scope, channel, campaign) key, as the live functions' index of spend is."""

    view: Master
    rows: dict[tuple[str, str, str], int]
    sums: Sums
    empty: Sums  # a key no line answers to: every sum zero, the same coverage

    def figure(self, key: tuple[str, str, str], period: Period, measure: Measure, scope: TargetScope) -> Figure:
        row = self.rows.get(key)
        if row is None:
            return figure(self.view, self.empty, 0, period, measure, scope)
        return figure(self.view, self.sums, row, period, measure, scope)


def build_index(view: Master) -> PerformanceIndex:
    per_line = lines(view)
    found = keys(view)
    none = np.zeros(1, dtype=np.int64)
    return PerformanceIndex(
        view,
        found.rows,
        Sums.by_keys(per_line, found),
        Sums.of(per_line, none[:0], 1, none[:0]),
    )


# --- as a table (the master workbook's Performance sheet, the Google push) ------------------------------------

# (measure, which figure, header); every column is one figure of one measure.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("spend", "actual", "Actual spend"),
    ("spend", "expected", "Planned spend"),
    ("spend", "target", "Allocation"),
    ("leads", "actual", "Leads"),
    ("leads", "expected", "Expected leads"),
    ("leads", "target", "Target leads"),
    ("mqls", "actual", "MQLs"),
    ("mqls", "expected", "Expected MQLs"),
    ("mqls", "target", "Target MQLs"),
    ("sals", "actual", "Sales-accepted leads"),
    ("opportunities", "actual", "Opportunities"),
    ("won", "actual", "Won"),
    ("pipeline", "actual", "Pipeline"),
    ("pipeline", "expected", "Expected pipeline"),
    ("pipeline", "target", "Target pipeline"),
    ("revenue", "actual", "Revenue"),
    ("revenue", "expected", "Expected revenue"),
    ("revenue", "target", "Target revenue"),
    ("cost_per_lead", "actual", "Cost per lead"),
    ("cost_per_lead", "expected", "Expected cost per lead"),
    ("cost_per_lead", "target", "Target cost per lead"),
    ("cost_per_mql", "actual", "Cost per MQL"),
    ("cost_per_mql", "target", "Target cost per MQL"),
    ("pipeline_roi", "actual", "Pipeline per unit of spend"),
    ("pipeline_roi", "expected", "Expected pipeline per unit of spend"),
    ("revenue_roi", "actual", "Revenue per unit of spend"),
    ("roi", "actual", "ROI (revenue less spend, over spend)"),
    ("crm_cost", "actual", "CRM cost"),
    ("cost_difference", "actual", "CRM cost less actual spend"),
    ("roi", "expected", "Expected ROI"),
    ("lead_to_mql", "actual", "Lead to MQL"),
    ("mql_to_opportunity", "actual", "MQL to opportunity"),
    ("opportunity_to_won", "actual", "Opportunity to won"),
)


def _kind(measure: Measure) -> str:
    return {CENTS: "money", PER_UNIT: "money", COUNT: "count", RATIO: "ratio"}[measure.unit]


def table(view: Master, per_line: Lines, dims: list[str]) -> tuple[list[str], list[str], list[list[Any]]]:
    """(header, kinds, rows) of every group by `dims`, each quarter then the year; None where there is no data."""
    names, codes = groups(view, dims)
    sums = Sums.of(per_line, codes, len(names))
    spans = [*periods(view.schema, "quarter"), *periods(view.schema, "year")]
    header = [view.schema[d].label if d in view.schema else d for d in dims] + ["Period"]
    header += [h for _, _, h in TABLE_COLUMNS]
    kinds = ["text"] * (len(dims) + 1) + [_kind(BY_NAME[m]) for m, _, _ in TABLE_COLUMNS]
    rows = []
    for g, key in enumerate(names):
        scope = target_scope(view, dims, key)
        for span in spans:
            figures = {
                m: figure(view, sums, g, span, BY_NAME[m], scope) for m in dict.fromkeys(x for x, _, _ in TABLE_COLUMNS)
            }
            row: list[Any] = [*key, span.label]
            row += [getattr(figures[m], which) for m, which, _ in TABLE_COLUMNS]
            rows.append(row)
    return header, kinds, rows


def sheet(view: Master, per_line: Lines) -> Any:
    """The master workbook's Performance sheet: by region, then by channel."""
    from sheet_templates.master_workbook import Table, ValuesSheet

    cur = view.schema.config.reporting_currency
    tables = []
    for dims, title in ((["region"], "By region"), (["channel"], "By channel")):
        header, kinds, rows = table(view, per_line, dims)
        tables.append(Table(title, header, kinds, rows))
    note = (
        f"What the spend bought ({cur}; results from the CRM imports in force, blank where none covers the period; "
        "unit costs and ratios over the months the results cover)"
    )
    return ValuesSheet("Performance", note, tables)
