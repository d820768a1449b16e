"""The xlwings bindings, run through xlwings' own Windows UDF code on Linux (see xlwings_harness.py).

Two halves of what Excel does with `addin.udfs`: Import Functions writes a VBA module from the
UDFs' `__xlfunc__` records (checked here for every registry function), and each call goes
through `call_udf`, which cleans what COM passes (tuples of rows, None for blanks, floats for
every number, pywintypes datetimes, error codes such as -2146826246 for #N/A) and cleans the
result on its way back to the sheet. The plan comes from a real template built by the template
builder, filled with sample lines, read back with python-calamine and shaped as COM hands it over.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import xlwings
from python_calamine import CalamineWorkbook

import addin.udfs
from addin.live import catalog
from addin.udfs import bind_all
from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.excel_template import build_template
from sheet_templates.samples import sample_lines
from sheet_templates.schema import PLAN_SHEET, ColumnType
from tests.addin.issue_functions import ISSUE_NAMES
from tests.addin.xlwings_harness import (  # the fixture is imported so that pytest finds it
    MISSING,
    XL_ERRORS,
    call_like_excel,
    com_date,
    udfs,
    vba_for,
    xlwings_windows,  # noqa: F401
)

pytestmark = pytest.mark.usefixtures("xlwings_windows")

SCHEMA = build_schema(load_config(default_config_path()))
REGISTRY = catalog()  # every bound function: the pure ones, and the live ones that ask the service
NAMES = [f.name for f in REGISTRY]
COL = {c.name: c.index - 1 for c in SCHEMA.columns}
N_LINES, SPARE = 9, 3
NA = XL_ERRORS["#N/A"]

# MS-VBAL 3.3.5.2: an IDENTIFIER is any lex-identifier that is not a reserved identifier. These are
# the reserved identifiers a parameter name could plausibly collide with (statement and marker
# keywords, operators, literals and the built-in type names, which the spec lists as
# reserved-type-identifier).
VBA_RESERVED = frozenset(
    re.findall(
        r"\w+",
        """
        And As Boolean ByRef Byte ByVal Call Case Close Const Currency Date Declare Dim Do Double Each Else ElseIf
        Empty End Enum Eqv Erase Error Event Exit False For Friend Function Get Global GoSub GoTo If Imp Implements
        In Input Integer Is Let Like Lock Long LongLong LongPtr Loop LSet Me Mod New Next Not Nothing Null On Open
        Option Optional Or ParamArray Preserve Print Private Property Public Put RaiseEvent ReDim Rem Resume Return
        RSet Select Set Shared Single Static Step Stop String Sub Then To True Type TypeOf Unlock Until Variant Wend
        While With WithEvents Write Xor
        """.casefold(),
    )
)


# --- the plan as Excel passes it ---------------------------------------------------------------------------------


def excel_formula_values(row: list[Any]) -> None:
    """Fill the template's formula columns as Excel shows them (calamine sees no cached values)."""
    months = [Decimal(str(row[c.index - 1] or 0)) for c in SCHEMA.month_columns]
    total = sum(months, Decimal(0))
    row[COL["planned_total"]] = float(total)
    row[COL["variance"]] = float(total - Decimal(str(row[COL["actual"]] or 0)))
    rate = SCHEMA.config.plan_rates.get(row[COL["currency"]] or "")
    for q in range(1, 5):
        # =IFERROR(ROUND(m1*rate,2)+ROUND(m2*rate,2)+ROUND(m3*rate,2),0): each month to the cent, then summed
        value = Decimal(0)
        for m in months[3 * (q - 1) : 3 * q] if rate is not None else ():
            value += (m * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
        row[COL[f"q{q}_reporting"]] = float(value)


def com_value(value: Any) -> Any:
    """A cell as pywin32 hands it to xlwings: None for blank, a pywintypes time for a date."""
    if value == "":
        return None
    if isinstance(value, dt.date):
        return com_date(value.year, value.month, value.day)
    return value


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Any, ...], ...]:
    """The Plan table (header row and data rows) of a filled EMEA template, as COM passes the range."""
    lines = sample_lines(SCHEMA, "EMEA", N_LINES, seed=5)
    path = build_template(SCHEMA, "EMEA", tmp_path_factory.mktemp("udfs") / "plan-EMEA.xlsx", lines, SPARE)
    workbook = CalamineWorkbook.from_path(str(path))
    try:
        grid = workbook.get_sheet_by_name(PLAN_SHEET).to_python(skip_empty_area=False)
    finally:
        workbook.close()
    assert len(grid) == 1 + N_LINES + SPARE and len(grid[0]) == len(SCHEMA.columns)
    rows = [[com_value(v) for v in row] for row in grid]
    for row in rows[1:]:
        excel_formula_values(row)
    return tuple(tuple(row) for row in rows)


