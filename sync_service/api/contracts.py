"""The API's request and response models: they check every request before any work, and describe the API.

Each route declares its operation with `@operation(...)`: the query, body and form models it
takes, the model of its answer, its errors. The same declaration validates the request
(lengths, counts, 64-bit integers, nesting, allowed characters: a request beyond them is
refused with 400 naming the field before anything is read from the database) and generates
the OpenAPI 3.1 document (`sync_service.api.openapi`), so the description cannot drift from the
behaviour. Plan content (amounts, dates, lists) is checked by the validator, which names cells;
the models check only the shape and bounds of what arrives.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from flask import Blueprint, request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sync_service.api.caller import current_user
from sync_service.api.request_body import read_json
from sync_service.platform.context import schema as app_schema
from sync_service.platform.errors import NotFound, ServiceError

INT64 = 2**63 - 1
MAX_TEXT_CELL = 32_767  # Excel's longest cell text
MAX_ROW_WIDTH = 16_384  # Excel's widest sheet
MAX_PLAN_LINES = 1_000_000  # the highest template.max_lines an organisation may configure

ID_MAX = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL, so a larger one names nothing
Id = Annotated[int, Field(ge=0, le=ID_MAX)]
# One line of text a person typed (a comment, a name): no control characters. (Text with an unpaired
# surrogate is not a valid string for the models at all, so it is refused before these patterns.)
_SINGLE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"  # as addin.text_rule: no bidi overrides either
_MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"


def text(max_length: int, *, min_length: int = 0, multiline: bool = False) -> Any:
    """A text field of at most `max_length` characters without control characters (newlines if `multiline`)."""
    return Annotated[
        str,
        StringConstraints(
            min_length=min_length, max_length=max_length, pattern=_MULTI_LINE if multiline else _SINGLE_LINE
        ),
    ]


# A cell of a plan as a JSON client sends it: text, a finite number, a 64-bit whole number, true/false or null.
Cell = (
    Annotated[str, StringConstraints(max_length=MAX_TEXT_CELL)]
    | Annotated[int, Field(ge=-INT64, le=INT64)]
    | float
    | bool
    | None
)


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type lists `bool` itself (a plan cell does; an amount or an id does not)."""
    return annotation is bool or any(_admits_bool(a) for a in get_args(annotation))


class Model(BaseModel):
    """Requests refuse fields they do not know; numbers must be finite; true and false are never numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse true/false where a number, an amount or an id goes (pydantic would take true as 1)."""
        field_name = info.field_name or ""
        if isinstance(value, bool) and not _admits_bool(cls.model_fields[field_name].annotation):
            raise ValueError("true and false are not a number or an id here: send the number itself")
        return value


class Answer(BaseModel):
    """Answers may carry fields added after this description was written."""

    model_config = ConfigDict(extra="allow")


# --- requests ----------------------------------------------------------------------------------------


class BasedOn(Model):
    """The plan a submission was edited from: an approved submission (null or 0: none), or a master version."""

    submission: Id | None = None
    master_version: Id | None = None

    @model_validator(mode="after")
    def _one(self) -> BasedOn:
        if self.master_version is not None and self.submission is not None:
            raise ValueError("give submission or master_version, not both")
        return self


class SubmissionJson(Model):
    """A plan as JSON: `lines` keyed by column name, or `rows` with a header row, as a sheet holds them."""

    team: text(64, min_length=1)
    lines: (
        Annotated[list[Annotated[dict[text(64), Cell], Field(max_length=200)]], Field(max_length=MAX_PLAN_LINES)] | None
    ) = None
    rows: (
        Annotated[list[Annotated[list[Cell], Field(max_length=MAX_ROW_WIDTH)]], Field(max_length=MAX_PLAN_LINES + 1)]
        | None
    ) = None
    based_on: BasedOn | None = None  # null: the team had no approved plan; absent: not said

    @model_validator(mode="after")
    def _lines_or_rows(self) -> SubmissionJson:
        if (self.lines is None) == (self.rows is None):
            raise ValueError("send the plan as 'lines' (objects keyed by column name) or 'rows' (a header row first)")
        return self


