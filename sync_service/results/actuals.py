"""Actual spend from the finance system's export (CSV or xlsx), matched to master lines.

Rows are matched by line ID, else by campaign code. Each import is the finance system's year
to date: the newest import is the actual spend of every master line (0 where it had none).
Until the first import, the actual spend the marketers typed is used. A campaign code shared
by several lines is split over them by their planned spend (see docs/money.md).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from addin.fx import UnknownCurrency, convert_between, convert_cents
from addin.text_rule import character_message, illegal_character
from sheet_templates.cells import column_letter
from sheet_templates.money import money_text as money
from sheet_templates.schema import MAX_TEXT, PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master.model import current_submissions, master_lines
from sync_service.platform import jobs, presets, years
from sync_service.platform.errors import Unprocessable
from sync_service.platform.exports import (
    FOREIGN_AMOUNT,
    MONTH_HEADERS,
    TO_DATE,
    Marked,
    cell_name,
    collector_paused,
    currency_code,
    day_order,
    fiscal_month,
    marked_amount,
    marked_currency,
    norm,
    read_export,
    to_date_only,
)
from sync_service.platform.idempotency import Idempotency
from sync_service.platform.imports import Stored, finish, insert_rows
from sync_service.platform.presets import ACTUALS, HEAD_ROWS, How, Read
from sync_service.platform.storage import ActualAmount, ActualImport, ActualMonth, Store, User
from sync_service.results.matching import OPTIMISTIC_ATTEMPTS, master_snapshot, split, weights

_HEADERS = {
    "line_id": ("line id", "line_id", "plan line", "plansheet line id", "plan line id"),
    "campaign_code": ("campaign code", "campaign_code", "code", "campaign id", "internal order", "cost object"),
    "amount": ("amount", "actual", "actual spend", "actuals", "spend", "net amount", "value", *FOREIGN_AMOUNT),
    "currency": ("currency", "currency code", "ccy"),
}


presets.declare(ACTUALS, (*_HEADERS, "month", "debit", "credit"))


@dataclass(slots=True)
class ActualRow:
    row: int
    line_id: str
    campaign_code: str
    cents: int
    currency: str
    month: str = ""  # m01..m12 when the export has a month (or posting date) column


@collector_paused()
def parse_actuals(
    raw: bytes, filename: str | None, schema: PlanSchema, date_order: str | None = None, how: How | None = None
) -> Read:
    """The export's rows; 422 naming the row and column of every amount, currency, month or line key that is not one.

    A month (or posting date) column is optional: with one, each row's spend is kept by fiscal
    month too, which is what quarterly unit costs need; every row must then name its month. A
    general ledger's export is read by its preset (`sync_service.platform.presets`): its headings
    and totals rows are skipped, its debit and credit columns read as one signed amount.
    """
    sheet, grid = read_export(raw, filename)
    if not any(any(norm(v) for v in r) for r in grid[:HEAD_ROWS]):
        raise Unprocessable("the export is empty")
    reading = (how or How()).read(grid[:HEAD_ROWS], ACTUALS, {**_HEADERS, "month": MONTH_HEADERS}, sheet)
    header_row, columns = reading.row, reading.columns
    debit_credit = "amount" not in columns and {"debit", "credit"} <= columns.keys()
    if not ("amount" in columns or debit_credit) or not ({"line_id", "campaign_code"} & columns.keys()):
        raise Unprocessable(
            "the export needs an amount column ('Amount' or 'Actual', or 'Debit' and 'Credit') and a 'Line ID' or "
            "'Campaign code' column in its header row; found "
            f"{', '.join(str(v) for v in grid[header_row] if str(v).strip()) or 'nothing'}"
        )
    if debit_credit:
        columns["amount"] = columns["debit"]  # where an amount's problem is named
    skipped: list[dict[str, Any]] = []

    cell = cell_name

    currencies, reporting = set(schema.config.currencies), schema.config.reporting_currency
    plan_currencies = tuple(sorted(currencies))
    j_id, j_code, j_amount, j_currency = (columns.get(f) for f in ("line_id", "campaign_code", "amount", "currency"))
    j_month = columns.get("month")
    if j_month is not None and to_date_only(r[j_month] for r in grid[header_row + 1 :] if len(r) > j_month):
        j_month = None  # a Period column reading YTD throughout: spend to date, no months
    order = None
    if j_month is not None:
        where = f"{sheet} column {column_letter(j_month + 1)}"
        values = (r[j_month] for r in grid[header_row + 1 :] if len(r) > j_month)
        order = day_order(values, where, date_order, reading.preset.date_order)
    month_of: dict[Any, str] = {}
    width = max(columns.values()) + 1
    text_cells = sheet == "csv"  # every CSV cell is text already
    amount_of: dict[str, Marked] = {}  # exports repeat amounts: each text is read once
    rows, problems = [], []
    for i in range(header_row + 1, len(grid)):
        record = grid[i]
        if not "".join(record if text_cells else map(str, record)).strip():  # a blank row
            continue
        if reading.skipped(record):
            skipped.append({"row": i + 1, "reason": "a heading or totals row of the report"})
            continue
        if len(record) < width:
            record = [*record, *[""] * (width - len(record))]
        value = record[j_id] if j_id is not None else ""
        line_id = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
        code = str(reading.clean("campaign_code", record[j_code])).strip() if j_code is not None else ""
        no_amount = not str(record[columns["amount"]]).strip()
        if debit_credit:
            no_amount = no_amount and not str(record[columns["credit"]]).strip()
        if reading.preset.skip_rows and no_amount and not line_id and not code:  # an account's heading row
            skipped.append({"row": i + 1, "reason": "no amount, line ID or campaign code"})
            continue
        if len(line_id) > MAX_TEXT or len(code) > MAX_TEXT:
            for j, key in ((j_id, line_id), (j_code, code)):
                if j is not None and len(key) > MAX_TEXT:
                    problems.append(
                        {
                            "sheet": sheet,
                            "cell": cell(j, i),
                            "rule": "actuals.too_long",
                            "message": f"{len(key):,} characters, longer than any line ID or campaign code "
                            f"({MAX_TEXT}); a quote left open in the export runs the rows after it into one cell",
                        }
                    )
            continue
        if illegal_character(line_id + code) is not None:  # the one text rule (addin.text_rule), as plans keep it
            for j, key, what in ((j_id, line_id, "Line ID"), (j_code, code, "Campaign code")):
                char = illegal_character(key)
                if j is not None and char is not None:
                    problems.append(
                        {
                            "sheet": sheet,
                            "cell": cell(j, i),
                            "rule": "actuals.control_character",
                            "message": character_message(what, char),
                        }
                    )
            continue
        if debit_credit:
            marked = _debit_less_credit(record[columns["debit"]], record[columns["credit"]], plan_currencies)
        else:
            value = record[j_amount]
            marked = amount_of.get(value) if type(value) is str else None
            if marked is None:
                marked = marked_amount(value, plan_currencies)
                if type(value) is str and len(amount_of) < 100_000:
                    amount_of[value] = marked
        cents = marked.cents
        given = currency_code(record[j_currency], currencies) if j_currency is not None else ""
        if cents is None:
            problems.append(
                {
                    "sheet": sheet,
                    "cell": cell(columns["amount"], i),
                    "rule": "actuals.amount",
                    "message": marked.problem or "not an amount",
                }
            )
            continue
        currency, why = (
            (given, None)
            if given and given not in currencies
            else marked_currency(marked, given, record[columns["amount"]], reporting)
        )
        if why is not None:
            problems.append({"sheet": sheet, "cell": cell(columns["amount"], i), "rule": "actuals.currency",
                             "message": why})  # fmt: skip
            continue
        currency = currency or reporting
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
        month = ""
        if j_month is not None:
            value = record[j_month]
            month = month_of.get(value, "") if isinstance(value, str | int | float) else ""
            if not month:
                if value is None or str(value).strip() == "":
                    problems.append(
                        {"sheet": sheet, "cell": cell(j_month, i), "rule": "actuals.month", "message": "no month"}
                    )
                    continue
                if norm(value) in TO_DATE:
                    problems.append(
                        {
                            "sheet": sheet,
                            "cell": cell(j_month, i),
                            "rule": "actuals.month",
                            "message": f"{str(value).strip()!r} is a to-date total among rows by month; "
                            "export either every row by month or every row to date",
                        }
                    )
                    continue
                try:
                    month = fiscal_month(value, schema.calendar, order)
                except ValueError as exc:
                    problems.append(
                        {"sheet": sheet, "cell": cell(j_month, i), "rule": "actuals.month", "message": str(exc)}
                    )
                    continue
                if isinstance(value, str | int | float):
                    month_of[value] = month
        rows.append(ActualRow(i + 1, line_id, code, cents, currency, month))
    if problems:
        raise Unprocessable(
            f"{len(problems)} row(s) of the export are not valid; nothing was imported", issues=problems
        )
    return Read(rows, reading.read_by | ({"rows_skipped": skipped} if skipped else {}))


def _debit_less_credit(debit: Any, credit: Any, currencies: tuple[str, ...]) -> Marked:
    """A general ledger row's debit less its credit, as one amount (each side may carry its currency)."""
    sides = [marked_amount(v, currencies) if str(v).strip() else Marked(0) for v in (debit, credit)]
    bad = next((s for s in sides if s.cents is None), None)
    if bad is not None:
        return bad
    marks = [s.currencies for s in sides if s.currencies is not None]
    if len(marks) == 2 and marks[0] != marks[1]:
        return Marked(None, None, "the debit and the credit are in different currencies")
    assert sides[0].cents is not None and sides[1].cents is not None
    return Marked(sides[0].cents - sides[1].cents, marks[0] if marks else None)


