"""Storage behind one module: SQLAlchemy 2 models, the engine, and every write as one transaction.

SQLite is the embedded default (WAL, busy timeout, foreign keys on); PostgreSQL by URL.
History is appended, never updated in place: a submission is immutable, and what happens
to it is a `Decision` row; every action is an `AuditEvent`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    text,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker


class Role(StrEnum):
    MARKETER = "marketer"  # submits and reads its own teams' plans
    FINANCE = "finance"  # reads everything, approves, sets allocations, imports actuals
    ADMIN = "admin"  # manages users and tokens


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Team(Base):
    """A planning team: one region and business unit, owner of one plan."""

    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    region: Mapped[str] = mapped_column(String(40))
    business_unit: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(120))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # For the dashboard's login: a salted, slow hash (werkzeug's scrypt); None: API tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)  # None: the name, when it is an address
    notify: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # email notices on
    teams: Mapped[list[Team]] = relationship(secondary="user_teams")
    # The approval steps (region lead, controller, ...) the user may take; loaded with the user.
    grants: Mapped[list[ApproverGrant]] = relationship(lazy="selectin", cascade="all, delete-orphan")


class UserTeam(Base):
    __tablename__ = "user_teams"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)


class ApiToken(Base):
    """A bearer token: its public id and the SHA-256 of its secret (the secret itself is never stored)."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship()
    # Scoped tokens (single sign-on block below, migration 0010): what the token may do, and until when.
    scope: Mapped[str] = mapped_column(String(20), default="full", server_default="full")
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Submission(Base):
    """One plan as it was submitted: the raw file, the parsed lines, the validation report. Never updated."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(20))  # xlsx, json
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    valid: Mapped[bool] = mapped_column(Boolean)
    line_count: Mapped[int] = mapped_column(Integer)
    report: Mapped[list[Any]] = mapped_column(JSON)  # the issues, as data
    # The team's approved submission this plan was edited from (None: the team had none), as the
    # submitter named it (`base`: {"submission": N} or {"master_version": N}, or None when unnamed).
    based_on_submission: Mapped[int | None] = mapped_column(Integer, nullable=True)
    base: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The reforecast cycle open when it was submitted (None: none was open).
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"), nullable=True, index=True)
    lines: Mapped[list[SubmissionLine]] = relationship(order_by="SubmissionLine.position", cascade="all")


class SubmissionLine(Base):
    """A parsed plan line of a submission: its line ID and its typed values (money in cents)."""

    __tablename__ = "submission_lines"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[str] = mapped_column(String(255))
    row: Mapped[int | None] = mapped_column(Integer, nullable=True)  # its row in the submitted sheet
    values: Mapped[dict[str, Any]] = mapped_column(JSON)


class SubmissionTotal(Base):
    """A submission's planned spend by fiscal quarter and channel, in reporting-currency cents.

    Written once with the submission, so checking a region against its allocation reads a few
    rows per team instead of every line of the master.
    """

    __tablename__ = "submission_totals"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    quarter: Mapped[str] = mapped_column(String(2), primary_key=True)
    channel: Mapped[str] = mapped_column(String(60), primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger)


def add_submission_lines(
    session: Session,
    submission_id: int,
    lines: Sequence[Mapping[str, Any]],
    rows: Sequence[int | None],
    totals: Mapping[tuple[str, str], int],
) -> None:
    """Append a stored submission's lines (in plan order, with their sheet rows) and its quarter x channel totals.

    One multi-row insert per table, not an ORM object per line: a 1,000-line plan made that many
    objects, whose bookkeeping cost several times what the database spent storing the rows.
    """
    if len(lines) != len(rows):
        raise ValueError(f"{len(lines)} lines but {len(rows)} rows")
    if lines:
        session.execute(
            insert(SubmissionLine.__table__),
            [
                {"submission_id": submission_id, "position": n, "line_id": line["line_id"], "row": row, "values": line}
                for n, (line, row) in enumerate(zip(lines, rows, strict=True))
            ],
        )
    if totals:
        session.execute(
            insert(SubmissionTotal.__table__),
            [
                {"submission_id": submission_id, "quarter": quarter, "channel": channel, "cents": cents}
                for (quarter, channel), cents in totals.items()
            ],
        )


class Decision(Base):
    """Finance's approval or rejection of a submission, with a comment (appended, never changed)."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))  # approved, rejected
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApproverGrant(Base):
    """A user who may take an approval step (region lead, controller, ...): for one region, or for all ('')."""

    __tablename__ = "approver_grants"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(String(40), primary_key=True)
    region: Mapped[str] = mapped_column(String(40), primary_key=True, default="")