def with_cell(plan: tuple[tuple[Any, ...], ...], row: int, column: str, value: Any) -> tuple[tuple[Any, ...], ...]:
    rows = [list(r) for r in plan]
    rows[row][COL[column]] = value
    return tuple(tuple(r) for r in rows)


def column(plan: tuple[tuple[Any, ...], ...], name: str) -> tuple[tuple[Any], ...]:
    """A column of the data rows as COM passes a one-column range."""
    return tuple((row[COL[name]],) for row in plan[1:])


@pytest.fixture(scope="module")
def bound() -> dict[str, Callable[..., Any]]:
    return udfs()


def spills(result: Any) -> list[list[Any]]:
    """A result Excel can spill: a non-empty rectangle of rows, and no error in it."""
    assert isinstance(result, list) and result and all(isinstance(row, list) for row in result), result
    assert len({len(row) for row in result}) == 1, "rows of different lengths cannot spill"
    text = [v for row in result for v in row if isinstance(v, str)]
    assert not any(v.startswith(("#VALUE!", "#NUM!", "#N/A")) for v in text), text
    return result


def excel_error(result: Any, code: str = "#VALUE!") -> str:
    """A 1x1 result holding an Excel error code with a readable message, never a traceback."""
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    text = result[0][0]
    assert isinstance(text, str) and text.startswith(code + " "), text
    assert "Traceback" not in text and "internal error" not in text, text
    assert len(text) > len(code) + 10
    return text


# --- the VBA module xlwings imports into Excel ------------------------------------------------------------------


@pytest.fixture(scope="module")
def vba(bound: dict[str, Callable[..., Any]]) -> dict[str, tuple[str, str]]:
    text = vba_for(bound)
    blocks = re.findall(r"^Function (\w+)\(([^\n]*)\)\n(.*?)^End Function$", text, flags=re.M | re.S)
    assert len(blocks) == text.count("End Function")
    return {name: (signature, body) for name, signature, body in blocks}


def test_vba_module_has_every_registry_function_and_nothing_else(vba: dict[str, tuple[str, str]]) -> None:
    assert sorted(vba) == sorted(NAMES)
    assert set(ISSUE_NAMES) <= set(vba)


@pytest.mark.parametrize("name", NAMES)
def test_vba_wrapper_passes_the_registry_arguments_in_order(name: str, vba: dict[str, tuple[str, str]]) -> None:
    function = REGISTRY[name]
    signature, body = vba[name]
    assert signature == ", ".join(("Optional " if a.optional else "") + a.name for a in function.args)
    args = ", ".join(a.name for a in function.args)
    call = f'{name} = XLPy.CallUDF("addin.udfs", "{name}", Array({args}), ThisWorkbook, Application.Caller)'
    assert call in body
    assert ("Application.Volatile" in body) is function.volatile
    assert f"{name} = Err.Description" in body  # a failure in the COM call shows as text, not a VBA dialog


VBA_ARGS = [f.name for f in REGISTRY]


@pytest.mark.parametrize("name", VBA_ARGS)
def test_vba_parameter_names_are_vba_identifiers(name: str, vba: dict[str, tuple[str, str]]) -> None:
    params = [p.removeprefix("Optional ") for p in vba[name][0].split(", ")]
    for param in params:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,254}", param), param
        assert param.casefold() not in VBA_RESERVED, f"{param} is a VBA keyword"


# --- each UDF's xlwings record matches the registry ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_xlfunc_record_matches_the_registry(name: str, bound: dict[str, Callable[..., Any]]) -> None:
    function, info = REGISTRY[name], bound[name].__xlfunc__
    assert info["name"] == name and info["category"] == "Plansheet"
    assert info["volatile"] is function.volatile and info["sub"] is False and info["async_mode"] is None
    assert info["ret"]["doc"] == function.help
    assert [a["name"] for a in info["args"]] == [a.name for a in function.args]
    for arg, xl in zip(function.args, info["args"], strict=True):
        assert xl["doc"] == arg.help and xl["vararg"] is False and xl["vba"] is None
        assert xl["options"] == ({"ndim": 2, "err_to_str": True} if arg.shape == "matrix" else {"err_to_str": True})
        assert ("optional" in xl) is arg.optional  # what call_udf substitutes for an omitted argument
        if arg.optional:
            assert xl["optional"] is None


