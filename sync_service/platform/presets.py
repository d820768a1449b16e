"""Presets: the exports finance and marketing systems write, read as they come.

A preset names, for one kind of import (purchase orders, invoices, actual spend), the headers
a system's own export uses for each of Plansheet's fields, in order of preference (NetSuite's
"Amount (Foreign Currency)" before its base-currency "Amount"), the words it writes for a PO's
status, the prefixes it puts before a value ("Purchase Order #" before the PO number a vendor
bill was created from), its date order, the rows it writes that are not transactions (report
titles, account headings, totals), and the headers that tell its export from another's
(`signature`). `detect` picks the preset whose signature a header row of the export carries;
the plain Plansheet columns are the preset `plansheet`, and a saved column mapping (an import
profile, `sync_service.platform.profiles`) reads anything else.

Every reader asks `reading(...)` for the header row, the column of each field, the columns it
leaves unread and why (said in the import's answer: nothing is dropped silently), and the
value of a field as Plansheet's own words (`Reading.clean`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sheet_templates.cells import parse_a1
from sync_service.platform.errors import Unprocessable
from sync_service.platform.exports import cell_name, norm

PURCHASE_ORDERS, INVOICES, ACTUALS, RESULTS = "purchase_orders", "invoices", "actuals", "results"
KINDS = (PURCHASE_ORDERS, INVOICES, ACTUALS, RESULTS)
HEAD_ROWS = 20  # the rows a header is looked for in, under any report title


@dataclass(frozen=True)
class Preset:
    """How one system's export of one kind is read."""

    name: str  # e.g. "netsuite_purchase_orders": what an import's answer and `?preset=` name
    kind: str  # purchase_orders, invoices or actuals
    label: str  # e.g. "NetSuite purchase orders (saved search)"
    headers: Mapping[str, tuple[str, ...]]  # field -> the system's headers for it, most preferred first
    signature: tuple[str, ...] = ()  # headers every export of this system carries (how it is told apart)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # field -> {its word: Plansheet's}
    prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field -> prefixes to drop
    date_order: str | None = None  # "mdy" or "dmy" when its text dates are ambiguous; None: told from the dates
    skip_rows: tuple[str, ...] = ()  # a row whose first cell starts with one of these is not a transaction
    notes: Mapping[str, str] = field(default_factory=dict)  # header -> why it is not read (said in the answer)
    source: str = ""  # where the system documents its export

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert all(norm(h) == h for names in self.headers.values() for h in names), f"{self.name}: normed headers"
        assert all(norm(h) == h for h in self.signature), f"{self.name}: normed signature"


@dataclass
class Reading:
    """An export's header as a preset (or a mapping) reads it."""

    preset: Preset
    row: int  # the header's row (0-based)
    columns: dict[str, int]  # field -> column (0-based)
    unread: list[dict[str, str]]  # {"column", "cell", "why"}: columns of the header no field reads
    profile: str | None = None  # the saved mapping that read it, when one did
    _clean: dict[str, dict[str, str]] = field(default_factory=dict)
    read: list[dict[str, str]] = field(default_factory=list)  # {"field", "column", "cell"}: which column is which

    @property
    def read_by(self) -> dict[str, Any]:
        """What an import's answer says about how its export was read."""
        out: dict[str, Any] = {"preset": self.preset.name, "label": self.preset.label}
        if self.profile is not None:
            out["profile"] = self.profile
        if self.read:
            out["columns_read"] = self.read
        if self.unread:
            out["columns_not_read"] = self.unread
        return out

    def clean(self, name: str, value: Any) -> Any:
        """`value` of field `name` in Plansheet's words: the preset's prefixes dropped, its words translated."""
        words = self.preset.values.get(name)
        prefixes = self.preset.prefixes.get(name)
        if not words and not prefixes:
            return value
        if value is None or (type(value) is not str and not isinstance(value, int | float)):
            return value
        text = str(value)
        kept = self._clean.setdefault(name, {})
        found = kept.get(text)
        if found is None:
            found = text.strip()
            for prefix in prefixes or ():
                if norm(found).startswith(prefix):
                    found = found.strip()[len(prefix) :].strip()
                    if found.startswith((":", "#")):
                        found = found[1:].strip()
                    break
            if words:
                found = words.get(norm(found), found)
            if len(kept) < 100_000:
                kept[text] = found
        return found

    def skipped(self, record: Iterable[Any]) -> bool:
        """True for a row the system writes that is not a transaction (a heading, a total)."""
        if not self.preset.skip_rows:
            return False
        first = next((norm(v) for v in record if norm(v)), "")
        return any(first.startswith(s) for s in self.preset.skip_rows)