class ApprovalChain(Base):
    """The steps a submission must pass, in order, as the organisation file and its size said when it came in.

    Written with the submission, never changed; a submission without one (from before chains) has
    the single step `finance`.
    """

    __tablename__ = "approval_chains"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    steps: Mapped[list[Any]] = mapped_column(JSON)
    change_cents: Mapped[int] = mapped_column(BigInteger)  # how much it changes the approved plan (reporting)


class ApprovalStep(Base):
    """One step of a submission's chain taken: who, when and why. Never changed; one per step (the primary key)."""

    __tablename__ = "approval_steps"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))  # approved, rejected
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MasterVersion(Base):
    """One change of the master budget: from this version on, `team_id`'s plan is `submission_id`.

    The master at version N holds, for each team, the submission of its newest version <= N, so
    approving one team's plan writes one row whatever the size of the master.
    """

    __tablename__ = "master_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the version number
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)


class IdempotencyRecord(Base):
    """The first answer to a request sent with an Idempotency-Key, returned again for its retries."""

    __tablename__ = "idempotency_records"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of what the request asked for
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AllocationRevision(Base):
    """One version of finance's top-down budget; the newest is in force. Never updated."""

    __tablename__ = "allocation_revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
    cells: Mapped[list[AllocationCell]] = relationship(cascade="all")


