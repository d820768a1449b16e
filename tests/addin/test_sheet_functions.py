"""What a finance user checks in the PS_ functions' answers, against expectations computed here.

The functions are called through the registry with values as a spreadsheet passes them (rows,
None for blanks, floats for every number, datetimes for dates). Every expected number is
computed independently in this file, with `decimal`/`fractions` and plain loops over the sample
lines and the rates read straight from the bundled TOML: money converts per line and per
period and rounds half away from zero to the cent (Decimal's ROUND_HALF_UP), as the template's
ROUND formulas do.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import tomllib
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addin.sheet_functions import REGISTRY
from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.samples import sample_lines

SCHEMA = build_schema(load_config(default_config_path()))
TOML = tomllib.loads(default_config_path().read_text(encoding="utf-8"))
PLAN_RATES = {code: Decimal(rate) for code, rate in TOML["currencies"]["plan_rates"].items()}
PERIOD_RATES = {
    code: {month: Decimal(rate) for month, rate in months.items()}
    for code, months in TOML["currencies"]["period_rates"].items()
}
TARGETS = TOML["targets"]
# FY2027 starts in February 2026 and is named for the year it ends in.
FISCAL_MONTHS = [(2026 + (1 + i) // 12, (1 + i) % 12 + 1) for i in range(12)]
MONTH_NAMES = [f"m{i:02d}" for i in range(1, 13)]
MONTH_LABELS = [f"{calendar.month_abbr[m]} {y}" for y, m in FISCAL_MONTHS]
MONTH_ENDS = [dt.date(y, m, calendar.monthrange(y, m)[1]) for y, m in FISCAL_MONTHS]
QUARTER_OF = {name: f"Q{i // 3 + 1}" for i, name in enumerate(MONTH_NAMES)}
FY_START, FY_END = dt.date(2026, 2, 1), dt.date(2027, 1, 31)
HEADER = [c.label for c in SCHEMA.columns]
INPUT_COLUMNS = [c for c in SCHEMA.columns if c.is_input]
FLAG_SWAP = {"favourable": "unfavourable", "unfavourable": "favourable", "on plan": "on plan"}


def call(name: str, *args: Any) -> Any:
    result = REGISTRY[name].call(*args)
    assert not isinstance(result, str), result
    return result


def error_text(name: str, *args: Any) -> str:
    result = REGISTRY[name].call(*args)
    assert not isinstance(result, list), f"expected an error, got {result!r}"
    return str(result)


def round_cents(value: Decimal | Fraction) -> int:
    """A money value in cents rounded half away from zero (Decimal's ROUND_HALF_UP is away from zero)."""
    if isinstance(value, Fraction):  # exactly: the sign times floor(|value| + 1/2)
        return (1 if value >= 0 else -1) * math.floor(abs(value) + Fraction(1, 2))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_cents(amount: Decimal | float | None) -> int:
    if amount is None:
        return 0
    return int((Decimal(str(amount)) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def money_cents(value: float) -> int:
    """A money cell of a result, in cents (results carry amounts as floats with two decimals)."""
    return round(value * 100)


def host_value(value: Any) -> Any:
    """A cell as a spreadsheet hands it to a function: floats for every number, datetimes for dates."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return value


def plan_rows(lines: list[dict[str, Any]], header: bool = True) -> list[list[Any]]:
    """The Plan table's input columns as host values, with or without its header row."""
    rows = [[host_value(line.get(c.name)) for c in INPUT_COLUMNS] for line in lines]
    return [[c.label for c in INPUT_COLUMNS], *rows] if header else rows


def line_months(line: dict[str, Any]) -> list[int]:
    return [to_cents(line.get(name)) for name in MONTH_NAMES]


def period_cents(line: dict[str, Any], grain: str) -> dict[str, int]:
    """A line's planned REPORTING cents per period label: each month converted to the cent, then summed."""
    months = [reporting(cents, line["currency"]) for cents in line_months(line)]
    if grain == "month":
        return dict(zip(MONTH_LABELS, months, strict=True))
    if grain == "quarter":
        out: dict[str, int] = defaultdict(int)
        for name, cents in zip(MONTH_NAMES, months, strict=True):
            out[QUARTER_OF[name]] += cents
        return dict(out)
    return {"FY2027": sum(months)}


def reporting(cents: int, currency: str) -> int:
    return round_cents(Decimal(cents) * PLAN_RATES[currency])


LINES = (
    sample_lines(SCHEMA, "EMEA", 12, seed=11)
    + sample_lines(SCHEMA, "NA", 10, seed=11)
    + sample_lines(SCHEMA, "LATAM", 6, seed=11)
)
PLAN = plan_rows(LINES)


def test_the_sample_plan_mixes_currencies_and_channels() -> None:
    assert {line["currency"] for line in LINES} == {"EUR", "USD", "BRL"}
    assert len({line["channel"] for line in LINES}) >= 4


# --- PS_ROLLUP ---------------------------------------------------------------------------------------------------


def test_rollup_by_channel_and_quarter_is_the_sum_of_lines_converted_per_line_per_month() -> None:
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for line in LINES:
        for quarter, cents in period_cents(line, "quarter").items():
            expected[line["channel"], quarter] += cents
    result = call("PS_ROLLUP", PLAN, "channel", "quarter")
    assert result[0] == ["Channel", "Q1", "Q2", "Q3", "Q4", "Total"]
    assert [row[0] for row in result[1:]] == sorted({line["channel"] for line in LINES})
    for channel, *amounts, total in result[1:]:
        assert [money_cents(a) for a in amounts] == [expected[channel, q] for q in ("Q1", "Q2", "Q3", "Q4")]
        assert money_cents(total) == sum(expected[channel, q] for q in ("Q1", "Q2", "Q3", "Q4"))


def test_rollup_defaults_are_channel_quarter_planned() -> None:
    assert call("PS_ROLLUP", PLAN) == call("PS_ROLLUP", PLAN, "channel", "quarter", "planned")


def test_rollup_by_region_and_channel_for_the_year() -> None:
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for line in LINES:
        expected[line["region"], line["channel"]] += period_cents(line, "year")["FY2027"]
    result = call("PS_ROLLUP", PLAN, "Region, Channel", "year")
    assert result[0] == ["Region", "Channel", "FY2027"]  # one period: no Total column
    assert {(r, c): money_cents(v) for r, c, v in result[1:]} == dict(expected)
    assert [tuple(row[:2]) for row in result[1:]] == sorted(expected)


def test_rollup_by_month_labels_the_fiscal_months() -> None:
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for line in LINES:
        for label, cents in period_cents(line, "month").items():
            expected[line["region"], label] += cents
    result = call("PS_ROLLUP", PLAN, "region", "month")
    assert result[0] == ["Region", *MONTH_LABELS, "Total"]
    assert result[0][1] == "Feb 2026" and result[0][12] == "Jan 2027"
    for region, *amounts, total in result[1:]:
        assert [money_cents(a) for a in amounts] == [expected[region, label] for label in MONTH_LABELS]
        assert money_cents(total) == sum(money_cents(a) for a in amounts)


def test_rollup_of_leads_counts_without_conversion() -> None:
    expected: dict[str, int] = defaultdict(int)
    for line in LINES:
        expected[line["channel"]] += line["leads"]
    result = call("PS_ROLLUP", PLAN, "channel", "quarter", "leads")
    assert result[0] == ["Channel", "Total"]  # leads belong to a line, not to a month
    assert {channel: value for channel, value in result[1:]} == dict(expected)
    assert all(isinstance(value, int) for _, value in result[1:])


def test_rollup_of_committed_spend_converts_each_line() -> None:
    expected: dict[str, int] = defaultdict(int)
    for line in LINES:
        expected[line["region"]] += reporting(to_cents(line["committed"]), line["currency"])
    result = call("PS_ROLLUP", PLAN, "region", None, "Committed")
    assert result[0] == ["Region", "Total"]
    assert {region: money_cents(v) for region, v in result[1:]} == dict(expected)


def rollup_line(currency: str, month_amount: float, channel: str = "Events", n: int = 1) -> dict[str, Any]:
    return {
        "line_id": f"X-{n}",
        "region": "APAC",
        "business_unit": "SMB",
        "team": "Digital",
        "campaign": "Test",
        "channel": channel,
        "owner": "a@example.com",
        "currency": currency,
        "status": "Planned",
        "m01": month_amount,
    }


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("JPY", 150.00, 1.01),  # 15000 x 0.0067 = 100.5 cents: half away from zero, not to even (1.00)
        ("JPY", -150.00, -1.01),
        ("GBP", 0.50, 0.64),  # 63.5 cents
        ("GBP", -0.50, -0.64),
        ("EUR", 0.25, 0.27),  # 27.0 cents exactly
    ],
)
def test_rollup_rounds_each_converted_line_half_away_from_zero(currency: str, amount: float, expected: float) -> None:
    result = call("PS_ROLLUP", plan_rows([rollup_line(currency, amount)]), "channel", "quarter")
    assert result[1] == ["Events", expected, 0.0, 0.0, 0.0, expected]


def test_rollup_sums_lines_converted_one_by_one_not_the_converted_sum() -> None:
    # Two lines of 150.00 JPY: each converts to 1.01 USD, so the total is 2.02, not round(3.00 JPY-units x rate) = 2.01.
    lines = [rollup_line("JPY", 150.00, n=1), rollup_line("JPY", 150.00, n=2)]
    assert call("PS_ROLLUP", plan_rows(lines), "channel", "year")[1] == ["Events", 2.02]


def test_rollup_of_an_empty_plan_keeps_its_period_columns() -> None:
    assert call("PS_ROLLUP", plan_rows([]), "channel", "quarter") == [["Channel", "Q1", "Q2", "Q3", "Q4", "Total"]]


# A small vocabulary, so groups collide; negative amounts are invalid in a plan but must still add up.
DIMENSIONS = {
    "region": ["NA", "EMEA", "APAC"],
    "business_unit": ["Enterprise", "SMB"],
    "channel": ["Events", "Email", "ABM"],
    "currency": sorted(PLAN_RATES),
    "status": ["Planned", "Committed"],
    "activity": ["", "Booth", "Nurture"],
}
CENTS = st.one_of(st.just(0), st.integers(-(10**9), 10**9))
HYPO_LINE = st.fixed_dictionaries(
    {
        **{name: st.sampled_from(values) for name, values in DIMENSIONS.items()},
        "months": st.lists(st.one_of(st.none(), CENTS), min_size=12, max_size=12),
        "committed": CENTS,
        "actual": CENTS,
        "leads": st.integers(0, 10**6),
    }
)


def hypothesis_plan(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, spec in enumerate(lines):
        line: dict[str, Any] = {
            "line_id": f"H-{i + 1:04d}",
            "team": "Digital",
            "campaign": "Property",
            "owner": "p@example.com",
            **{name: spec[name] or None for name in DIMENSIONS},
            "committed": Decimal(spec["committed"]) / 100,
            "actual": Decimal(spec["actual"]) / 100,
            "leads": spec["leads"],
        }
        for name, cents in zip(MONTH_NAMES, spec["months"], strict=True):
            line[name] = None if cents is None else Decimal(cents) / 100
        out.append(line)
    return out


def expected_rollup(lines: list[dict[str, Any]], by: list[str], grain: str, measure: str) -> dict[tuple, dict]:
    """Expected cells by group key and period label, computed line by line."""
    out: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in lines:
        key = tuple(line.get(d) or "" for d in by)
        if measure == "planned":
            for label, cents in period_cents(line, grain).items():
                out[key][label] += cents
        elif measure == "leads":
            out[key]["Total"] += line["leads"]
        else:
            out[key]["Total"] += reporting(to_cents(line[measure]), line["currency"])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(HYPO_LINE, min_size=1, max_size=8),
    by=st.lists(st.sampled_from(sorted(DIMENSIONS)), min_size=1, max_size=3, unique=True),
    grain=st.sampled_from(["month", "quarter", "year"]),
    measure=st.sampled_from(["planned", "planned", "planned", "committed", "actual", "leads"]),
)
def test_property_rollup_grand_total_is_the_sum_of_lines(
    specs: list[dict[str, Any]], by: list[str], grain: str, measure: str
) -> None:
    lines = hypothesis_plan(specs)
    result = call("PS_ROLLUP", plan_rows(lines), ",".join(by), grain, measure)
    expected = expected_rollup(lines, by, grain, measure)
    if measure == "leads":  # a count needs no currency: a line blank in the dimensions with no leads is an empty row
        expected = {k: v for k, v in expected.items() if any(k) or any(v.values())}
    header, rows = result[0], result[1:]
    n = len(by)
    assert header[:n] == [SCHEMA[d].label for d in by]
    periods = header[n:]
    has_total_column = periods[-1] == "Total" and len(periods) > 1
    if has_total_column:
        periods = periods[:-1]
    assert len(periods) == ({"month": 12, "quarter": 4, "year": 1}[grain] if measure == "planned" else 1)
    assert {tuple(row[:n]) for row in rows} == set(expected)

    def cell(value: float | int) -> int:
        return value if measure == "leads" else money_cents(value)

    grand = sum(sum(by_period.values()) for by_period in expected.values())
    assert sum(cell(v) for row in rows for v in row[n : n + len(periods)]) == grand
    for row in rows:
        by_period = expected[tuple(row[:n])]
        assert [cell(v) for v in row[n : n + len(periods)]] == [by_period.get(p, 0) for p in periods]
    if has_total_column:
        assert sum(cell(row[-1]) for row in rows) == grand  # the Total column adds up to the grand total too
        assert all(cell(row[-1]) == sum(cell(v) for v in row[n:-1]) for row in rows)


# --- PS_VALIDATE -------------------------------------------------------------------------------------------------


def bad_lines() -> list[dict[str, Any]]:
    lines = [dict(line) for line in LINES[:5]]
    lines[1]["channel"] = "Radio"
    lines[3]["end_date"] = dt.date(2026, 2, 15)
    lines[3]["start_date"] = dt.date(2026, 3, 1)
    lines[4]["actual"] = Decimal("-25.00")
    return lines


def test_validate_returns_one_message_per_row_aligned_with_the_header() -> None:
    result = call("PS_VALIDATE", plan_rows(bad_lines()))
    assert len(result) == 6 and all(len(row) == 1 for row in result)
    assert result[0] == ["Validation"]
    messages = [row[0] for row in result[1:]]
    assert messages[0] == messages[2] == ""
    assert '"Radio" is not in the list' in messages[1] and "(cell.allowed_value)" in messages[1]
    assert "End date 2026-02-15 is before start date 2026-03-01" in messages[3]
    assert "(line.end_before_start)" in messages[3]
    assert "Actual spend is -25.00" in messages[4] and "(cell.negative)" in messages[4]


def test_validate_without_the_header_row_gives_the_same_messages() -> None:
    with_header = call("PS_VALIDATE", plan_rows(bad_lines()))
    without = call("PS_VALIDATE", plan_rows(bad_lines(), header=False))
    assert without == with_header[1:]


def test_validate_passes_every_sample_line() -> None:
    assert call("PS_VALIDATE", PLAN) == [["Validation"]] + [[""]] * len(LINES)


def test_validate_leaves_pre_numbered_empty_rows_blank() -> None:
    rows = plan_rows(LINES[:2])
    empty = [None] * len(INPUT_COLUMNS)
    empty[0], empty[1] = "EMEA-0099", "EMEA"
    assert call("PS_VALIDATE", [*rows, empty, [None] * len(INPUT_COLUMNS)]) == [["Validation"], [""], [""], [""], [""]]


# --- PS_VARIANCE, PS_VARIANCE_PCT, PS_REMAINING --------------------------------------------------------------------

PLANNED = [[1000.0], [1000.0], [0.0], [0.0], [250.5]]
ACTUAL = [[800.0], [1200.0], [50.0], [None], [250.5]]


def test_variance_amount_is_plan_minus_actual_so_under_spend_is_positive() -> None:
    assert call("PS_VARIANCE", PLANNED, ACTUAL) == [[200.0], [-200.0], [-50.0], [0.0], [0.0]]


def test_variance_flag_calls_under_spend_favourable_even_on_a_zero_plan() -> None:
    assert call("PS_VARIANCE", PLANNED, ACTUAL, "Flag") == [
        ["favourable"],
        ["unfavourable"],
        ["unfavourable"],  # nothing planned, 50 spent
        ["on plan"],
        ["on plan"],
    ]


def test_variance_percent_is_a_share_of_the_plan_and_blank_on_a_zero_plan() -> None:
    expected = [[0.2], [-0.2], [None], [None], [0.0]]
    assert call("PS_VARIANCE", PLANNED, ACTUAL, "percent") == expected
    assert call("PS_VARIANCE_PCT", PLANNED, ACTUAL) == expected


def test_variance_of_a_range_against_one_allocation_cell() -> None:
    assert call("PS_VARIANCE", [[5000.0]], [[1000.0, 6000.0]]) == [[4000.0, -1000.0]]


def test_remaining_is_allocation_minus_committed_minus_actual() -> None:
    allocation = [[1_200_000.0], [900_000.0]]
    committed = [[300_000.25], [None]]
    actual = [[450_000.5], [950_000.0]]
    assert call("PS_REMAINING", allocation, committed, actual) == [[449_999.25], [-50_000.0]]
    assert call("PS_REMAINING", 1_000_000.0, [[100.0], [200.0]], 50.0) == [[999_850.0], [999_750.0]]


CELL = st.one_of(st.none(), st.integers(-(10**11), 10**11).map(lambda cents: cents / 100))


@st.composite
def same_size_ranges(draw: st.DrawFn) -> tuple[list[list[Any]], list[list[Any]]]:
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    grid = st.lists(st.lists(CELL, min_size=cols, max_size=cols), min_size=rows, max_size=rows)
    return draw(grid), draw(grid)


@settings(max_examples=80, deadline=None)
@given(ranges=same_size_ranges())
def test_property_variance_is_antisymmetric_in_plan_and_actual(ranges: tuple[list, list]) -> None:
    plan, actual = ranges
    forward, backward = call("PS_VARIANCE", plan, actual), call("PS_VARIANCE", actual, plan)
    assert forward == [[-v for v in row] for row in backward]
    assert [[money_cents(v) for v in row] for row in forward] == [
        [to_cents(p) - to_cents(a) for p, a in zip(prow, arow, strict=True)]
        for prow, arow in zip(plan, actual, strict=True)
    ]
    flags, swapped = call("PS_VARIANCE", plan, actual, "flag"), call("PS_VARIANCE", actual, plan, "flag")
    assert flags == [[FLAG_SWAP[f] for f in row] for row in swapped]


# --- PS_FX -------------------------------------------------------------------------------------------------------


def test_fx_uses_the_period_rate_and_the_plan_rate_for_a_blank_period() -> None:
    amounts, currencies = [[1000.0], [0.20], [-0.20]], [["EUR"], ["EUR"], ["eur"]]
    # EUR m02 (Mar 2026) = 1.075: 0.20 EUR is 21.5 cents, rounded away from zero
    assert call("PS_FX", amounts, currencies, "m02") == [[1075.0], [0.22], [-0.22]]
    assert call("PS_FX", amounts, currencies, "Mar 2026") == [[1075.0], [0.22], [-0.22]]
    assert call("PS_FX", amounts, currencies, dt.datetime(2026, 3, 15)) == [[1075.0], [0.22], [-0.22]]
    assert call("PS_FX", amounts, currencies) == [[1080.0], [0.22], [-0.22]]  # plan rate 1.08: 21.6 cents


def test_fx_months_without_a_period_rate_use_the_plan_rate() -> None:
    assert "m09" not in PERIOD_RATES["EUR"]
    assert call("PS_FX", 1000.0, "EUR", "m09") == [[1080.0]]


def test_fx_converts_to_another_currency_through_the_cross_rate() -> None:
    # 1000 EUR in GBP at m02: 100000 x 1.075 / 1.268 = 84779.18 cents; at m05 GBP has no period rate (plan 1.27)
    assert call("PS_FX", 1000.0, "EUR", "m02", "GBP") == [[847.79]]
    assert call("PS_FX", 1000.0, "EUR", "m05", "gbp") == [[round_cents(Fraction("108800") / Fraction("1.27")) / 100]]
    assert call("PS_FX", [[1000.0], [500.0]], [["EUR"], ["USD"]], [["m01"], [None]], "EUR") == [
        [1000.0],
        [round_cents(Fraction(50000) / Fraction("1.08")) / 100],
    ]


def test_fx_per_cell_periods_beside_the_amounts() -> None:
    periods = [["m01"], ["m02"], ["m03"], [None]]
    rates = [PERIOD_RATES["GBP"]["m01"], PERIOD_RATES["GBP"]["m02"], PERIOD_RATES["GBP"]["m03"], PLAN_RATES["GBP"]]
    result = call("PS_FX", [[100.01]] * 4, "GBP", periods)
    assert [money_cents(row[0]) for row in result] == [round_cents(10001 * r) for r in rates]


def test_fx_blank_currency_is_fine_for_a_zero_amount_only() -> None:
    assert call("PS_FX", [[0.0], [100.0]], [[None], ["USD"]]) == [[0.0], [100.0]]
    assert error_text("PS_FX", [[5.0], [100.0]], [[None], ["USD"]]) == "#VALUE! currency: an amount has no currency"


def test_fx_unknown_currency_names_the_known_ones() -> None:
    assert error_text("PS_FX", 10.0, "CHF") == "#VALUE! no rate for currency 'CHF'; known: USD, EUR, GBP, JPY, BRL"


def fx_bound(rate: Fraction) -> int:
    """How far a there-and-back conversion can land from the original, in cents.

    y = x·r + e1 and z = y/r + e2 with |e1|, |e2| <= 1/2 (each conversion rounds to a cent), so
    z - x = e1/r + e2 and |z - x| <= 1/2 + 1/(2r); z - x is a whole number of cents, so the bound
    is floor(1/2 + 1/(2r)): 0 when converting into a smaller unit (USD -> JPY -> USD), 1 cent
    between EUR, GBP and USD, and up to 75 JPY cents for JPY -> USD -> JPY.
    """
    return math.floor(Fraction(1, 2) + 1 / (2 * rate))


def rate_in(code: str, month: str | None) -> Fraction:
    return Fraction(PERIOD_RATES.get(code, {}).get(month) or PLAN_RATES[code]) if month else Fraction(PLAN_RATES[code])


@settings(max_examples=80, deadline=None)
@given(
    cents=st.lists(st.integers(-(10**10), 10**10), min_size=1, max_size=6),
    source=st.sampled_from(sorted(PLAN_RATES)),
    target=st.sampled_from(sorted(PLAN_RATES)),
    month=st.sampled_from([None, *MONTH_NAMES]),
)
def test_property_fx_round_trips_within_the_rounding_bound(
    cents: list[int], source: str, target: str, month: str | None
) -> None:
    amounts = [[c / 100] for c in cents]
    there = call("PS_FX", amounts, source, month, target)
    back = call("PS_FX", there, target, month, source)
    rate = rate_in(source, month) / rate_in(target, month)
    assert [money_cents(row[0]) for row in there] == [round_cents(c * rate) for c in cents]
    for original, row in zip(cents, back, strict=True):
        assert abs(money_cents(row[0]) - original) <= fx_bound(rate)


# --- PS_FORECAST, PS_PACING --------------------------------------------------------------------------------------


def expected_forecast(line: dict[str, Any], as_of: dt.date, method: str) -> int:
    closed = sum(1 for end in MONTH_ENDS if end < as_of)
    months, actual = line_months(line), to_cents(line["actual"])
    if method == "phasing":
        return actual + sum(months[closed:])
    if closed == 0:
        return sum(months)
    return round_cents(Fraction(actual * 12, closed))


@pytest.mark.parametrize(
    ("as_of", "closed"),
    [
        (dt.date(2026, 7, 15), 5),  # Feb..Jun have ended
        (dt.date(2026, 6, 30), 4),  # the last day of June: June is not closed yet
        (dt.date(2026, 7, 1), 5),
        (dt.date(2026, 1, 10), 0),  # before the fiscal year
        (dt.date(2027, 3, 1), 12),  # after it
    ],
)
@pytest.mark.parametrize("method", ["phasing", "run_rate"])
def test_forecast_per_line_for_an_as_of_date(as_of: dt.date, closed: int, method: str) -> None:
    assert sum(1 for end in MONTH_ENDS if end < as_of) == closed
    result = call("PS_FORECAST", PLAN, method, dt.datetime.combine(as_of, dt.time()))
    assert result[0] == [f"Forecast ({method.replace('_', ' ')})"]
    assert [money_cents(row[0]) for row in result[1:]] == [expected_forecast(line, as_of, method) for line in LINES]


def test_forecast_after_the_year_is_the_actual_spend() -> None:
    result = call("PS_FORECAST", plan_rows(LINES, header=False), "run rate", "2027-03-01")
    assert [money_cents(row[0]) for row in result] == [to_cents(line["actual"]) for line in LINES]


def test_forecast_rejects_an_unknown_method() -> None:
    assert error_text("PS_FORECAST", PLAN, "magic") == '#VALUE! method must be "phasing" or "run_rate"'


def elapsed(as_of: dt.date) -> Fraction:
    days = (FY_END - FY_START).days + 1
    passed = (min(max(as_of, FY_START - dt.timedelta(days=1)), FY_END) - FY_START).days + 1
    return Fraction(passed, days)


@pytest.mark.parametrize(
    ("as_of", "fraction"),
    [
        (dt.date(2026, 2, 1), Fraction(1, 365)),
        (dt.date(2026, 8, 1), Fraction(182, 365)),  # Feb..Jul (181 days) and August 1st
        (dt.date(2027, 1, 31), Fraction(1)),
        (dt.date(2027, 6, 1), Fraction(1)),
    ],
)
def test_pacing_is_spend_share_over_time_share(as_of: dt.date, fraction: Fraction) -> None:
    assert elapsed(as_of) == fraction
    actual, planned = [[500.0], [0.0], [120.0], [30.0]], [[1000.0], [1000.0], [0.0], [None]]
    result = call("PS_PACING", actual, planned, dt.datetime.combine(as_of, dt.time()))
    assert result[0][0] == pytest.approx(float(Fraction(1, 2) / fraction), rel=1e-12)
    assert result[1] == [0.0]
    assert result[2] == [None] and result[3] == [None]  # nothing planned: no pace to speak of


def test_pacing_before_the_year_starts_is_blank() -> None:
    assert call("PS_PACING", [[500.0]], [[1000.0]], dt.datetime(2026, 1, 15)) == [[None]]


# --- PS_KPI ------------------------------------------------------------------------------------------------------


def kpi_rows(result: list[list[Any]]) -> dict[tuple, dict[str, Any]]:
    header = result[0]
    keys = [h for h in header if h in ("Region", "Channel", "Quarter")]
    return {tuple(row[: len(keys)]): dict(zip(header, row, strict=True)) for row in result[1:]}


def test_kpi_by_region_cost_per_lead_targets_and_gap() -> None:
    rows = kpi_rows(call("PS_KPI", PLAN, "region"))
    assert set(rows) == {("EMEA",), ("NA",), ("LATAM",)}
    for region in ("EMEA", "NA", "LATAM"):
        lines = [line for line in LINES if line["region"] == region]
        spend = sum(period_cents(line, "year")["FY2027"] for line in lines)
        leads = sum(line["leads"] for line in lines)
        mqls = sum(line["mqls"] for line in lines)
        pipeline = sum(reporting(to_cents(line["pipeline"]), line["currency"]) for line in lines)
        row = rows[region,]
        assert money_cents(row["Planned spend (USD)"]) == spend
        assert row["Expected leads"] == leads
        assert money_cents(row["Expected pipeline (USD)"]) == pipeline
        assert row["Cost per lead"] == pytest.approx(spend / 100 / leads, abs=5e-5)
        assert row["Cost per MQL"] == pytest.approx(spend / 100 / mqls, abs=5e-5)
        assert row["Pipeline per unit of spend"] == pytest.approx(pipeline / spend, abs=5e-5)
        targets = TARGETS.get(region)
        if targets is None:  # LATAM has no targets: not applicable, so blank
            assert row["Target leads"] is None and row["Gap to target leads"] is None
            assert row["Target revenue"] is None and row["Gap to target revenue"] is None
            continue
        target_leads = sum(targets[q]["leads"] for q in ("Q1", "Q2", "Q3", "Q4"))
        target_pipeline = sum(Decimal(targets[q]["pipeline"]) for q in ("Q1", "Q2", "Q3", "Q4"))
        assert row["Target leads"] == target_leads
        assert row["Gap to target leads"] == leads - target_leads
        assert row["Target pipeline"] == float(target_pipeline)
        assert row["Gap to target pipeline"] == pytest.approx(pipeline / 100 - float(target_pipeline), abs=0.01)


def test_kpi_emea_targets_add_up_the_four_quarters() -> None:
    row = kpi_rows(call("PS_KPI", PLAN, "region", "year"))["EMEA",]
    assert row["Target leads"] == 15000 + 16000 + 15000 + 17000
    assert row["Target MQLs"] == 4500 + 4800 + 4500 + 5100
    assert row["Target revenue"] == 9_000_000 + 9_500_000 + 9_000_000 + 10_000_000


def test_kpi_by_quarter_compares_each_quarter_with_its_target() -> None:
    rows = kpi_rows(call("PS_KPI", PLAN, "region", "quarter"))
    emea = [line for line in LINES if line["region"] == "EMEA"]
    for quarter in ("Q1", "Q2", "Q3", "Q4"):
        # a line's leads follow its converted spend across the quarters
        leads = Fraction(0)
        for line in emea:
            by_quarter = period_cents(line, "quarter")
            total = sum(by_quarter.values())
            share = Fraction(by_quarter[quarter], total) if total else Fraction(1, 4)
            leads += line["leads"] * share
        row = rows["EMEA", quarter]
        assert row["Target leads"] == TARGETS["EMEA"][quarter]["leads"]
        assert row["Expected leads"] == pytest.approx(float(leads), abs=1e-4)
        assert row["Gap to target leads"] == pytest.approx(float(leads) - TARGETS["EMEA"][quarter]["leads"], abs=1e-4)


def test_kpi_by_channel_has_no_targets() -> None:
    result = call("PS_KPI", PLAN, "channel")
    header = result[0]
    target_columns = [i for i, h in enumerate(header) if h.startswith(("Target", "Gap to target"))]
    assert len(target_columns) == 8
    assert all(row[i] is None for row in result[1:] for i in target_columns)
    assert all(isinstance(row[header.index("Cost per lead")], float) for row in result[1:])


def test_kpi_ratios_are_blank_where_nothing_is_planned() -> None:
    line = {**rollup_line("USD", 0.0), "m01": None, "leads": 0, "mqls": 0, "committed": 10.0}
    row = kpi_rows(call("PS_KPI", plan_rows([line]), "region"))["APAC",]
    assert row["Planned spend (USD)"] == 0.0
    assert row["Cost per lead"] is None and row["Pipeline per unit of spend"] is None


def test_kpi_period_must_be_year_or_quarter() -> None:
    assert error_text("PS_KPI", PLAN, "region", "month") == "#VALUE! KPIs are by year or quarter"


# --- found in review: one tidying for every function, rounding, KPI periods, blank arguments ------------------------


def _variant(line: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**line, **changes}


def test_rollup_tidies_values_as_the_reader_does() -> None:
    base = [line for line in LINES if line["currency"] == "USD"][:3]
    messy = [
        _variant(base[0], channel="paid search", currency="usd"),
        _variant(base[1], channel="  Paid   Search "),
        _variant(base[2], channel="Paid Search"),
    ]
    rollup = call("PS_ROLLUP", plan_rows(messy), "channel", "year")
    assert [row[0] for row in rollup[1:]] == ["Paid Search"]
    assert rollup[1][1] == call("PS_KPI", plan_rows(messy), "channel")[1][1]  # the same planned spend
    rows = plan_rows(messy)
    rows[1][SCHEMA["channel"].index - 1] = "#N/A"  # a cell showing an error, as xlwings passes it with err_to_str
    assert "shows the error #N/A" in error_text("PS_ROLLUP", rows, "channel")


def test_half_cents_round_away_from_zero_in_cell_functions() -> None:
    assert call("PS_VARIANCE", [[0.125]], [[0.0]]) == [[0.13]]
    assert call("PS_FX", 1234.565, "USD") == [[1234.57]]  # typed 1234.565, stored as 1234.56499999...


def test_kpi_by_quarter_has_no_actual_spend_and_partial_targets_stay_blank() -> None:
    table = call("PS_KPI", PLAN, "region", "quarter")
    head = table[0]
    actual = head.index(f"Actual spend ({SCHEMA.config.reporting_currency})")
    assert all(row[actual] is None for row in table[1:])
    year = call("PS_KPI", PLAN, "region")
    target = year[0].index("Target leads")
    by_region = {row[0]: row for row in year[1:]}
    assert by_region["LATAM"][target] is None  # no targets configured for LATAM


def test_a_line_still_being_filled_does_not_break_kpis() -> None:
    half = {"line_id": "EMEA-0999", "region": "EMEA", "channel": "Events"}  # no currency, no amounts yet
    assert call("PS_KPI", plan_rows([LINES[0], half]), "region")[1][0] == "EMEA"


def test_a_blank_required_argument_is_a_cell_error() -> None:
    assert error_text("PS_VARIANCE", None, 5.0) == "#VALUE! PS_VARIANCE: plan is required"


def test_a_range_without_header_that_does_not_start_at_line_id_is_refused() -> None:
    shifted = [row[1:] for row in plan_rows(LINES[:3], header=False)]
    assert "must start at the Line ID column" in error_text("PS_FORECAST", shifted)
    assert "must start at the Line ID column" in error_text("PS_ROLLUP", shifted)