def test_the_bindings_use_xlwings_own_decorators_by_default(
    monkeypatch: pytest.MonkeyPatch, bound: dict[str, Callable[..., Any]]
) -> None:
    # On Windows xlwings.func/xlwings.arg are xlwings.udfs.xlfunc/xlarg; that is what bind() uses unless told otherwise.
    monkeypatch.setattr(xlwings, "func", xlwings.udfs.xlfunc)
    monkeypatch.setattr(xlwings, "arg", xlwings.udfs.xlarg)
    defaults = bind_all()
    assert {name: f.__xlfunc__ for name, f in defaults.items()} == {name: f.__xlfunc__ for name, f in bound.items()}
    assert vba_for(defaults) == vba_for(bound)


@pytest.mark.parametrize("name", NAMES)
def test_addin_udfs_exposes_each_function_by_its_excel_name(name: str) -> None:
    udf = getattr(addin.udfs, name)  # call_udf does getattr(module, "PS_...")
    assert name in addin.udfs.__all__
    params = inspect.signature(udf).parameters
    assert list(params) == [a.name for a in REGISTRY[name].args]
    assert [p.default for p in params.values() if p.default is not inspect.Parameter.empty] == [
        None for a in REGISTRY[name].args if a.optional
    ]
    assert udf.__doc__ == REGISTRY[name].help


# --- calls with what Excel passes -------------------------------------------------------------------------------