@dataclass
class Matched:
    """What an export's rows give the master's lines: the report and the actual spend per (team, line ID)."""

    amounts: dict[tuple[str, str], int]
    matched: int  # rows
    unmatched: list[dict[str, Any]]
    ambiguous: list[dict[str, Any]]
    spread: list[dict[str, Any]]
    months: dict[tuple[str, str, str], int] = dataclass_field(default_factory=dict)  # (team, line ID, month) -> cents


@collector_paused()
def match_actuals(rows: list[ActualRow], lines: list[dict[str, Any]], schema: PlanSchema) -> Matched:
    """Match each row to its master line (by line ID, else campaign code) and sum it there, in the line's currency.

    Pure, so it runs outside any transaction. Every row's part is converted and rounded on its own,
    as one row at a time would be; the conversions are done in bulk per pair of currencies.
    """
    by_id: dict[str, list[int]] = defaultdict(list)
    by_code: dict[str, list[int]] = defaultdict(list)
    for k, line in enumerate(lines):
        by_id[line["line_id"].lower()].append(k)
        if line.get("campaign_code"):
            by_code[str(line["campaign_code"]).lower()].append(k)
    currency_of = [line.get("currency") for line in lines]
    weights_of: dict[str, list[int]] = {}  # a shared campaign code's weights, worked out once
    # Each (row, line) part, by (row currency, line currency): ([line index], [cents]), converted in bulk.
    parts: dict[tuple[str, Any], tuple[list[int], list[int], list[str]]] = {}
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
            ambiguous.append(
                {"row": r.row, "line_id": r.line_id, "teams": sorted(lines[k]["team_id"] for k in by_line)}
            )
            continue
        if not targets:
            unmatched.append(
                {"row": r.row, "line_id": r.line_id, "campaign_code": r.campaign_code, "amount": money(r.cents)}
            )
            continue
        matched += 1
        if len(targets) == 1:  # the whole row goes to its line
            shares = [r.cents]
        else:
            code = r.campaign_code.lower()
            if code not in weights_of:
                weights_of[code] = weights([lines[k] for k in targets], schema)
            spread.append({"row": r.row, "campaign_code": r.campaign_code, "lines": len(targets)})
            shares = split(r.cents, weights_of[code])
        for k, share in zip(targets, shares, strict=True):
            bucket = parts.get((r.currency, currency_of[k]))
            if bucket is None:
                bucket = parts[(r.currency, currency_of[k])] = ([], [], [])
            bucket[0].append(k)
            bucket[1].append(share)
            bucket[2].append(r.month)
    totals: dict[int, int] = {}
    by_month: dict[tuple[int, str], int] = {}
    for (source, target), (indexes, shares, months) in parts.items():
        converted = _convert(shares, source, target, schema).tolist()
        for k, cents, month in zip(indexes, converted, months, strict=True):
            totals[k] = totals.get(k, 0) + cents
            if month:
                by_month[k, month] = by_month.get((k, month), 0) + cents
    totals = dict(sorted(totals.items()))  # in master order, whatever the order of the rows
    amounts = {(lines[k]["team_id"], lines[k]["line_id"]): cents for k, cents in totals.items()}
    month_amounts = {
        (lines[k]["team_id"], lines[k]["line_id"], month): cents for (k, month), cents in sorted(by_month.items())
    }
    return Matched(amounts, matched, unmatched, ambiguous, spread, month_amounts)


