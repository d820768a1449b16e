"""What the spend bought: results from the CRM and marketing automation, matched to master lines.

An import is one export (CSV or xlsx) of a Salesforce campaign report, a HubSpot campaign
export, a Marketo program performance report, any other export through a column mapping, or
one JSON push from an integration. Each row names a campaign (a line ID, a campaign code or a
campaign name, looked for in that order) and a fiscal month (a column, or one month for the
whole file), and carries any of the results below. Imports are immutable; for each source and
fiscal month the newest import covering that month is in force, so a corrected export replaces
the older one for its months and leaves other months alone, and sending the same file again
changes nothing.

Counts are kept in hundredths (multi-touch attribution credits fractions of a lead), money in
reporting cents: each row's amount converted at the plan rate of its currency, as the plan's
expected pipeline and revenue are, so plan, actual and target compare like with like. A
campaign code (or name) shared by several lines is split over them by their planned spend,
largest remainder, exactly as actual spend is (docs/money.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from addin.fx import UnknownCurrency, convert_cents
from addin.text_rule import character_message, illegal_character
from sheet_templates.cells import column_letter
from sheet_templates.money import to_cents
from sheet_templates.schema import MAX_TEXT, PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master.model import current_submissions, master_lines
from sync_service.master.outcomes import LABELS, METRICS, MONEY, newest_by_month
from sync_service.platform import jobs, presets, years
from sync_service.platform.errors import ServiceError, Unprocessable
from sync_service.platform.exports import (
    MONTH_HEADERS,
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
from sync_service.platform.imports import finish, insert_rows
from sync_service.platform.presets import RESULTS, columns_read
from sync_service.platform.storage import OutcomeAmount, OutcomeImport, Store, User
from sync_service.results.matching import OPTIMISTIC_ATTEMPTS, master_snapshot, split, weights

KEYS = ("line_id", "crm_campaign_id", "campaign_code", "campaign")  # the order a row is matched in
_KEY_LABELS = {
    "line_id": "Line ID",
    "crm_campaign_id": "CRM campaign ID",
    "campaign_code": "Campaign code",
    "campaign": "Campaign",
}
MAX_LISTED = 1000  # unmatched rows listed in an answer; the count is always whole
_UNREAD = object()
_TOTAL = re.compile(r"^(grand\s+)?(sub)?totals?\b", re.I)

_COMMON = {
    "line_id": ("line id", "plansheet line id", "plan line id"),
    "month": MONTH_HEADERS,
}
# Each preset: field -> the headers its export uses (compared lower-cased, "_" as a space, "Sum of " dropped).
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "plansheet": {
        "crm_campaign_id": ("crm campaign id",),
        "campaign_code": ("campaign code", "code"),
        "campaign": ("campaign", "campaign name"),
        "leads": ("leads",),
        "mqls": ("mqls", "mql"),
        "sals": ("sals", "sal", "sales accepted leads", "sales-accepted leads"),
        "opportunities": ("opportunities", "opps"),
        "won": ("won", "won opportunities", "closed won"),
        "pipeline": ("pipeline",),
        "revenue": ("revenue", "closed-won revenue", "closed won revenue"),
        "crm_cost": ("crm cost",),
        "currency": ("currency", "currency code"),
    },
    "salesforce": {
        "crm_campaign_id": ("campaign id", "campaign: campaign id", "18 digit campaign id", "campaign id (18)"),
        "campaign_code": ("campaign code",),
        "campaign": ("campaign name", "campaign: campaign name"),
        "leads": ("leads in campaign", "total leads"),
        "mqls": ("mqls in campaign", "mqls", "marketing qualified leads"),
        "sals": ("converted leads in campaign", "total converted leads", "sales accepted leads"),
        "opportunities": ("opportunities in campaign", "total opportunities", "num total opportunities"),
        "won": ("won opportunities in campaign", "total won opportunities", "num won opportunities"),
        "pipeline": ("value opportunities in campaign", "total value opportunities", "amount all opportunities"),
        "revenue": (
            "value won opportunities in campaign",
            "total value won opportunities",
            "amount won opportunities",
        ),
        "crm_cost": ("actual cost in campaign", "actual cost"),
        "currency": ("campaign currency", "currency", "opportunity currency"),
    },
    "hubspot": {
        "crm_campaign_id": ("campaign id",),
        "campaign_code": ("utm campaign", "campaign code"),
        "campaign": ("campaign name", "name", "campaign"),
        "leads": ("new contacts (first touch)", "new contacts", "new contacts (last touch)"),
        "mqls": ("marketing qualified leads", "mqls", "new marketing qualified leads"),
        "sals": ("sales qualified leads", "sqls", "sales accepted leads"),
        "opportunities": ("deals created", "new deals", "opportunities"),
        "won": ("closed won deals", "closed-won deals", "deals won", "closed deals"),
        "pipeline": ("deal amount", "pipeline", "deal value", "influenced pipeline"),
        "revenue": ("revenue", "attributed revenue", "closed won revenue"),
        "currency": ("currency", "currency code"),
    },
    "marketo": {
        "crm_campaign_id": ("program id",),
        "campaign_code": ("program code",),
        "campaign": ("program name", "program"),
        "leads": ("new names", "(ft) new names"),
        "mqls": ("success", "mqls", "(mt) success"),
        "sals": ("sales accepted", "sals"),
        "opportunities": ("opportunities created", "(ft) opportunities created", "(mt) opportunities created"),
        "won": ("opportunities won", "(ft) opportunities won", "(mt) opportunities won", "won opportunities"),
        "pipeline": ("pipeline created", "(ft) pipeline created", "(mt) pipeline created"),
        "revenue": ("won revenue", "(ft) won revenue", "(mt) won revenue", "revenue"),
        "crm_cost": ("period cost", "cost"),
        "currency": ("currency",),
    },
}
FIELDS = (*KEYS, "month", "currency", *METRICS)
presets.declare(RESULTS, FIELDS)


@dataclass(slots=True)
class OutcomeRow:
    row: int  # the export's row (1-based), or the JSON row's index + 1
    line_id: str
    crm_campaign_id: str
    campaign_code: str
    campaign: str
    month: str
    currency: str
    values: list[int | None]  # per METRICS: hundredths (counts) or cents in `currency` (money); None: blank


@dataclass
class Parsed:
    rows: list[OutcomeRow]
    metrics: tuple[str, ...]  # the results the export has columns for
    skipped: list[dict[str, Any]]  # totals, footers and rows without figures
    unread: list[dict[str, str]] = field(default_factory=list)  # the header's columns no field reads, and why
    read: list[dict[str, str]] = field(default_factory=list)  # which column of the header is which field

    def read_by(self, preset: str, profile: str | None = None) -> dict[str, Any]:
        """What the import's answer says about how its export was read: the preset, the profile, the columns."""
        return {
            "preset": preset,
            **({"profile": profile} if profile else {}),
            **({"columns_read": self.read} if self.read else {}),
            **({"columns_not_read": self.unread} if self.unread else {}),
        }


