"""The gatekeeper refuses each bad upload with the right rule and a message a marketer can act on.

Every bad file is made by `tests/addin/bad_files.py` from a real template built by the template
builder; good files are real templates (and an xlsxwriter workbook) that must pass with the
sheet names, defined names, sheet parts and plan size the reader relies on.
"""

from __future__ import annotations

import re
import statistics
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addin.issues import Rule, Severity, UnreadableWorkbook
from addin.safety import DEFAULT_LIMITS, Limits, Package, inspect_package
from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.addin import bad_files
from tests.addin.bad_files import PLAN_PART, make_template, part_text, with_extra_rows, with_plan_sheet
from tests.libreoffice import recalculate

TEMPLATE_ROWS = 300  # template.rows in the bundled configuration
COLUMNS = 39  # the schema's columns, A..AM
SHEETS = ("Instructions", "Plan", "Summary", "Lists")
MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty EMEA template, built once for the module (tests copy it, never change it)."""
    return make_template(tmp_path_factory.mktemp("template") / "plan-EMEA.xlsx")


@pytest.fixture(scope="module")
def plan_2000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template filled with 2,000 plausible lines: the benchmark's file size."""
    schema = build_schema(load_config())
    path = tmp_path_factory.mktemp("filled") / "plan-EMEA-2000.xlsx"
    return make_template(path, lines=sample_lines(schema, "EMEA", 2_000), spare_rows=0)


