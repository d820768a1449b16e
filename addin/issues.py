"""Problems as values: every validation finding is an `Issue` with its rule, severity and cell.

Validation collects all issues at once and returns them as data; only input that cannot be
read at all raises, as `UnreadableWorkbook`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from sheet_templates.errors import PlansheetError


class Severity(StrEnum):
    ERROR = "error"  # the plan cannot be accepted
    WARNING = "warning"  # accepted, but someone should look


class Rule(StrEnum):
    """Every rule a plan is checked against; the value is what reports and the API show."""

    # the file itself (raised as UnreadableWorkbook)
    NOT_XLSX = "file.not_xlsx"
    LEGACY_XLS = "file.legacy_xls"
    CORRUPT = "file.corrupt"
    TOO_LARGE = "file.too_large"
    ZIP_BOMB = "file.zip_bomb"
    MACROS = "file.macros"
    UNSAFE_XML = "file.unsafe_xml"
    BEYOND_LIMITS = "file.beyond_limits"
    MISSING_SHEET = "file.missing_sheet"
    # the template's identity
    TEMPLATE_MISSING = "template.missing_metadata"
    TEMPLATE_FOREIGN = "template.foreign"
    TEMPLATE_STALE = "template.stale_version"
    TEMPLATE_REGION = "template.region"
    TEMPLATE_FISCAL_YEAR = "template.fiscal_year"
    # the header
    COLUMN_MISSING = "column.missing"
    COLUMN_UNKNOWN = "column.unknown"
    COLUMN_DUPLICATE = "column.duplicate"
    # cells
    REQUIRED = "cell.required"
    TYPE = "cell.type"
    NUMBER_AS_TEXT = "cell.number_as_text"
    ROUNDED = "cell.rounded_to_cents"
    ALLOWED_VALUE = "cell.allowed_value"
    NEGATIVE = "cell.negative"
    TOO_LONG = "cell.too_long"
    FORMULA_TEXT = "cell.formula_text"
    CONTROL_CHARACTER = "cell.control_character"
    DATE_OUTSIDE_YEAR = "cell.date_outside_fiscal_year"
    END_BEFORE_START = "line.end_before_start"
    SPEND_OUTSIDE_DATES = "line.spend_outside_dates"
    REGION_MISMATCH = "line.region_mismatch"
    DUPLICATE_ID = "line.duplicate_id"
    ID_OF_ANOTHER_TEAM = "line.id_of_another_team"  # checked by the service, against the master and pending plans
    TOO_MANY_LINES = "plan.too_many_lines"
    OUTSIDE_TABLE = "plan.outside_table"  # a line below the template's table, which its Summary does not count


# Each rule in words, as a page or an email names it (the code stays in the API and exports).
RULE_TITLES: dict[Rule, str] = {
    Rule.NOT_XLSX: "Not an Excel workbook",
    Rule.LEGACY_XLS: "Old .xls format",
    Rule.CORRUPT: "Damaged file",
    Rule.TOO_LARGE: "File too large",
    Rule.ZIP_BOMB: "Compressed beyond the limits",
    Rule.MACROS: "Contains macros",
    Rule.UNSAFE_XML: "Unsafe XML",
    Rule.BEYOND_LIMITS: "Beyond the size limits",
    Rule.MISSING_SHEET: "Sheet missing",
    Rule.TEMPLATE_MISSING: "Not a Plansheet template",
    Rule.TEMPLATE_FOREIGN: "Template of another organisation",
    Rule.TEMPLATE_STALE: "Template out of date",
    Rule.TEMPLATE_REGION: "Template of another region",
    Rule.TEMPLATE_FISCAL_YEAR: "Template of another fiscal year",
    Rule.COLUMN_MISSING: "Column missing",
    Rule.COLUMN_UNKNOWN: "Column not in the template",
    Rule.COLUMN_DUPLICATE: "Column twice",
    Rule.REQUIRED: "Required cell empty",
    Rule.TYPE: "Wrong kind of value",
    Rule.NUMBER_AS_TEXT: "Number typed as text",
    Rule.ROUNDED: "Rounded to cents",
    Rule.ALLOWED_VALUE: "Not one of the allowed values",
    Rule.NEGATIVE: "Negative amount",
    Rule.TOO_LONG: "Text too long",
    Rule.FORMULA_TEXT: "Text that would run as a formula",
    Rule.CONTROL_CHARACTER: "Invisible control character",
    Rule.DATE_OUTSIDE_YEAR: "Date outside the fiscal year",
    Rule.END_BEFORE_START: "Ends before it starts",
    Rule.SPEND_OUTSIDE_DATES: "Spend outside the line's dates",
    Rule.REGION_MISMATCH: "Line of another region",
    Rule.DUPLICATE_ID: "Line ID used twice",
    Rule.ID_OF_ANOTHER_TEAM: "Line ID of another team",
    Rule.TOO_MANY_LINES: "Too many lines",
    Rule.OUTSIDE_TABLE: "Line below the plan's table",
}


def rule_title(rule: str) -> str:
    """A rule's id ("cell.allowed_value") in words; an id no rule has, as it is."""
    try:
        return RULE_TITLES[Rule(rule)]
    except ValueError:
        return str(rule)


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: which rule, how bad, where (file, sheet, cell, column) and what to do."""

    rule: Rule
    severity: Severity
    message: str
    file: str | None = None
    sheet: str | None = None
    cell: str | None = None  # A1 address inside `sheet`, e.g. "F12"
    column: str | None = None  # schema column name
    row: int | None = None  # sheet row number

    @property
    def location(self) -> str:
        """`Plan!F12`, `Plan` or '' when the issue concerns the whole file."""
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        return self.sheet or ""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["rule"], data["severity"], data["location"] = str(self.rule), str(self.severity), self.location
        return data

    def __str__(self) -> str:
        where = " ".join(p for p in (self.file, self.location) if p)
        return f"{where}: {self.severity}: {self.message} [{self.rule}]" if where else f"{self.message} [{self.rule}]"


class UnreadableWorkbook(PlansheetError):
    """The input is not a workbook Plansheet will open (wrong type, damaged, unsafe or too big)."""

    def __init__(self, rule: Rule, message: str, file: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.file = file

    def as_issue(self) -> Issue:
        return Issue(self.rule, Severity.ERROR, self.message, file=self.file)


def has_errors(issues: list[Issue]) -> bool:
    return any(i.severity is Severity.ERROR for i in issues)