# What a CRM export carries that Plansheet does not read as a result, and why (said in the import's answer).
_NOT_RESULTS = {
    "budgeted cost in campaign": "the CRM's budget; the plan's planned spend is the budget",
    "budgeted cost": "the CRM's budget; the plan's planned spend is the budget",
    "roi": "the CRM's ROI; Plansheet works out ROI from finance's spend and the results",
}


def _unread(header: list[Any], columns: Mapping[str, int], row: int) -> list[dict[str, str]]:
    read = set(columns.values())
    return [
        {
            "column": str(v).strip(),
            "cell": cell_name(j, row),
            "why": _NOT_RESULTS.get(_header(v), "not a result Plansheet reads"),
        }
        for j, v in enumerate(header)
        if j not in read and str(v if v is not None else "").strip()
    ]


def _header(value: Any) -> str:
    text = norm(value)
    return text[7:] if text.startswith("sum of ") else text


def columns_of(header: list[Any], preset: str, mapping: Mapping[str, str] | None) -> dict[str, int]:
    """Field -> column index, from the preset's header names or the caller's mapping."""
    found: dict[str, int] = {}
    names = [_header(v) for v in header]
    if mapping:
        for name, wanted in mapping.items():
            if name not in FIELDS:
                raise ServiceError(f"mapping: {name!r} is not a field; use {', '.join(FIELDS)}")
            try:
                found[name] = names.index(_header(wanted))
            except ValueError:
                raise Unprocessable(
                    f"mapping: the export has no column {wanted!r} for {name}; its columns are "
                    + ", ".join(str(v) for v in header if str(v).strip())
                ) from None
    aliases = {**PRESETS[preset], **_COMMON}
    for j, name in enumerate(names):
        for field_name, wanted in aliases.items():
            if name in wanted and field_name not in found and j not in found.values():
                found[field_name] = j
    return found