def refusal(path: Path, **kwargs: object) -> UnreadableWorkbook:
    with pytest.raises(UnreadableWorkbook) as caught:
        inspect_package(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- good files ------------------------------------------------------------------------------------------------


def test_a_fresh_template_passes_with_its_structure(template: Path) -> None:
    package = inspect_package(template)

    assert isinstance(package, Package)
    assert package.path == str(template)
    assert package.sheet_names == SHEETS
    assert package.sheet_parts == {name: f"xl/worksheets/sheet{i}.xml" for i, name in enumerate(SHEETS, start=1)}
    assert package.defined_names["PS_TEMPLATE_ID"] == '"plansheet.plan/acme"'
    assert package.defined_names["PS_REGION"] == '"EMEA"'
    assert package.defined_names["PS_FISCAL_YEAR"] == "2027"
    assert package.defined_names["PS_TEMPLATE_VERSION"].startswith('"1.')
    assert package.defined_names["ps_regions"] == "Lists!$A$2:$A$5"
    assert package.date1904 is False
    assert (package.plan_rows, package.plan_columns) == (TEMPLATE_ROWS + 1, COLUMNS)  # header + pre-numbered rows


def test_a_2000_line_plan_passes_in_a_few_milliseconds(plan_2000: Path) -> None:
    package = inspect_package(plan_2000)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        inspect_package(plan_2000)
        timings.append(time.perf_counter() - start)

    assert (package.plan_rows, package.plan_columns) == (2_001, COLUMNS)
    # about 15-20 ms on a slow 2-core VM (calamine reads the same file in ~55 ms); the tag-by-tag walk takes 10x
    assert statistics.median(timings) < 0.15


def test_sheet_and_cell_names_are_the_ones_the_user_sees(template: Path, tmp_path: Path) -> None:
    path = bad_files.renamed_plan_sheet(template, tmp_path, new_name="Budget")
    package = inspect_package(path, plan_sheet="Budget")

    assert package.sheet_names == ("Instructions", "Budget", "Summary", "Lists")
    assert package.sheet_parts["Budget"] == PLAN_PART


def test_an_xlsxwriter_workbook_with_relative_targets_and_1904_dates_passes(tmp_path: Path) -> None:
    path = tmp_path / "other-writer.xlsx"
    book = xlsxwriter.Workbook(path, {"date_1904": True})
    book.add_worksheet("Notes").write("A1", "shared strings, relative targets")
    plan = book.add_worksheet("Plan")
    plan.write_row("A1", ["Line ID", "Region", "Campaign"])
    plan.write_row("A7", ["EMEA-0006", "EMEA", "Spring"])
    plan.write("E9", 12.5)
    book.define_name("PS_REGION", '="EMEA"')
    book.define_name("Plan!_local", "=Plan!$A$1")  # sheet-local: not a workbook-level name
    book.close()

    package = inspect_package(path)

    assert package.date1904 is True
    assert package.sheet_parts == {"Notes": "xl/worksheets/sheet1.xml", "Plan": "xl/worksheets/sheet2.xml"}
    assert package.defined_names == {"PS_REGION": '"EMEA"'}
    assert (package.plan_rows, package.plan_columns) == (9, 5)


def test_a_plan_sheet_without_r_attributes_is_placed_as_calamine_places_it(template: Path, tmp_path: Path) -> None:
    """r is optional in SpreadsheetML: rows and cells without it follow the previous ones."""
    sheet = re.sub(rb' r="[A-Z]*[0-9]+"', b"", part_text(template, PLAN_PART))
    package = inspect_package(with_plan_sheet(template, tmp_path / "no-r.xlsx", sheet))

    assert (package.plan_rows, package.plan_columns) == (TEMPLATE_ROWS + 1, COLUMNS)


def test_a_utf16_plan_sheet_is_scanned_in_its_encoding(template: Path, tmp_path: Path) -> None:
    sheet = part_text(template, PLAN_PART).decode("utf-8")
    sheet = with_extra_rows_text(sheet, '<row r="777"><c r="C777" t="n"><v>1</v></c></row>')
    package = inspect_package(with_plan_sheet(template, tmp_path / "utf16.xlsx", sheet.encode("utf-16")))

    assert (package.plan_rows, package.plan_columns) == (777, COLUMNS)


@pytest.mark.libreoffice
def test_a_template_saved_again_by_libreoffice_passes(template: Path, tmp_path: Path, soffice: str) -> None:
    """What a planner's spreadsheet app writes (prefixes, other attribute order) is read like the original."""
    package = inspect_package(recalculate(template, tmp_path / "saved"))

    assert package.sheet_names == SHEETS
    assert package.defined_names["PS_REGION"] == '"EMEA"'
    assert (package.plan_rows, package.plan_columns) == (TEMPLATE_ROWS + 1, COLUMNS)


def with_extra_rows_text(sheet: str, rows: str) -> str:
    return sheet.replace("</sheetData>", rows + "</sheetData>", 1)


def sheet_of(rows: str) -> bytes:
    return (
        f'<?xml version="1.0"?><worksheet xmlns="{MAIN_NS.decode()}"><sheetData>{rows}</sheetData></worksheet>'.encode()
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param('<row r="3"><c r="B3"><v>1</v></c><c r="D3"/></row>', (3, 4), id="canonical"),
        pytest.param("<row><c/><c/></row><row/><row><c><v>1</v></c></row>", (3, 2), id="implicit rows and cells"),
        pytest.param('<row r="7"><c s="1" r="B7"/><c/></row>', (7, 3), id="r after another attribute"),
        pytest.param("<row r='4'><c r = 'E4'/><c t='n' r='AA4'/></row>", (4, 27), id="single quotes and spaces"),
        pytest.param('<x:row r="5"><x:c r="F5"/><x:c/></x:row>', (5, 7), id="prefixed tags"),
        pytest.param('<row r="1"><c r="a1"/><c r="gr1"/></row>', (1, 200), id="lower-case references"),
        pytest.param('<row r="1"><c r="A1"/></row></row></row><row><c/></row>', (4, 1), id="stray end tags count"),
        pytest.param('<row r="2"><c r="B2" x="&lt;"/><foo a="<c x=\'">"/><c/></row>', (2, 3), id="'<' in a value"),
        pytest.param(
            '<row r="2"><foo a="<c x=\'"><c r="Z9"/><bar b=\'>\'/></row>', (9, 26), id="a value does not hide a cell"
        ),
        pytest.param('<!-- <c r="XFD9"/> --><row><c/></row>', (1, 1), id="comments hold no cells"),
    ],
)
def test_the_plan_size_follows_calamine_on_unusual_xml(
    template: Path, tmp_path: Path, rows: str, expected: tuple[int, int]
) -> None:
    package = inspect_package(with_plan_sheet(template, tmp_path / "odd.xlsx", sheet_of(rows)))

    assert (package.plan_rows, package.plan_columns) == expected


# --- bad files -----------------------------------------------------------------------------------------------

