"""The plan schema: the one declarative definition of a plan line.

Everything else derives from `PlanSchema`: the Excel and Google Sheets templates, the
reader (which maps header labels to columns), the validator, the master workbook and the
API. Adding a column is a change here plus tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

from sheet_templates.calendar import FiscalCalendar
from sheet_templates.cells import column_letter
from sheet_templates.config import OrgConfig

FORMAT_VERSION = 1  # bump when the template layout changes in a way old readers cannot read
PLAN_SHEET = "Plan"
LISTS_SHEET = "Lists"
SUMMARY_SHEET = "Summary"
INSTRUCTIONS_SHEET = "Instructions"
HEADER_ROW = 1
FIRST_DATA_ROW = HEADER_ROW + 1
MAX_TEXT = 255  # longest text a plan cell may hold

# Defined names that carry the template's identity inside the workbook.
NAME_TEMPLATE_ID = "PS_TEMPLATE_ID"
NAME_TEMPLATE_VERSION = "PS_TEMPLATE_VERSION"
NAME_REGION = "PS_REGION"
NAME_FISCAL_YEAR = "PS_FISCAL_YEAR"
# Written by the service into a team's pre-filled template: the approved submission the lines come
# from (0: the team had none), so a re-submitted plan says what it was edited from.
NAME_BASED_ON = "PS_BASED_ON"
METADATA_NAMES = (NAME_TEMPLATE_ID, NAME_TEMPLATE_VERSION, NAME_REGION, NAME_FISCAL_YEAR)


class ColumnType(StrEnum):
    """What a column holds; decides parsing, validation, formats and dropdowns."""

    ID = "id"
    TEXT = "text"
    CHOICE = "choice"
    DATE = "date"
    MONEY = "money"  # integer cents in the plan table, in the line's currency
    COUNT = "count"  # a whole number
    FORMULA = "formula"  # computed by the template; never read as input


class Role(StrEnum):
    """The part a column plays in a plan line."""

    KEY = "key"
    DIMENSION = "dimension"
    DATE = "date"
    MONTH = "month"
    SPEND = "spend"
    KPI = "kpi"
    NOTE = "note"
    COMPUTED = "computed"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the Plan sheet."""

    name: str
    label: str
    type: ColumnType
    role: Role
    required: bool = False
    choices: tuple[str, ...] | None = None
    list_name: str | None = None  # the defined name of its dropdown list in the Lists sheet
    help: str = ""
    width: float = 14
    index: int = 0  # 1-based position in the Plan sheet
    formula: str | None = None  # for FORMULA columns: an Excel formula with {row}
    month: int | None = None  # fiscal month index for MONTH columns
    quarter: int | None = None  # fiscal quarter for MONTH and quarter-total columns

    @property
    def letter(self) -> str:
        return column_letter(self.index)

    @property
    def is_input(self) -> bool:
        return self.type is not ColumnType.FORMULA

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": str(self.type),
            "allowed": list(self.choices) if self.choices is not None else None,
            "required": self.required,
            "column": self.letter,
            "input": self.is_input,
            "formula": self.formula.format(row=FIRST_DATA_ROW) if self.formula else None,
            "help": self.help,
        }


@dataclass(frozen=True, slots=True)
class TemplateMeta:
    """The identity a template carries as defined names."""

    template_id: str
    version: str
    region: str
    fiscal_year: int