def detect_preset(grid: list[list[Any]]) -> str:
    """The preset whose header names the most columns of the export's header (the first 20 rows looked at)."""
    best, score = "plansheet", 0
    for row in grid[:20]:
        if not any(norm(v) for v in row):
            continue
        for name in PRESETS:
            columns = columns_of(row, name, None)
            if set(KEYS) & columns.keys() and set(METRICS) & columns.keys():
                found = len(set(METRICS) & columns.keys()) * 10 + len(columns)
                if found > score:
                    best, score = name, found
        if score:
            return best
    return best


def _header_row(grid: list[list[Any]], preset: str, mapping: Mapping[str, str] | None) -> tuple[int, dict[str, int]]:
    """The first row (of the first 20) that names a campaign key and a result: exports put titles above it."""
    first_error: Unprocessable | None = None
    for i, row in enumerate(grid[:20]):
        if not any(norm(v) for v in row):
            continue
        try:
            columns = columns_of(row, preset, mapping)
        except Unprocessable as exc:  # a title row above the header has none of the mapped columns
            first_error = first_error or exc
            continue
        if set(KEYS) & columns.keys() and set(METRICS) & columns.keys():
            return i, columns
    if first_error is not None:
        raise first_error
    wanted = PRESETS[preset]
    first = next((r for r in grid[:20] if any(norm(v) for v in r)), [])
    raise Unprocessable(
        f"no header row with a campaign column ({', '.join(repr(h) for h in wanted['crm_campaign_id'][:1])}, "
        f"{', '.join(repr(h) for h in wanted['campaign_code'][:2])} or "
        f"{wanted['campaign'][0]!r}, or 'Line ID') and a result column (for example "
        f"{wanted['leads'][0]!r} or {wanted['pipeline'][0]!r}) for the {preset} preset; found "
        + (", ".join(str(v) for v in first if str(v).strip()) or "nothing")
        + "; choose another preset or send a column mapping"
    )


Where = Callable[[str, int], str]