Make = Callable[[Path, Path], Path]  # (template, directory) -> the bad file
CASES: list[tuple[str, Make, Rule, tuple[str, ...]]] = [
    ("empty", lambda t, d: bad_files.empty_file(d), Rule.NOT_XLSX, ("is empty", "save the workbook")),
    ("csv", lambda t, d: bad_files.csv_renamed(d), Rule.NOT_XLSX, ("text or CSV file", "save it as .xlsx")),
    ("pdf", lambda t, d: bad_files.pdf_file(d), Rule.NOT_XLSX, ("is a PDF", "made from the Plansheet template")),
    ("html", lambda t, d: bad_files.html_file(d), Rule.NOT_XLSX, ("web page",)),
    ("noise", lambda t, d: bad_files.random_bytes(d), Rule.NOT_XLSX, ("not an Excel workbook", "Plansheet template")),
    ("xls", lambda t, d: bad_files.legacy_xls(d), Rule.LEGACY_XLS, ("old .xls workbook", "save it as .xlsx")),
    ("xls as xlsx", lambda t, d: bad_files.legacy_xls_renamed(d), Rule.LEGACY_XLS, ("old .xls workbook",)),
    ("password", lambda t, d: bad_files.password_protected(d), Rule.NOT_XLSX, ("password-protected", "remove the")),
    ("docx", lambda t, d: bad_files.word_document(d), Rule.NOT_XLSX, ("Word document", "Plansheet template")),
    ("zip", lambda t, d: bad_files.plain_zip(d), Rule.NOT_XLSX, ("zip archive", "upload the .xlsx")),
    ("ods", lambda t, d: bad_files.opendocument(d), Rule.NOT_XLSX, ("OpenDocument spreadsheet", "LibreOffice")),
    ("truncated", bad_files.truncated, Rule.CORRUPT, ("damaged or incomplete", "cut off", "upload it again")),
    ("corrupted", bad_files.corrupted_bytes, Rule.CORRUPT, ("damaged or incomplete",)),
    ("bad crc", bad_files.bad_crc, Rule.CORRUPT, ("damaged or incomplete", "CRC")),
    ("short part", bad_files.short_part, Rule.CORRUPT, ("damaged", "shorter than its header")),
    ("twice", bad_files.duplicate_part, Rule.CORRUPT, ("damaged", "same part twice")),
    ("entries", bad_files.many_entries, Rule.ZIP_BOMB, ("zip bomb", "holds 1,5", "Plansheet allows 1,000")),
    ("450 MB", bad_files.declared_too_big, Rule.ZIP_BOMB, ("zip bomb", "expand to 450.", "allows 400.0 MB")),
    ("ratio", bad_files.high_ratio, Rule.ZIP_BOMB, ("zip bomb", "more than 200 to 1")),
    ("lying", bad_files.lying_bomb, Rule.ZIP_BOMB, ("zip bomb", f"{PLAN_PART} is bigger than its header says")),
    ("overlap", bad_files.overlapping, Rule.ZIP_BOMB, ("zip bomb", "overlap")),
    (".xlsm", bad_files.macro_extension, Rule.MACROS, (".xlsm", "without macros", "save it as .xlsx")),
    (".xltm", lambda t, d: bad_files.macro_extension(t, d, ".xltm"), Rule.MACROS, ("macro-enabled template",)),
    (".xlsb", lambda t, d: bad_files.macro_extension(t, d, ".xlsb"), Rule.MACROS, ("binary workbook (.xlsb)",)),
    ("vba", bad_files.with_vba_project, Rule.MACROS, ("contains macros (VBA)", "save it as .xlsx", "removes them")),
    ("macro type", bad_files.macro_content_type_only, Rule.MACROS, ("contains macros",)),
    ("laughs", bad_files.workbook_billion_laughs, Rule.UNSAFE_XML, ("xl/workbook.xml", "DTD", "Excel never writes")),
    ("xxe", bad_files.workbook_xxe, Rule.UNSAFE_XML, ("xl/workbook.xml", "DTD")),
    ("sheet laughs", bad_files.sheet_billion_laughs, Rule.UNSAFE_XML, (PLAN_PART, "DTD")),
    ("sheet xxe", bad_files.sheet_xxe, Rule.UNSAFE_XML, (PLAN_PART, "DTD")),
    ("utf-16 xxe", bad_files.utf16_workbook_xxe, Rule.UNSAFE_XML, ("xl/workbook.xml", "DTD")),
    ("hidden dtd", bad_files.dtd_after_comment, Rule.UNSAFE_XML, ("xl/styles.xml", "DTD")),
    ("no plan", bad_files.renamed_plan_sheet, Rule.MISSING_SHEET, ('no sheet named "Plan"', '"Budget"', '"Lists"')),
    (
        "XFD1048576",
        bad_files.stray_cell_at_xfd1048576,
        Rule.BEYOND_LIMITS,
        ("row 1,048,576 of the Plan sheet", "cell XFD1048576", "at most 100,001 rows", "delete the rows"),
    ),
    ("row 2,000,000", bad_files.row_two_million, Rule.BEYOND_LIMITS, ("row numbered 2,000,000", "Excel's limits")),
    ("XFE", bad_files.column_beyond_xfd, Rule.BEYOND_LIMITS, ("column number 16,385", "Excel's limits")),
    (
        "far below",
        bad_files.row_beyond_plansheet,
        Rule.BEYOND_LIMITS,
        ("row 150,000 of the Plan sheet", "cell B150000", "Plansheet reads at most 100,001 rows"),
    ),
    (
        "far right",
        bad_files.column_beyond_plansheet,
        Rule.BEYOND_LIMITS,
        ("column GS of the Plan sheet", "cell GS400", "at most 200 columns (up to GR)", "delete the columns"),
    ),
    ("dimension", bad_files.dimension_beyond_excel, Rule.BEYOND_LIMITS, ("A1:XFE1048577", "Excel's limits")),
    ("implicit", bad_files.implicit_rows_beyond_plansheet, Rule.BEYOND_LIMITS, ("row 100,003", "at most 100,001")),
]


