"""Management packs built, kept and listed: the job `pack.build`, after a month's close or when finance asks.

The job builds the pack of the month (`pack`) as the person who asked for it may see it (finance: the
whole organisation), renders its PDF with LibreOffice (`pdf`), or keeps the note saying why there is
none, and when the pack is to be sent, builds each marketer subscriber's pack of their own teams
too. The packs are stored as they were built (`ManagementPack`, never changed) in the job's success
transaction, with the notice that emails them to the subscribers (`notifications`), so a pack is
never sent that was not kept, and a retried job never keeps one twice.

Closing a month's accrual stages the job in the close's own transaction (`PackAfterClose`). When
months are closed one after another faster than packs are built (a year closed at once), a close's
job finding a later month closed meanwhile builds nothing: the later month's pack is the one sent.
Finance builds any month's pack again on demand, and chooses whether it is sent.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from sheet_templates.formatting import DEFAULT_LOCALE, Formats
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance, require_plan_reader, visible_teams
from sync_service.documents import pack, pdf
from sync_service.notifications.notices import PACK_BUILT, XLSX_TYPE
from sync_service.notifications.subscriptions import subscribers
from sync_service.platform import context, jobs, outbox
from sync_service.platform.errors import Conflict, NotFound, ServiceError
from sync_service.platform.storage import AccrualClose, ManagementPack, Role, Store, User, aware
from sync_service.spend import accruals

PACK_JOB = "pack.build"
CLOSE, REQUEST = "close", "request"  # why a pack was built
PDF_TYPE = "application/pdf"
LIST_LIMIT = 200


def scope_of(user: User) -> list[str] | None:
    """The teams a pack built for `user` covers, sorted; None: the whole organisation (finance)."""
    teams = visible_teams(user)
    return None if teams is None else sorted(teams)


def covers(teams: list[str] | None) -> str:
    """What a pack covers, in words."""
    return "the whole organisation" if teams is None else ", ".join(teams) or "no team"


def filename(schema: PlanSchema, month: str, teams: list[str] | None) -> str:
    """Its files' name without the extension: the month by name, and the teams of a marketer's pack."""
    label = schema.calendar.months[accruals.month_index(schema, month)].label
    name = f"management-pack-{label.lower().replace(' ', '-')}"
    if teams:
        name += "-" + "-".join(teams).lower()
    return name[:120]


# --- asking for one ---------------------------------------------------------------------------------------------


def default_month(store: Store, schema: PlanSchema) -> str:
    """The month a pack is built for when none is named: the newest whose accrual is closed (409 when none is)."""
    with store.reading() as session:
        closed = set(
            session.scalars(select(AccrualClose.month).where(AccrualClose.fiscal_year == schema.calendar.year))
        )
    names = [c.name for c in schema.month_columns if c.name in closed]
    if not names:
        raise Conflict(
            "month: no month's accrual is closed yet, so there is no month to build the pack of; close one on the "
            "Spend control page, or name the month (m01..m12) for a pack of the figures as they stand",
            issues=[{"at": "month", "rule": "pack.month", "message": "no month's accrual is closed yet"}],
        )
    return names[-1]


def request_pack(app: Any, schema: PlanSchema, user: User, month: str | None, email: bool) -> str:
    """Queue the pack of `month` (default: the newest closed month) for finance, sent to the subscribers if `email`."""
    require_finance(user, "builds the management pack")
    store = context.store(app)
    month = (month or default_month(store, schema)).strip().lower()
    accruals.month_index(schema, month)  # 404 naming it for a month the year does not have
    return jobs.enqueue(app, PACK_JOB, {"month": month, "reason": REQUEST, "email": bool(email)}, user)


class PackAfterClose:
    """After a month's accrual closes, its pack job written in the close's own transaction, then queued."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def stage(self, session: Session, user: User, year: int, month: str) -> str:
        args = {"month": month, "reason": CLOSE, "email": True, jobs.YEAR_ARG: year}
        return jobs.create(session, PACK_JOB, args, user).id

    def after(self, staged: str) -> dict[str, Any]:
        jobs.dispatch(self.app, staged)
        return {"job": staged, "status": "queued", "href": f"/api/v1/jobs/{staged}"}


def after_close(app: Any) -> PackAfterClose | None:
    """What follows a month's close, as configured: its pack (PACK_ON_CLOSE, on unless turned off)."""
    return PackAfterClose(app) if _on(app.config.get("PACK_ON_CLOSE", True)) else None


def _on(value: Any) -> bool:
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")


# --- the job -------------------------------------------------------------------------------------------------------