def parse_grid(
    sheet: str,
    grid: list[list[Any]],
    schema: PlanSchema,
    preset: str,
    mapping: Mapping[str, str] | None,
    month: str | None,
    date_order: str | None,
    where: Where | None = None,
) -> Parsed:
    """The export's rows, every bad cell a 422 issue naming its sheet and cell; totals and footers skipped."""
    header_row, columns = _header_row(grid, preset, mapping)
    if where is None:

        def where(name: str, i: int) -> str:
            return cell_name(columns[name], i)

    metrics = tuple(m for m in METRICS if m in columns)
    currencies, reporting = set(schema.config.currencies), schema.config.reporting_currency
    plan_currencies = tuple(sorted(currencies))
    default_month = None
    if month:
        try:
            default_month = fiscal_month(month, schema.calendar, None)
        except ValueError as exc:
            raise ServiceError(f"month: {exc}") from None
    j_month = columns.get("month")
    if j_month is not None and to_date_only(r[j_month] for r in grid[header_row + 1 :] if len(r) > j_month):
        j_month = None  # a Period column reading YTD throughout says no month
    if j_month is None and default_month is None:
        raise Unprocessable(
            "the export has no month column (Month, Period, Date...; a Period of YTD is not a month) "
            "and no month was given; "
            "send month=m03 (or Apr 2026) for an export of one month"
        )
    order = None
    if j_month is not None:
        order = day_order(
            (r[j_month] for r in grid[header_row + 1 :] if len(r) > j_month),
            f"{sheet} column {column_letter(j_month + 1)}",
            date_order,
        )
    width = max(columns.values()) + 1
    j_keys = [(name, columns.get(name)) for name in KEYS]
    j_metrics = [(m, columns[m], METRICS.index(m), m in MONEY) for m in metrics]
    j_values = [j for _, j, _, _ in j_metrics]
    is_total: dict[str, bool] = {}
    j_currency = columns.get("currency")
    number_of: dict[str, int | None] = {}
    month_of: dict[Any, str] = {}
    rows: list[OutcomeRow] = []
    skipped: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []

    def problem(name: str, i: int, rule: str, message: str) -> None:
        problems.append({"sheet": sheet, "cell": where(name, i), "rule": f"outcomes.{rule}", "message": message})

    for i in range(header_row + 1, len(grid)):
        record = grid[i]
        if len(record) < width:
            record = [*record, *[""] * (width - len(record))]
        keys = {}
        for name, j in j_keys:
            value = record[j] if j is not None else ""
            if type(value) is not str:  # an xlsx cell: a number, a date, empty
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                value = "" if value is None else str(value)
            keys[name] = value.strip()
        raw_values = [record[j] for j in j_values]
        if all(v is None or (type(v) is str and not v.strip()) for v in raw_values):
            if any(keys.values()) or any(str(v).strip() for v in record if v is not None):
                skipped.append({"row": i + 1, "reason": "no figures"})
            continue
        label = keys["line_id"] or keys["crm_campaign_id"] or keys["campaign_code"] or keys["campaign"]
        total = is_total.get(label)
        if total is None:
            total = bool(_TOTAL.match(label))
            if len(is_total) < 100_000:  # labels repeat (a campaign per month); the cache is bounded
                is_total[label] = total
        if not label or total:
            skipped.append({"row": i + 1, "reason": "a totals row" if label else "no campaign, line ID or code"})
            continue
        if max(map(len, keys.values())) > MAX_TEXT:
            too_long = [name for name, key in keys.items() if len(key) > MAX_TEXT]
            for name in too_long:
                problem(name, i, "too_long", f"{len(keys[name]):,} characters, longer than any plan cell ({MAX_TEXT})")
            continue
        if illegal_character("".join(keys.values())) is not None:
            for name, key in keys.items():  # the one text rule (addin.text_rule), as plans keep it
                char = illegal_character(key)
                if char is not None:
                    problem(name, i, "control_character", character_message(_KEY_LABELS[name], char))
            continue
        currency = currency_code(record[j_currency], currencies) if j_currency is not None else ""
        values: list[int | None] = [None] * len(METRICS)
        bad = False
        for (metric, _, at, money), value in zip(j_metrics, raw_values, strict=True):
            if value is None:
                continue
            if type(value) is str:
                text = value.strip()
                if not text:
                    continue
                cents = number_of.get(text, _UNREAD)
                if cents is _UNREAD:
                    cents = to_cents(text)
                    if len(number_of) < 100_000:  # counts repeat; money mostly does not
                        number_of[text] = cents
                if money and (cents is None or not text[:1].isdigit()):  # a currency marker: "€30,000.50", "EUR 5"
                    marked = marked_amount(text, plan_currencies)
                    cents = marked.cents
                    if cents is not None:
                        said, why = marked_currency(marked, currency, text, reporting)
                        if why is not None:
                            problem(metric, i, "currency", why)
                            bad = True
                            continue
                        currency = said or currency
            else:
                cents = to_cents(value)
            if cents is None:
                problem(metric, i, "number", f"{value!r} is not a number")
                bad = True
                continue
            if not money and cents < 0:
                problem(metric, i, "negative", f"{LABELS[metric].lower()} cannot be negative")
                bad = True
                continue
            values[at] = cents
        currency = currency or reporting
        if currency not in currencies:
            if j_currency is not None:
                problem("currency", i, "currency", f"{currency!r} is not one of {', '.join(sorted(currencies))}")
            else:
                problems.append(
                    {
                        "sheet": sheet,
                        "cell": f"row {i + 1}",
                        "rule": "outcomes.currency",
                        "message": f"{currency!r} is not one of {', '.join(sorted(currencies))}",
                    }
                )
            continue
        row_month = default_month
        if j_month is not None:
            value = record[j_month]
            if value is not None and str(value).strip():
                hashable = isinstance(value, str | int | float)
                row_month = month_of.get(value) if hashable else None
                if row_month is None:
                    try:
                        row_month = fiscal_month(value, schema.calendar, order)
                    except ValueError as exc:
                        problem("month", i, "month", str(exc))
                        continue
                    if hashable:
                        month_of[value] = row_month
        if row_month is None:
            problem("month", i, "month", "no month, and none was given for the whole export")
            continue
        if bad:
            continue
        rows.append(
            OutcomeRow(
                i + 1,
                keys["line_id"],
                keys["crm_campaign_id"],
                keys["campaign_code"],
                keys["campaign"],
                row_month,
                currency,
                values,
            )
        )
    if problems:
        raise Unprocessable(
            f"{len(problems)} cell(s) of the export are not valid; nothing was imported", issues=problems
        )
    header = grid[header_row]
    return Parsed(
        rows, metrics, skipped, _unread(header, columns, header_row), columns_read(header, columns, header_row)
    )