def _convert(shares: list[int], source: str, target: Any, schema: PlanSchema) -> np.ndarray:
    """Parts of rows in `source` as cents of their lines' `target` currency, each rounded on its own.

    Left as they are when a rate is unknown, as a single row's conversion would leave it.
    """
    cents = np.array(shares, dtype=np.int64)
    if source == target:
        return cents
    with contextlib.suppress(UnknownCurrency):
        return convert_between(cents, np.full(len(cents), source, dtype=object), target, schema.config)
    return cents


def import_actuals(
    store: Store,
    schema: PlanSchema,
    user: User,
    raw: bytes,
    filename: str | None,
    idem: Idempotency | None = None,
    stored: Stored | None = None,
    date_order: str | None = None,
    how: How | None = None,
) -> dict[str, Any]:
    """Match the export's rows to master lines and store them as the actual spend in force.

    `stored(session, answer)` runs inside the import's own transaction: a background job records
    its success there, so the import and the job's "succeeded" land together or not at all, and a
    job worker killed in between imports nothing twice.

    The file is parsed and matched against a read of the master outside any transaction; the
    write transaction only checks that the master is still the one matched against and inserts
    the import in bulk, so other writers wait a moment, not for the whole import. When a plan was
    approved in between, the rows are matched again against the new master.
    """
    require_finance(user, "imports actuals")
    rows = parse_actuals(raw, filename, schema, date_order, how)
    sha256 = hashlib.sha256(raw).hexdigest()
    year = schema.calendar.year
    for _ in range(OPTIMISTIC_ATTEMPTS):
        held, lines = master_snapshot(store, schema)
        matched = match_actuals(rows, lines, schema)
        with store.transaction() as session:
            if current_submissions(session, year) == held:
                return _store_import(session, schema, user, raw, sha256, filename, rows, lines, matched, idem, stored)
    with store.transaction() as session:  # the master keeps changing under us: match inside the lock
        lines = master_lines(session, current_submissions(session, year), schema, store.shared)
        matched = match_actuals(rows, lines, schema)
        return _store_import(session, schema, user, raw, sha256, filename, rows, lines, matched, idem, stored)


