"""Actual spend from the finance system's export (CSV or xlsx), matched to master lines.

Rows are matched by line ID, else by campaign code. Each import is the finance system's year
to date: the newest import is the actual spend of every master line (0 where it had none).
Until the first import, the actual spend the marketers typed is used. A campaign code shared
by several lines is split over them by their planned spend (see docs/money.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addin.fx import UnknownCurrency, convert_between, convert_cents
from addin.issues import UnreadableWorkbook
from addin.safety import FIRST_SHEET, inspect_package
from sheet_templates.cells import column_letter
from sheet_templates.money import money_text as money
from sheet_templates.money import to_cents
from sheet_templates.schema import PlanSchema
from sync_service.auth import require_finance
from sync_service.errors import Unprocessable
from sync_service.idempotency import Idempotency, remember
from sync_service.master import current_submissions, master_lines
from sync_service.storage import ActualAmount, ActualImport, AuditEvent, Store, User

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
    require_finance(user, "imports actuals")
    rows = parse_actuals(raw, filename, schema)
    config = schema.config
    with store.transaction() as session:
        lines = master_lines(session, current_submissions(session))
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in lines:
            by_id[line["line_id"].lower()].append(line)
            if line.get("campaign_code"):
                by_code[str(line["campaign_code"]).lower()].append(line)
        amounts: dict[tuple[str, str], int] = defaultdict(int)
        unmatched, ambiguous, spread = [], [], []
        matched = 0  # counted as rows match, so each row is in exactly one of matched, unmatched, ambiguous
        for r in rows:
            by_line = by_id.get(r.line_id.lower(), []) if r.line_id else []
            targets, how = by_line, "line_id"
            if len(targets) != 1 and r.campaign_code:
                targets, how = by_code.get(r.campaign_code.lower(), []), "campaign_code"
            if len(by_line) > 1 and (how == "line_id" or not targets):
                # Lines of several teams share the ID (plans from before IDs were unique) and no campaign
                # code says which: reported, never guessed, and never reported as unknown.
                ambiguous.append({"row": r.row, "line_id": r.line_id, "teams": sorted(t["team_id"] for t in by_line)})
                continue
            if not targets:
                unmatched.append(
                    {"row": r.row, "line_id": r.line_id, "campaign_code": r.campaign_code, "amount": money(r.cents)}
                )
                continue
            matched += 1
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
                "matched": matched,
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


def latest_actuals(session: Session) -> tuple[int | None, dict[tuple[str, str], int]]:
    """(import id, {(team, line ID): cents in the line's currency}) of the newest import; (None, {}) before any."""
    newest = session.scalar(select(func.max(ActualImport.id)))
    if newest is None:
        return None, {}
    rows = session.execute(
        select(ActualAmount.team_id, ActualAmount.line_id, ActualAmount.cents).where(ActualAmount.import_id == newest)
    )
    return newest, {(t, lid): c for t, lid, c in rows}