@collector_paused()
def parse_file(
    raw: bytes,
    filename: str | None,
    schema: PlanSchema,
    preset: str | None,
    mapping: Mapping[str, str] | None = None,
    month: str | None = None,
    date_order: str | None = None,
) -> tuple[str, Parsed]:
    """(the preset used, the export's rows); the preset is found from the header when not given."""
    sheet, grid = read_export(raw, filename)
    if not any(any(norm(v) for v in r) for r in grid[:20]):
        raise Unprocessable("the export is empty")
    preset = preset or detect_preset(grid)
    return preset, parse_grid(sheet, grid, schema, preset, mapping, month, date_order)


def parse_json_rows(rows: list[dict[str, Any]], schema: PlanSchema, month: str | None) -> Parsed:
    """A push's rows ({field: value}) read exactly as an export's, each refusal naming rows[i].field."""
    unknown = sorted({k for r in rows for k in r} - set(FIELDS))
    if unknown:
        raise ServiceError(f"rows: unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}")
    header = list(FIELDS)
    grid: list[list[Any]] = [header, *([r.get(f) for f in header] for r in rows)]

    def where(name: str, i: int) -> str:
        return f"rows[{i - 1}].{name}"

    parsed = parse_grid("rows", grid, schema, "plansheet", {f: f for f in FIELDS}, month, None, where)
    present = {k for r in rows for k, v in r.items() if v is not None}
    return Parsed(parsed.rows, tuple(m for m in parsed.metrics if m in present), parsed.skipped)


# --- matching --------------------------------------------------------------------------------------------


@dataclass
class MatchedOutcomes:
    amounts: dict[tuple[str, str, str], list[int]]  # (team, line ID, month) -> per METRICS, reporting units
    matched: int
    unmatched: list[dict[str, Any]]
    unmatched_count: int
    ambiguous: list[dict[str, Any]]
    spread: list[dict[str, Any]] = field(default_factory=list)
    matched_by: dict[str, int] = field(default_factory=dict)  # rows matched by each key
    matched_rows: list[dict[str, Any]] = field(default_factory=list)  # {"row", "by"}: which key matched each row