def test_validate_the_plan_with_its_header_row(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_VALIDATE"], plan))
    assert result == [["Validation"]] + [[""]] * (N_LINES + SPARE)  # pre-numbered empty rows stay blank


def test_validate_reports_the_bad_row_in_line(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    bad = with_cell(with_cell(plan, 3, "channel", "Radio"), 5, "start_date", com_date(2025, 12, 1))
    result = spills(call_like_excel(bound["PS_VALIDATE"], bad))
    assert len(result) == len(plan)
    messages = [row[0] for row in result[1:]]
    assert messages[2].startswith('Channel "Radio" is not in the list') and "(cell.allowed_value)" in messages[2]
    assert messages[4].startswith("Start date 2025-12-01 is outside FY2027")
    assert [i for i, m in enumerate(messages) if m] == [2, 4]
    without_header = spills(call_like_excel(bound["PS_VALIDATE"], bad[1:]))
    assert without_header == result[1:]


def test_validate_a_cell_showing_na(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_VALIDATE"], with_cell(plan, 2, "channel", NA)))
    assert "Channel shows the error #N/A; enter a value (cell.type)" in result[2][0]


def summary_by_channel(plan: Any) -> dict[str, list[Decimal]]:
    """What the template's Summary sheet shows: SUMIFS of the Qn planned (USD) columns by channel."""
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in plan[1:]:
        if row[COL["channel"]]:
            for q in range(4):
                out[row[COL["channel"]]][q] += Decimal(str(row[COL[f"q{q + 1}_reporting"]]))
    return dict(out)


def test_rollup_matches_the_templates_summary_sheet(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_ROLLUP"], plan))  # by, period and measure omitted
    assert result[0] == ["Channel", "Q1", "Q2", "Q3", "Q4", "Total"]
    summary = summary_by_channel(plan)
    assert {row[0]: row[1:5] for row in result[1:]} == {c: [float(v) for v in q] for c, q in summary.items()}
    assert {row[0]: row[5] for row in result[1:]} == {c: float(sum(q)) for c, q in summary.items()}


def test_rollup_with_and_without_the_header_row(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    with_header = spills(call_like_excel(bound["PS_ROLLUP"], plan, "business unit, channel", "month"))
    without = spills(call_like_excel(bound["PS_ROLLUP"], plan[1:], "business unit, channel", "month"))
    assert with_header == without
    assert with_header[0][:3] == ["Business unit", "Channel", "Feb 2026"]
    assert all(isinstance(v, float) for row in with_header[1:] for v in row[2:])


def test_rollup_by_region_skips_the_templates_empty_pre_numbered_rows(
    plan: Any, bound: dict[str, Callable[..., Any]]
) -> None:
    assert all(row[COL["region"]] == "EMEA" and row[COL["line_id"]] for row in plan[1:])  # empty rows included
    result = spills(call_like_excel(bound["PS_ROLLUP"], plan, "region", "year"))
    total = Decimal(0)
    for row in plan[1 : 1 + N_LINES]:
        rate = SCHEMA.config.plan_rates[row[COL["currency"]]]
        for c in SCHEMA.month_columns:  # the money grain: each month converted to the cent, then summed
            total += (Decimal(str(row[c.index - 1] or 0)) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert result == [["Region", "FY2027"], ["EMEA", float(total)]]


def test_rollup_with_the_input_columns_only_in_template_order(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    inputs = len(SCHEMA.input_columns)
    narrow = tuple(row[:inputs] for row in plan[1:])  # Plan!A2:AF13: no header, no formula columns
    assert call_like_excel(bound["PS_ROLLUP"], narrow, "channel") == call_like_excel(bound["PS_ROLLUP"], plan)


def test_rollup_takes_its_options_from_single_cells(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    # =PS_ROLLUP(Plan, B1, B2) with B1 holding "channel" and B2 blank: a blank option is the default
    assert call_like_excel(bound["PS_ROLLUP"], plan, "channel", None) == call_like_excel(bound["PS_ROLLUP"], plan)


def test_forecast_with_a_date_cell_and_the_method_omitted(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_FORECAST"], plan, MISSING, com_date(2026, 7, 15)))
    assert result[0] == ["Forecast (phasing)"]
    assert len(result) == len(plan)
    assert all(isinstance(row[0], float) for row in result[1 : 1 + N_LINES])
    assert result[1 + N_LINES :] == [[""]] * SPARE  # no forecast for rows without a line
    serial = float((dt.date(2026, 7, 15) - dt.date(1899, 12, 30)).days)  # a date cell formatted as a number
    run_rate = spills(call_like_excel(bound["PS_FORECAST"], plan[1:], "run_rate", serial))
    closed = 5  # Feb..Jun
    actual = [row[COL["actual"]] for row in plan[1 : 1 + N_LINES]]
    assert [row[0] for row in run_rate[:N_LINES]] == [
        float((Decimal(str(a)) * 12 / closed).quantize(Decimal("0.01"), ROUND_HALF_UP)) for a in actual
    ]


def test_forecast_with_as_of_omitted_uses_today(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    assert len(spills(call_like_excel(bound["PS_FORECAST"], plan))) == len(plan)


def test_kpi_with_options_omitted_groups_by_region(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_KPI"], plan))
    assert result[0][:3] == ["Region", "Planned spend (USD)", "Actual spend (USD)"]
    assert [row[0] for row in result[1:]] == ["EMEA"]
    emea = dict(zip(result[0], result[1], strict=True))
    assert emea["Target leads"] == 63000.0
    assert emea["Expected leads"] == sum(row[COL["leads"]] or 0 for row in plan[1:])  # floats for whole numbers
    by_channel = spills(call_like_excel(bound["PS_KPI"], plan, "channel", "quarter"))
    targets = by_channel[0].index("Target leads")
    assert {row[targets] for row in by_channel[1:]} == {""}  # not applicable: a blank cell, not NaN


def test_variance_of_the_plan_columns_matches_the_templates_formula(
    plan: Any, bound: dict[str, Callable[..., Any]]
) -> None:
    result = spills(call_like_excel(bound["PS_VARIANCE"], column(plan, "planned_total"), column(plan, "actual")))
    assert result == [[v] for (v,) in column(plan, "variance")]  # =Planned total - Actual spend
    flags = spills(call_like_excel(bound["PS_VARIANCE"], column(plan, "planned_total"), column(plan, "actual"), "flag"))
    assert {f for (f,) in flags} <= {"favourable", "unfavourable", "on plan"}
    assert flags[-1] == ["on plan"]  # an empty pre-numbered row: 0 planned, 0 spent


def test_variance_pct_is_blank_where_nothing_is_planned(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_VARIANCE_PCT"], column(plan, "planned_total"), column(plan, "actual")))
    assert result[-SPARE:] == [[""]] * SPARE
    assert all(isinstance(v, float) for (v,) in result[:N_LINES])


def test_single_cells_where_ranges_are_expected(bound: dict[str, Callable[..., Any]]) -> None:
    assert call_like_excel(bound["PS_VARIANCE"], 1000.0, 800.0) == [[200.0]]
    assert call_like_excel(bound["PS_VARIANCE"], 1000.0, 800.0, "flag") == [["favourable"]]
    assert call_like_excel(bound["PS_VARIANCE_PCT"], 1000.0, 800.0) == [[0.2]]
    assert call_like_excel(bound["PS_FX"], 100.0, "EUR") == [[108.0]]
    assert call_like_excel(bound["PS_REMAINING"], 1000.0, 100.0, None) == [[900.0]]  # a blank cell is zero
    assert call_like_excel(bound["PS_PACING"], 50.0, 100.0, com_date(2027, 1, 31)) == [[0.5]]


def test_fx_of_a_month_column_with_its_currency_column(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = spills(call_like_excel(bound["PS_FX"], column(plan, "m02"), column(plan, "currency"), "m02"))
    expected = [
        float((Decimal(str(v or 0)) * Decimal("1.075")).quantize(Decimal("0.01"), ROUND_HALF_UP))
        for (v,) in column(plan, "m02")
    ]
    assert [v for (v,) in result] == expected  # blank rows: no currency, no amount, 0.0
    by_date = call_like_excel(bound["PS_FX"], column(plan, "m02"), column(plan, "currency"), com_date(2026, 3, 9))
    assert by_date == result
    to_gbp = spills(call_like_excel(bound["PS_FX"], column(plan, "m02"), "EUR", MISSING, "GBP"))
    assert len(to_gbp) == len(plan) - 1


def test_pacing_and_remaining_over_plan_columns(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    pacing = spills(call_like_excel(bound["PS_PACING"], column(plan, "actual"), column(plan, "planned_total")))
    assert pacing[-SPARE:] == [[""]] * SPARE  # nothing planned
    remaining = spills(
        call_like_excel(bound["PS_REMAINING"], 3_800_000.0, column(plan, "committed"), column(plan, "actual"))
    )
    committed, actual = column(plan, "committed"), column(plan, "actual")
    assert [v for (v,) in remaining] == [
        float(Decimal("3800000") - Decimal(str(c or 0)) - Decimal(str(a or 0)))
        for (c,), (a,) in zip(committed, actual, strict=True)
    ]


# --- errors come back as Excel error text with a message --------------------------------------------------------


def test_unknown_dimension(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    text = excel_error(call_like_excel(bound["PS_ROLLUP"], plan, "colour"))
    assert text == (
        '#VALUE! by: "colour" is not a dimension; use region, business_unit, team, campaign, '
        "campaign_code, crm_campaign_id, channel, activity, owner, currency, status"
    )


def test_mismatched_range_sizes(bound: dict[str, Callable[..., Any]]) -> None:
    text = excel_error(call_like_excel(bound["PS_VARIANCE"], ((1.0,), (2.0,), (3.0,)), ((1.0,), (2.0,))))
    assert text == "#VALUE! the ranges must be the same size (plan is 3x1, actual is 2x1)"


def test_text_in_an_amount_range(bound: dict[str, Callable[..., Any]]) -> None:
    text = excel_error(call_like_excel(bound["PS_VARIANCE"], ((100.0,), ("n/a",)), ((80.0,), (60.0,))))
    assert text == '#VALUE! plan: "n/a" (row 2, column 1) is not a number'


def test_an_error_cell_in_an_amount_range(bound: dict[str, Callable[..., Any]]) -> None:
    text = excel_error(call_like_excel(bound["PS_REMAINING"], ((100.0,), (50.0,)), ((1.0,), (NA,)), 0.0))
    assert text == '#VALUE! committed: "#N/A" (row 2, column 1) is not a number'


def test_a_cell_showing_na_in_the_plan(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    broken = with_cell(plan, 2, "m02", NA)  # the second line's Mar 2026 spend, sheet cell P3
    for name in ("PS_ROLLUP", "PS_FORECAST", "PS_KPI"):
        text = excel_error(call_like_excel(bound[name], broken))
        assert text.startswith("#VALUE! P3: Mar 2026 must be "), text  # the cell and its column, then why
        assert '"#N/A"' in text
    text = excel_error(call_like_excel(bound["PS_FORECAST"], with_cell(plan, 2, "actual", NA)))
    assert text == '#VALUE! AB3: Actual spend must be an amount, not "#N/A" (it shows an error)'


@pytest.mark.parametrize(
    "name",
    ["PS_ROLLUP", "PS_FORECAST", "PS_KPI"],
)
def test_cells_in_messages_are_relative_to_a_range_without_header(
    name: str, plan: Any, bound: dict[str, Callable[..., Any]]
) -> None:
    rows = with_cell(plan, 2, "m02", NA)[1:]  # Plan!A2:AM13 selected: the bad cell is in the range's second row
    assert excel_error(call_like_excel(bound[name], rows)).startswith("#VALUE! P2: Mar 2026 must be ")


def test_an_error_code_for_a_date(plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    text = excel_error(call_like_excel(bound["PS_PACING"], 1.0, 2.0, XL_ERRORS["#DIV/0!"]))
    assert text == '#VALUE! as_of: "#DIV/0!" is not a date (use a date cell or 2026-03-31)'


def test_too_large_an_amount_is_a_num_error(bound: dict[str, Callable[..., Any]]) -> None:
    assert excel_error(call_like_excel(bound["PS_VARIANCE"], 1e300, 1.0), "#NUM!").startswith("#NUM! plan:")


@pytest.mark.parametrize("name", ["PS_ROLLUP", "PS_KPI"])
def test_a_dimension_named_twice(name: str, plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    result = call_like_excel(bound[name], plan, "channel, channel")
    text = result[0][0] if len(result) == 1 and len(result[0]) == 1 else ""
    assert "internal error" not in text
    assert result == call_like_excel(bound[name], plan, "channel") or text.startswith('#VALUE! by: "channel"')


ODD_VALUES = [None, "", "abc", 0.0, -1.0, True, NA, XL_ERRORS["#REF!"], ((None, None), (None, None)), ((1.0, "x"),)]


@pytest.mark.parametrize("name", NAMES)
def test_odd_arguments_never_raise(name: str, plan: Any, bound: dict[str, Callable[..., Any]]) -> None:
    """Whatever a user types into the arguments, the cell shows a result or an error text, never an exception."""
    function = REGISTRY[name]
    takes_plan = function.args[0].name == "plan" and function.args[0].type == "any"
    usual = [plan, *[MISSING] * (len(function.args) - 1)] if takes_plan else [((1.0,), (2.0,))] * len(function.args)
    for position in range(len(function.args)):
        for value in ODD_VALUES:
            args = list(usual)
            args[position] = value
            result = call_like_excel(bound[name], *args)
            assert isinstance(result, list) and all(isinstance(row, list) for row in result)
            cells = [v for row in result for v in row if isinstance(v, str)]
            assert not any("Traceback" in v or "internal error" in v for v in cells), (name, position, value, cells)


def test_every_column_type_arrives_as_excel_passes_it(plan: Any) -> None:
    """The fixture really is what COM passes: floats, None, pywintypes datetimes and text."""
    kinds: dict[ColumnType, set[type]] = defaultdict(set)
    for row in plan[1:]:
        for c in SCHEMA.columns:
            kinds[c.type].add(type(row[c.index - 1]))
    assert kinds[ColumnType.DATE] == {type(com_date(2026, 2, 1)), type(None)}  # empty rows have no dates
    assert kinds[ColumnType.MONEY] <= {float, type(None)} and type(None) in kinds[ColumnType.MONEY]
    assert kinds[ColumnType.COUNT] <= {float, type(None)}
    assert kinds[ColumnType.FORMULA] == {float}
    assert isinstance(plan, tuple) and all(isinstance(row, tuple) for row in plan)


def test_xlwings_cleans_the_com_values_before_the_functions_see_them() -> None:
    """The reading half of call_udf, pinned: blanks, error codes and pywintypes times as the UDFs receive them."""
    read = xlwings.conversion.read
    assert read(None, ((1.0, None),), {"ndim": 2}) == [[1.0, None]]
    assert read(None, ((NA, None),), {"ndim": 2, "err_to_str": True}) == [["#N/A", None]]
    assert read(None, 5.0, {"ndim": 2, "err_to_str": True}) == [[5.0]]
    assert read(None, com_date(2026, 3, 9), {"err_to_str": True}) == dt.datetime(2026, 3, 9)
    assert xlwings.conversion.write([[1.0, None]], None, {}) == [[1.0, ""]]


def test_the_stand_ins_are_in_place_while_the_fixture_is_active() -> None:
    assert "pythoncom" in sys.modules and "xlwings.udfs" in sys.modules
    assert Path(sys.modules["pythoncom"].__file__).name.startswith("pythoncom")