@dataclass(frozen=True)
class PlanSchema:
    """The columns of a plan and the calendar and configuration they derive from."""

    config: OrgConfig
    calendar: FiscalCalendar
    columns: tuple[Column, ...]
    _by_name: dict[str, Column] = field(repr=False, default_factory=dict)
    _years: dict[int, PlanSchema] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def for_year(self, year: int) -> PlanSchema:
        """The schema of fiscal year `year` (this one for its own year), as the organisation file describes it.

        Made once per year from `OrgConfig.for_year`; ConfigError naming the fix for a year the file does not describe.
        """
        if year == self.calendar.year:
            return self
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = build_schema(self.config.for_year(year))
        return found

    def year_before(self) -> PlanSchema | None:
        """The schema of the fiscal year before this one, or None when the organisation file does not describe it."""
        if self.calendar.year - 1 not in self.config.years:
            return None
        return self.for_year(self.calendar.year - 1)

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def input_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.is_input)

    @property
    def formula_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.is_input)

    def of_type(self, *types: ColumnType) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.type in types)

    @property
    def month_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role is Role.MONTH)

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.role is Role.DIMENSION)

    @property
    def template_id(self) -> str:
        return f"plansheet.plan/{self.config.org_id}"

    @property
    def version(self) -> str:
        """FORMAT_VERSION plus a fingerprint of everything a filled template's shape depends on."""
        shape = {
            "format": FORMAT_VERSION,
            "fy": [self.calendar.year, self.calendar.start_month, self.calendar.named_for],
            "columns": [[c.name, c.label, str(c.type), c.required, c.choices] for c in self.columns],
        }
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
        return f"{FORMAT_VERSION}.{digest[:10]}"

    def meta_for(self, region: str) -> TemplateMeta:
        return TemplateMeta(self.template_id, self.version, region, self.calendar.year)

    def describe(self) -> dict[str, object]:
        """The schema as data: what `plansheet templates schema --json` prints."""
        return {
            "template_id": self.template_id,
            "template_version": self.version,
            "fiscal_year": self.calendar.year,
            "fiscal_months": [{"name": m.name, "label": m.label, "quarter": m.quarter} for m in self.calendar.months],
            "reporting_currency": self.config.reporting_currency,
            "sheet": PLAN_SHEET,
            "header_row": HEADER_ROW,
            "columns": [c.describe() for c in self.columns],
        }


def build_schema(config: OrgConfig) -> PlanSchema:
    """Derive the plan's columns, in Plan-sheet order, from the organisation's configuration."""
    cal = FiscalCalendar(config.fiscal_year, config.start_month, config.year_named_for)
    lists = config
    cols: list[Column] = [
        Column(
            "line_id",
            "Line ID",
            ColumnType.ID,
            Role.KEY,
            required=True,
            help="Stable id of the plan line; keep it when you edit the line.",
            width=12,
        ),
        Column(
            "region",
            "Region",
            ColumnType.CHOICE,
            Role.DIMENSION,
            required=True,
            choices=lists.regions,
            list_name="ps_regions",
            width=10,
        ),
        Column(
            "business_unit",
            "Business unit",
            ColumnType.CHOICE,
            Role.DIMENSION,
            required=True,
            choices=lists.business_units,
            list_name="ps_business_units",
        ),
        Column("team", "Team", ColumnType.TEXT, Role.DIMENSION, required=True),
        Column("campaign", "Campaign", ColumnType.TEXT, Role.DIMENSION, required=True, width=24),
        Column(
            "campaign_code",
            "Campaign code",
            ColumnType.TEXT,
            Role.DIMENSION,
            help="The code finance's system books spend against; used to match actuals.",
        ),
        Column(
            "crm_campaign_id",
            "CRM campaign ID",
            ColumnType.TEXT,
            Role.DIMENSION,
            help="The CRM's id of the campaign (Salesforce's 15- or 18-character Campaign ID); results match it first.",
            width=20,
        ),
        Column(
            "channel",
            "Channel",
            ColumnType.CHOICE,
            Role.DIMENSION,
            required=True,
            choices=lists.channels,
            list_name="ps_channels",
        ),
        Column("activity", "Activity", ColumnType.TEXT, Role.DIMENSION, width=18),
        Column("owner", "Owner", ColumnType.TEXT, Role.DIMENSION, required=True, width=18),
        Column(
            "currency",
            "Currency",
            ColumnType.CHOICE,
            Role.DIMENSION,
            required=True,
            choices=config.currencies,
            list_name="ps_currencies",
            width=10,
        ),
        Column(
            "status",
            "Status",
            ColumnType.CHOICE,
            Role.DIMENSION,
            required=True,
            choices=lists.statuses,
            list_name="ps_statuses",
            width=12,
        ),
        Column(
            "start_date",
            "Start date",
            ColumnType.DATE,
            Role.DATE,
            width=12,
            help=f"Inside {cal.label}: {cal.start:%d %b %Y} to {cal.end:%d %b %Y}.",
        ),
        Column("end_date", "End date", ColumnType.DATE, Role.DATE, width=12),
    ]
    cols += [
        Column(
            m.name,
            m.label,
            ColumnType.MONEY,
            Role.MONTH,
            month=m.index,
            quarter=m.quarter,
            width=12,
            help=f"Planned spend in {m.label} (fiscal month {m.index}, Q{m.quarter}), in the line's currency.",
        )
        for m in cal.months
    ]
    cols += [
        Column(
            "committed",
            "Committed spend",
            ColumnType.MONEY,
            Role.SPEND,
            help="Spend under contract or purchase order, not yet invoiced.",
        ),
        Column("actual", "Actual spend", ColumnType.MONEY, Role.SPEND, help="Spend invoiced to date."),
        Column("leads", "Expected leads", ColumnType.COUNT, Role.KPI, width=12),
        Column("mqls", "Expected MQLs", ColumnType.COUNT, Role.KPI, width=12),
        Column("pipeline", "Expected pipeline", ColumnType.MONEY, Role.KPI),
        Column("revenue", "Expected revenue", ColumnType.MONEY, Role.KPI),
    ]
    cols += [
        Column(k.name, k.label, ColumnType.MONEY if k.type == "money" else ColumnType.COUNT, Role.KPI)
        for k in config.extra_kpis
    ]
    cols.append(Column("notes", "Notes", ColumnType.TEXT, Role.NOTE, width=30))
    cols = [_at(c, i + 1) for i, c in enumerate(cols)]
    cols += _computed(cols, cal, config.reporting_currency)
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        from sheet_templates.errors import ConfigError

        raise ConfigError("a KPI in [[kpis]] reuses the name of a built-in column")
    return PlanSchema(config, cal, tuple(cols))