def _store_import(
    session: Session,
    schema: PlanSchema,
    user: User,
    raw: bytes,
    sha256: str,
    filename: str | None,
    rows: Read,
    lines: list[dict[str, Any]],
    matched: Matched,
    idem: Idempotency | None,
    stored: Stored | None,
) -> dict[str, Any]:
    """Write one matched import: the raw file, its report, its amounts in one bulk insert, the audit event."""
    years.require_open(session, schema.calendar.year, "import actual spend")
    config = schema.config
    amounts = matched.amounts
    currency_of = {(line["team_id"], line["line_id"]): line["currency"] for line in lines}
    total = convert_cents(
        np.array(list(amounts.values()), dtype=np.int64),
        np.array([currency_of[k] for k in amounts], dtype=object),
        config.plan_rates,
    ).sum()
    record = ActualImport(
        fiscal_year=schema.calendar.year,
        user_id=user.id,
        filename=(filename or None) and filename[:255],
        raw=raw,
        raw_sha256=sha256,
        report={
            "read_by": rows.read_by,
            "rows": len(rows),
            "matched": matched.matched,
            "unmatched": matched.unmatched,
            "ambiguous": matched.ambiguous,
            "spread": matched.spread,
            "lines": len(amounts),
            "by_month": bool(matched.months),
        },
    )
    session.add(record)
    session.flush()
    insert_rows(
        session,
        ActualAmount,
        ({"import_id": record.id, "team_id": t, "line_id": lid, "cents": c} for (t, lid), c in amounts.items()),
    )
    insert_rows(
        session,
        ActualMonth,
        (
            {"import_id": record.id, "team_id": t, "line_id": lid, "month": m, "cents": c}
            for (t, lid, m), c in matched.months.items()
        ),
    )
    audit = {"file": filename, "rows": len(rows), "unmatched": len(matched.unmatched), "total": money(int(total))}
    result = {
        "id": record.id,
        "filename": filename,
        "imported_at": record.created_at.isoformat(),
        **record.report,
        "total": money(int(total)),
        "currency": config.reporting_currency,
    }
    finish(session, user, idem, 201, result, stored, ("actuals.import", f"actuals:{record.id}", audit))
    return result


@jobs.kind("actuals.import", "Import actual spend")
def import_job(run: Any) -> dict[str, Any]:
    """The job `actuals.import`: the export written with the job, imported as the synchronous route does."""
    raw, filename = run.given()
    schema = run.schema
    args = run.job.args or {}
    return import_actuals(
        run.store,
        schema,
        run.user,
        raw,
        filename,
        stored=run.succeed,
        date_order=args.get("date_order"),
        how=How.of(args),
    )