class AllocationCell(Base):
    """The budget of a region for a fiscal quarter and channel ("*": all channels), in reporting-currency cents."""

    __tablename__ = "allocation_cells"
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("allocation_revisions.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(String(40), primary_key=True)
    quarter: Mapped[str] = mapped_column(String(2), primary_key=True)
    channel: Mapped[str] = mapped_column(String(60), primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger)


class ActualImport(Base):
    """An export from the finance system: the raw file, its report, and the spend it gave each plan line.

    The newest import is the actual spend in force (each export is the finance system's full year to date).
    """

    __tablename__ = "actual_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    amounts: Mapped[list[ActualAmount]] = relationship(cascade="all")


class ActualAmount(Base):
    """Actual spend to date of one master line, in the line's own currency (cents)."""

    __tablename__ = "actual_amounts"
    import_id: Mapped[int] = mapped_column(ForeignKey("actual_imports.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger)


class ActualMonth(Base):
    """An import's actual spend of one master line in one fiscal month (line currency, cents).

    Written only when the export has a month (or posting date) column; the line's `ActualAmount`
    is then the sum of its months. Quarterly unit costs need the spend of the quarter.
    """

    __tablename__ = "actual_months"
    import_id: Mapped[int] = mapped_column(ForeignKey("actual_imports.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    month: Mapped[str] = mapped_column(String(3), primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger)


class OutcomeImport(Base):
    """Results from the CRM or marketing automation (one export or one push): raw input, report, who, when.

    Immutable. For each (source, fiscal month) the newest import covering that month is in force;
    `months` and `metrics` say what this one covers.
    """

    __tablename__ = "outcome_imports"
    __table_args__ = (Index("ix_outcome_imports_source", "source", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(60))
    preset: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    months: Mapped[list[Any]] = mapped_column(JSON)
    metrics: Mapped[list[Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class OutcomeAmount(Base):
    """What one import credits one master line with in one fiscal month.

    Counts are in hundredths (attribution gives fractions of a lead), money in reporting cents.
    """

    __tablename__ = "outcome_amounts"
    import_id: Mapped[int] = mapped_column(ForeignKey("outcome_imports.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    month: Mapped[str] = mapped_column(String(3), primary_key=True)
    leads: Mapped[int] = mapped_column(BigInteger, default=0)
    mqls: Mapped[int] = mapped_column(BigInteger, default=0)
    sals: Mapped[int] = mapped_column(BigInteger, default=0)
    opportunities: Mapped[int] = mapped_column(BigInteger, default=0)
    won: Mapped[int] = mapped_column(BigInteger, default=0)
    pipeline: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    crm_cost: Mapped[int] = mapped_column(BigInteger, default=0)  # the CRM's record of cost (migration 0022)


class PeriodLock(Base):
    """A closed fiscal month (m01..m12): no approved plan may change its planned spend."""

    __tablename__ = "period_locks"
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(3), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    locked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Baseline(Base):
    """The year's budget as finance locked it: the master version and allocation revision in force then. Never updated.

    Both are immutable, so the baseline holds their numbers, not a copy; a re-baseline is a new row.
    """

    __tablename__ = "baselines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    master_version: Mapped[int] = mapped_column(ForeignKey("master_versions.id"))
    allocation_revision: Mapped[int] = mapped_column(Integer)  # 0: the organisation file's allocations
    comment: Mapped[str] = mapped_column(Text, default="")


class Cycle(Base):
    """A reforecast cycle finance opened: its closed months (m01..`closed_through`) and its deadline. Never updated.

    Opening it locks the closed months; it is open until a `CycleClose` row names it.
    """

    __tablename__ = "cycles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    closed_through: Mapped[str] = mapped_column(String(3))  # the last fiscal month whose actuals are in
    deadline: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(Text, default="")


class CycleClose(Base):
    """Finance closing a reforecast cycle: no submission counts for it after this."""

    __tablename__ = "cycle_closes"
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Scenario(Base):
    """A what-if finance tries on a copy of the master (or the latest estimate): never the master until promoted.

    Its lines are its revisions' (`ScenarioRevision`, appended, never changed); revision 1 is its
    origin, what it is compared with. A `ScenarioEnd` row says it was promoted or discarded.
    """

    __tablename__ = "scenarios"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    origin: Mapped[str] = mapped_column(String(20))  # master, estimate
    master_version: Mapped[int] = mapped_column(Integer)  # the master it was made from (0: none approved yet)
    comment: Mapped[str] = mapped_column(Text, default="")


class ScenarioRevision(Base):
    """One state of a scenario's lines (stored form, with team_id) and the change that made it."""

    __tablename__ = "scenario_revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1: the origin
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    change: Mapped[dict[str, Any]] = mapped_column(JSON)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("scenario_id", "number"),)


class ScenarioEnd(Base):
    """A scenario promoted (its teams' plans submitted for approval, or an allocation revision) or discarded.

    Either way it changes no more.
    """

    __tablename__ = "scenario_ends"
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(20))  # promoted, discarded
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class SpendImport(Base):
    """An export of purchase orders or invoices from the procurement or ERP system: the raw file and its report.

    Only its new and changed rows are stored (`PurchaseOrder`, `Invoice`); a row's newest version
    by its number is the one in force, so importing the same export again changes nothing.
    """

    __tablename__ = "spend_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # purchase_orders, invoices
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class PurchaseOrder(Base):
    """One version of a purchase order (amount in its own currency, cents), as an import gave it. Never updated."""

    __tablename__ = "purchase_orders"
    import_id: Mapped[int] = mapped_column(ForeignKey("spend_imports.id"), primary_key=True)
    po_number: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    row: Mapped[int] = mapped_column(Integer)
    vendor: Mapped[str] = mapped_column(String(255))
    line_id: Mapped[str] = mapped_column(String(255))
    campaign_code: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    cents: Mapped[int] = mapped_column(BigInteger)
    service_start: Mapped[dt.date] = mapped_column(Date)
    service_end: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # open, closed
    method: Mapped[str] = mapped_column(String(20))  # how it accrues: straight-line, plan, invoice


class Invoice(Base):
    """One version of a vendor invoice against a purchase order (its own currency, cents). Never updated."""

    __tablename__ = "invoices"
    import_id: Mapped[int] = mapped_column(ForeignKey("spend_imports.id"), primary_key=True)
    po_number: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    invoice_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    row: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    cents: Mapped[int] = mapped_column(BigInteger)
    invoice_date: Mapped[dt.date] = mapped_column(Date)


class ImportProfile(Base):
    """One revision of a saved column mapping for one kind of import (migration 0021). Never updated.

    The newest revision of a (kind, name) is in force; a retired one reads no export. `fields`
    maps Plansheet's fields to the export's headers, `values` a field's words to Plansheet's
    (status words), `date_order` how 04/05/2026 reads; `remember` chooses it for every export
    of that kind whose header carries each header it maps.
    """

    __tablename__ = "import_profiles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(100))
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    values: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    date_order: Mapped[str | None] = mapped_column(String(3), nullable=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class YearClose(Base):
    """Finance closing a fiscal year: from then on it is read-only (migration 0019). Never updated."""

    __tablename__ = "year_closes"
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")


class AccrualClose(Base):
    """A fiscal month's accrual as finance closed it: its entries, kept as they were. Never updated."""

    __tablename__ = "accrual_closes"
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(3), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Transfer(Base):
    """A request to move an amount of allocation from one (region, quarter, channel) cell to another. Never updated.

    `steps` are the approvals it needs ("giving": the giving region's marketing, "finance"); its
    state is read from its decisions.
    """

    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)  # the fiscal year it belongs to (migration 0018)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    from_region: Mapped[str] = mapped_column(String(40))
    from_quarter: Mapped[str] = mapped_column(String(2))
    from_channel: Mapped[str] = mapped_column(String(60))
    to_region: Mapped[str] = mapped_column(String(40))
    to_quarter: Mapped[str] = mapped_column(String(2))
    to_channel: Mapped[str] = mapped_column(String(60))
    cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[str]] = mapped_column(JSON)
    # A transfer between years gives from the closed year before `fiscal_year` (its unspent budget, never changing
    # that year's allocations); None: from `fiscal_year` itself (migration 0020).
    from_year: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)

    @property
    def giving_year(self) -> int:
        return self.from_year if self.from_year is not None else self.fiscal_year


class TransferDecision(Base):
    """One approval or rejection of a transfer at one step; the last approval names the allocation revision it made."""

    __tablename__ = "transfer_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    step: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))  # approved, rejected
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
    allocation_revision: Mapped[int | None] = mapped_column(ForeignKey("allocation_revisions.id"), nullable=True)
    __table_args__ = (UniqueConstraint("transfer_id", "step"),)


class TeamSheet(Base):
    """The Google spreadsheet a team plans in (created by Plansheet from the schema)."""

    __tablename__ = "team_sheets"
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    spreadsheet_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(300))
    # The approved submission the sheet's lines were filled from when it was created (None: none).
    based_on: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServiceSecret(Base):
    """A secret every worker of one database shares (the session-signing key when none is configured)."""

    __tablename__ = "service_secrets"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class WebSession(Base):
    """One dashboard login: the signed cookie names it, and logging out ends it here, so a copied cookie dies too."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, unguessable
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Job(Base):
    """Work done in the background (a Google push, a workbook build): what, with what, for whom; never changed.

    What happened to it is appended as `JobEvent` rows, so its history of attempts is kept.
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex, unguessable
    kind: Mapped[str] = mapped_column(String(40))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobEvent(Base):
    """One step of a job: queued, started (an attempt), retrying, succeeded or failed; the newest is its state."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobFile(Base):
    """A file a job made (the master workbook it built), kept with the job for its owner to download."""

    __tablename__ = "job_files"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobInput(Base):
    """A file a job works on (a finance export to import), written with the job; never changed (migration 0011)."""

    __tablename__ = "job_inputs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ManagementPack(Base):
    """A month's management pack as a job built it: the workbook, its PDF (or why none), whose view. Never updated.

    `teams` None: the whole organisation's (finance's view); else the teams of the marketer's view it
    was built for (migration 0023).
    """

    __tablename__ = "management_packs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)
    month: Mapped[str] = mapped_column(String(3))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # whose view of the figures it shows
    teams: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(String(20))  # "close" (the month's accrual closed) or "request"
    filename: Mapped[str] = mapped_column(String(120))  # its files' name without the extension
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    about: Mapped[dict[str, Any]] = mapped_column(JSON)  # what its figures were computed from (master version...)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pdf_note: Mapped[str | None] = mapped_column(Text, nullable=True)  # why there is no PDF


class PackSubscription(Base):
    """A person starting or stopping the monthly management pack by email; their newest row is in force."""

    __tablename__ = "pack_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subscribed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- single sign-on (migration 0010) -------------------------------------------------------------------


class TokenScope(StrEnum):
    """What an API token may do: everything its user's role allows, or only read for the add-ins."""

    FULL = "full"
    FUNCTIONS = "functions"  # the spreadsheet functions and reading the master: no submission, decision or admin


class UserIdentity(Base):
    """A user's account at an OpenID provider: matched by issuer and subject, never by name or e-mail.

    Names and e-mail addresses change and can be reused; the provider's subject for a person does not.
    """

    __tablename__ = "user_identities"
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[User] = relationship()


def aware(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC with its zone: SQLite hands back stored times without one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- the engine ----------------------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout, foreign keys and real transactions.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself, so a
    transaction's reads and writes are one unit; a writing transaction (`sqlite_begin="IMMEDIATE"`)
    takes the write lock at BEGIN, so two writers never decide on the same stale read.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_dumps)

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            connection.isolation_level = None
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get('sqlite_begin', '')}".strip())

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Store:
    """Sessions on one database; `transaction()` is the only way to write.

    `shared` is the cache every worker on this database shares (`sync_service.platform.cache`), when one is set.
    """

    shared: Any = None
    schema_current = False  # set once the database is found at the newest schema (`readiness.require_current_schema`)

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if url.startswith("sqlite") else self.engine
        self.writers = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One atomic unit of work: everything in it is committed together, or nothing is."""
        with self.writers.begin() as session:
            yield session

    def serialise(self, session: Session, name: str) -> None:
        """Hold `name` until `session`'s transaction ends, so writers of the same thing go one after another.

        PostgreSQL: a transaction advisory lock (freed by commit, rollback or a dead connection).
        SQLite needs none: its write transactions begin IMMEDIATE, one at a time.
        """
        if not self.url.startswith("sqlite"):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run one holder of `name` at a time across every process on this database (a long task, not a transaction).

        PostgreSQL: a session advisory lock held on its own connection. SQLite serves one process,
        so a lock in that process is enough.
        """
        if self.url.startswith("sqlite"):
            with _LOCKS_GUARD:
                lock = _LOCKS.setdefault((self.url, name), threading.Lock())
            with lock:
                yield
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
                connection.commit()

    @contextmanager
    def exclusive_or_skip(self, name: str) -> Iterator[bool]:
        """Like `exclusive`, without waiting: yields False at once when another holder has `name`.

        A PostgreSQL session lock dies with its connection, so a holder killed with SIGKILL frees it.
        """
        if self.url.startswith("sqlite"):
            with _LOCKS_GUARD:
                lock = _LOCKS.setdefault((self.url, name), threading.Lock())
            got = lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    lock.release()
            return
        with self.engine.connect() as connection:
            got = bool(connection.scalar(text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": name}))
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    connection.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
                    connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