def columns(
    header: list[Any], preset: Preset, canonical: Mapping[str, tuple[str, ...]], sheet: str, row: int
) -> tuple[dict[str, int], list[dict[str, str]]]:
    """({field: column}, the columns not read) of a header row read by `preset` over Plansheet's own headers.

    For each field the preset's headers come first, in its order of preference, then Plansheet's:
    a column named by a more preferred header is read and the others answering the field are
    listed as not read, with why. Two columns of the same name answering a field are refused
    naming both cells, never read from whichever came first.
    """
    names = [norm(v) for v in header]
    found: dict[str, int] = {}
    outranked: dict[int, str] = {}  # column -> why a field read another column instead
    ambiguous = []
    for name in dict.fromkeys([*canonical, *preset.headers]):
        own = preset.headers.get(name, ())
        ranked = [*own, *(h for h in canonical.get(name, ()) if h not in own)]
        hits = sorted((ranked.index(n), j) for j, n in enumerate(names) if n in ranked)
        if not hits:
            continue
        best_rank = hits[0][0]
        same = [j for rank, j in hits if rank == best_rank]
        if len(same) > 1 or (not own and len(hits) > 1):  # no preference between them: never a guess
            ambiguous.append((name, [j for _, j in hits]))
            continue
        found[name] = same[0]
        for _, j in hits[1:]:
            outranked.setdefault(
                j, f"{header[same[0]]!s} ({cell_name(same[0], row)}) is read for {name.replace('_', ' ')}"
            )
    if ambiguous:
        issues = [
            {
                "severity": "error",
                "rule": "column.ambiguous",
                "sheet": sheet,
                "cell": cell_name(j, row),
                "message": (
                    f"{len(js)} columns answer {name.replace('_', ' ')}: "
                    + " and ".join(f"{header[k]!s} ({cell_name(k, row)})" for k in js)
                    + "; keep the one to read and remove or rename the other"
                ),
            }
            for name, js in sorted(ambiguous)
            for j in js
        ]
        named = sorted(name.replace("_", " ") for name, _ in ambiguous)
        raise Unprocessable(
            f"the export has more than one column for {', '.join(named)}; nothing was read", issues=issues
        )
    read = set(found.values())
    unread = [
        {
            "column": str(header[j]),
            "cell": cell_name(j, row),
            "why": preset.notes.get(name) or outranked.get(j) or f"not a field of {preset.kind.replace('_', ' ')}",
        }
        for j, name in enumerate(names)
        if name and j not in read
    ]
    return found, unread


def named(kind: str, name: str) -> Preset:
    """The preset `name` of `kind`; 422 naming the presets there are."""
    for preset in (_PLAIN[kind], *PRESETS[kind]):
        if preset.name == name:
            return preset
    listed = ", ".join(p.name for p in (_PLAIN[kind], *PRESETS[kind]))
    raise Unprocessable(f"preset: {name!r} is not a preset for {kind.replace('_', ' ')}; use {listed}")


