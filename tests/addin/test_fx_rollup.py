"""Exact money: FX conversion of integer cents and rollups whose totals are the sum of their lines.

Expected values are computed here with `decimal` (ROUND_HALF_UP rounds half away from zero,
as a spreadsheet's ROUND does) and plain Python loops over the generated lines.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addin.fx import UnknownCurrency, convert_cents, scale_cents
from addin.rollup import Period, RollupError, rollup
from sheet_templates import PlanSchema, build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.errors import PlansheetError
from sheet_templates.schema import ColumnType, Role

SCHEMA: PlanSchema = build_schema(load_config(default_config_path()))
RATES = SCHEMA.config.plan_rates
INT64_MAX = 2**63 - 1
MEASURES = ("planned", "committed", "actual", "leads", "mqls", "pipeline", "revenue")


def exact(cents: int, rate: Decimal) -> int:
    """cents x rate rounded to a whole cent, half away from zero, with enough precision for any int64."""
    with decimal.localcontext() as ctx:
        ctx.prec = 120
        return int((Decimal(cents) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- scale_cents and convert_cents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "cents", "expected"),
    [
        ("1.08", [100, 12345, -12345, 0], [108, 13333, -13333, 0]),  # 133.326 -> 133.33
        ("1.27", [50, -50, 100050], [64, -64, 127064]),  # 63.5 and 127063.5: halves go away from zero
        ("0.5", [1, 3, -1, -3, 2], [1, 2, -1, -2, 1]),
        ("0.125", [4, 12, -12, 20], [1, 2, -2, 3]),  # 0.5, 1.5, -1.5, 2.5
        ("0.0067", [150_000_000, 7463, 7462], [1_005_000, 50, 50]),  # 50.0021 and 49.9954
        ("1", [123, -4], [123, -4]),
        ("3", [5, -7], [15, -21]),
    ],
)
def test_scale_cents_rounds_each_value_half_away_from_zero(rate: str, cents: list[int], expected: list[int]) -> None:
    assert [exact(c, Decimal(rate)) for c in cents] == expected  # the table itself is checked with decimal
    result = scale_cents(np.array(cents, dtype=np.int64), Decimal(rate))
    assert result.dtype == np.int64
    assert result.tolist() == expected


def test_scale_cents_falls_back_to_python_integers_where_int64_would_overflow() -> None:
    rate = Decimal("1.2345678901234567")  # a rate with many digits: its numerator alone is about 1.2e16
    cents = np.array([10**15, -(10**15), 1, 999_999_999_999_999], dtype=np.int64)  # up to 10 trillion
    numerator = int(rate.scaleb(16))
    assert 10**15 * numerator > INT64_MAX  # cents x numerator really does not fit in int64
    result = scale_cents(cents, rate)
    assert result.tolist() == [exact(int(c), rate) for c in cents]
    assert result.tolist()[:3] == [1_234_567_890_123_457, -1_234_567_890_123_457, 1]  # ...456.7 rounds up


@settings(max_examples=300, deadline=None)
@given(
    cents=st.lists(st.integers(-(10**17), 10**17), max_size=20),
    rate=st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal(50_000), places=10).map(
        lambda d: d.normalize()
    ),
)
def test_scale_cents_is_exact_for_any_amount_a_plan_holds(cents: list[int], rate: Decimal) -> None:
    """Any amount the reader accepts (|x| < 1e15, so 1e17 cents) at any rate with up to 10 decimals."""
    expected = [exact(c, rate) for c in cents]
    if any(abs(e) > INT64_MAX for e in expected):
        return  # cannot be held in int64 at all; see the overflow test below
    assert scale_cents(np.array(cents, dtype=np.int64), rate).tolist() == expected


def test_a_result_too_large_for_int64_is_refused_not_wrapped() -> None:
    cents = np.array([9 * 10**16], dtype=np.int64)  # 900 trillion: under the reader's 1e15 limit
    for rate in (Decimal("300.5"), Decimal(300)):
        assert exact(int(cents[0]), rate) > INT64_MAX
        with pytest.raises((OverflowError, PlansheetError)):
            scale_cents(cents, rate)


def test_a_rate_with_many_decimals_converts_zero_amounts() -> None:
    rate = Decimal("0.006712345678901234567")  # 21 decimals, as an FX feed may give
    assert scale_cents(np.array([5], dtype=np.int64), rate).tolist() == [exact(5, rate)]  # this one works
    # A quarter in which no line of that currency has spend:
    assert scale_cents(np.array([0, 0], dtype=np.int64), rate).tolist() == [0, 0]
    assert scale_cents(np.array([], dtype=np.int64), rate).tolist() == []


def test_convert_cents_uses_each_lines_currency() -> None:
    cents = np.array([100050, 100050, 100050, 100050, 0], dtype=np.int64)
    currencies = np.array(["USD", "EUR", "GBP", "JPY", "BRL"], dtype=object)
    result = convert_cents(cents, currencies, RATES)
    assert result.tolist() == [exact(int(c), RATES[code]) for c, code in zip(cents, currencies, strict=True)]
    assert result.tolist() == [100050, 108054, 127064, 670, 0]
    assert convert_cents(np.array([], dtype=np.int64), np.array([], dtype=object), RATES).tolist() == []


def test_convert_cents_refuses_a_currency_without_a_rate() -> None:
    with pytest.raises(UnknownCurrency, match=r"no rate for currency 'CHF'; known: USD, EUR, GBP, JPY, BRL"):
        convert_cents(np.array([100, 200]), np.array(["EUR", "CHF"], dtype=object), RATES)
    assert issubclass(UnknownCurrency, PlansheetError)


# --- rollups --------------------------------------------------------------------------------------------

DIMENSIONS = SCHEMA.dimension_names
MONTHS = [c.name for c in SCHEMA.month_columns]
VALUES: dict[str, list[str]] = {
    "region": list(SCHEMA.config.regions),
    "business_unit": list(SCHEMA.config.business_units),
    "team": ["Field Marketing", "Digital"],
    "campaign": ["Data Week", "AI Roadshow", "Brand Refresh"],
    "campaign_code": ["EM27-1042", ""],
    "crm_campaign_id": ["7015e00000AbCdE", ""],
    "channel": list(SCHEMA.config.channels),
    "activity": ["Booth", "Webinar series", ""],
    "owner": ["kim@example.com", "sam@example.com"],
    "currency": list(RATES),
    "status": list(SCHEMA.config.statuses),
}
AMOUNT = st.one_of(st.just(0), st.integers(0, 10**11), st.sampled_from([1, 50, 99, 100050]))


@st.composite
def plan_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    lines = []
    for _ in range(draw(st.integers(0, 15))):
        line: dict[str, Any] = {name: draw(st.sampled_from(VALUES[name])) for name in DIMENSIONS}
        for name in (*MONTHS, "committed", "actual", "leads", "mqls", "pipeline", "revenue"):
            line[name] = draw(AMOUNT)
        lines.append(line)
    return lines


def as_table(lines: list[dict[str, Any]]) -> pd.DataFrame:
    """The typed plan table the reader would produce for `lines`."""
    table = {"_row": np.arange(2, 2 + len(lines), dtype=np.int64)}
    for col in SCHEMA.input_columns:
        if col.type in (ColumnType.MONEY, ColumnType.COUNT):
            table[col.name] = np.array([ln.get(col.name, 0) for ln in lines], dtype=np.int64)
        elif col.type is ColumnType.DATE:
            table[col.name] = np.full(len(lines), np.datetime64("NaT", "s"))
        else:
            table[col.name] = np.array([ln.get(col.name, "") for ln in lines], dtype=object)
    return pd.DataFrame(table)


def line_periods(line: dict[str, Any], period: str, measure: str, rate: Any = None) -> dict[str, int]:
    """One line's cents per period label, in its own currency (or each month converted at `rate`, then summed)."""
    if measure != "planned":
        return {"total": line[measure]}
    months = [line[m] if rate is None else exact(line[m], rate) for m in MONTHS]
    if period == "month":
        return dict(zip(MONTHS, months, strict=True))
    if period == "quarter":
        return {f"Q{q + 1}": sum(months[3 * q : 3 * q + 3]) for q in range(4)}
    return {SCHEMA.calendar.label: sum(months)}