@jobs.kind(PACK_JOB, "Build the management pack")
def build_job(run: jobs.Run) -> dict[str, Any]:
    """The job `pack.build`: the month's pack (and each marketer subscriber's when it is sent), kept and sent."""
    args, schema, config = run.job.args, run.schema, run.app.config
    month, reason, email = args["month"], args.get("reason", REQUEST), bool(args.get("email"))
    label = schema.calendar.months[accruals.month_index(schema, month)].label
    later = _closed_after(run.store, schema, month) if reason == CLOSE else None
    if later is not None:
        return {"month": month, "skipped": f"{later} was closed before this pack was built; its pack is the one sent"}
    for_whom = [run.user]
    if email and config.get("SMTP_HOST"):  # each marketer subscriber's own pack, when there is a way to send it
        with run.store.reading() as session:
            marketers = [u for u in subscribers(session) if u.role == Role.MARKETER and u.teams]
            for u in marketers:
                session.expunge(u)
        seen: set[tuple[str, ...]] = set()
        for u in marketers:
            key = tuple(scope_of(u) or ())
            if key not in seen:
                seen.add(key)
                for_whom.append(u)
    built = [_built(run.store, schema, config, u, month) for u in for_whom]
    with run.store.transaction() as session:
        rows = []
        for user, (teams, xlsx, pdf_bytes, note, about) in zip(for_whom, built, strict=True):
            row = ManagementPack(
                fiscal_year=schema.calendar.year,
                month=month,
                job_id=run.job.id,
                user_id=user.id,
                teams=teams,
                reason=reason,
                filename=filename(schema, month, teams),
                about=about,
                xlsx=xlsx,
                pdf=pdf_bytes,
                pdf_note=note,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        ids = [row.id for row in rows]
        if email:
            outbox.stage(session, PACK_BUILT, run.user, packs=ids)
        result = {
            "month": month,
            "label": label,
            "packs": ids,
            "pdf": built[0][2] is not None,
            "pdf_note": built[0][3],
            "emailed": email,
            "master_version": built[0][4]["master_version"],
        }
        run.succeed(session, result)
    return result


def _closed_after(store: Store, schema: PlanSchema, month: str) -> str | None:
    """The newest month after `month` whose accrual is closed, by name; None when none is."""
    names = [c.name for c in schema.month_columns]
    with store.reading() as session:
        closed = set(
            session.scalars(select(AccrualClose.month).where(AccrualClose.fiscal_year == schema.calendar.year))
        )
    later = [k for k, name in enumerate(names) if name in closed and name > month]
    return schema.calendar.months[later[-1]].label if later else None


def _built(
    store: Store, schema: PlanSchema, config: Mapping[str, Any], user: User, month: str
) -> tuple[list[str] | None, bytes, bytes | None, str | None, dict[str, Any]]:
    """(teams, workbook, PDF or None, why no PDF, what the figures came from) of `month`'s pack as `user` sees it."""
    teams = scope_of(user)
    formats = Formats(config.get("LOCALE", DEFAULT_LOCALE))
    setting = config.get("SOFFICE") or None
    with tempfile.TemporaryDirectory(prefix="plansheet-pack-") as folder:
        path = Path(folder) / f"{filename(schema, month, teams)}.xlsx"
        missing = pdf.unavailable(setting)
        figures = pack.pack_file(
            store, schema, user, month, path, formats=formats, scope=covers(teams), pdf_note=missing
        )
        xlsx = path.read_bytes()
        document, note = None, missing
        if missing is None:
            try:
                document = pdf.to_pdf(path, setting=setting, timeout=float(config.get("PDF_TIMEOUT") or pdf.TIMEOUT))
            except ServiceError as exc:  # the workbook stands; the note says why there is no PDF
                note = exc.detail
    return teams, xlsx, document, note, figures.about


# --- reading them ---------------------------------------------------------------------------------------------------


def _visible(user: User, row: ManagementPack) -> bool:
    """Finance see every pack; a marketer the packs of teams they all may see (never the whole organisation's)."""
    teams = visible_teams(user)
    return teams is None or (row.teams is not None and set(row.teams) <= teams)


def _json(session: Session, schema: PlanSchema, row: ManagementPack) -> dict[str, Any]:
    by = session.get(User, row.user_id)
    base = f"/api/v1/packs/{row.id}"
    label = schema.for_year(row.fiscal_year).calendar.months[int(row.month[1:]) - 1].label
    return {
        "id": row.id,
        "fiscal_year": row.fiscal_year,
        "month": row.month,
        "label": label,
        "reason": row.reason,
        "built_for": by.name if by else None,
        "teams": row.teams,
        "covers": covers(row.teams),
        "created_at": aware(row.created_at).isoformat(),
        "job": row.job_id,
        "about": row.about,
        "workbook": f"{base}/workbook",
        "pdf": f"{base}/pdf" if row.pdf_note is None else None,  # a pack without a PDF always says why
        "pdf_note": row.pdf_note,
    }


def listing(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    """The packs of the fiscal year `user` may see, newest first."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        query = (
            select(ManagementPack)
            .where(ManagementPack.fiscal_year == schema.calendar.year)
            .order_by(ManagementPack.id.desc())
            .limit(LIST_LIMIT)
        )
        # The files stay in the database: a listing loads the rows' other columns only.
        query = query.options(defer(ManagementPack.xlsx), defer(ManagementPack.pdf))
        return [_json(session, schema, row) for row in session.scalars(query) if _visible(user, row)]


def _row(session: Session, user: User, pack_id: int) -> ManagementPack:
    row = session.get(ManagementPack, pack_id)
    if row is None or not _visible(session.merge(user), row):
        raise NotFound(f"there is no management pack {pack_id}")
    return row


def get(store: Store, schema: PlanSchema, user: User, pack_id: int) -> dict[str, Any]:
    require_plan_reader(user)
    with store.reading() as session:
        return _json(session, schema, _row(session, user, pack_id))


def file_of(store: Store, user: User, pack_id: int, kind: str) -> tuple[str, str, bytes]:
    """(filename, media type, data) of a pack's workbook (`xlsx`) or PDF; 404 naming why a pack has no PDF."""
    require_plan_reader(user)
    with store.reading() as session:
        row = _row(session, user, pack_id)
        if kind == "xlsx":
            return f"{row.filename}.xlsx", XLSX_TYPE, row.xlsx
        if row.pdf is None:
            raise NotFound(f"management pack {pack_id} has no PDF: {row.pdf_note or 'none was made'}")
        return f"{row.filename}.pdf", PDF_TYPE, row.pdf


def pending(store: Store, user: User) -> list[dict[str, Any]]:
    """The pack jobs not finished yet, or failed, that `user` may see (finance: all), newest first."""
    found, _ = jobs.listing(store, user, 50)
    return [j for j in found if j["kind"] == PACK_JOB and j["status"] != "succeeded"]