@pytest.mark.parametrize(("make", "rule", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_bad_file_is_refused_with_its_rule_and_a_message_to_act_on(
    template: Path, tmp_path: Path, make: Make, rule: Rule, words: tuple[str, ...]
) -> None:
    path = make(template, tmp_path)

    error = refusal(path)

    assert error.rule is rule
    assert error.file == path.name
    assert error.message.startswith(f"{path.name} ")
    for word in words:
        assert word in error.message
    issue = error.as_issue()
    assert (issue.rule, issue.severity, issue.file) == (rule, Severity.ERROR, path.name)


def test_a_missing_file_or_a_folder_is_not_a_workbook(tmp_path: Path) -> None:
    missing = refusal(tmp_path / "gone.xlsx")
    folder = refusal(tmp_path)

    assert (missing.rule, folder.rule) == (Rule.NOT_XLSX, Rule.NOT_XLSX)
    assert "gone.xlsx was not found" in missing.message
    assert "is a folder" in folder.message


def test_the_display_name_is_the_one_in_the_message(tmp_path: Path) -> None:
    path = bad_files.csv_renamed(tmp_path)

    error = refusal(path, display_name="Q3 plan (EMEA).xlsx")

    assert error.file == "Q3 plan (EMEA).xlsx"
    assert error.message.startswith("Q3 plan (EMEA).xlsx is a text or CSV file")


def test_a_macro_name_given_by_the_upload_counts(template: Path) -> None:
    assert refusal(template, display_name="plan.xlsm").rule is Rule.MACROS


def test_a_file_over_the_size_limit_is_refused_before_it_is_opened(template: Path, tmp_path: Path) -> None:
    path = bad_files.oversized(template, tmp_path, DEFAULT_LIMITS.max_file_bytes + 1)

    error = refusal(path)

    assert error.rule is Rule.TOO_LARGE
    assert "is 50.0 MB; Plansheet accepts workbooks up to 50.0 MB" in error.message


def test_the_limits_can_be_tightened(template: Path) -> None:
    assert refusal(template, limits=Limits(max_file_bytes=1_000)).rule is Rule.TOO_LARGE
    assert refusal(template, limits=Limits(max_entries=5)).rule is Rule.ZIP_BOMB
    assert refusal(template, limits=Limits(max_uncompressed_bytes=10_000)).rule is Rule.ZIP_BOMB
    assert refusal(template, limits=Limits(max_rows=TEMPLATE_ROWS)).rule is Rule.BEYOND_LIMITS
    assert refusal(template, limits=Limits(max_columns=COLUMNS - 1)).rule is Rule.BEYOND_LIMITS
    assert inspect_package(template, limits=Limits(max_rows=TEMPLATE_ROWS + 1, max_columns=COLUMNS))


def test_a_sheet_renamed_only_in_case_gets_a_hint(template: Path, tmp_path: Path) -> None:
    error = refusal(bad_files.renamed_plan_sheet(template, tmp_path, new_name="plan"))

    assert error.rule is Rule.MISSING_SHEET
    assert 'Rename the sheet "plan" to "Plan"' in error.message


def test_a_cell_beyond_excel_is_reported_before_plansheet_limits(template: Path, tmp_path: Path) -> None:
    path = with_extra_rows(template, tmp_path / "both.xlsx", b'<row r="1048577"><c r="A1048577"/></row>')

    assert "beyond Excel's limits" in refusal(path).message


# --- bounded memory and time -----------------------------------------------------------------------------------


def test_a_1gb_lying_zip_bomb_is_refused_in_bounded_memory_and_time(template: Path, tmp_path: Path) -> None:
    path = bad_files.lying_bomb(template, tmp_path, real_size=1024 * 2**20)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(PLAN_PART).file_size == 1_000  # what the header claims

    tracemalloc.start()
    start = time.perf_counter()
    try:
        error = refusal(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.rule is Rule.ZIP_BOMB
    assert peak < 20 * 2**20
    assert elapsed < 2


def test_a_lying_part_that_is_not_a_sheet_is_caught_too(template: Path, tmp_path: Path) -> None:
    path = bad_files.lying_bomb(template, tmp_path, real_size=64 * 2**20, part="xl/theme/theme1.xml")

    error = refusal(path)

    assert error.rule is Rule.ZIP_BOMB
    assert "xl/theme/theme1.xml is bigger than its header says" in error.message


def test_a_large_plan_sheet_is_scanned_in_bounded_memory(template: Path, tmp_path: Path) -> None:
    row = '<row r="{0}"><c r="A{0}" t="n"><v>{0}</v></c><c r="B{0}" t="inlineStr"><is><t>campaign</t></is></c></row>'
    rows = "".join(row.format(r) for r in range(2, 100_002)).encode()  # about 9 MB of XML
    path = with_extra_rows(template, tmp_path / "long.xlsx", rows)

    tracemalloc.start()
    try:
        package = inspect_package(path, limits=Limits(max_rows=200_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert package.plan_rows == 100_001
    assert peak < 30 * 2**20


def test_a_large_plan_with_colons_in_its_text_takes_the_fast_path(template: Path, tmp_path: Path) -> None:
    """Notes such as "Contact:c/o Ana" look a little like prefixed tags (<x:c>); they must not slow the scan."""
    row = '<row r="{0}"><c r="A{0}" t="inlineStr"><is><t>Contact:c/o Ana, ratio:row 2</t></is></c></row>'
    rows = "".join(row.format(r) for r in range(2, 300_002)).encode()  # 23 MB: refused if walked tag by tag
    path = with_extra_rows(template, tmp_path / "colons.xlsx", rows)

    package = inspect_package(path, limits=Limits(max_rows=400_000))

    assert (package.plan_rows, package.plan_columns) == (300_001, COLUMNS)


def test_a_large_plan_sheet_not_written_as_excel_writes_it_is_refused_quickly(template: Path, tmp_path: Path) -> None:
    """Walking unusual XML tag by tag is slow (a few MB/s at worst), so it stops at 16 MB."""
    rows = b"<row>" + b"<c r='A1'/>" * 100 + b"</row>"  # single quotes: not the canonical form
    path = with_extra_rows(template, tmp_path / "unusual.xlsx", rows * (17 * 2**20 // len(rows)))

    start = time.perf_counter()
    error = refusal(path)

    assert error.rule is Rule.BEYOND_LIMITS
    assert "not written the way Excel writes it" in error.message
    assert time.perf_counter() - start < 2


# --- whatever the damage, a refusal or a package, never a traceback --------------------------------------------


@pytest.fixture(scope="module")
def small_book(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("small") / "small.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("Plan").write_row("A1", ["Line ID", "Region", 3, 4.5])
    book.define_name("PS_REGION", '="EMEA"')
    book.close()
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_bytes_end_in_a_refusal_or_a_package(small_book: bytes, tmp_path: Path, data: st.DataObject) -> None:
    damaged = bytearray(small_book)
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        at = data.draw(st.integers(0, len(damaged) - 1), label="at")
        damaged[at] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(1, len(damaged)), label="length")
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(bytes(damaged[:cut]))

    try:
        package = inspect_package(path)
    except UnreadableWorkbook as error:
        assert error.message.startswith("damaged.xlsx ")
    else:
        assert package.sheet_names == ("Plan",)