def expected_rollup(
    lines: list[dict[str, Any]], by: list[str], period: str, measure: str, reporting: bool
) -> dict[tuple[Any, ...], int]:
    money = measure == "planned" or SCHEMA[measure].type is ColumnType.MONEY
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    for line in lines:
        rate = RATES[line["currency"]] if money and reporting else None
        if measure == "planned":  # the money grain: each line's each month converted on its own, then summed
            periods = line_periods(line, period, measure, rate)
        else:
            periods = {k: v if rate is None else exact(v, rate) for k, v in line_periods(line, period, measure).items()}
        for label, cents in periods.items():
            out[(*(line[d] for d in by), label)] += cents
    return dict(out)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=plan_lines(),
    by=st.lists(st.sampled_from(DIMENSIONS), unique=True, max_size=4),
    period=st.sampled_from(list(Period)),
    measure=st.sampled_from(MEASURES),
    reporting=st.booleans(),
)
def test_a_rollup_is_the_sum_of_its_lines_for_any_grouping_grain_and_measure(
    lines: list[dict[str, Any]], by: list[str], period: Period, measure: str, reporting: bool
) -> None:
    result = rollup(as_table(lines), SCHEMA, by=by, period=period, measure=measure, reporting=reporting)

    assert list(result.columns) == [*by, "period", "cents"]
    assert result["cents"].dtype == np.int64
    got = {tuple(row[:-1]): int(row[-1]) for row in result.itertuples(index=False)}
    assert len(got) == len(result)  # one row per group and period
    expected = expected_rollup(lines, by, str(period), measure, reporting)
    if lines:
        assert got == expected
    else:
        assert sum(got.values()) == 0
    # the grand total, whatever the grouping, is the sum of the lines
    grand = sum(expected.values())
    assert int(result["cents"].sum()) == grand
    if not reporting:  # without conversion nothing is rounded, so the grain does not matter either
        assert grand == sum(sum(line_periods(ln, "year", measure).values()) for ln in lines)


