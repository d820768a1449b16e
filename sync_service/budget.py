"""Finance's controls on the master budget: allocations, actual spend, locked periods, and the views.

- Allocations are finance's top-down budget by region x fiscal quarter x channel ("*" for all
  channels), in the reporting currency. Each `PUT` stores a new immutable revision; the newest
  is in force; before the first, the organisation file's region x quarter allocations are.
- Actuals come from the finance system's export (CSV or xlsx), matched to master lines by
  line ID or campaign code. Each import is the finance system's year to date: the newest
  import is the actual spend of every master line (0 where it had none). Until the first
  import, the actual spend the marketers typed is used.
- A locked fiscal month's planned spend cannot change in any newly approved plan.
- Rollup and variance are computed on the current master with the functions the spreadsheets use.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addin.coerce import parse_number_text
from addin.consolidate import with_totals, write_master_of
from addin.forecast import closed_months, forecast
from addin.fx import UnknownCurrency, convert_between, convert_cents
from addin.issues import UnreadableWorkbook
from addin.rollup import Period, RollupError, rollup
from addin.safety import FIRST_SHEET, inspect_package
from addin.variance import remaining, variance, variance_flag, variance_pct
from sheet_templates.cells import column_letter
from sheet_templates.master_workbook import lines_segment
from sheet_templates.schema import ColumnType, PlanSchema
from sync_service.auth import require_plan_reader
from sync_service.idempotency import Idempotency, remember
from sync_service.problems import ApiError, Forbidden, Unprocessable
from sync_service.storage import (
    ActualAmount,
    ActualImport,
    AllocationCell,
    AllocationRevision,
    AuditEvent,
    MasterVersion,
    PeriodLock,
    Role,
    Store,
    SubmissionLine,
    SubmissionTotal,
    Team,
    User,
)

QUARTERS = ("Q1", "Q2", "Q3", "Q4")
ALL_CHANNELS = "*"
MAX_ALLOCATION_CELLS = 10_000


def _require_finance(user: User, what: str) -> None:
    if user.role != Role.FINANCE:
        raise Forbidden(f"only finance {what}")


def visible_regions(user: User, schema: PlanSchema) -> set[str]:
    if user.role in (Role.FINANCE, Role.ADMIN):
        return set(schema.config.regions)
    return {t.region for t in user.teams}


def to_cents(value: Any) -> int | None:
    """An amount (number or text such as "1,250.50") as whole cents, rounded half away from zero; None if not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not np.isfinite(value):
            return None
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        trailing_minus = text.endswith("-") and not any(ch in "-()" for ch in text[:-1])  # "1,250.50-"
        if trailing_minus:
            text = text[:-1]
        parsed = parse_number_text(text)
        if parsed is None:
            return None
        # The digits exactly as parse_number_text reads them (sign, brackets, symbol and separators off).
        number = Decimal(text.strip("-()").lstrip("$€£¥").replace(",", ""))
        number = -number if parsed < 0 or trailing_minus else number
    else:
        return None
    try:
        cents = (number * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return int(cents) if abs(cents) < 10**15 else None


def money(cents: int) -> str:
    """Cents as a plain decimal amount ("1250.50"), exact."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


# --- allocations -------------------------------------------------------------------------------------


def current_allocations(session: Session, schema: PlanSchema) -> tuple[int, dict[tuple[str, str, str], int]]:
    """(revision, {(region, quarter, channel): cents}); revision 0 is the organisation file's allocations."""
    revision = session.scalar(select(func.max(AllocationRevision.id)))
    if revision is None:
        cells = {
            (region, quarter, ALL_CHANNELS): int(amount * 100)
            for region, quarters in schema.config.allocations.items()
            for quarter, amount in quarters.items()
        }
        return 0, cells
    rows = session.scalars(select(AllocationCell).where(AllocationCell.revision_id == revision))
    return revision, {(c.region, c.quarter, c.channel): c.cents for c in rows}


def allocations_view(store: Store, schema: PlanSchema, user: User) -> dict[str, Any]:
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        regions = visible_regions(user, schema)
        revision, cells = current_allocations(session, schema)
        info = session.get(AllocationRevision, revision) if revision else None
        return {
            "revision": revision,
            "source": "api" if revision else "organisation configuration",
            "set_by": session.get(User, info.user_id).name if info else None,
            "set_at": info.created_at.isoformat() if info else None,
            "currency": schema.config.reporting_currency,
            "allocations": [
                {"region": r, "quarter": q, "channel": c, "amount": money(cents), "cents": cents}
                for (r, q, c), cents in sorted(cells.items())
                if r in regions
            ],
        }


def put_allocations(store: Store, schema: PlanSchema, user: User, body: Any) -> dict[str, Any]:
    """Replace the allocations in force with `body["allocations"]`: a new revision, all cells checked first."""
    _require_finance(user, "sets allocations")
    if not isinstance(body, dict) or not isinstance(body.get("allocations"), list):
        raise ApiError('send {"allocations": [{"region", "quarter", "channel", "amount"}, ...]}')
    items = body["allocations"]
    if len(items) > MAX_ALLOCATION_CELLS:
        raise ApiError(f"at most {MAX_ALLOCATION_CELLS:,} allocation cells at once")
    channels = set(schema["channel"].choices)
    problems, cells = [], {}
    for n, item in enumerate(items):
        where = f"allocations[{n}]"
        if not isinstance(item, dict):
            problems.append({"at": where, "message": "must be an object with region, quarter, channel and amount"})
            continue
        region, quarter = item.get("region"), item.get("quarter")
        channel = item.get("channel") or ALL_CHANNELS
        cents = to_cents(item.get("amount"))
        if region not in schema.config.regions:
            problems.append({"at": f"{where}.region", "message": f"use one of {', '.join(schema.config.regions)}"})
        if quarter not in QUARTERS:
            problems.append({"at": f"{where}.quarter", "message": "use Q1, Q2, Q3 or Q4"})
        if channel != ALL_CHANNELS and channel not in channels:
            problems.append(
                {"at": f"{where}.channel", "message": f"use one of {', '.join(sorted(channels))}, or * for all"}
            )
        if cents is None or cents < 0:
            problems.append({"at": f"{where}.amount", "message": "must be an amount of zero or more"})
        key = (region, quarter, channel)
        if key in cells:
            problems.append({"at": where, "message": f"{region} {quarter} {channel} is given twice"})
        cells[key] = cents
    if problems:
        raise Unprocessable(f"{len(problems)} allocation cell(s) are not valid; nothing was changed", issues=problems)
    comment = body.get("comment", "")
    with store.transaction() as session:
        revision = AllocationRevision(
            user_id=user.id,
            comment=comment if isinstance(comment, str) else "",
            cells=[AllocationCell(region=r, quarter=q, channel=c, cents=v) for (r, q, c), v in cells.items()],
        )
        session.add(revision)
        session.flush()
        session.add(
            AuditEvent(
                user_id=user.id,
                action="allocations.set",
                target=f"allocations:{revision.id}",
                detail={"cells": len(cells), "total": money(sum(cells.values()))},
            )
        )
    return allocations_view(store, schema, user)


def allocation_findings(
    session: Session, schema: PlanSchema, team: Team, totals: Mapping[tuple[str, str], int]
) -> list[dict[str, Any]]:
    """Allocation cells of `team`'s region that the master would exceed if `team`'s plan were `totals`.

    `totals` is the candidate plan's {(quarter, channel): reporting cents}; the other teams of the
    region count with their approved plans, read from their stored totals, not their lines.
    """
    _, cells = current_allocations(session, schema)
    cells = {k: v for k, v in cells.items() if k[0] == team.region}
    if not cells:
        return []
    planned: dict[tuple[str, str], int] = defaultdict(int, totals)
    region_teams = set(session.scalars(select(Team.id).where(Team.region == team.region, Team.id != team.id)))
    others = [sid for tid, sid in current_submissions(session).items() if tid in region_teams]
    if others:
        rows = session.execute(
            select(SubmissionTotal.quarter, SubmissionTotal.channel, func.sum(SubmissionTotal.cents))
            .where(SubmissionTotal.submission_id.in_(others))
            .group_by(SubmissionTotal.quarter, SubmissionTotal.channel)
        )
        for quarter, channel, cents in rows:
            planned[(quarter, channel)] += int(cents)
    findings = []
    for (region, quarter, channel), allocated in sorted(cells.items()):
        total = sum(v for (q, c), v in planned.items() if q == quarter and (channel == ALL_CHANNELS or c == channel))
        if total > allocated:
            findings.append(
                {
                    "region": region,
                    "quarter": quarter,
                    "channel": channel,
                    "allocation": money(allocated),
                    "planned": money(total),
                    "over": money(total - allocated),
                    "message": f"{region} {quarter} {'all channels' if channel == ALL_CHANNELS else channel}: "
                    f"planned {money(total)} {schema.config.reporting_currency} is over the allocation of "
                    f"{money(allocated)} by {money(total - allocated)}",
                }
            )
    return findings


def redacted(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding as a marketer may read it: the region's allocation, not what the other teams planned."""
    what = "all channels" if finding["channel"] == ALL_CHANNELS else finding["channel"]
    return {
        "region": finding["region"],
        "quarter": finding["quarter"],
        "channel": finding["channel"],
        "allocation": finding["allocation"],
        "message": f"{finding['region']} {finding['quarter']} {what}: with this plan, the region's plans would be "
        f"over its allocation of {finding['allocation']}",
    }


def plan_totals(table: pd.DataFrame, schema: PlanSchema) -> dict[tuple[str, str], int]:
    """A plan's planned spend by (quarter, channel) in reporting-currency cents."""
    if not len(table):
        return {}
    long = rollup(table, schema, by=["channel"], period="quarter")
    return {(row.period, row.channel): int(row.cents) for row in long.itertuples() if row.cents}


def current_submissions(session: Session) -> dict[str, int]:
    """Team -> the submission the master holds for it now."""
    newest = select(func.max(MasterVersion.id)).group_by(MasterVersion.team_id)
    rows = session.execute(
        select(MasterVersion.team_id, MasterVersion.submission_id).where(MasterVersion.id.in_(newest))
    )
    return {team: submission for team, submission in rows}


# --- locked periods ----------------------------------------------------------------------------------


def locked_months(session: Session) -> set[str]:
    return set(session.scalars(select(PeriodLock.month)))


def _months_of(schema: PlanSchema, body: Any) -> list[str]:
    """Months named by {"months": ["m01", "Q2", "Mar 2026", ...]} or {"through": "m03"}."""
    keys = [m.name for m in schema.month_columns]
    labels = {schema[k].label.lower(): k for k in keys}
    if not isinstance(body, dict):
        raise ApiError('send {"months": ["m01", "Q1", ...]} or {"through": "m03"}')

    def resolve(name: Any) -> list[str]:
        if not isinstance(name, str):
            raise ApiError(f"{name!r} is not a fiscal month; use m01..m12, Q1..Q4 or a month label such as 'Feb 2026'")
        text = name.strip()
        if text.lower() in keys:
            return [text.lower()]
        if text.upper() in QUARTERS:
            q = QUARTERS.index(text.upper())
            return keys[3 * q : 3 * q + 3]
        if text.lower() in labels:
            return [labels[text.lower()]]
        raise ApiError(f"{name!r} is not a fiscal month; use m01..m12, Q1..Q4 or a month label such as 'Feb 2026'")

    if "through" in body:
        last = resolve(body["through"])[-1]
        return keys[: keys.index(last) + 1]
    months = body.get("months")
    if not isinstance(months, list) or not months:
        raise ApiError('send {"months": ["m01", "Q1", ...]} or {"through": "m03"}')
    return sorted({m for name in months for m in resolve(name)}, key=keys.index)


def periods_view(store: Store, schema: PlanSchema) -> dict[str, Any]:
    with store.reading() as session:
        locks = {p.month: p for p in session.scalars(select(PeriodLock))}
        return {
            "periods": [
                {
                    "month": c.name,
                    "label": c.label,
                    "quarter": QUARTERS[(int(c.name[1:]) - 1) // 3],
                    "locked": c.name in locks,
                    "locked_at": locks[c.name].locked_at.isoformat() if c.name in locks else None,
                }
                for c in schema.month_columns
            ]
        }


def set_locks(store: Store, schema: PlanSchema, user: User, body: Any, *, lock: bool) -> dict[str, Any]:
    _require_finance(user, "locks and unlocks periods")
    months = _months_of(schema, body)
    with store.transaction() as session:
        existing = locked_months(session)
        changed = [m for m in months if (m not in existing) == lock]
        for month in changed:
            if lock:
                session.add(PeriodLock(month=month, user_id=user.id))
            else:
                session.delete(session.get(PeriodLock, month))
        session.add(
            AuditEvent(
                user_id=user.id,
                action="periods.lock" if lock else "periods.unlock",
                target="periods",
                detail={"months": changed},
            )
        )
    return periods_view(store, schema)


def locked_changes(
    schema: PlanSchema, locked: Iterable[str], before: Mapping[str, Mapping[str, Any]], after: Iterable[dict[str, Any]]
) -> list[tuple[dict[str, Any], str, int, int]]:
    """(line, month, old cents, new cents) for every locked month whose planned spend the new plan changes."""
    months = [m for m in (c.name for c in schema.month_columns) if m in set(locked)]
    if not months:
        return []
    out = []
    seen = set()
    for line in after:
        old = before.get(line["line_id"], {})
        seen.add(line["line_id"])
        for m in months:
            if (line.get(m) or 0) != (old.get(m) or 0):
                out.append((line, m, int(old.get(m) or 0), int(line.get(m) or 0)))
    for line_id, old in before.items():
        if line_id not in seen:
            removed = {"line_id": line_id, "_removed": True}
            out.extend((removed, m, int(old.get(m) or 0), 0) for m in months if old.get(m))
    return out


# --- actual spend ------------------------------------------------------------------------------------

_HEADERS = {
    "line_id": ("line id", "line_id", "plan line", "plansheet line id", "plan line id"),
    "campaign_code": ("campaign code", "campaign_code", "code", "campaign id", "internal order", "cost object"),
    "amount": ("amount", "actual", "actual spend", "actuals", "spend", "net amount", "value"),
    "currency": ("currency", "currency code", "ccy"),
}


@dataclass
class ActualRow:
    row: int
    line_id: str
    campaign_code: str
    cents: int
    currency: str


def _norm(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text or "").strip().lower().replace("_", " "))


def _read_export(raw: bytes, filename: str | None) -> tuple[str, list[list[Any]]]:
    """The export's first sheet (xlsx) or its CSV rows, as (sheet name, grid)."""
    if raw[:4] == b"PK\x03\x04":
        fd, path = tempfile.mkstemp(suffix=".xlsx")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            package = inspect_package(path, plan_sheet=FIRST_SHEET, display_name=filename or "actuals.xlsx")
            sheet = package.sheet_names[0]
            workbook = CalamineWorkbook.from_path(path)
            try:
                return sheet, workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
            finally:
                workbook.close()
        except UnreadableWorkbook as exc:
            raise Unprocessable(exc.message, issues=[exc.as_issue().to_dict()]) from None
        except Exception as exc:  # the Rust reader's errors have no stable Python type
            raise Unprocessable(f"{filename or 'the file'} could not be read as a workbook ({exc})") from None
        finally:
            os.unlink(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise Unprocessable("the export is neither an xlsx workbook nor a UTF-8 or Windows-1252 CSV") from None
    if "\x00" in text:
        raise Unprocessable("the export is neither an xlsx workbook nor a text CSV file")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return "csv", [list(r) for r in csv.reader(io.StringIO(text), dialect)]


def parse_actuals(raw: bytes, filename: str | None, schema: PlanSchema) -> list[ActualRow]:
    """The export's rows; 422 naming the row and column of every amount or currency that is not one."""
    sheet, grid = _read_export(raw, filename)
    header_row = next((i for i, r in enumerate(grid[:20]) if any(_norm(v) for v in r)), None)
    if header_row is None:
        raise Unprocessable("the export is empty")
    columns: dict[str, int] = {}
    for j, value in enumerate(grid[header_row]):
        for field, names in _HEADERS.items():
            if _norm(value) in names and field not in columns:
                columns[field] = j
    if "amount" not in columns or not ({"line_id", "campaign_code"} & columns.keys()):
        raise Unprocessable(
            "the export needs an amount column ('Amount' or 'Actual') and a 'Line ID' or 'Campaign code' column "
            f"in its first row; found {', '.join(str(v) for v in grid[header_row] if str(v).strip()) or 'nothing'}"
        )

    def cell(j: int, i: int) -> str:
        return f"{column_letter(j + 1)}{i + 1}"

    currencies = set(schema.config.currencies)
    rows, problems = [], []
    for i in range(header_row + 1, len(grid)):
        record = grid[i]

        def get(field: str, record: list[Any] = record) -> Any:
            j = columns.get(field)
            return record[j] if j is not None and j < len(record) else ""

        if not any(str(v).strip() for v in record):
            continue
        line_id, code = str(get("line_id")).strip(), str(get("campaign_code")).strip()
        if isinstance(get("line_id"), float) and get("line_id").is_integer():
            line_id = str(int(get("line_id")))
        cents = to_cents(get("amount"))
        currency = str(get("currency")).strip().upper() or schema.config.reporting_currency
        if cents is None:
            problems.append(
                {
                    "sheet": sheet,
                    "cell": cell(columns["amount"], i),
                    "rule": "actuals.amount",
                    "message": "not an amount",
                }
            )
            continue
        if currency not in currencies:
            problems.append(
                {
                    "sheet": sheet,
                    "cell": cell(columns["currency"], i),
                    "rule": "actuals.currency",
                    "message": f"{currency!r} is not one of the plan currencies {', '.join(sorted(currencies))}",
                }
            )
            continue
        rows.append(ActualRow(i + 1, line_id, code, cents, currency))
    if problems:
        raise Unprocessable(
            f"{len(problems)} row(s) of the export are not valid; nothing was imported", issues=problems
        )
    return rows


def import_actuals(
    store: Store, schema: PlanSchema, user: User, raw: bytes, filename: str | None, idem: Idempotency | None = None
) -> dict[str, Any]:
    """Match the export's rows to master lines and store them as the actual spend in force."""
    _require_finance(user, "imports actuals")
    rows = parse_actuals(raw, filename, schema)
    config = schema.config
    with store.transaction() as session:
        lines = _master_lines(session, current_submissions(session))
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in lines:
            by_id[line["line_id"].lower()].append(line)
            if line.get("campaign_code"):
                by_code[str(line["campaign_code"]).lower()].append(line)
        amounts: dict[tuple[str, str], int] = defaultdict(int)
        unmatched, ambiguous, spread = [], [], []
        for r in rows:
            targets = by_id.get(r.line_id.lower(), []) if r.line_id else []
            how = "line_id"
            if len(targets) != 1 and r.campaign_code:
                targets, how = by_code.get(r.campaign_code.lower(), []), "campaign_code"
            if not targets:
                unmatched.append(
                    {"row": r.row, "line_id": r.line_id, "campaign_code": r.campaign_code, "amount": money(r.cents)}
                )
                continue
            if how == "line_id" and len(targets) > 1:
                ambiguous.append({"row": r.row, "line_id": r.line_id, "teams": sorted(t["team_id"] for t in targets)})
                continue
            shares = _spread(r, targets, schema)
            if len(targets) > 1:
                spread.append({"row": r.row, "campaign_code": r.campaign_code, "lines": len(targets)})
            for line, cents in zip(targets, shares, strict=True):
                amounts[(line["team_id"], line["line_id"])] += cents
        record = ActualImport(
            user_id=user.id,
            filename=(filename or None) and filename[:255],
            raw=raw,
            raw_sha256=hashlib.sha256(raw).hexdigest(),
            report={
                "rows": len(rows),
                "matched": len(rows) - len(unmatched) - len(ambiguous),
                "unmatched": unmatched,
                "ambiguous": ambiguous,
                "spread": spread,
                "lines": len(amounts),
            },
            amounts=[ActualAmount(team_id=t, line_id=lid, cents=c) for (t, lid), c in amounts.items()],
        )
        session.add(record)
        session.flush()
        currency_of = {(line["team_id"], line["line_id"]): line["currency"] for line in lines}
        total = convert_cents(
            np.array(list(amounts.values()), dtype=np.int64),
            np.array([currency_of[k] for k in amounts], dtype=object),
            config.plan_rates,
        ).sum()
        session.add(
            AuditEvent(
                user_id=user.id,
                action="actuals.import",
                target=f"actuals:{record.id}",
                detail={"file": filename, "rows": len(rows), "unmatched": len(unmatched), "total": money(int(total))},
            )
        )
        result = {
            "id": record.id,
            "filename": filename,
            "imported_at": record.created_at.isoformat(),
            **record.report,
            "total": money(int(total)),
            "currency": config.reporting_currency,
        }
        remember(session, user, idem, 201, result)
        return result


def _spread(r: ActualRow, targets: list[dict[str, Any]], schema: PlanSchema) -> list[int]:
    """The row's amount in each target line's currency, split over several lines by their planned totals."""
    config = schema.config
    months = [c.name for c in schema.month_columns]
    planned = [sum(int(t.get(m) or 0) for m in months) for t in targets]
    # Lines of one campaign code may be planned in different currencies: weigh them in one currency.
    try:
        currencies = np.array([t.get("currency") for t in targets], dtype=object)
        weights = [int(w) for w in convert_cents(np.array(planned, dtype=np.int64), currencies, config.plan_rates)]
    except UnknownCurrency:
        weights = planned
    if sum(weights) <= 0:
        weights = [1] * len(targets)
    total = sum(weights)
    # Largest remainder in the export's currency, in exact integers, so the parts add up to the row exactly.
    shares = [divmod(r.cents * w, total) for w in weights]  # floor division: 0 <= remainder < total
    parts = [share for share, _ in shares]
    for k in sorted(range(len(parts)), key=lambda k: shares[k][1], reverse=True)[: r.cents - sum(parts)]:
        parts[k] += 1
    out = []
    for t, part in zip(targets, parts, strict=True):
        try:
            converted = convert_between(np.array([part]), np.array([r.currency], dtype=object), t["currency"], config)
            out.append(int(converted[0]))
        except UnknownCurrency:
            out.append(part)
    return out


def _master_lines(session: Session, held: Mapping[str, int]) -> list[dict[str, Any]]:
    if not held:
        return []
    team_of = {sid: tid for tid, sid in held.items()}
    rows = session.execute(
        select(SubmissionLine.submission_id, SubmissionLine.row, SubmissionLine.values)
        .where(SubmissionLine.submission_id.in_(list(team_of)))
        .order_by(SubmissionLine.submission_id, SubmissionLine.position)
    )
    return [{"team_id": team_of[sid], "_row": row, **values} for sid, row, values in rows]


def latest_actuals(session: Session) -> tuple[int | None, dict[tuple[str, str], int]]:
    newest = session.scalar(select(func.max(ActualImport.id)))
    if newest is None:
        return None, {}
    rows = session.execute(
        select(ActualAmount.team_id, ActualAmount.line_id, ActualAmount.cents).where(ActualAmount.import_id == newest)
    )
    return newest, {(t, lid): c for t, lid, c in rows}


# --- the views ---------------------------------------------------------------------------------------


def master_frame(session: Session, schema: PlanSchema, user: User) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The current master the user may see as a typed plan table (cents), with the imported actuals applied."""
    held = current_submissions(session)
    if user.role == Role.MARKETER:
        mine = {t.id for t in user.teams}
        held = {t: s for t, s in held.items() if t in mine}
    lines = _master_lines(session, held)
    actual_import, actuals = latest_actuals(session)
    if actual_import is not None:
        for line in lines:
            line["actual"] = actuals.get((line["team_id"], line["line_id"]), 0)
    version = session.scalar(select(func.max(MasterVersion.id))) or 0
    return typed_lines(lines, schema), {"master_version": version, "actuals_import": actual_import}


def typed_lines(lines: list[dict[str, Any]], schema: PlanSchema) -> pd.DataFrame:
    """Stored lines as the plan table the reader makes: cents as int64, dates as datetime64, blanks as ''."""
    data: dict[str, Any] = {
        "team_id": np.array([line["team_id"] for line in lines], dtype=object),
        "_row": np.array([line.get("_row") or 0 for line in lines], dtype=np.int64),
    }
    for col in schema.input_columns:
        values = [line.get(col.name) for line in lines]
        if col.type in (ColumnType.MONEY, ColumnType.COUNT):
            data[col.name] = np.array([v or 0 for v in values], dtype=np.int64)
        elif col.type is ColumnType.DATE:
            data[col.name] = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce").to_numpy()
        else:
            data[col.name] = np.array(["" if v is None else v for v in values], dtype=object)
    return pd.DataFrame(data)


def master_workbook(store: Store, schema: PlanSchema, user: User, out: Path, as_of: dt.date) -> Path:
    """The master workbook (the consolidation's Summary, Lines, Rollup, Variance, Chart) of the current master."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        table, _ = master_frame(session, schema, user)
        held = current_submissions(session)
    tables, segments, files = [], [], []
    for team, part in table.groupby("team_id", sort=True) if len(table) else ():
        part = with_totals(part.drop(columns=["team_id"]).reset_index(drop=True), schema)
        part.insert(0, "source", f"{team} #{held[team]}")
        tables.append(part)
        segments.append(lines_segment(part, schema))
        files.append(
            {"file": f"{team} #{held[team]}", "status": "approved", "lines": len(part), "errors": 0, "warnings": 0}
        )
    whole = (
        pd.concat(tables, ignore_index=True)
        if tables
        else with_totals(typed_lines([], schema), schema).assign(source=pd.Series(dtype=object))
    )
    write_master_of(whole, segments, schema, out, as_of=as_of, files=files, issues=[])
    return out


def _dims(schema: PlanSchema, by: str | None, default: str) -> list[str]:
    dims = [d.strip() for d in (by or default).split(",") if d.strip()]
    unknown = [d for d in dims if d not in schema.dimension_names]
    if unknown or len(set(dims)) != len(dims):
        raise ApiError(f"cannot group by {by!r}; use any of {', '.join(schema.dimension_names)}, comma-separated")
    return dims


def rollup_view(
    store: Store, schema: PlanSchema, user: User, by: str | None, period: str | None, measure: str | None
) -> dict[str, Any]:
    dims = _dims(schema, by, "region")
    period, measure = period or "quarter", measure or "planned"
    if period not in {p.value for p in Period}:  # checked for every measure, not only the phased one
        raise ApiError(f"unknown period {period!r}; use {', '.join(p.value for p in Period)}")
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        table, about = master_frame(session, schema, user)
        _, cells = current_allocations(session, schema)
    try:
        long = rollup(table, schema, by=dims, period=period, measure=measure)
    except RollupError as exc:
        raise ApiError(str(exc)) from None
    money_measure = measure == "planned" or schema[measure].type is ColumnType.MONEY
    rows = []
    for record in long.to_dict(orient="records"):
        cents = int(record.pop("cents"))
        row = {**record, "amount": money(cents) if money_measure else cents}
        if money_measure:
            row["cents"] = cents
        if measure == "planned" and period == "quarter" and set(dims) <= {"region", "channel"} and "region" in dims:
            allocated = allocation_of(cells, record["region"], record["period"], record.get("channel"))
            if allocated is not None:
                row["allocation"] = money(allocated)
                if user.role == Role.FINANCE:  # a marketer's totals are its teams', not the region's
                    row["remaining"] = money(allocated - cents)
        rows.append(row)
    return {
        **about,
        "by": dims,
        "period": period,
        "measure": measure,
        "currency": schema.config.reporting_currency if money_measure else None,
        "rows": rows,
    }


def allocation_of(
    cells: Mapping[tuple[str, str, str], int], region: str, quarter: str, channel: str | None
) -> int | None:
    """The allocation of a region (and channel, if given) in a quarter or the whole year; None if none is set."""
    quarters = QUARTERS if quarter not in QUARTERS else (quarter,)
    if channel is None:
        found = [v for (r, q, c), v in cells.items() if r == region and q in quarters and c == ALL_CHANNELS] or [
            v for (r, q, c), v in cells.items() if r == region and q in quarters
        ]
    else:
        found = [v for (r, q, c), v in cells.items() if r == region and q in quarters and c == channel]
    return sum(found) if found else None


def reporting_measures(
    table: pd.DataFrame, schema: PlanSchema, dims: list[str], closed: int, forecast_method: str | None = None
) -> pd.DataFrame:
    """Per line, its `dims` and its money in reporting-currency cents.

    Columns: planned (the year), planned_to_date (the `closed` months), committed, actual, and
    with `forecast_method` the year-end forecast.
    """
    currencies = table["currency"].to_numpy(dtype=object)
    rates = schema.config.plan_rates
    months = [c.name for c in schema.month_columns]

    def reporting(values: np.ndarray) -> np.ndarray:
        return convert_cents(values.astype(np.int64), currencies, rates) if len(table) else values.astype(np.int64)

    grid = table[months].to_numpy(dtype=np.int64) if len(table) else np.zeros((0, 12), dtype=np.int64)
    actual = table["actual"].to_numpy(dtype=np.int64)
    frame = table[dims].copy()
    frame["planned"] = reporting(grid.sum(axis=1))
    frame["planned_to_date"] = reporting(grid[:, :closed].sum(axis=1))
    frame["committed"] = reporting(table["committed"].to_numpy())
    frame["actual"] = reporting(actual)
    if forecast_method is not None:
        frame["forecast"] = reporting(forecast(grid, actual, closed, forecast_method))
    return frame


def variance_view(store: Store, schema: PlanSchema, user: User, by: str | None, as_of: str | None) -> dict[str, Any]:
    """Plan to date against actual spend by the `by` dimensions, with the allocation and what remains of it."""
    dims = _dims(schema, by, "region")
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except ValueError:
        raise ApiError(f"as_of {as_of!r} is not a date; use YYYY-MM-DD") from None
    closed = closed_months(schema.calendar, day)
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        table, about = master_frame(session, schema, user)
        _, cells = current_allocations(session, schema)
    frame = reporting_measures(table, schema, dims, closed)
    measures = ["planned", "planned_to_date", "committed", "actual"]
    if not dims:  # by=",": one grand total, as the rollup gives
        grouped = frame[measures].sum().to_frame().T
    else:
        grouped = frame.groupby(dims, sort=True)[measures].sum().reset_index() if len(table) else frame
    rows = []
    for record in grouped.to_dict(orient="records"):
        values = {m: int(record.pop(m)) for m in measures}
        plan, actual = np.array([values["planned_to_date"]]), np.array([values["actual"]])
        pct = float(variance_pct(plan, actual)[0])
        row = {
            **record,
            **{m: money(v) for m, v in values.items()},
            "variance": money(int(variance(plan, actual)[0])),
            "variance_pct": None if np.isnan(pct) else round(pct, 6),
            "flag": str(variance_flag(plan, actual)[0]),
        }
        if set(dims) <= {"region", "channel"} and "region" in dims:
            allocated = allocation_of(cells, record["region"], "year", record.get("channel"))
            if allocated is not None:
                row["allocation"] = money(allocated)
                if user.role == Role.FINANCE:  # a marketer's totals are its teams', not the region's
                    left = remaining(np.array([allocated]), np.array([values["committed"]]), actual)
                    row["remaining"] = money(int(left[0]))
        rows.append(row)
    return {
        **about,
        "by": dims,
        "as_of": day.isoformat(),
        "closed_months": closed,
        "actual_source": "finance import" if about["actuals_import"] else "plans",
        "currency": schema.config.reporting_currency,
        "rows": rows,
    }