def _at(column: Column, index: int) -> Column:
    return dataclasses.replace(column, index=index)


def _computed(cols: list[Column], cal: FiscalCalendar, reporting: str) -> list[Column]:
    """The locked formula columns: row total, plan-vs-actual variance and quarters in the reporting currency."""
    by = {c.name: c for c in cols}
    months = [c for c in cols if c.role is Role.MONTH]
    first, last = months[0].letter, months[-1].letter
    cur, actual = by["currency"].letter, by["actual"].letter
    n = len(cols)
    out = [
        Column(
            "planned_total",
            "Planned total",
            ColumnType.FORMULA,
            Role.COMPUTED,
            index=n + 1,
            formula=f"=SUM({first}{{row}}:{last}{{row}})",
            help="Sum of the twelve months.",
        ),
    ]
    total = column_letter(n + 1)
    out.append(
        Column(
            "variance",
            "Plan vs actual",
            ColumnType.FORMULA,
            Role.COMPUTED,
            index=n + 2,
            formula=f"={total}{{row}}-{actual}{{row}}",
            help="Planned total minus actual spend; negative (red) means over-spent.",
        )
    )
    for q in range(1, 5):
        qm = [c for c in months if c.quarter == q]
        out.append(
            Column(
                f"q{q}_reporting",
                f"Q{q} planned ({reporting})",
                ColumnType.FORMULA,
                Role.COMPUTED,
                index=n + 2 + q,
                quarter=q,
                width=14,
                # The money grain (docs/money.md): each month converted and rounded to the cent, then summed.
                formula="=IFERROR("
                + "+".join(f"ROUND({m.letter}{{row}}*VLOOKUP({cur}{{row}},ps_fx_rates,2,FALSE),2)" for m in qm)
                + ",0)",
                help=f"Planned spend in Q{q} in {reporting}: each month converted at the plan rate, to the cent.",
            )
        )
    return out