@settings(max_examples=30, deadline=None)
@given(lines=plan_lines().filter(bool), by=st.lists(st.sampled_from(DIMENSIONS), unique=True, min_size=1, max_size=3))
def test_period_totals_do_not_depend_on_the_grouping(lines: list[dict[str, Any]], by: list[str]) -> None:
    table = as_table(lines)
    overall = rollup(table, SCHEMA, by=[], period="month")
    grouped = rollup(table, SCHEMA, by=by, period="month").groupby("period", sort=False)["cents"].sum()
    assert overall["period"].tolist() == MONTHS  # periods in fiscal order
    assert grouped.reindex(MONTHS).tolist() == overall["cents"].tolist()


def test_rollup_labels_and_order_follow_the_fiscal_calendar() -> None:
    lines = [
        {**{d: VALUES[d][0] for d in DIMENSIONS}, **dict.fromkeys(MONTHS, 0), "channel": ch, "currency": "USD"}
        | {"m02": 100, "m12": 250, "committed": 0, "actual": 0, "leads": 0, "mqls": 0, "pipeline": 0, "revenue": 0}
        for ch in ("Webinars", "Events")
    ]
    result = rollup(as_table(lines), SCHEMA, by=["channel"], period="quarter")
    assert result.values.tolist() == [
        ["Events", "Q1", 100],
        ["Events", "Q2", 0],
        ["Events", "Q3", 0],
        ["Events", "Q4", 250],
        ["Webinars", "Q1", 100],
        ["Webinars", "Q2", 0],
        ["Webinars", "Q3", 0],
        ["Webinars", "Q4", 250],
    ]
    year = rollup(as_table(lines), SCHEMA, by=[], period="year")
    assert year.values.tolist() == [["FY2027", 700]]


@pytest.mark.parametrize("by", [["country"], ["region", "country"], ["m01"], ["notes"]])
def test_rollup_by_something_that_is_not_a_dimension_says_what_is(by: list[str]) -> None:
    with pytest.raises(RollupError) as caught:
        rollup(as_table([]), SCHEMA, by=by)
    message = str(caught.value)
    assert f"cannot roll up by {by[-1]}" in message
    assert f"use any of {', '.join(DIMENSIONS)}" in message
    assert isinstance(caught.value, PlansheetError)


def test_rollup_of_an_unknown_measure_says_which_exist() -> None:
    with pytest.raises(RollupError, match="unknown measure 'budget'; use planned, committed, actual or a KPI"):
        rollup(as_table([]), SCHEMA, measure="budget")
    with pytest.raises(RollupError, match="unknown measure 'm01'"):
        rollup(as_table([]), SCHEMA, measure="m01")  # a month is a period of the planned measure, not a measure


def test_rollup_by_an_unknown_period_is_a_rollup_error() -> None:
    with pytest.raises(RollupError, match="week"):
        rollup(as_table([]), SCHEMA, period="week")


def test_roles_used_here_match_the_schema() -> None:
    """The generator above covers every dimension and measure the schema has."""
    assert set(VALUES) == set(DIMENSIONS)
    kpis = {c.name for c in SCHEMA.columns if c.role in (Role.KPI, Role.SPEND)}
    assert kpis == set(MEASURES) - {"planned"}