class SubmissionForm(Model):
    """The form fields of a workbook upload (multipart, with the file in `file`)."""

    team: text(64, min_length=1)
    based_on_submission: Annotated[str, StringConstraints(max_length=20, pattern=r"^(\d{1,19}|none|)$")] | None = None
    based_on_version: Annotated[str, StringConstraints(max_length=20, pattern=r"^\d{0,19}$")] | None = None


class DecisionBody(Model):
    comment: text(2000, multiline=True) = ""
    step: text(40) | None = None  # the approval step the caller means to take (409 if it was taken since)


class YearCloseBody(Model):
    comment: text(1000, multiline=True) = ""


class YearState(Model):
    year: int
    label: str
    current: bool  # the year a request is about unless it names another
    months_locked: list[str]
    accruals_closed: list[str]
    closed: dict[str, Any] | None  # who closed it, when, why; None while it is open


class YearsAnswer(Model):
    years: list[YearState]


class TransferSide(Model):
    region: text(40)
    quarter: text(8)
    channel: text(100) | None = None  # "*" or none: all channels
    # The giving side only: the closed year before the transfer's own, to carry its unspent budget forward
    year: Annotated[int, Field(ge=1900, le=9999)] | text(6) | None = None


class TransferBody(Model):
    """Move `amount` (reporting currency) of allocation from one (region, quarter, channel) to another, and why."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    source: TransferSide = Field(alias="from")
    to: TransferSide
    amount: Annotated[str, StringConstraints(max_length=64)] | Annotated[int, Field(ge=-INT64, le=INT64)] | float
    reason: text(2000, multiline=True)


class NotificationsBody(Model):
    """The caller's own notification settings: where their email goes (null: their name, if an address), on or off."""

    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$")] | None = (
        None
    )
    enabled: bool | None = None


class BaselineBody(Model):
    name: text(120, min_length=1)
    comment: text(2000, multiline=True) = ""


class CycleBody(Model):
    """Open a reforecast cycle: its name, the last closed month (m01..m12, a month label) and the deadline."""

    name: text(120, min_length=1)
    through: text(20, min_length=1)
    deadline: dt.date
    comment: text(2000, multiline=True) = ""


class ScenarioBody(Model):
    """A what-if scenario: its name and where it starts (the approved master, or the latest estimate)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: text(120, min_length=1)
    origin: Literal["master", "estimate"] = Field("master", alias="from")
    comment: text(2000, multiline=True) = ""


class ScenarioChanges(Model):
    """Changes to a scenario's newest lines (scale, move, drop), all or none; `revision`: the one they were made on."""

    revision: Annotated[int, Field(ge=1, le=ID_MAX)] | None = None
    changes: Annotated[list[dict[text(40), Any]], Field(min_length=1, max_length=200)]