@collector_paused()
def match_outcomes(rows: list[OutcomeRow], lines: list[dict[str, Any]], schema: PlanSchema) -> MatchedOutcomes:
    """Each row to its master line(s), by line ID, else CRM campaign ID, else campaign code, else campaign name.

    A CRM campaign ID no line carries is looked for among the campaign codes too (an export whose ID
    column holds the plan's own codes). Shared keys are split. Every row's share is rounded on its
    own: counts by largest remainder in hundredths, money the same in the row's currency, then each
    part converted to reporting cents at the plan rate. `matched_by` says which key matched each row.
    """
    index: dict[str, dict[str, list[int]]] = {k: defaultdict(list) for k in KEYS}
    for k, line in enumerate(lines):
        for key in KEYS:
            value = line.get(key)
            if value:
                index[key][_key_of(key, str(value))].append(k)
    weights_of: dict[tuple[str, str], list[int]] = {}
    rates = schema.config.plan_rates
    parts: dict[
        str, tuple[list[tuple[int, str, int]], list[int]]
    ] = {}  # currency -> ([(line, month, metric)], [cents])
    counts: dict[tuple[int, str], list[int]] = {}
    unmatched: list[dict[str, Any]] = []
    ambiguous: list[dict[str, Any]] = []
    spread: list[dict[str, Any]] = []
    unmatched_count = matched = 0
    matched_by: dict[str, int] = {}
    matched_rows: list[dict[str, Any]] = []
    money_at = [j for j, m in enumerate(METRICS) if m in MONEY]
    count_at = [j for j, m in enumerate(METRICS) if m not in MONEY]
    resolved: dict[tuple[str, str, str], tuple[list[int], list[int], str]] = {}
    for r in rows:
        row_keys = (r.line_id, r.crm_campaign_id, r.campaign_code, r.campaign)
        known = resolved.get(row_keys)
        if known is None:
            by_line = index["line_id"].get(r.line_id.casefold(), []) if r.line_id else []
            targets, how = by_line, "line_id"
            for key, value, among in (
                ("crm_campaign_id", r.crm_campaign_id, "crm_campaign_id"),
                ("campaign_code", r.crm_campaign_id, "campaign_code"),  # an ID column holding the plan's codes
                ("campaign_code", r.campaign_code, "campaign_code"),
                ("campaign", r.campaign, "campaign"),
            ):
                if len(targets) == 1 or not value:
                    continue
                found = index[among].get(_key_of(among, value), [])
                if found:
                    targets, how = found, key
                    break
            if len(resolved) < 100_000:  # rows repeat their campaign (one a month); the cache is bounded
                resolved[row_keys] = (by_line, targets, how)
        else:
            by_line, targets, how = known
        if len(by_line) > 1 and how == "line_id":
            ambiguous.append(
                {"row": r.row, "line_id": r.line_id, "teams": sorted(lines[k]["team_id"] for k in by_line)}
            )
            continue
        if not targets:
            unmatched_count += 1
            if len(unmatched) < MAX_LISTED:
                unmatched.append(
                    {
                        "row": r.row,
                        "line_id": r.line_id,
                        "crm_campaign_id": r.crm_campaign_id,
                        "campaign_code": r.campaign_code,
                        "campaign": r.campaign,
                        "month": r.month,
                    }
                )
            continue
        matched += 1
        matched_by[how] = matched_by.get(how, 0) + 1
        if len(matched_rows) < MAX_LISTED:
            matched_rows.append({"row": r.row, "by": how})
        values = r.values
        if len(targets) == 1:  # the usual row: one line, nothing to split
            k = targets[0]
            slot = counts.get((k, r.month))
            if slot is None:
                slot = counts[k, r.month] = [0] * len(METRICS)
            for j in count_at:
                if values[j]:
                    slot[j] += values[j]
            for j in money_at:
                if values[j]:
                    bucket = parts.get(r.currency)
                    if bucket is None:
                        bucket = parts[r.currency] = ([], [])
                    bucket[0].append((k, r.month, j))
                    bucket[1].append(values[j])
            continue
        value = {"crm_campaign_id": r.crm_campaign_id, "campaign_code": r.campaign_code or r.crm_campaign_id}.get(
            how, r.campaign
        )
        wkey = (how, _key_of(how, value))
        if wkey not in weights_of:
            weights_of[wkey] = weights([lines[k] for k in targets], schema)
            spread.append({"row": r.row, how: value, "lines": len(targets)})
        w = weights_of[wkey]

        def share_out(v: int, w: list[int] = w) -> list[int]:
            return split(v, w) if v >= 0 else [-p for p in split(-v, w)]

        for j in count_at:
            v = r.values[j]
            if v:
                for k, share in zip(targets, share_out(v), strict=True):
                    slot = counts.get((k, r.month))
                    if slot is None:
                        slot = counts[k, r.month] = [0] * len(METRICS)
                    slot[j] += share
        for j in money_at:
            v = r.values[j]
            if v:
                bucket = parts.get(r.currency)
                if bucket is None:
                    bucket = parts[r.currency] = ([], [])
                for k, share in zip(targets, share_out(v), strict=True):
                    bucket[0].append((k, r.month, j))
                    bucket[1].append(share)
        for k in targets:  # a matched row with only zeros still says the line had results that month
            counts.setdefault((k, r.month), [0] * len(METRICS))
    for currency, (where, shares) in parts.items():
        try:
            converted = convert_cents(
                np.array(shares, dtype=np.int64), np.full(len(shares), currency, dtype=object), rates
            )
        except UnknownCurrency:  # checked when parsed; kept for a configuration changed in between
            converted = np.array(shares, dtype=np.int64)
        for (k, month, j), cents in zip(where, converted.tolist(), strict=True):
            counts.setdefault((k, month), [0] * len(METRICS))[j] += cents
    amounts = {
        (lines[k]["team_id"], lines[k]["line_id"], month): values for (k, month), values in sorted(counts.items())
    }
    return MatchedOutcomes(amounts, matched, unmatched, unmatched_count, ambiguous, spread, matched_by, matched_rows)


