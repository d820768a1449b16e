"""The one registry of spreadsheet functions, and what is generated from it.

The registry must hold the nine functions the issue names, with names every host accepts; the
custom-functions metadata Office.js reads (`plansheet functions metadata`) and the sample
workbook (`plansheet functions workbook`) are derived from it and checked against it here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.formula import ArrayFormula

from addin.live import LIVE, catalog
from addin.registry import Arg, ArgType, Registry, Shape, SheetFunction
from addin.sheet_functions import REGISTRY
from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path
from sheet_templates.schema import ColumnType
from sync_service.cli import main
from tests.addin.issue_functions import ISSUE_NAMES
from tests.libreoffice import cached_differences, formula_count, recalculate

SCHEMA = build_schema(load_config(default_config_path()))
NAMES = [f.name for f in REGISTRY]
CELL_REFERENCE = re.compile(r"^[A-Z]{1,3}[0-9]+$|^R[0-9]*C[0-9]*$")


def test_the_nine_functions_of_the_issue_are_registered() -> None:
    assert set(NAMES) >= ISSUE_NAMES
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_names_are_ps_and_capitals_and_valid_in_every_host(name: str) -> None:
    assert re.fullmatch(r"PS_[A-Z0-9_]+", name)
    # Office.js: an id starts with a letter, has at least three characters from A-Z, 0-9, _ and .,
    # and a function must not look like a cell reference.
    assert re.fullmatch(r"[A-Z][A-Z0-9_.]{2,}", name) and not CELL_REFERENCE.match(name)
    assert REGISTRY[name.lower()] is REGISTRY[name]


@pytest.mark.parametrize("name", NAMES)
def test_arguments_required_first_typed_and_documented(name: str) -> None:
    function = REGISTRY[name]
    optional = [a.optional for a in function.args]
    assert optional == sorted(optional), "a required argument follows an optional one"
    assert not optional[0], "the first argument is what the function works on"
    assert len({a.name for a in function.args}) == len(function.args)
    for arg in function.args:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", arg.name)
        assert isinstance(arg.type, ArgType) and isinstance(arg.shape, Shape)
        assert arg.help.strip()
        if arg.optional and arg.default is not None:
            assert arg.type is ArgType.TEXT and isinstance(arg.default, str)
    assert function.help.strip() and function.result is Shape.MATRIX


def formula_arguments(formula: str) -> tuple[str, list[str]]:
    """The function name and its top-level arguments in `=NAME(a, "b, c", d)`."""
    match = re.fullmatch(r"=([A-Z_]+)\((.*)\)", formula)
    assert match, formula
    args, depth, quoted, current = [], 0, False, ""
    for ch in match.group(2):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            args.append(current.strip())
            current = ""
        else:
            current += ch
    return match.group(1), [*args, current.strip()] if current.strip() else args


@pytest.mark.parametrize("name", NAMES)
def test_the_documented_example_calls_the_function_with_a_valid_number_of_arguments(name: str) -> None:
    function = REGISTRY[name]
    called, args = formula_arguments(function.example)
    required = sum(not a.optional for a in function.args)
    assert called == name and required <= len(args) <= len(function.args)


# --- plansheet functions metadata -------------------------------------------------------------------------------


@pytest.fixture
def metadata(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["functions", "metadata"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def test_metadata_command_prints_the_registrys_metadata(metadata: dict[str, Any]) -> None:
    assert metadata == catalog().metadata()
    assert list(metadata) == ["functions"]
    assert [f["id"] for f in metadata["functions"]] == NAMES + [f.name for f in LIVE]
    # Live ones stream in Office.js (Excel ignores volatile on a streaming function, so it is not said).
    assert all(f["options"] == {"stream": True} for f in metadata["functions"][len(NAMES) :])
    assert all(f.volatile and f.stream for f in LIVE)  # desktop Excel and Sheets still recalculate them on refresh


@pytest.mark.parametrize("index", range(len(NAMES)))
def test_metadata_has_the_office_js_custom_function_shape(index: int, metadata: dict[str, Any]) -> None:
    entry = metadata["functions"][index]
    function = REGISTRY[NAMES[index]]
    assert set(entry) == {"id", "name", "description", "parameters", "result", "options"}
    assert entry["id"] == entry["name"] == function.name
    assert entry["description"] == function.help
    assert entry["result"] == {"type": "any", "dimensionality": "matrix"}
    assert entry["options"] == {"volatile": function.volatile}
    assert [p["name"] for p in entry["parameters"]] == [a.name for a in function.args]
    for param, arg in zip(entry["parameters"], function.args, strict=True):
        assert set(param) <= {"name", "description", "type", "dimensionality", "optional"}
        assert param["description"] == arg.help
        assert param["type"] in {"number", "string", "boolean", "any"} and param["type"] == arg.type.value
        assert param["dimensionality"] in {"scalar", "matrix"} and param["dimensionality"] == arg.shape.value
        assert param.get("optional", False) is arg.optional


def test_volatile_functions_are_the_ones_that_depend_on_today() -> None:
    volatile = {f.name for f in REGISTRY if f.volatile}
    assert volatile == {"PS_FORECAST", "PS_PACING"}
    for name in volatile:
        as_of = [a for a in REGISTRY[name].args if a.name == "as_of"]
        assert as_of and as_of[0].optional and as_of[0].default is None


def test_functions_list_shows_each_function_with_its_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["functions", "list"]) == 0
    out = capsys.readouterr().out
    for function in REGISTRY:
        params = ", ".join(f"[{a.name}]" if a.optional else a.name for a in function.args)
        assert f"{function.name}({params})" in out
        assert function.example in out


# --- plansheet functions workbook -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("functions") / "plansheet-functions.xlsx"
    assert main(["functions", "workbook", "--out", str(path)]) == 0
    return path


def functions_sheet(path: Path) -> dict[str, tuple[str, Any]]:
    """Function name -> (the formula shown as text, the live formula cell's value), from the Functions sheet."""
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Functions"]
    out = {}
    for row in sheet.iter_rows(min_row=5):
        if isinstance(row[0].value, str) and row[0].value.startswith("PS_"):
            out[row[0].value] = (row[2].value, row[3].value)
    return out


def test_workbook_calls_every_registered_function(sample_workbook: Path) -> None:
    cells = functions_sheet(sample_workbook)
    assert sorted(cells) == sorted(NAMES)
    for name, (shown, live) in cells.items():
        assert isinstance(live, ArrayFormula), f"{name} is not entered as a dynamic array that spills"
        assert live.text == shown
        called, args = formula_arguments(shown)
        function = REGISTRY[name]
        assert called == name
        assert sum(not a.optional for a in function.args) <= len(args) <= len(function.args)


def test_workbook_formulas_point_at_the_right_plan_columns(sample_workbook: Path) -> None:
    workbook = openpyxl.load_workbook(sample_workbook)
    plan = workbook["Plan"]
    header = {cell.column_letter: cell.value for cell in plan[1]}
    assert list(header.values()) == [c.label for c in SCHEMA.columns]
    by_label = {c.label: c for c in SCHEMA.columns}
    last_row = plan.max_row
    last_column = SCHEMA.columns[-1].letter
    numeric = {ColumnType.MONEY, ColumnType.FORMULA, ColumnType.COUNT}
    seen = {"table": 0, "column": 0}
    for name, (shown, _) in functions_sheet(sample_workbook).items():
        function = REGISTRY[name]
        _, args = formula_arguments(shown)
        for arg, text in zip(function.args, args, strict=False):
            whole = re.fullmatch(r"Plan!\$A\$1:\$([A-Z]+)\$(\d+)", text)
            single = re.fullmatch(r"Plan!\$([A-Z]+)\$2:\$\1\$(\d+)", text)
            if whole:  # the whole Plan table, header row included
                assert arg.name == "plan" and whole.groups() == (last_column, str(last_row)), (name, text)
                seen["table"] += 1
            elif single:  # one column of the data rows
                column = by_label[header[single.group(1)]]
                seen["column"] += 1
                assert single.group(2) == str(last_row), (name, text)
                if arg.type is ArgType.NUMBER:
                    assert column.type in numeric, (name, arg.name, column.label)
                else:
                    assert column.name == "currency", (name, arg.name, column.label)
            else:
                assert text.startswith('"') and (arg.type is ArgType.TEXT or arg.name == "period"), (name, text)
    assert seen == {"table": 4, "column": 11}


def test_workbook_caches_each_functions_result_where_it_spills(sample_workbook: Path) -> None:
    """A reader without the add-in (a preview, pandas) sees each function's result for the sheet's own plan."""
    book = openpyxl.load_workbook(sample_workbook, data_only=True)
    plan = [list(row) for row in book["Plan"].iter_rows(values_only=True)]
    sheet = book["Functions"]

    def argument(text: str) -> Any:
        if text.startswith('"'):
            return text.strip('"')
        first, _ = re.fullmatch(r"Plan!\$([A-Z]+)\$\d+:\$([A-Z]+)\$\d+", text).groups()
        if first == "A":  # the whole table, header included
            return plan
        k = openpyxl.utils.column_index_from_string(first) - 1
        return [[row[k]] for row in plan[1:]]

    checked = 0
    for row in sheet.iter_rows(min_row=5):
        if not (isinstance(row[0].value, str) and row[0].value.startswith("PS_")):
            continue
        name, args = formula_arguments(row[2].value)
        want = REGISTRY[name].call(*(argument(a) for a in args))
        assert isinstance(want, list) and want, (name, want)
        for i, values in enumerate(want):
            got = [sheet.cell(row[0].row + i, 4 + j).value for j in range(len(values))]
            # Excel keeps 15 significant digits (xlsxwriter writes 16): numbers agree to that.
            assert got == [
                None if v in ("", None) else pytest.approx(v, rel=1e-14) if isinstance(v, float) else v for v in values
            ], (name, i)
        checked += 1
    assert checked == len(NAMES)


@pytest.mark.libreoffice
def test_workbook_plan_formulas_are_written_with_what_libreoffice_computes(
    sample_workbook: Path, soffice: str, tmp_path: Path
) -> None:
    done = recalculate(sample_workbook, tmp_path)
    assert formula_count(sample_workbook) > 200
    # The PS_ functions need the add-in (LibreOffice shows #NAME?): the test above holds them to the registry.
    assert cached_differences(sample_workbook, done, skip=("PS_",)) == []


def test_workbook_tells_xlwings_to_load_the_udf_module(sample_workbook: Path) -> None:
    workbook = openpyxl.load_workbook(sample_workbook)
    conf = workbook["xlwings.conf"]
    settings = {row[0].value: row[1].value for row in conf.iter_rows()}
    assert settings["UDF Modules"] == "addin.udfs"
    plan = workbook["Plan"]
    assert "PlanLines" in plan.tables
    assert plan.max_row > 1 and plan.cell(2, 1).value


# --- Registry rules ---------------------------------------------------------------------------------------------


def function(name: str, *args: Arg) -> SheetFunction:
    return SheetFunction(name, "help", tuple(args), lambda *values: [[len(values)]])


def test_registry_rejects_a_name_registered_twice() -> None:
    registry = Registry()
    registry.register(function("PS_ONE"))
    with pytest.raises(ValueError, match="PS_ONE is registered twice"):
        registry.register(function("PS_ONE"))
    assert [f.name for f in registry] == ["PS_ONE"]


@pytest.mark.parametrize("name", ["ps_lower", "PS_Mixed", "XX_FOO", "PSFOO", "SUM"])
def test_registry_rejects_names_that_are_not_ps_and_capitals(name: str) -> None:
    with pytest.raises(ValueError, match="spreadsheet function names are PS_ and capitals"):
        Registry().register(function(name))


@pytest.mark.parametrize("name", ["PS_FOO BAR", "PS_FOO-BAR", "PS_FOO.BAR", "PS_ÄRGER"])
def test_registry_rejects_names_hosts_cannot_use(name: str) -> None:
    with pytest.raises(ValueError):
        Registry().register(function(name))


def test_registry_rejects_a_required_argument_after_an_optional_one() -> None:
    with pytest.raises(ValueError, match="required argument b follows an optional one"):
        Registry().register(function("PS_ARGS", Arg("a", "h", optional=True), Arg("b", "h")))


def test_call_fills_in_defaults_for_missing_optional_arguments() -> None:
    registry = Registry()
    seen: list[tuple] = []
    registry.register(
        SheetFunction(
            "PS_ECHO",
            "help",
            (Arg("x", "h"), Arg("how", "h", ArgType.TEXT, Shape.SCALAR, True, "amount")),
            lambda *values: seen.append(values) or [[1]],
        )
    )
    registry["PS_ECHO"].call([[1.0]])
    registry["PS_ECHO"].call([[1.0]], None)
    registry["PS_ECHO"].call([[1.0]], "flag")
    assert seen == [([[1.0]], "amount"), ([[1.0]], "amount"), ([[1.0]], "flag")]
    # Too many arguments, or a required one left blank: a cell error, never an exception.
    assert str(registry["PS_ECHO"].call(1, 2, 3)) == "#VALUE! PS_ECHO takes at most 2 arguments"
    assert str(registry["PS_ECHO"].call(None)) == "#VALUE! PS_ECHO: x is required"