class ScenarioPromotion(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    target: Literal["master", "allocations"] = Field(alias="as")
    comment: text(2000, multiline=True) = ""


class ScenarioUploadQuery(Model):
    filename: text(255) | None = None


class CompareQuery(Model):
    by: text(300) | None = None
    period: Literal["year", "quarter", "month"] | None = None


class BudgetQuery(Model):
    baseline: Annotated[int, Field(ge=1, le=ID_MAX)] | None = None  # default: the newest
    by: text(300) | None = None
    period: Literal["year", "quarter", "month"] | None = None


class MasterQuery(Model):
    format: Literal["json", "xlsx"] = "json"
    as_of: dt.date | None = None


MAX_PAGE = 1000  # the most items one page of a list carries
Cursor = Annotated[str, StringConstraints(max_length=80, pattern=r"^[A-Za-z0-9 ._:#/-]*$")]


class PageQuery(Model):
    """One page of a list: at most `limit` items, after the item whose cursor is `after` (the last page's `next`)."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 500
    after: Cursor | None = None


class SubmissionsQuery(PageQuery):
    team: text(64) | None = None


class AuditQuery(Model):
    limit: Annotated[int, Field(ge=1, le=5000)] = 200
    after: Cursor | None = None  # the page after the event with this id (events come newest first)


class TransfersQuery(PageQuery):
    pass


class ApprovalsQuery(PageQuery):
    pass


class RollupQuery(Model):
    by: text(300) | None = None
    period: Literal["month", "quarter", "year"] | None = None
    measure: text(64) | None = None


class YearOverYearQuery(Model):
    by: text(300) | None = None
    period: Literal["month", "quarter", "year"] | None = None
    against: Annotated[str, StringConstraints(max_length=6, pattern=r"^(FY|fy)?[0-9]{4}$")] | None = None


class VarianceQuery(Model):
    by: text(300) | None = None
    as_of: dt.date | None = None


class AllocationItem(Model):
    region: text(40)
    quarter: text(8)
    channel: text(100) | None = None
    # null: remove the cell (PATCH only)
    amount: Annotated[str, StringConstraints(max_length=64)] | Annotated[int, Field(ge=-INT64, le=INT64)] | float | None


class AllocationsBody(Model):
    # A cell that is not an object is the domain's to report (422 with every cell at once), so it passes here.
    allocations: Annotated[
        list[AllocationItem | Annotated[str, StringConstraints(max_length=200)] | int | float | bool | None],
        Field(max_length=10_000),
    ]
    comment: text(1000, multiline=True) = ""
    replace: bool = False  # PUT: drop the cells left out even where approved plans are under them
    # The revision the change was made on: 409, nothing changed, when another was written since.
    revision: Annotated[int, Field(ge=0, le=INT64)] | None = None


DateOrder = Literal["dmy", "mdy"]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")]


class ExportQuery(Model):
    """How an export (actual spend, POs, invoices) is read: its preset or saved profile (default: from its header)."""

    filename: text(255) | None = None
    date_order: DateOrder | None = None  # how 04/05/2026 reads when no day above 12 says
    preset: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")] | None = None  # netsuite_purchase_orders
    profile: ProfileName | None = None  # a saved mapping (an import profile) by name


FiscalMonthName = Annotated[str, StringConstraints(pattern=r"^m(0[1-9]|1[0-2])$")]


class SpendQuery(Model):
    by: Literal["line", "team", "region"] = "team"
    month: FiscalMonthName | None = None  # the accrual at this month's end (default: the month being closed)


class PurchaseOrdersQuery(PageQuery):
    status: Literal["open", "closed", "cancelled"] | None = None


class JournalQuery(Model):
    entries: Literal["both", "accrual", "reversal"] = "both"


Preset = Literal["salesforce", "hubspot", "marketo", "plansheet"]
SOURCE = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$"


class OutcomesQuery(Model):
    """How to read a results export: its preset (found from the header when not given), its source, a mapping."""

    preset: Preset | None = None
    source: Annotated[str, StringConstraints(pattern=SOURCE)] | None = None  # default: the preset's name
    mapping: text(4000) | None = None  # JSON: {"leads": "Net new names", "campaign_code": "Code", ...}
    month: text(40) | None = None  # the fiscal month of every row, for an export without a month column
    date_order: DateOrder | None = None
    filename: text(255) | None = None
    profile: ProfileName | None = None  # a saved mapping (POST /api/v1/import-profiles/results) instead of `mapping`


Count = Annotated[float, Field(allow_inf_nan=False)] | Annotated[str, StringConstraints(max_length=64)]


class OutcomeRowIn(Model):
    line_id: text(255) | None = None
    campaign_code: text(255) | None = None
    campaign: text(255) | None = None
    month: text(40) | dt.date | None = None
    currency: text(3) | None = None
    leads: Count | None = None
    mqls: Count | None = None
    sals: Count | None = None
    opportunities: Count | None = None
    won: Count | None = None
    pipeline: Count | None = None
    revenue: Count | None = None


class OutcomesPush(Model):
    """Results an integration pushes: one source, rows keyed by line ID, campaign code or campaign name."""

    source: Annotated[str, StringConstraints(pattern=SOURCE)]
    month: text(40) | None = None
    rows: Annotated[list[OutcomeRowIn], Field(min_length=1, max_length=200_000)]


class OutcomesImport(Answer):
    id: int
    source: str
    preset: str
    filename: str | None
    imported_at: str
    months: list[str]
    metrics: list[str]
    rows: int
    matched: int
    unmatched: list[dict[str, Any]]
    unmatched_rows: int
    ambiguous: list[dict[str, Any]]
    spread: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    skipped_rows: int
    lines: int
    replaces: list[dict[str, Any]]
    unchanged: bool


class OutcomesImports(Answer):
    imports: list[dict[str, Any]]


class PerformanceQuery(Model):
    by: text(300) | None = None
    period: Literal["year", "quarter", "month"] | None = None


class PeriodsBody(Model):
    """Fiscal months by name (m01..m12), quarter (Q1..Q4) or label (Feb 2026), or every month `through` one."""

    months: Annotated[list[text(40, min_length=1)], Field(min_length=1, max_length=100)] | None = None
    through: text(40, min_length=1) | None = None
    reopen: bool = False  # unlock: reopen months an ended reforecast cycle closed (with a reason)
    reason: text(2000, multiline=True) | None = None

    @model_validator(mode="after")
    def _one(self) -> PeriodsBody:
        if (self.months is None) == (self.through is None):
            raise ValueError('send {"months": ["m01", "Q1", ...]} or {"through": "m03"}')
        return self


class SheetCreateBody(Model):
    editors: Annotated[
        list[Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$")]],
        Field(max_length=100),
    ] = []
    replace: bool = False


class PushBody(Model):
    spreadsheet_id: Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


Argument = (
    Cell | Annotated[list[Annotated[list[Cell], Field(max_length=MAX_ROW_WIDTH)]], Field(max_length=MAX_PLAN_LINES + 1)]
)


class FunctionCall(Model):
    name: text(64, min_length=1)
    args: Annotated[list[Argument], Field(max_length=32)] = []


class BatchBody(Model):
    calls: Annotated[list[FunctionCall], Field(max_length=5000)]


class FunctionBody(Model):
    args: Annotated[list[Argument], Field(max_length=32)] = []


class Grant(Model):
    step: text(40, min_length=1)
    region: text(40, min_length=1) = "*"  # "*": every region


class TokenBody(Model):
    name: text(120, min_length=1)
    role: Literal["marketer", "finance", "admin"]
    teams: Annotated[list[text(64, min_length=1)], Field(max_length=200)] = []
    approves: Annotated[list[Grant], Field(max_length=100)] = []  # approval steps the user may take


# --- answers -------------------------------------------------------------------------------------------


class Health(Answer):
    status: str
    database: str


class Ready(Answer):
    status: str
    database: str
    schema_revision: str
    redis: str


class Report(Answer):
    errors: int
    warnings: int
    issues: list[dict[str, Any]]


class Submission(Answer):
    id: int
    team: str
    status: Literal["submitted", "approved", "rejected", "superseded", "stale"]
    submitted_by: str | None
    submitted_at: str
    source: str
    filename: str | None
    sha256: str
    lines: int
    cycle: int | None = None  # the reforecast cycle open when it was submitted
    report: Report


class Decided(Submission):
    master_version: int | None
    over_allocation: list[dict[str, Any]]


class Submissions(Answer):
    submissions: list[Submission]
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class HeldPlan(Answer):
    team: str
    submission: int
    version: int
    approved_at: str


class MasterAnswer(Answer):
    version: int
    master_version: int
    actuals_import: int | None
    allocation_revision: int
    teams: list[HeldPlan]
    lines: list[dict[str, Any]]


class Version(Answer):
    version: int
    team: str
    submission: int
    approved_by: str
    approved_at: str


class Versions(Answer):
    versions: list[Version]


class MasterKey(Answer):
    """The ids the live answers are computed from; any change means the cells should ask again."""

    master_version: int
    allocation_revision: int
    actuals_import: int
    outcomes_import: int
    baseline: int  # the newest budget baseline (PS_BASELINE's answers)
    spend_import: int  # the newest purchase order or invoice import (PS_COMMITTED, PS_INVOICED, PS_ACCRUED)
    accruals_closed: int  # how many fiscal months' accruals are closed


class TeamChanges(Answer):
    team: str
    from_submission: int | None
    to_submission: int | None
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[dict[str, Any]]


class Diff(Answer):
    from_: int = Field(alias="from")
    to: int
    teams: list[TeamChanges]


class Event(Answer):
    id: int
    at: str
    user: str | None
    action: str
    target: str
    detail: dict[str, Any] | None


class Audit(Answer):
    events: list[Event]
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class TransferAnswer(Answer):
    id: int
    year: int  # the fiscal year it belongs to (receives in); `from.year` is the year it gives from
    status: Literal["requested", "approved", "rejected"]
    amount: str
    reason: str
    asked_by: str | None
    asked_at: str
    steps: list[Literal["giving", "finance"]]
    waiting_for: list[str]
    decisions: list[dict[str, Any]]
    allocation_revision: int | None
    over_allocation: list[str] = []  # when this answer's approval moved it: what it leaves over allocation


class Transfers(Answer):
    transfers: list[TransferAnswer]
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class BaselineAnswer(Answer):
    id: int
    name: str
    locked_by: str | None
    locked_at: str
    master_version: int
    allocation_revision: int
    comment: str


class NotificationsAnswer(Answer):
    email: str | None
    address: str | None
    enabled: bool


class CycleTeam(Answer):
    team: str
    status: str
    submission: int | None
    submitted_at: str | None


class CycleAnswer(Answer):
    id: int
    name: str
    status: Literal["open", "closed"]
    closed_through: str
    closed_months: list[str]
    deadline: str
    opened_by: str | None
    opened_at: str
    closed_at: str | None
    comment: str
    teams: list[CycleTeam]


class Cycles(Answer):
    cycles: list[CycleAnswer]


class ScenarioAnswer(Answer):
    id: int
    name: str
    origin: str
    master_version: int
    status: Literal["open", "promoted", "discarded"]
    revision: int
    lines: int
    made_by: str | None
    made_at: str
    comment: str
    # When it ended, and how: {"as": "master", "submissions": {team: submission id}} waiting in their
    # approval chains, or {"as": "allocations", "allocation_revision": N}; a discarded one's comment.
    ended: dict[str, Any] | None


class Scenarios(Answer):
    scenarios: list[ScenarioAnswer]


class ScenarioComparison(Answer):
    scenario: ScenarioAnswer
    by: list[str]
    period: str
    currency: str
    total: dict[str, str]
    rows: list[dict[str, Any]]
    lines: dict[str, list[dict[str, Any]]]


class Baselines(Answer):
    baselines: list[BaselineAnswer]


class About(Answer):
    master_version: int
    actuals_import: int | None
    allocation_revision: int
    outcomes_import: int | None = None
    spend_import: int | None = None


class BudgetAnswer(About):
    baseline: BaselineAnswer
    by: list[str]
    period: str
    currency: str
    actual_spend_by_month: bool
    closed_months: list[str]  # m01 up to the first open month
    locked_months: list[str]  # every locked month (a month locked after an open one is locked, not closed)
    rows: list[dict[str, Any]]


class PerformanceAnswer(About):
    by: list[str]
    period: str
    currency: str
    actual_spend_by_month: bool
    measures: list[dict[str, str]]
    rows: list[dict[str, Any]]


class RollupAnswer(About):
    by: list[str]
    period: str
    measure: str
    currency: str | None
    rows: list[dict[str, str | int | None]]


class YearOverYearAnswer(About):
    year: str  # FY2028: the year the request is about
    against: str  # the earlier year it is compared with
    against_version: int
    by: list[str]
    period: str
    currency: str
    against_closed_months: list[str]  # the earlier year's months its estimate takes as booked
    rows: list[dict[str, Any]]


class VarianceAnswer(About):
    by: list[str]
    as_of: str
    closed_months: int
    actual_source: Literal["finance import", "plans"]
    currency: str
    rows: list[dict[str, str | int | float | None]]


class AllocationCell(Answer):
    region: str
    quarter: str
    channel: str
    amount: str
    cents: int


class Allocations(Answer):
    revision: int
    source: str
    set_by: str | None
    set_at: str | None
    currency: str
    allocations: list[AllocationCell]


class ActualsImport(Answer):
    id: int
    filename: str | None
    imported_at: str
    read_by: dict[str, Any] | None = None  # the preset or profile that read the export, and the columns not read
    rows: int
    matched: int
    unmatched: list[dict[str, Any]]
    ambiguous: list[dict[str, Any]]
    spread: list[dict[str, Any]]
    lines: int
    total: str
    currency: str


ImportKind = Literal["purchase_orders", "invoices", "actuals", "results"]


class ImportProfileBody(Model):
    """A saved column mapping: field -> the export's header; a field's words; the date order; remembered or not."""

    name: ProfileName | None = None  # POST: the new profile's name (PUT and DELETE name it in the path)
    fields: Annotated[dict[text(40), text(200)], Field(max_length=60)] = {}
    values: Annotated[dict[text(40), Annotated[dict[text(200), text(40)], Field(max_length=200)]],
                      Field(max_length=20)] = {}  # fmt: skip
    date_order: DateOrder | None = None
    remember: bool = False
    comment: text(1000, multiline=True) = ""


class ImportProfilesQuery(Model):
    kind: ImportKind | None = None


class ImportProfileAnswer(Answer):
    kind: str
    name: str
    fields: dict[str, str]
    values: dict[str, dict[str, str]]
    date_order: str | None
    remember: bool
    retired: bool
    revision: int
    saved_by: str | None
    saved_at: str


class ImportProfiles(Answer):
    profiles: list[ImportProfileAnswer]


class ImportPresets(Answer):
    presets: list[dict[str, Any]]  # every preset by kind: its name, label, the headers it reads, its words


class SpendImportAnswer(Answer):
    """What an import of POs or invoices found: new, changed and unchanged rows, and the rows it could not match."""

    read_by: dict[str, Any] | None = None  # the preset or profile that read the export, and the columns not read

    id: int | None  # None: nothing was new, nothing was stored
    kind: Literal["purchase_orders", "invoices"]
    filename: str | None
    rows: int
    new: int
    changed: int
    unchanged: int
    matched: int
    unmatched: list[dict[str, Any]]


class SpendAnswer(About):
    by: Literal["line", "team", "region"]
    month: str
    currency: str
    purchase_orders_tracked: bool
    rows: list[dict[str, Any]]
    totals: dict[str, str]
    over_plan: list[dict[str, Any]]
    over_po: list[dict[str, Any]]
    unmatched_purchase_orders: list[dict[str, Any]]
    unmatched_invoices: list[dict[str, Any]]


class PurchaseOrders(About):
    purchase_orders: list[dict[str, Any]]
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class AccrualAnswer(About):
    month: str
    label: str
    month_end: str
    closed: bool
    closed_at: str | None
    currency: str
    entries: list[dict[str, Any]]
    by_team: list[dict[str, Any]]
    by_region: list[dict[str, Any]]
    total: str
    pack: dict[str, Any] | None = None  # a close: the job building the month's management pack (null: none)


class ApprovalQueue(Answer):
    submissions: list[dict[str, Any]]  # waiting for a step the caller may take
    transfers: list[dict[str, Any]]  # waiting for the caller's decision
    in_review: list[dict[str, Any]]  # every submission in review the caller may read, with its place in its chain
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class AccrualMonths(Answer):
    month: str  # the month being closed
    closed: list[dict[str, Any]]


class Period(Answer):
    month: str
    label: str
    quarter: str
    locked: bool
    locked_at: str | None


class Periods(Answer):
    periods: list[Period]


class Sheet(Answer):
    team: str
    spreadsheet_id: str
    url: str
    created_at: str


class Sheets(Answer):
    sheets: list[Sheet]


class SheetCreated(Sheet):
    requests: int


class Pushed(Answer):
    spreadsheet_id: str
    master_version: int
    sheets: dict[str, int]
    requests: int
    bytes_sent: int
    already_pushed: bool = False


class JobStep(Answer):
    state: Literal["queued", "started", "retrying", "succeeded", "failed"]
    attempt: int
    at: str
    worker: str | None = None


class JobAnswer(Answer):
    """A background job: its state, attempts, and its result, error or file."""

    id: str
    kind: str
    title: str
    status: Literal["queued", "started", "retrying", "succeeded", "failed"]
    attempts: int
    requested_by: str | None = None
    created_at: str
    updated_at: str
    result: dict[str, Any] | None = None
    error: str | None = None
    next_attempt_at: str | None = None
    issues: list[dict[str, Any]] | None = None  # a refused input's problems (cell, rule, message)
    file: str | None = None
    history: list[JobStep]


class JobList(Answer):
    jobs: list[JobAnswer]
    next: str | None = None  # the cursor of the next page (send it as ?after=); null: this is the last page


class JobsQuery(Model):
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    after: Cursor | None = None  # the page after the job with this id (jobs come newest first)


class WorkbookJobBody(Model):
    as_of: dt.date | None = None


class PackBody(Model):
    """Build a month's management pack: the month (default: the newest closed one), and whether to send it."""

    month: Annotated[str, StringConstraints(pattern=r"^[mM](0[1-9]|1[0-2])$")] | None = None
    email: bool = False  # email it to the subscribers too


class PackAnswer(Answer):
    """A management pack as built: its month, whose view, what its figures came from, and its files."""

    id: int
    fiscal_year: int
    month: str
    label: str  # the month by name ("Feb 2026")
    reason: Literal["close", "request"]  # built when the month's accrual closed, or when finance asked
    built_for: str | None
    teams: list[str] | None  # null: the whole organisation's figures
    covers: str
    created_at: str
    job: str
    about: dict[str, Any]
    workbook: str
    pdf: str | None  # null: no PDF was made (`pdf_note` says why)
    pdf_note: str | None


class Packs(Answer):
    packs: list[PackAnswer]
    subscribed: bool  # whether the caller receives the pack by email


class PackSubscriptionBody(Model):
    subscribed: bool


class PackSubscriptionAnswer(Answer):
    subscribed: bool
    address: str | None  # where the pack goes


class ExcelError(Answer):
    code: str
    message: str


class FunctionAnswer(Answer):
    result: list[list[Any]] | None = None
    error: ExcelError | None = None


class BatchAnswer(Answer):
    results: list[FunctionAnswer]


class Catalogue(Answer):
    functions: list[dict[str, Any]]


class TokenInfo(Answer):
    id: str
    created_at: str
    revoked_at: str | None


class UserInfo(Answer):
    name: str
    role: str
    teams: list[str]
    tokens: list[TokenInfo]


class Users(Answer):
    users: list[UserInfo]


class TokenCreated(Answer):
    name: str
    role: str
    teams: list[str]
    token: str


class Revoked(Answer):
    id: str
    revoked_at: str


# --- the declaration -----------------------------------------------------------------------------------


@dataclass
class Operation:
    """One route as the API describes it."""

    method: str
    path: str  # OpenAPI form: /api/v1/submissions/{submission_id}
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    raw: tuple[str, ...] = ()  # media types of a raw request body (a CSV or xlsx file)
    produces: str = "application/json"
    auth: bool = True
    path_params: dict[str, str] = field(default_factory=dict)  # name -> "integer" | "string"
    idempotent_key: bool = False
    body_required: bool = True
    name: str = ""
    scopes: tuple[str, ...] = (
        "full",
    )  # the token scopes that may call it (`sync_service.platform.storage.TokenScope`)
    accepted: type[BaseModel] | None = None  # the 202 answer when the client sends Prefer: respond-async


OPERATIONS: list[Operation] = []
YEAR = "year"  # the query parameter every route takes: the fiscal year the request is about
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_SHOWN = re.compile(r"<(?:any\([^)]*\)|path):(\w+)>")  # converters a message leaves out


def operation(
    bp: Blueprint,
    method: str,
    rule: str,
    summary: str,
    *,
    response: type[BaseModel] | None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    raw: tuple[str, ...] = (),
    produces: str = "application/json",
    auth: bool = True,
    gate: Callable[[], None] | None = None,
    idempotent_key: bool = False,
    body_required: bool = True,
    paths: tuple[str, ...] = (),
    scopes: tuple[str, ...] = ("full",),
    accepted: type[BaseModel] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route once: its Flask rule on `bp` and its contract; the view gets `query=`, `body=`, `form=`.

    `rule` is the Flask rule (with its converters); the OpenAPI path is made from it.

    Order, as HTTP means it: authentication (401), then `gate` (403: a role check that needs no
    input), then the path's ids, query and body (400 naming the field), then the view.
    `paths` lists the OpenAPI paths when one Flask rule serves several (an `any(...)` part).
    `scopes` are the token scopes it accepts: a read-only add-in token (`functions`) reaches only the
    operations that name it, and is refused (403, naming its scope) by every other one.
    """
    shown = _SHOWN.sub(lambda m: "<" + m.group(1) + ">", rule)  # the rule as an error message names it

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        kinds = {name: conv for conv, name in _PARAM.findall(rule)}
        for path in paths or (_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule),):
            OPERATIONS.append(
                Operation(
                    method.upper(),
                    path,
                    summary,
                    response,
                    status,
                    errors,
                    query,
                    body,
                    form,
                    raw,
                    produces,
                    auth,
                    {n: "integer" if c == "int" else "string" for n, c in kinds.items() if "{" + n + "}" in path},
                    idempotent_key,
                    body_required,
                    view.__name__,
                    scopes,
                    accepted,
                )
            )

        @functools.wraps(view)
        def checked(**kwargs: Any) -> Any:
            if auth:
                current_user(scopes, f"{method.upper()} {shown}")
            if gate is not None:
                gate()
            for name, value in kwargs.items():
                if isinstance(value, int) and not 0 <= value <= ID_MAX:  # beyond any id the database can hold
                    raise NotFound(f"there is no {name.replace('_', ' ')} {value}")
            if YEAR in request.args:
                app_schema()  # the year every route takes: 400 when it is not a year, 404 when not described
            if query is not None:
                given = {k: v for k, v in request.args.to_dict(flat=True).items() if k != YEAR}
                kwargs["query"] = validated(query, given, "query")
            if form is not None and request.mimetype == "multipart/form-data":
                kwargs["form"] = validated(form, request.form.to_dict(flat=True), "form")
                kwargs["body"] = None
            elif body is not None:
                data = read_json(request.get_data(cache=True), request.mimetype, required=body_required)
                kwargs["body"] = validated(body, {} if data is None else data, "body")
                if form is not None:
                    kwargs["form"] = None
            return view(**kwargs)

        bp.add_url_rule(rule, view.__name__, checked, methods=[method.upper()])
        return checked

    return wrap


_UNION_MEMBER = re.compile(r"^(constrained-\w+|int|float|bool|str|none|function-\w+|json-or-python\[.*\]|.*\[.*\])$")


def _location(where: str, loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a field path: body.lines[3].m01 (union member names left out)."""
    out = where
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_MEMBER.match(str(part)) and part not in ("AllocationItem",):
            out += f".{part}"
    return out


def validated(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """`data` as `model`, or 400 listing every field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues: dict[str, dict[str, str]] = {}
        for e in exc.errors(include_url=False):
            at = _location(where, e["loc"])
            if at in issues:  # the same field failing each member of a union: one issue is enough
                continue
            shown = e.get("input")
            got = f" (got {shown!r})" if isinstance(shown, str | int | float) and len(repr(shown)) <= 60 else ""
            issues[at] = {"at": at, "rule": f"request.{e['type']}", "message": e["msg"] + got}
            if len(issues) == 50:
                break
        first = next(iter(issues.values()))
        raise ServiceError(
            f"the request's {where} is not valid: {first['at']}: {first['message']}", issues=list(issues.values())
        ) from None
    except RecursionError:
        raise ServiceError(f"the request's {where} is nested too deeply") from None