_SALESFORCE_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(text: str) -> str | None:
    """The 15-character form of a Salesforce record ID given in its 15- or 18-character form; None if it is not one.

    The 18-character ID is the 15-character (case-sensitive) one and three characters that encode
    which of its letters are capitals, so that it survives case-insensitive tools; both name one record.
    """
    if len(text) not in (15, 18) or not text.isascii() or not text.isalnum():
        return None
    if len(text) == 15:
        return text
    bits = [_SALESFORCE_SUFFIX.find(c) for c in text[15:].upper()]  # which of each 5 characters are capitals
    if min(bits) < 0:
        return None
    head = []
    for k, ch in enumerate(text[:15]):
        capital = bits[k // 5] >> (k % 5) & 1
        if capital and not ch.isalpha():
            return None
        head.append(ch.upper() if capital else ch.lower())
    return "".join(head)  # its case restored, even when a tool upper- or lower-cased the 18 characters


def _key_of(key: str, value: str) -> str:
    """How a key's value is compared.

    A CRM campaign ID as Salesforce's 15-character ID (case-sensitive) when it is one, else as
    written; every other key case-insensitively.
    """
    text = value.strip()
    if key == "crm_campaign_id":
        return salesforce_id(text) or text
    return text.casefold()


# --- import ----------------------------------------------------------------------------------------------


def import_outcomes(
    store: Store,
    schema: PlanSchema,
    user: User,
    parsed: Parsed,
    raw: bytes,
    source: str,
    preset: str,
    filename: str | None = None,
    idem: Idempotency | None = None,
    stored: Callable[[Session, dict[str, Any]], None] | None = None,
    profile: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """(status, answer): 201 and the new import, or 200 and the import in force when the same input is sent again.

    `profile`: the saved mapping that read the export, said in the answer with the preset.

    Matched against a read of the master outside the write transaction, as actual spend is; the
    write only checks the master is the one matched against.
    """
    require_finance(user, "imports results")
    sha256 = hashlib.sha256(raw).hexdigest()
    months = sorted({r.month for r in parsed.rows})
    for attempt in range(OPTIMISTIC_ATTEMPTS + 1):
        if attempt < OPTIMISTIC_ATTEMPTS:
            held, lines = master_snapshot(store, schema)
            matched = match_outcomes(parsed.rows, lines, schema)
        with store.transaction() as session:
            if attempt == OPTIMISTIC_ATTEMPTS:  # the master keeps changing: match inside the lock
                lines = master_lines(session, current_submissions(session, schema.calendar.year), schema, store.shared)
                matched = match_outcomes(parsed.rows, lines, schema)
            elif current_submissions(session, schema.calendar.year) != held:
                continue
            years.require_open(session, schema.calendar.year, "import results")
            same = _same_in_force(session, schema.calendar.year, source, sha256)
            if same is not None:
                return finish(session, user, idem, 200, {**_answer(same), "unchanged": True}, stored)
            record = OutcomeImport(
                fiscal_year=schema.calendar.year,
                user_id=user.id,
                source=source,
                preset=preset,
                filename=(filename or None) and filename[:255],
                raw=raw,
                raw_sha256=sha256,
                months=months,
                metrics=list(parsed.metrics),
                report={
                    "read_by": parsed.read_by(preset, profile),
                    "rows": len(parsed.rows),
                    "matched": matched.matched,
                    "matched_by": matched.matched_by,
                    "matched_rows": matched.matched_rows,
                    "unmatched": matched.unmatched,
                    "unmatched_rows": matched.unmatched_count,
                    "ambiguous": matched.ambiguous,
                    "spread": matched.spread,
                    "skipped": parsed.skipped[:MAX_LISTED],
                    "skipped_rows": len(parsed.skipped),
                    "lines": len({(t, lid) for t, lid, _ in matched.amounts}),
                },
            )
            session.add(record)
            session.flush()
            replaced = _replaced(session, record)
            record.report = {**record.report, "replaces": replaced}
            insert_rows(
                session,
                OutcomeAmount,
                (
                    {
                        "import_id": record.id,
                        "team_id": t,
                        "line_id": lid,
                        "month": m,
                        **dict(zip(METRICS, v, strict=True)),
                    }
                    for (t, lid, m), v in matched.amounts.items()
                ),
            )
            detail = {
                "source": source,
                "file": filename,
                "months": months,
                "rows": len(parsed.rows),
                "unmatched": matched.unmatched_count,
                "replaces": replaced,
            }
            audit = ("outcomes.import", f"outcomes:{record.id}", detail)
            return finish(session, user, idem, 201, _answer(record), stored, audit)
    raise AssertionError("unreachable: the last attempt matches inside the lock")


def _same_in_force(session: Session, year: int, source: str, sha256: str) -> OutcomeImport | None:
    """The source's import of exactly this input in fiscal year `year`, still in force for every month it covers."""
    found = session.scalars(
        select(OutcomeImport)
        .where(OutcomeImport.fiscal_year == year, OutcomeImport.source == source, OutcomeImport.raw_sha256 == sha256)
        .order_by(OutcomeImport.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    newer = session.scalars(
        select(OutcomeImport.months).where(
            OutcomeImport.fiscal_year == year, OutcomeImport.source == source, OutcomeImport.id > found.id
        )
    ).all()
    covered = {m for months in newer for m in months}
    return None if covered & set(found.months) else found


def _replaced(session: Session, record: OutcomeImport) -> list[dict[str, Any]]:
    """The older imports of the same source this one replaces, month by month."""
    out: dict[int, list[str]] = defaultdict(list)
    held = newest_by_month(session, record.fiscal_year, before=record.id).get(record.source, {})
    for month in record.months:
        if month in held:
            out[held[month]].append(month)
    return [{"import": k, "months": v} for k, v in sorted(out.items())]


def _answer(record: OutcomeImport) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "preset": record.preset,
        "filename": record.filename,
        "imported_at": record.created_at.isoformat(),
        "months": record.months,
        "metrics": record.metrics,
        **record.report,
        "unchanged": False,
    }


def imports_json(session: Session, year: int) -> list[dict[str, Any]]:
    """Every import of fiscal year `year`, newest first, with the months it is in force for."""
    held = newest_by_month(session, year)
    names = dict(session.execute(select(User.id, User.name)).all())
    out = []
    query = select(OutcomeImport).where(OutcomeImport.fiscal_year == year).order_by(OutcomeImport.id.desc())
    for record in session.scalars(query):
        in_force = sorted(m for m, i in held.get(record.source, {}).items() if i == record.id)
        out.append({**_answer(record), "in_force_months": in_force, "imported_by": names.get(record.user_id)})
    return out


@jobs.kind("outcomes.import", "Import results from the CRM")
def import_job(run: Any) -> dict[str, Any]:
    """The job `outcomes.import`: a large export imported in the background, exactly as the route does."""
    raw, filename = run.given()
    schema = run.schema
    args = run.job.args or {}
    preset, parsed = parse_file(
        raw, filename, schema, args.get("preset"), args.get("mapping"), args.get("month"), args.get("date_order")
    )
    source = args.get("source") or preset
    _, answer = import_outcomes(
        run.store, schema, run.user, parsed, raw, source, preset, filename, stored=run.succeed,
        profile=args.get("profile"),
    )  # fmt: skip
    return answer


# --- in force, for the read model ----------------------------------------------------------------------


def read_mapping(text: str | None) -> dict[str, str] | None:
    """A column mapping sent as JSON text ({"leads": "Net new names", ...})."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise ServiceError('mapping must be a JSON object, for example {"leads": "Net new names"}') from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ServiceError('mapping must be a JSON object of field -> column header, for example {"leads": "Leads"}')
    return value
