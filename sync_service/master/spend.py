"""What the POs and invoices in force give each master line, as the read model holds it (`book`).

POs are matched to master lines when the master is read, by line ID, else campaign code, so a
PO imported before its line was approved is matched once it is. What a line's POs and invoices
give it, in the line's currency, each PO converted on its own at the plan rate:

- committed: the open PO balance (PO amount minus invoiced, never below zero; zero once closed),
  which replaces the committed spend the plan typed as soon as any PO has been imported;
- invoiced: every invoice against the line's POs; an invoice beyond its PO is listed, never
  absorbed;
- accrued: the month-end accrual (`addin.accrual`) of each fiscal month, from the closed
  accrual where finance closed the month (`sync_service.spend.accruals`).

Finance imports the POs and invoices through `sync_service.spend.orders`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from addin.accrual import ratio_cents
from addin.fx import UnknownCurrency, convert_between, convert_pairs
from sheet_templates.money import money_text as money
from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import AccrualClose, Invoice, PurchaseOrder

_INT64_SAFE = 2**62  # below this, a product of two int64 values cannot overflow

# The stored fields of a PO and an invoice version, as the read model reads them (with the export's row).
PO_FIELDS = (
    "po_number",
    "vendor",
    "line_id",
    "campaign_code",
    "currency",
    "cents",
    "service_start",
    "service_end",
    "status",
    "method",
    "row",
)
INVOICE_FIELDS = ("invoice_number", "po_number", "currency", "cents", "invoice_date", "row")


class InForce(Mapping[Any, dict[str, Any]]):
    """The version in force of each PO (or invoice) by its key, in key order, held as rows (tuples) of `fields`.

    Every master load reads tens of thousands of them, so they stay tuples: read as a mapping, a
    row is a dict of its fields; `column(name)` is one field of every row, in key order.
    """

    __slots__ = ("_at", "_rows", "fields")

    def __init__(self, fields: tuple[str, ...], rows: Mapping[Any, tuple[Any, ...]]) -> None:
        self.fields = fields
        self._rows = dict(sorted(rows.items(), key=_first))
        self._at = {f: j for j, f in enumerate(fields)}

    @classmethod
    def of(cls, fields: tuple[str, ...], records: Mapping[Any, Mapping[str, Any]]) -> InForce:
        """`records` (dicts of the fields, or an InForce) as an InForce."""
        if isinstance(records, InForce):
            return records
        return cls(fields, {k: tuple(r.get(f) for f in fields) for k, r in records.items()})

    def __getitem__(self, key: Any) -> dict[str, Any]:
        return dict(zip(self.fields, self._rows[key], strict=True))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def column(self, name: str) -> list[Any]:
        j = self._at[name]
        return [row[j] for row in self._rows.values()]

    def rows(self) -> list[tuple[Any, ...]]:
        return list(self._rows.values())

    def replaced(self, records: Mapping[Any, Mapping[str, Any]]) -> InForce:
        """A copy in which `records` (dicts of the fields) are in force, over the rows of the same keys."""
        rows = dict(self._rows)
        rows.update({k: tuple(r.get(f) for f in self.fields) for k, r in records.items()})
        return InForce(self.fields, rows)


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


def purchase_orders_in_force(session: Session) -> InForce:
    """{PO number casefolded: its newest version (stored values, with import id)}.

    Newest by import, whatever the number's case: PO-1 and po-1 are one PO. Read as plain rows
    (the query, not the ORM): every master load reads them.
    """
    columns = [getattr(PurchaseOrder, c) for c in PO_FIELDS]
    number = PO_FIELDS.index("po_number")
    query = select(*columns, PurchaseOrder.import_id).order_by(PurchaseOrder.import_id)
    # a later import's version replaces an earlier one
    rows = {row[number].casefold(): row for row in session.connection().execute(query)}
    return InForce((*PO_FIELDS, "import_id"), rows)


def invoices_in_force(session: Session) -> InForce:
    """{(PO number, invoice number) casefolded: the invoice's newest version}, whatever the numbers' case."""
    columns = [getattr(Invoice, c) for c in INVOICE_FIELDS]
    po, number = INVOICE_FIELDS.index("po_number"), INVOICE_FIELDS.index("invoice_number")
    query = select(*columns, Invoice.import_id).order_by(Invoice.import_id)
    rows = {(row[po].casefold(), row[number].casefold()): row for row in session.connection().execute(query)}
    return InForce((*INVOICE_FIELDS, "import_id"), rows)


def closed_accruals(session: Session, year: int) -> dict[str, AccrualClose]:
    """{fiscal month: its closed accrual} of fiscal year `year`."""
    query = select(AccrualClose).where(AccrualClose.fiscal_year == year).order_by(AccrualClose.month)
    return {c.month: c for c in session.scalars(query)}


@dataclass(frozen=True)
class Book:
    """The POs in force, matched to the master's lines, and what they give each line (line currency, cents).

    `orders` are the POs with their figures (PO currency) and match; the arrays are per master
    line, in the master's line order: a line without POs has zeros.
    """

    tracked: bool  # whether any PO was ever imported (then committed is the open PO balance)
    orders: tuple[dict[str, Any], ...]
    unmatched_invoices: tuple[dict[str, Any], ...]  # invoices whose PO number no PO in force has
    po_amount: np.ndarray  # per line: the amount of its POs in force
    committed: np.ndarray  # per line: the open PO balance
    invoiced: np.ndarray  # per line
    accrued: np.ndarray  # per line and fiscal month (lines x 12): the accrual at the month's end
    closed_months: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class InvoicedSide:
    """What the POs and invoices in force give each PO, whatever lines the master holds: kept per import."""

    orders: InForce
    invoice_fields: tuple[str, ...]
    keys: list[str]
    count: int
    cents: list[int]
    status: list[str]
    amount: np.ndarray
    currency: np.ndarray
    is_open: np.ndarray
    mine: list[list[tuple[Any, ...]]]  # each PO's invoices, in their order
    unmatched: dict[str, list[tuple[Any, ...]]]  # invoices by a PO number no PO in force has
    converted: np.ndarray  # each matched invoice in its PO's currency, grouped by PO
    raw: np.ndarray  # per PO: invoiced, credits and all
    invoiced: np.ndarray  # per PO: never below zero
    open_balance: np.ndarray
    ends: np.ndarray  # each fiscal month's last day (ordinal)
    invoiced_by_end: np.ndarray  # POs x months


def invoiced_side(schema: PlanSchema, orders: Mapping[str, Any], invoices: Mapping[Any, Any]) -> InvoicedSide:
    """The invoices grouped by PO and converted to its currency, invoiced to each month's end, the open balances."""
    config = schema.config
    months = schema.calendar.months
    orders = InForce.of((*PO_FIELDS, "import_id"), orders)
    invoices = InForce.of((*INVOICE_FIELDS, "import_id"), invoices)
    keys = list(orders)
    count = len(keys)
    position = {key: p for p, key in enumerate(keys)}
    po_cents, po_status = orders.column("cents"), orders.column("status")
    amount = np.array(po_cents, dtype=np.int64)
    currency = np.array(orders.column("currency"), dtype=object)
    is_open = np.array([status == "open" for status in po_status], dtype=bool)

    # The invoices, each converted to its PO's currency (one conversion per currency pair).
    at = {f: j for j, f in enumerate(invoices.fields)}
    i_currency, i_cents, i_date = (at[f] for f in ("currency", "cents", "invoice_date"))
    mine: list[list[tuple[Any, ...]]] = [[] for _ in range(count)]
    unmatched: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for (po_key, _), invoice in zip(invoices, invoices.rows(), strict=True):
        p = position.get(po_key)
        if p is None:
            unmatched[po_key].append(invoice)
        else:
            mine[p].append(invoice)
    matched = [i for found in mine for i in found]  # grouped by PO, each PO's invoices in their order
    invoice_po = np.repeat(np.arange(count, dtype=np.int64), [len(found) for found in mine])
    currencies_of = currency.tolist()
    converted = convert_pairs(
        np.array([i[i_cents] for i in matched], dtype=np.int64),
        np.array(
            [i[i_currency] or currencies_of[p] for i, p in zip(matched, invoice_po.tolist(), strict=True)],
            dtype=object,
        ),
        currency[invoice_po],
        config,
    )
    raw_invoiced = np.zeros(count, dtype=np.int64)
    np.add.at(raw_invoiced, invoice_po, converted)
    # Credit notes reverse what was invoiced, never more: a PO's invoiced total is never below zero,
    # so its open balance is never above its amount, nor its accrual above its amount less invoiced.
    invoiced = np.maximum(raw_invoiced, 0)
    open_balance = np.where(is_open, np.maximum(amount - invoiced, 0), 0)

    # Invoiced to each month's end: each invoice counts from the first month ending on or after its date.
    ends = np.array([m.last_day.toordinal() for m in months], dtype=np.int64)
    days = np.array([i[i_date].toordinal() for i in matched], dtype=np.int64)
    by_month = np.zeros((count, len(months) + 1), dtype=np.int64)
    np.add.at(by_month, (invoice_po, np.searchsorted(ends, days, side="left")), converted)
    invoiced_by_end = np.maximum(np.cumsum(by_month, axis=1)[:, : len(months)], 0)
    return InvoicedSide(
        orders, invoices.fields, keys, count, po_cents, po_status, amount, currency, is_open, mine, dict(unmatched),
        converted, raw_invoiced, invoiced, open_balance, ends, invoiced_by_end,
    )  # fmt: skip


def book(
    schema: PlanSchema,
    lines: list[dict[str, Any]],
    orders: Mapping[str, dict[str, Any]],
    invoices: Mapping[tuple[str, str], dict[str, Any]],
    closes: Mapping[str, Any],
    *,
    records: bool = True,
    index: LineIndex | None = None,
    po_side: InvoicedSide | None = None,
) -> Book:
    """Match every PO in force to its line and work out each PO's and each line's figures. Pure.

    With `records=False` the POs are not written out (`orders` is empty): the per-line arrays alone.
    `index`: the lines' `LineIndex` when the caller has it (the read model composes it from its parts);
    `po_side`: `invoiced_side` of the same POs and invoices, when the caller keeps it (it needs no line).

    A closed month's accrual is the one finance closed (`closes[month].entries`), whatever was
    imported since; an open month's is worked out from the POs and invoices in force now.

    Every master load runs this, so it works on whole columns: the invoices are converted to their
    POs' currencies once per currency pair, each PO's invoiced-to-date at every month end is one
    cumulative sum, the month-end accruals of all POs one array operation (each value rounded as
    `addin.accrual` rounds it), and the POs' figures converted to their lines' currencies once per
    pair. The result is the same, to the cent, as working each PO out on its own.
    """
    config = schema.config
    n = len(lines)
    month_names = [c.name for c in schema.month_columns]
    index = index if index is not None else LineIndex.of(lines)

    side = po_side if po_side is not None else invoiced_side(schema, orders, invoices)
    orders, keys, mine, unmatched = side.orders, side.keys, side.mine, side.unmatched
    po_cents, po_status, amount, currency, is_open = side.cents, side.status, side.amount, side.currency, side.is_open
    converted, raw_invoiced, invoiced, open_balance = side.converted, side.raw, side.invoiced, side.open_balance
    ends, invoiced_by_end = side.ends, side.invoiced_by_end
    at = {f: j for j, f in enumerate(side.invoice_fields)}
    i_number, i_po, i_cents, i_date = (at[f] for f in ("invoice_number", "po_number", "cents", "invoice_date"))
    matches = index.match(orders.column("line_id"), orders.column("campaign_code"))
    line_of = np.array([-1 if k is None else k for k, _, _ in matches], dtype=np.int64)
    methods = orders.column("method")
    delivered = _delivered(orders, amount, ends, line_of, _plan_cumulative(lines, month_names, methods, line_of))
    accrued_po = np.where(is_open[:, None], np.maximum(delivered - invoiced_by_end, 0), 0)
    # A closed month's accrual is the one finance closed.
    for month, closed in closes.items():
        j = month_names.index(month)
        entries = {e["po_number"].casefold(): int(e["cents"]) for e in closed.entries}
        accrued_po[:, j] = [entries.get(key, 0) for key in keys]

    unmatched_invoices = tuple(
        {"po_number": i[i_po], "invoice_number": i[i_number], "amount": money(i[i_cents])}
        for _, found in sorted(unmatched.items())
        for i in found
    )
    out: list[dict[str, Any]] = []
    converted_cents = converted.tolist()
    accrual_lists = accrued_po.tolist()
    invoiced_list, raw_list, open_list = invoiced.tolist(), raw_invoiced.tolist(), open_balance.tolist()
    first = 0
    names = orders.fields
    for p, row in enumerate(orders.rows() if records else ()):
        k, how, teams = matches[p]
        last = first + len(mine[p])
        cents_of = converted_cents[first:last]
        first = last
        got, raw = invoiced_list[p], raw_list[p]
        line = lines[k] if k is not None else {}
        po = dict(zip(names, row, strict=True))
        po["service_start"] = po["service_start"].isoformat()
        po["service_end"] = po["service_end"].isoformat()
        po["match"] = how
        po["team_id"] = line.get("team_id")
        po["matched_line_id"] = line.get("line_id")
        po["region"] = line.get("region")
        po["channel"] = line.get("channel")
        po["line_currency"] = line.get("currency")
        po["teams"] = teams
        po["invoiced_cents"] = got
        po["open_cents"] = open_list[p]
        po["over_po_cents"] = max(got - po_cents[p], 0)
        po["credit_beyond_cents"] = max(-raw, 0)  # credited beyond what was invoiced (refused on import)
        po["accruals"] = accrual_lists[p]  # the accrual at each fiscal month's end (PO currency)
        # (invoice number, date, cents in the PO's currency) of each of its invoices
        po["invoices"] = [(i[i_number], i[i_date], c) for i, c in zip(mine[p], cents_of, strict=True)]
        out.append(po)

    # What the matched POs give their lines, in the lines' currencies (one conversion per currency pair).
    po_amount, committed, invoiced_line = (np.zeros(n, dtype=np.int64) for _ in range(3))
    accrued = np.zeros((n, 12), dtype=np.int64)
    hit = np.flatnonzero(line_of >= 0)
    if len(hit):
        ks = line_of[hit]
        cancelled = np.array([po_status[p] == "cancelled" for p in hit.tolist()], dtype=bool)
        values = np.column_stack(
            [np.where(cancelled, 0, amount[hit]), open_balance[hit], invoiced[hit], accrued_po[hit]]
        )  # a cancelled PO commits nothing
        line_currency = index.currencies[ks]
        values = convert_pairs(values, currency[hit], line_currency, config)
        np.add.at(po_amount, ks, values[:, 0])
        np.add.at(committed, ks, values[:, 1])
        np.add.at(invoiced_line, ks, values[:, 2])
        np.add.at(accrued, ks, values[:, 3:])
    # A closed month's accrual stays on the lines it was closed on, whatever each PO matches now.
    closed_columns = [month_names.index(m) for m in closes]
    accrued[:, closed_columns] = 0
    for month, closed in closes.items():
        j = month_names.index(month)
        for entry in closed.entries:
            k = index.position(entry.get("team_id"), entry.get("line_id"))
            if k is not None:
                accrued[k, j] += _to_line(int(entry["cents"]), entry["currency"], index.currencies[k], config)
    return Book(
        tracked=bool(orders),
        orders=tuple(out),
        unmatched_invoices=unmatched_invoices,
        po_amount=po_amount,
        committed=committed,
        invoiced=invoiced_line,
        accrued=accrued,
        closed_months=tuple(sorted(closes)),
    )


def _plan_cumulative(
    lines: list[dict[str, Any]], month_names: list[str], methods: list[str], line_of: np.ndarray
) -> np.ndarray:
    """Each line's planned spend to each month's end (lines x months); only the lines a `plan`-method PO needs."""
    plan = np.zeros((len(lines), len(month_names)), dtype=np.int64)
    wanted = {k for method, k in zip(methods, line_of.tolist(), strict=True) if k >= 0 and method == "plan"}
    for k in wanted:
        plan[k] = [int(lines[k].get(m) or 0) for m in month_names]
    return np.cumsum(plan, axis=1)


def _delivered(
    orders: InForce, amount: np.ndarray, ends: np.ndarray, line_of: np.ndarray, plan_cumulative: np.ndarray
) -> np.ndarray:
    """What each PO delivered by each month's end (POs x months), as `addin.accrual.delivered_cents` works it out."""
    count, width = len(orders), len(ends)
    if not count:
        return np.zeros((0, width), dtype=np.int64)
    start = np.array([day.toordinal() for day in orders.column("service_start")], dtype=np.int64)[:, None]
    end = np.array([day.toordinal() for day in orders.column("service_end")], dtype=np.int64)[:, None]
    method = np.array(orders.column("method"), dtype=object)
    through = ends[None, :]
    whole = amount[:, None]
    length = end - start + 1
    elapsed = np.clip(through - start + 1, 0, np.maximum(length, 0))  # beyond the period: the whole amount
    straight = np.where(through >= end, whole, _ratio(whole, elapsed, length))
    matched = line_of >= 0
    done = np.zeros((count, width), dtype=np.int64)
    year = np.zeros((count, 1), dtype=np.int64)
    if matched.any() and plan_cumulative.size:
        done[matched] = plan_cumulative[line_of[matched]]
        year[matched, 0] = plan_cumulative[line_of[matched], -1]
    by_plan = (method == "plan")[:, None] & (year > 0)
    phased = _ratio(whole, np.minimum(np.maximum(done, 0), year), year)
    delivered = np.where(by_plan, phased, straight)
    delivered = np.where((method == "invoice")[:, None] | (through < start), 0, delivered)
    return delivered


def _ratio(cents: np.ndarray, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """`cents * numerator / denominator` elementwise, rounded half away from zero; 0 where the denominator is 0 or less.

    Exact: in int64 while no product can overflow, else in Python integers (as `addin.accrual.ratio_cents`).
    """
    cents, numerator, denominator = np.broadcast_arrays(
        np.asarray(cents, dtype=np.int64),
        np.asarray(numerator, dtype=np.int64),
        np.asarray(denominator, dtype=np.int64),
    )
    if not cents.size:
        return np.zeros(cents.shape, dtype=np.int64)
    positive = denominator > 0
    den = np.where(positive, denominator, 1)
    peak = int(np.abs(cents).max()) * max(int(np.abs(numerator).max()), 1) * 2 + 2 * int(den.max())
    if peak < _INT64_SAFE:
        value = cents * numerator
        out = np.sign(value) * ((np.abs(value) * 2 + den) // (2 * den))
    else:
        out = np.array(
            [ratio_cents(c, m, d) for c, m, d in zip(cents.ravel().tolist(), numerator.ravel().tolist(),
                                                        den.ravel().tolist(), strict=True)],
            dtype=np.int64,
        ).reshape(cents.shape)  # fmt: skip
    return np.where(positive, out, 0)


def _to_line(cents: int, source: str, target: str, config: Any) -> int:
    try:
        return int(convert_between(np.array([cents]), np.array([source], dtype=object), target, config)[0])
    except UnknownCurrency:
        return cents


class LineIndex:
    """The master's lines as a PO or an accrual finds them: by line ID or campaign code (any case), by team and ID.

    Column arrays, one value per line; matching many POs is a few vector operations.
    """

    def __init__(
        self,
        teams: np.ndarray,
        line_ids: np.ndarray,
        codes: np.ndarray,
        currencies: np.ndarray,
        keys: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """`keys`: the line IDs and campaign codes casefolded ("" for none), when the caller has them."""
        self.teams, self.line_ids, self.currencies = teams, line_ids, currencies
        if keys is None:
            keys = (
                np.array([str(v).casefold() for v in line_ids.tolist()], dtype=object),
                np.array([str(v or "").casefold() for v in codes.tolist()], dtype=object),
            )
        self._ids, self._codes = _Keys(keys[0]), _Keys(keys[1], skip="")
        self._positions: dict[tuple[str, str], int] | None = None

    @classmethod
    def of(cls, lines: Sequence[Mapping[str, Any]]) -> LineIndex:
        def column(name: str) -> np.ndarray:
            return np.array([line.get(name) for line in lines], dtype=object)

        return cls(column("team_id"), column("line_id"), column("campaign_code"), column("currency"))

    def match(self, line_ids: Sequence[Any], codes: Sequence[Any]) -> list[tuple[int | None, str, list[str]]]:
        """Per PO: (line index, how: line_id, campaign_code, unmatched or ambiguous, the teams an ambiguous key names).

        A line ID names one line; a campaign code only when one line has it (a PO is for one piece of
        work: never split over the lines sharing a code).
        """
        by_id = self._ids.find([str(v).casefold() if v else "" for v in line_ids])
        by_code = self._codes.find([str(v).casefold() if v else "" for v in codes])
        out: list[tuple[int | None, str, list[str]]] = []
        for (id_count, id_first, id_key), (code_count, code_first, code_key) in zip(by_id, by_code, strict=True):
            if id_count == 1:
                out.append((id_first, "line_id", []))
            elif code_count == 1:
                out.append((code_first, "campaign_code", []))
            elif code_count > 1:
                out.append((None, "ambiguous", self._teams_of(self._codes, code_key)))
            elif id_count > 1:
                out.append((None, "ambiguous", self._teams_of(self._ids, id_key)))
            else:
                out.append((None, "unmatched", []))
        return out

    def _teams_of(self, keys: _Keys, key: int) -> list[str]:
        return sorted({str(t) for t in self.teams[keys.codes == key].tolist()})

    def position(self, team: Any, line_id: Any) -> int | None:
        """The index of the line `line_id` of `team` (exact), or None."""
        if self._positions is None:
            self._positions = {
                (t, i): k for k, (t, i) in enumerate(zip(self.teams.tolist(), self.line_ids.tolist(), strict=True))
            }
        return self._positions.get((team, line_id))


class _Keys:
    """Distinct keys of a column and, for each, how many lines have it and the first of them."""

    def __init__(self, values: np.ndarray, skip: str | None = None) -> None:
        self.codes, uniques = pd.factorize(values) if len(values) else (np.zeros(0, dtype=np.int64), pd.Index([]))
        self.uniques = pd.Index(uniques)
        self.counts = np.bincount(self.codes, minlength=len(self.uniques)) if len(values) else np.zeros(0, np.int64)
        self.first = np.full(len(self.uniques), -1, dtype=np.int64)
        if len(values):
            self.first[self.codes[::-1]] = np.arange(len(values) - 1, -1, -1)
        self.skip = skip

    def find(self, keys: list[str]) -> list[tuple[int, int, int]]:
        """Per key: (how many lines have it, the first of them, its code); (0, -1, -1) when none (or empty)."""
        if not keys:
            return []
        at = self.uniques.get_indexer(keys) if len(self.uniques) else np.full(len(keys), -1)
        out = []
        for key, k in zip(keys, at.tolist(), strict=True):
            if k < 0 or not key or key == self.skip:
                out.append((0, -1, -1))
            else:
                out.append((int(self.counts[k]), int(self.first[k]), k))
        return out


def over_plan(
    lines: Sequence[dict[str, Any]], schema: PlanSchema, po_amount: np.ndarray, planned: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """The lines whose POs add up to more than their planned spend for the year (both in the line's currency).

    `planned`: each line's planned spend for the year, when the caller has it (the read model's team parts do).
    """
    if planned is None:
        months = [c.name for c in schema.month_columns]
        planned = np.array([sum(int(line.get(m) or 0) for m in months) for line in lines], dtype=np.int64)
    out = []
    for k in np.flatnonzero(np.asarray(po_amount) > planned).tolist():
        line, cents = lines[k], int(planned[k])
        out.append(
            {
                "team_id": line["team_id"],
                "line_id": line["line_id"],
                "currency": line.get("currency"),
                "planned": money(cents),
                "purchase_orders": money(int(po_amount[k])),
                "over_by": money(int(po_amount[k]) - cents),
            }
        )
    return out