def reading(
    head: list[list[Any]],
    kind: str,
    canonical: Mapping[str, tuple[str, ...]],
    sheet: str,
    preset: str | None = None,
    mapping: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> Reading:
    """How an export's first rows are read: the preset named, else the one its header shows, else Plansheet's.

    `mapping` (field -> the export's column header, from a saved import profile or the request)
    names columns over any preset's. Reports, not refusals, are the readers' own: a header with
    none of the fields a reader needs is refused by it, naming what it found.
    """
    rows = [(i, r) for i, r in enumerate(head[:HEAD_ROWS]) if any(norm(v) for v in r)]
    if not rows:
        return Reading(_PLAIN[kind], 0, {}, [], profile)
    chosen = named(kind, preset) if preset else None
    row = rows[0][0]
    if chosen is None:
        best = 0
        for i, r in rows:
            names = {norm(v) for v in r}
            for candidate in PRESETS[kind]:
                if not candidate.signature or not set(candidate.signature) <= names:
                    continue
                score = sum(1 for hs in candidate.headers.values() for h in hs if h in names)
                if score > best:
                    chosen, row, best = candidate, i, score
            if chosen is not None:
                break
    elif chosen.signature:
        row = next((i for i, r in rows if set(chosen.signature) <= {norm(v) for v in r}), row)
    chosen = chosen or _PLAIN[kind]
    if mapping:
        row = next((i for i, r in rows if {norm(h) for h in mapping.values()} <= {norm(v) for v in r}), row)
        chosen = replace(chosen, headers={**chosen.headers, **{name: (norm(h),) for name, h in mapping.items()}})
    found, unread = columns(head[row], chosen, canonical, sheet, row)
    if mapping:
        missing = [f"{header!r} for {name}" for name, header in mapping.items() if name not in found]
        if missing:
            raise Unprocessable(
                "mapping: the export has no column "
                + ", ".join(missing)
                + "; its columns are "
                + ", ".join(str(v) for v in head[row] if str(v).strip())
            )
    return Reading(chosen, row, found, unread, profile, read=columns_read(head[row], found, row))


def columns_read(header: list[Any], found: Mapping[str, int], row: int) -> list[dict[str, str]]:
    """Which column of the header row `row` answers which field, in the header's order (said in the answer)."""
    return [
        {"field": name, "column": str(header[j]).strip(), "cell": cell_name(j, row)}
        for name, j in sorted(found.items(), key=lambda item: item[1])
    ]


def header_of(read_by: Mapping[str, Any]) -> int | None:
    """The header's row number (1-based) in the export `read_by` describes, from the cells of its columns."""
    for entry in (*read_by.get("columns_read", ()), *read_by.get("columns_not_read", ())):
        try:
            return parse_a1(str(entry.get("cell", "")))[0]
        except ValueError:
            continue
    return None


# --- the presets -------------------------------------------------------------------------------------------

_PLAIN = {kind: Preset("plansheet", kind, "Plansheet's own columns", {}) for kind in KINDS}

# The words for a PO's status each system writes, as Plansheet reads them: open (its balance is committed),
# closed (complete: no more invoices, its balance released) or cancelled (its amount counts nowhere).
_NETSUITE_PO_STATUS = {
    "pending supervisor approval": "open",
    "pending receipt": "open",
    "partially received": "open",
    "pending billing/partially received": "open",
    "pending bill": "open",
    "received": "open",
    "fully billed": "closed",
    "closed": "cancelled",  # NetSuite's Closed is a PO closed before it was fulfilled: cancelled
    "rejected by supervisor": "cancelled",
}
_ARIBA_PO_STATUS = {
    "ordering": "open",
    "ordered": "open",
    "confirming": "open",
    "confirmed": "open",
    "shipping": "open",
    "shipped": "open",
    "receiving": "open",
    "received": "open",  # received, invoices still to come
    "invoiced": "closed",
    "closed": "closed",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}
_COUPA_PO_STATUS = {
    "draft": "open",
    "issued": "open",
    "buyer hold": "open",
    "supplier hold": "open",
    "currency hold": "open",
    "supplier window hold": "open",
    "error": "open",
    "soft closed": "closed",
    "closed": "closed",
    "expensed": "closed",
    "cancelled": "cancelled",
}
_BASE_AMOUNT = "the amount in the company's base currency; the amount in the document's own currency is read"
_RUNNING = "a running balance, not a transaction's amount"

PRESETS: dict[str, tuple[Preset, ...]] = {
    PURCHASE_ORDERS: (
        Preset(
            "netsuite_purchase_orders",
            PURCHASE_ORDERS,
            "NetSuite purchase orders (a transaction saved search of purchase orders)",
            {
                "po_number": ("document number", "transaction number"),
                "vendor": ("name", "vendor"),
                "amount": ("amount (foreign currency)", "amount"),
                "currency": ("currency",),
                "service_start": ("service start date", "start date"),
                "service_end": ("service end date", "end date"),
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("campaign code", "campaign"),
                "status": ("status",),
            },
            signature=("document number", "status"),
            values={"status": _NETSUITE_PO_STATUS},
            prefixes={"status": ("purchase order",)},
            date_order="mdy",
            notes={"amount": _BASE_AMOUNT, "date": "the PO's date; its service period is read"},
            source="https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1544129169.html",
        ),
        Preset(
            "sap_ariba_purchase_orders",
            PURCHASE_ORDERS,
            "SAP Ariba purchase orders (a purchase order report)",
            {
                "po_number": ("order id", "po id", "purchase order id"),
                "vendor": ("supplier", "supplier name"),
                "amount": ("amount", "total amount", "total cost"),
                "currency": ("currency", "amount currency"),
                "service_start": ("service start date", "start date"),
                "service_end": ("service end date", "end date"),
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("campaign code", "internal order", "wbs element"),
                "status": ("order status", "status"),
            },
            signature=("order id", "supplier"),
            values={"status": _ARIBA_PO_STATUS},
            notes={"amount (base currency)": _BASE_AMOUNT, "approx amount in base currency": _BASE_AMOUNT},
            source="https://help.sap.com/docs/ariba",
        ),
        Preset(
            "coupa_purchase_orders",
            PURCHASE_ORDERS,
            "Coupa purchase orders (the Orders export)",
            {
                "po_number": ("po number", "po #", "po-number"),
                "vendor": ("supplier", "supplier name"),
                "amount": ("total", "po total"),
                "currency": ("currency",),
                "service_start": ("service start date", "start date"),
                "service_end": ("service end date", "end date"),
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("campaign code", "campaign"),
                "status": ("status",),
            },
            signature=("po number", "supplier", "total"),
            values={"status": _COUPA_PO_STATUS},
            notes={"accounting total": _BASE_AMOUNT, "accounting total currency": "the base currency's code"},
            source="https://compass.coupa.com/en-us/products/product-documentation/integration-docs",
        ),
    ),
    INVOICES: (
        Preset(
            "netsuite_vendor_bills",
            INVOICES,
            "NetSuite vendor bills (a transaction saved search of bills)",
            {
                "invoice_number": ("reference no.", "document number", "transaction number"),
                "po_number": ("created from",),
                "invoice_date": ("date",),
                "amount": ("amount (foreign currency)", "amount"),
                "currency": ("currency",),
            },
            signature=("created from",),
            prefixes={"po_number": ("purchase order",)},
            date_order="mdy",
            notes={
                "amount": _BASE_AMOUNT,
                "status": "the bill's payment status: a bill is invoiced whether it is paid or not",
                "due date": "when the bill is due, not when it was invoiced",
            },
            source="https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_3891485192.html",
        ),
        Preset(
            "sap_ariba_invoices",
            INVOICES,
            "SAP Ariba invoices (an invoice report)",
            {
                "invoice_number": ("invoice id", "invoice number"),
                "po_number": ("order id", "po id", "purchase order id"),
                "invoice_date": ("invoice date",),
                "amount": ("amount", "invoice amount", "total amount"),
                "currency": ("currency", "amount currency"),
            },
            signature=("invoice id", "order id"),
            notes={"amount (base currency)": _BASE_AMOUNT, "status": "the invoice's reconciliation status"},
            source="https://help.sap.com/docs/ariba",
        ),
        Preset(
            "coupa_invoices",
            INVOICES,
            "Coupa invoices (the Invoices export)",
            {
                "invoice_number": ("invoice #", "invoice number", "invoice-number"),
                "po_number": ("po number", "po #", "order header number", "order-header-number"),
                "invoice_date": ("invoice date", "invoice-date"),
                "amount": ("total", "invoice total"),
                "currency": ("currency",),
            },
            signature=("invoice #", "invoice date"),
            notes={"accounting total": _BASE_AMOUNT, "status": "the invoice's approval status"},
            source="https://compass.coupa.com/en-us/products/product-documentation/integration-technical-documentation",
        ),
    ),
    ACTUALS: (
        Preset(
            "netsuite_gl",
            ACTUALS,
            "NetSuite general ledger (the Transaction Detail report)",
            {
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("campaign code", "campaign", "class"),
                "month": ("period", "date"),
                "amount": ("amount (foreign currency)", "amount"),
                "currency": ("currency",),
            },
            signature=("type", "document number", "account"),
            date_order="mdy",
            skip_rows=("total",),
            notes={"amount": _BASE_AMOUNT, "balance": _RUNNING},
            source="https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/",
        ),
        Preset(
            "sap_s4hana_line_items",
            ACTUALS,
            "SAP S/4HANA journal entry line items (Display Line Items in General Ledger)",
            {
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("order", "internal order", "wbs element", "campaign code"),
                "month": ("posting date",),
                "amount": ("amount in transaction currency", "amount in company code currency"),
                "currency": ("transaction currency", "company code currency"),
            },
            signature=("g/l account", "posting date"),
            skip_rows=("total",),
            notes={"amount in company code currency": _BASE_AMOUNT, "company code currency": "the base currency"},
            source="https://help.sap.com/docs/SAP_S4HANA_CLOUD",
        ),
        Preset(
            "quickbooks_gl",
            ACTUALS,
            "QuickBooks Online General Ledger report",
            {
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("class", "campaign code"),
                "month": ("date",),
                "amount": ("foreign amount", "amount"),
                "currency": ("currency",),
            },
            signature=("transaction type", "split"),
            date_order="mdy",
            skip_rows=("total for", "total", "net income"),
            notes={"amount": "the amount in the home currency; the foreign amount is read", "balance": _RUNNING},
            source="https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/generalledger",
        ),
        Preset(
            "xero_gl",
            ACTUALS,
            "Xero Account Transactions (general ledger detail)",
            {
                "line_id": ("plansheet line id", "budget line"),
                "campaign_code": ("campaign", "tracking", "campaign code"),
                "month": ("date",),
                "debit": ("debit (source)", "debit"),
                "credit": ("credit (source)", "credit"),
                "currency": ("currency",),
            },
            signature=("source", "debit", "credit"),
            date_order="dmy",
            skip_rows=("total", "opening balance", "closing balance"),
            notes={
                "debit": "the debit in the base currency; the source currency's is read",
                "credit": "the credit in the base currency; the source currency's is read",
                "running balance": _RUNNING,
                "gross": "debit less credit, with tax",
                "net": "debit less credit, read from the debit and credit",
            },
            source="https://central.xero.com/s/article/Account-Transactions-report",
        ),
    ),
    RESULTS: (),
}


def described() -> list[dict[str, Any]]:
    """Every preset as the API and docs/imports.md show it: kind, name, label, headers per field, words, dates."""
    return [
        {
            "kind": p.kind,
            "name": p.name,
            "label": p.label,
            "headers": {field_name: list(names) for field_name, names in p.headers.items()},
            "recognised_by": list(p.signature),
            "words": {field_name: dict(words) for field_name, words in p.values.items()},
            "prefixes_dropped": {field_name: list(v) for field_name, v in p.prefixes.items()},
            "date_order": p.date_order,
            "rows_skipped": list(p.skip_rows),
            "columns_not_read": dict(p.notes),
            "source": p.source,
        }
        for kind in KINDS
        for p in PRESETS[kind]
    ]


# Each kind's fields (set by the reader of that kind), and the fields whose words a profile may map.
FIELDS: dict[str, tuple[str, ...]] = {}
WORDS: dict[str, dict[str, tuple[str, ...]]] = {}


def declare(kind: str, fields: Iterable[str], words: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """The reader of `kind` names its fields, and the words a field's values are read as (a PO's status)."""
    FIELDS[kind] = tuple(fields)
    WORDS[kind] = dict(words or {})


class Read(list[Any]):
    """An export's rows, and how it was read: `read_by` (its preset or profile, the columns not read...)."""

    def __init__(self, rows: Iterable[Any], read_by: dict[str, Any]) -> None:
        super().__init__(rows)
        self.read_by = read_by


@dataclass(frozen=True)
class Remembered:
    """A saved profile that reads every export of its kind whose header carries each header it maps."""

    name: str
    fields: Mapping[str, str]
    values: Mapping[str, Mapping[str, str]]
    date_order: str | None


@dataclass(frozen=True)
class How:
    """How an import was asked to read its export: a preset by name, a saved mapping (profile), or neither."""

    preset: str | None = None
    mapping: Mapping[str, str] | None = None  # field -> header, from the profile
    profile: str | None = None  # the profile's name, said in the answer
    values: Mapping[str, Mapping[str, str]] | None = None  # the profile's value maps (field -> {word: Plansheet's})
    date_order: str | None = None  # the profile's date order
    remembered: tuple[Remembered, ...] = ()  # profiles chosen by the export's header when none is named

    def args(self) -> dict[str, Any]:
        """The job arguments that carry it to a background import."""
        out: dict[str, Any] = {}
        for name in ("preset", "mapping", "profile", "values", "date_order"):
            value = getattr(self, name)
            if value:
                out[name] = dict(value) if isinstance(value, Mapping) else value
        if self.remembered:
            out["remembered"] = [[r.name, dict(r.fields), dict(r.values), r.date_order] for r in self.remembered]
        return out

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> How:
        remembered = tuple(Remembered(*r) for r in args.get("remembered") or ())
        return cls(*(args.get(n) for n in ("preset", "mapping", "profile", "values", "date_order")), remembered)

    def read(self, head: list[list[Any]], kind: str, canonical: Mapping[str, tuple[str, ...]], sheet: str) -> Reading:
        """The export's header read as asked; a remembered profile when its headers are all in a header row."""
        if self.mapping is None and self.remembered:
            rows = [{norm(v) for v in r} for r in head[:HEAD_ROWS]]
            for saved in self.remembered:
                wanted = {norm(h) for h in saved.fields.values()}
                if any(wanted <= names for names in rows):
                    chosen = How(None, saved.fields, saved.name, saved.values, self.date_order or saved.date_order)
                    return chosen.read(head, kind, canonical, sheet)
        found = reading(head, kind, canonical, sheet, self.preset, self.mapping, self.profile)
        if self.values:
            merged = {name: dict(words) for name, words in found.preset.values.items()}
            for name, words in self.values.items():  # the profile's words over the preset's
                merged.setdefault(name, {}).update({norm(k): v for k, v in words.items()})
            found.preset = replace(found.preset, values=merged)
        if self.date_order:
            found.preset = replace(found.preset, date_order=self.date_order)
        return found
