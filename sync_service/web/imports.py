"""Finance's imports in the browser: choose an export, see how it is read, import it, read the report.

Purchase orders, invoices, actual spend and CRM results, each read and imported by the very
domain functions the API calls (`sync_service.spend.orders`, `sync_service.results.actuals`,
`sync_service.results.outcomes`), through a preset, a saved mapping (an import profile) or what
the export's header shows. The preview reads the file without storing anything; the file waits
for its confirmation on the server (`Pending`), never in the browser, so what is imported is
exactly what was previewed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from sheet_templates.cells import parse_a1
from sheet_templates.money import to_cents
from sheet_templates.text import uploaded_name
from sync_service.master.outcomes import LABELS as RESULT_LABELS
from sync_service.platform import exports, presets, profiles
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import ServiceError
from sync_service.platform.presets import ACTUALS, INVOICES, KINDS, PURCHASE_ORDERS, RESULTS, How
from sync_service.platform.storage import Role
from sync_service.results import actuals, outcomes
from sync_service.spend import orders as spend
from sync_service.web.base import bp, login_required
from sync_service.web.forms import FormErrors

KIND_LABELS = {
    PURCHASE_ORDERS: "Purchase orders",
    INVOICES: "Invoices",
    ACTUALS: "Actual spend",
    RESULTS: "CRM results",
}
RESULT_PRESETS = {
    "salesforce": "Salesforce campaign report",
    "hubspot": "HubSpot campaign export",
    "marketo": "Marketo program performance report",
    "plansheet": "Plansheet's own columns",
}
FIELD_LABELS = {
    "po_number": "PO number",
    "vendor": "Vendor",
    "amount": "Amount",
    "currency": "Currency",
    "service_start": "Service start",
    "service_end": "Service end",
    "service_period": "Service period",
    "line_id": "Line ID",
    "campaign_code": "Campaign code",
    "status": "Status",
    "method": "Accrual method",
    "invoice_number": "Invoice number",
    "invoice_date": "Invoice date",
    "month": "Month or date",
    "debit": "Debit",
    "credit": "Credit",
    "crm_campaign_id": "CRM campaign ID",
    "campaign": "Campaign name",
    **RESULT_LABELS,
}
DATE_ORDERS = (("dmy", "Day first: 04/05/2026 is 4 May"), ("mdy", "Month first: 04/05/2026 is April 5"))
LISTED = 100  # refusals listed in a page's error summary (all of them are counted)


def _finance() -> None:
    if g.web_user.role != Role.FINANCE:
        abort(403, "only finance imports exports and saves how they are read")


def _kind(value: str | None) -> str:
    return value if value in KINDS else PURCHASE_ORDERS


# --- what the form asked for --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """An import as the form asked for it: the kind, the file's name, and how it is to be read."""

    kind: str
    filename: str | None
    preset: str | None = None
    profile: str | None = None
    date_order: str | None = None
    month: str | None = None  # results: the fiscal month of every row of an export without a month column

    def how(self) -> How:
        """How the export is read (404 naming the profiles there are), as the API asks `profiles.how`."""
        return profiles.how(app_store(), self.kind, self.profile, self.preset)


def _choice(form: Mapping[str, str], filename: str | None, errors: FormErrors) -> Choice:
    """The form's choices, each one the page does not offer added to `errors` at its field."""
    kind = form.get("kind", "")
    if kind not in KINDS:
        errors.add("kind", "Choose what the file holds")
        kind = PURCHASE_ORDERS
    preset = form.get("preset") or None
    if preset is not None and preset not in dict(_presets(kind)):
        errors.add("preset", f"Choose one of the presets for {KIND_LABELS[kind].lower()}, or detection")
    date_order = form.get("date_order") or None
    if date_order is not None and date_order not in dict(DATE_ORDERS):
        errors.add("date_order", "Choose day first, month first, or telling from the dates")
    month = (form.get("month") or None) if kind == RESULTS else None
    if month is not None and month not in dict(_months()):
        errors.add("month", "Choose a month of the fiscal year, or leave it to the export's month column")
    choice = Choice(kind, filename, preset, form.get("profile") or None, date_order, month)
    if choice.profile is not None:
        try:
            choice.how()
        except ServiceError as exc:
            errors.add("profile", exc.detail.removeprefix("profile: "))
    return choice


def _presets(kind: str) -> list[tuple[str, str]]:
    """(name, label) of each preset an import of `kind` may be read by."""
    if kind == RESULTS:
        return list(RESULT_PRESETS.items())
    return [*((p.name, p.label) for p in presets.PRESETS[kind]), ("plansheet", "Plansheet's own columns")]


def _months() -> list[tuple[str, str]]:
    return [(m.name, m.label) for m in app_schema().calendar.months]


# --- an upload waiting for its confirmation --------------------------------------------------------------


class Pending:
    """The session's upload between its preview and its confirmation, kept on the server.

    One per session: a new upload replaces it. The file is named by the session and a random
    token (the confirmation form carries the token; another session's token finds nothing), its
    SHA-256 is kept in the signed session, and files wait at most `SECONDS`, all of them together
    at most `BYTES`. The service's processes share the folder, so a deployment on several hosts
    sends a session to one host.
    """

    KEY = "import_pending"
    SECONDS = 3600
    BYTES = 512 * 2**20

    @staticmethod
    def folder() -> Path:
        folder = Path(tempfile.gettempdir()) / f"plansheet-imports-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.is_symlink() or folder.stat().st_uid != os.getuid():
            raise RuntimeError(f"{folder} is not this service's own folder")
        return folder

    @classmethod
    def _path(cls, token: str) -> Path:
        name = hashlib.sha256(f"{session.get('sid', '')}\0{token}".encode()).hexdigest()
        return cls.folder() / name

    @classmethod
    def _files(cls) -> Iterator[tuple[Path, os.stat_result]]:
        for path in cls.folder().iterdir():
            try:
                yield path, path.stat()
            except FileNotFoundError:  # claimed or swept meanwhile
                continue

    @classmethod
    def keep(cls, raw: bytes, choice: Choice) -> str | None:
        """Keep `raw` for its confirmation; its token, or None when too much is waiting already."""
        cls.drop()
        held = 0
        for path, stat in cls._files():
            if time.time() - stat.st_mtime > cls.SECONDS:
                path.unlink(missing_ok=True)
            else:
                held += stat.st_size
        if held + len(raw) > cls.BYTES:
            return None
        token = secrets.token_urlsafe(24)
        descriptor = os.open(cls._path(token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(raw)
        session[cls.KEY] = {"token": token, "sha256": hashlib.sha256(raw).hexdigest(), **asdict(choice)}
        return token

    @classmethod
    def held(cls) -> tuple[str, bytes, Choice] | None:
        """(token, file, choice) of the session's upload, or None when there is none (or it expired)."""
        meta = session.get(cls.KEY)
        if not isinstance(meta, dict):
            return None
        path = cls._path(meta["token"])
        try:
            if time.time() - path.stat().st_mtime > cls.SECONDS:
                return None
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            return None
        return meta["token"], raw, cls._choice_of(meta)

    @classmethod
    def claim(cls, token: str) -> tuple[bytes, Choice] | None:
        """The upload `token` names, taken once (a second confirmation finds nothing), or None."""
        meta = session.get(cls.KEY)
        if not isinstance(meta, dict) or not secrets.compare_digest(str(meta.get("token")), token):
            return None
        path = cls._path(meta["token"])
        taken = path.with_name(f"{path.name}.{secrets.token_hex(8)}")
        try:
            path.rename(taken)  # atomic: of two confirmations, one takes it
        except FileNotFoundError:
            return None
        session.pop(cls.KEY, None)
        try:
            fresh = time.time() - taken.stat().st_mtime <= cls.SECONDS
            raw = taken.read_bytes()
        finally:
            taken.unlink(missing_ok=True)
        if not fresh or hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            return None
        return raw, cls._choice_of(meta)

    @classmethod
    def rechoose(cls, token: str, choice: Choice) -> bool:
        """Read the upload `token` names another way from now on (a preset, a mapping, the date order)."""
        meta = session.get(cls.KEY)
        if not isinstance(meta, dict) or not secrets.compare_digest(str(meta.get("token")), token):
            return False
        session[cls.KEY] = {**meta, **asdict(choice)}
        return True

    @classmethod
    def drop(cls) -> None:
        meta = session.pop(cls.KEY, None)
        if isinstance(meta, dict):
            cls._path(meta["token"]).unlink(missing_ok=True)

    @staticmethod
    def _choice_of(meta: Mapping[str, Any]) -> Choice:
        return Choice(**{k: meta.get(k) for k in Choice.__dataclass_fields__})


# --- the reads and the imports, as the API does them -----------------------------------------------------------


@dataclass
class Looked:
    """An export read without storing anything: its rows, how it was read, and the rows it skipped and why."""

    rows: list[Any]
    read_by: dict[str, Any]
    skipped: list[dict[str, Any]]


def _results(choice: Choice, raw: bytes) -> tuple[str, outcomes.Parsed]:
    """A results export read as `POST /api/v1/outcomes` reads it: a saved profile is its mapping and date order."""
    mapping, date_order = None, choice.date_order
    if choice.profile is not None:
        how = profiles.how(app_store(), RESULTS, choice.profile)
        mapping, date_order = dict(how.mapping or {}), date_order or how.date_order
    return outcomes.parse_file(raw, choice.filename, app_schema(), choice.preset, mapping, choice.month, date_order)


def _read(choice: Choice, raw: bytes) -> Looked:
    """The export read by the very function its import reads it with; nothing is matched or stored."""
    schema = app_schema()
    if choice.kind == RESULTS:
        preset, parsed = _results(choice, raw)
        return Looked(parsed.rows, parsed.read_by(preset, choice.profile), parsed.skipped)
    how, order, name = choice.how(), choice.date_order, choice.filename
    if choice.kind == ACTUALS:
        rows = actuals.parse_actuals(raw, name, schema, order, how)
    else:
        parse = spend.parse_purchase_orders if choice.kind == PURCHASE_ORDERS else spend.parse_invoices
        rows = parse(raw, name, schema, order, spend.window_days(current_app.config), how)
    return Looked(list(rows), rows.read_by, list(rows.read_by.get("rows_skipped", [])))


def _import(choice: Choice, raw: bytes) -> tuple[int, dict[str, Any]]:
    """(status, answer) of the import, by the domain function the API's route calls."""
    store, schema, user, name, order = app_store(), app_schema(), g.web_user, choice.filename, choice.date_order
    if choice.kind == RESULTS:
        preset, parsed = _results(choice, raw)
        return outcomes.import_outcomes(store, schema, user, parsed, raw, preset, preset, name, profile=choice.profile)
    how, window = choice.how(), spend.window_days(current_app.config)
    if choice.kind == ACTUALS:
        return 201, actuals.import_actuals(store, schema, user, raw, name, date_order=order, how=how)
    if choice.kind == PURCHASE_ORDERS:
        policy = current_app.config["OVER_ALLOCATION"]
        return spend.import_purchase_orders(
            store, schema, user, raw, name, policy, date_order=order, window_days=window, how=how
        )
    return spend.import_invoices(store, schema, user, raw, name, date_order=order, window_days=window, how=how)


def _refusals(exc: ServiceError) -> tuple[FormErrors, dict[str, list[str]]]:
    """A refused export's errors for the summary (each at its cell) and the messages by cell for the grid."""
    errors, at_cell = FormErrors(), {}
    issues = exc.issues or []
    errors.add("", exc.detail[:1].upper() + exc.detail[1:])
    for issue in issues[:LISTED]:
        cell, message = str(issue.get("cell", "")), str(issue.get("message", ""))
        try:
            parse_a1(cell)
        except ValueError:
            errors.add("", f"{cell.capitalize()}: {message}" if cell else message)
            continue
        errors.add(f"cell-{cell}", f"{cell}: {message}")
        at_cell.setdefault(cell, []).append(message)
    if len(issues) > LISTED:
        errors.add("", f"… and {len(issues) - LISTED:,} more")
    return errors, at_cell


def _preview_of(raw: bytes, choice: Choice, read_by: Mapping[str, Any] | None, cells: list[str]) -> Any:
    try:
        return exports.preview(raw, choice.filename, presets.header_of(read_by) if read_by else None, cells)
    except ServiceError:  # not a file the readers read at all: its refusal says so
        return None


# --- the pages ----------------------------------------------------------------------------------------


def _imports_page(kind: str, errors: FormErrors | None = None, form: Mapping[str, str] | None = None) -> str:
    with app_store().reading() as s:
        saved = profiles.listing(s)
    return render_template(
        "imports.html",
        kind=kind,
        kinds=KIND_LABELS,
        presets=_presets(kind),
        profiles=saved,
        profile_names=[p["name"] for p in saved if p["kind"] == kind],
        months=_months(),
        date_orders=DATE_ORDERS,
        fields=FIELD_LABELS,
        errors=errors or FormErrors(),
        form=form or {"kind": kind, "profile": request.args.get("profile", "")},
    )


@bp.get("/imports")
@login_required
def imports_page() -> ResponseReturnValue:
    """Choose an export and how it is read; the saved mappings."""
    _finance()
    return _imports_page(_kind(request.args.get("kind")))


@bp.post("/imports")
@login_required
def upload_import() -> ResponseReturnValue:
    """Keep the chosen file for its preview; a form the page refuses comes back with each error at its field."""
    _finance()
    errors = FormErrors()
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else b""
    filename = uploaded_name(upload.filename if upload is not None else None)
    choice = _choice(request.form, filename, errors)
    if not raw:
        errors.add(
            "file", "Choose a CSV or xlsx file to import" if upload is None or not filename else "The file is empty"
        )
    if not errors and Pending.keep(raw, choice) is None:
        errors.add("file", "Too many imports are waiting for their confirmation; try again in a few minutes")
    if errors:
        return _imports_page(choice.kind, errors, request.form), 422
    return redirect(url_for("web.import_preview"))


@bp.get("/imports/preview")
@login_required
def import_preview() -> ResponseReturnValue:
    """The export as it will be read, before anything is stored: its first rows, its columns, any refusal."""
    _finance()
    held = Pending.held()
    if held is None:
        flash("There is no file waiting to be imported (an upload waits an hour); choose it again.", "error")
        return redirect(url_for("web.imports_page"))
    token, raw, choice = held
    try:
        looked: Looked | None = _read(choice, raw)
    except ServiceError as exc:
        errors, at_cell = _refusals(exc)
        return render_template(
            "imports_preview.html",
            **_about(choice, raw, None),
            looked=None,
            errors=errors,
            at_cell=at_cell,
            preview=_preview_of(raw, choice, None, list(at_cell)),
            token=token,
        ), 422
    assert looked is not None
    return render_template(
        "imports_preview.html",
        **_about(choice, raw, looked.read_by),
        looked=looked,
        errors=FormErrors(),
        at_cell={},
        preview=_preview_of(raw, choice, looked.read_by, []),
        read_at={c["cell"]: c["field"] for c in looked.read_by.get("columns_read", [])},
        token=token,
    )


@bp.post("/imports/preview")
@login_required
def reread_import() -> ResponseReturnValue:
    """Read the file waiting another way (a preset, a mapping, the date order) without choosing it again."""
    _finance()
    held = Pending.held()
    if held is None or not secrets.compare_digest(held[0], request.form.get("upload", "")):
        flash("There is no file waiting to be imported (an upload waits an hour); choose it again.", "error")
        return redirect(url_for("web.imports_page"))
    token, _, before = held
    errors = FormErrors()
    choice = _choice({**request.form.to_dict(), "kind": before.kind}, before.filename, errors)
    for _, message in errors.items:
        flash(message, "error")
    if not errors:
        Pending.rechoose(token, choice)
    return redirect(url_for("web.import_preview"))


def _about(choice: Choice, raw: bytes, read_by: Mapping[str, Any] | None) -> dict[str, Any]:
    """What every step of an import shows of it: the file, its kind, how it was asked to be read."""
    preset_labels = dict(_presets(choice.kind))
    with app_store().reading() as s:
        names = [p["name"] for p in profiles.listing(s, choice.kind)]
    return {
        "choice": choice,
        "presets": _presets(choice.kind),
        "profile_names": names,
        "month_options": _months(),
        "date_order_options": DATE_ORDERS,
        "kind_label": KIND_LABELS[choice.kind],
        "size": len(raw),
        "preset_labels": preset_labels,
        "dates": _dates(choice, read_by or {}),
        "fields": FIELD_LABELS,
        "months": dict(_months()),
    }


def _dates(choice: Choice, read_by: Mapping[str, Any]) -> str:
    """How dates such as 04/05/2026 are read: as the form said, else as the mapping or the preset says."""
    labels = dict(DATE_ORDERS)
    if choice.date_order:
        return labels[choice.date_order]
    profile = choice.profile or read_by.get("profile")
    try:
        if profile:
            order = profiles.how(app_store(), choice.kind, profile).date_order
            if order:
                return f"{labels[order]} (the mapping's)"
        preset = read_by.get("preset")
        if preset and choice.kind != RESULTS:
            order = presets.named(choice.kind, preset).date_order
            if order:
                return f"{labels[order]}, where the dates themselves do not say (the preset's)"
    except ServiceError:  # the profile retired, or the preset unknown: the refusal says so
        pass
    return "Told from the dates in the file"


@bp.post("/imports/cancel")
@login_required
def cancel_import() -> ResponseReturnValue:
    _finance()
    Pending.drop()
    flash("The file was not imported; nothing was stored.", "ok")
    return redirect(url_for("web.imports_page"))


@bp.post("/imports/confirm")
@login_required
def confirm_import() -> ResponseReturnValue:
    """Import the previewed file (once) and show its report; a refusal shows each error at its cell."""
    _finance()
    taken = Pending.claim(request.form.get("upload", ""))
    if taken is None:
        flash("That file was already imported, or waited too long; choose it again.", "error")
        return redirect(url_for("web.imports_page"))
    raw, choice = taken
    try:
        status, answer = _import(choice, raw)
    except ServiceError as exc:
        errors, at_cell = _refusals(exc)
        return render_template(
            "imports_preview.html",
            **_about(choice, raw, None),
            looked=None,
            refused_at_import=True,
            errors=errors,
            at_cell=at_cell,
            preview=_preview_of(raw, choice, None, list(at_cell)),
        ), 422
    return render_template(
        "imports_report.html",
        **_about(choice, raw, answer.get("read_by")),
        status=status,
        answer=answer,
        report=_report(choice, raw, answer),
    ), status


def _report(choice: Choice, raw: bytes, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The answer's amounts in cents of their currencies, for the page's money filter."""
    reporting = app_schema().config.reporting_currency

    def cents(items: Any, *keys: str) -> list[dict[str, Any]]:
        return [{**item, **{f"{k}_cents": to_cents(item.get(k)) for k in keys}} for item in items or []]

    out: dict[str, Any] = {"reporting": reporting}
    unmatched = answer.get("unmatched") or []
    if choice.kind in (ACTUALS, INVOICES) and unmatched:
        # The answer names each unmatched row's amount, not its currency: the row says it.
        currency_of = {r.row: r.currency for r in _read(choice, raw).rows}
        unmatched = [{**u, "currency": currency_of.get(u["row"]) or reporting} for u in unmatched]
    out["unmatched"] = cents(unmatched, "amount")
    out["over_plan"] = cents(answer.get("over_plan"), "planned", "purchase_orders", "over_by")
    out["over_po"] = cents(answer.get("over_po"), "amount", "invoiced", "over_by")
    if choice.kind == ACTUALS:
        out["total_cents"] = to_cents(answer.get("total"))
    return out


# --- saved mappings (import profiles) ------------------------------------------------------------------------


def _profile_page(kind: str, errors: FormErrors | None = None, form: Mapping[str, str] | None = None) -> str:
    return render_template(
        "imports_profile.html",
        kind=kind,
        kinds=KIND_LABELS,
        kind_fields=presets.FIELDS[kind],
        words=presets.WORDS.get(kind, {}),
        fields=FIELD_LABELS,
        date_orders=DATE_ORDERS,
        errors=errors or FormErrors(),
        form=form or {},
    )


@bp.get("/imports/mappings/new")
@login_required
def new_import_profile() -> ResponseReturnValue:
    """The form of a new saved mapping of one kind of export."""
    _finance()
    return _profile_page(_kind(request.args.get("kind")))


@bp.post("/imports/mappings")
@login_required
def create_import_profile() -> ResponseReturnValue:
    """Save a mapping with the checks the API makes; each wrong field is said at the field, nothing is saved."""
    _finance()
    form = request.form
    kind = _kind(form.get("kind"))
    name = form.get("name", "").strip()
    body = _profile_body(kind, form)
    errors = FormErrors()
    if not name:  # as `POST /api/v1/import-profiles/KIND` refuses a body without one
        errors.add("name", "Give the mapping a name")
    else:
        try:
            profiles.save(app_store(), g.web_user, kind, name, body, new=True)
        except ServiceError as exc:
            issues = exc.issues or []
            for issue in issues:
                at, message = str(issue.get("at", "")), str(issue.get("message", ""))
                if len(issues) == 1 and exc.detail.startswith(f"{at}: "):  # the refusal's own words say more
                    message = exc.detail.removeprefix(f"{at}: ")
                errors.add(_field_of(at, body), message[:1].upper() + message[1:])
            if not issues:
                errors.add("name" if exc.status == 409 else "", exc.detail)
    if errors:
        return _profile_page(kind, errors, form), 422
    flash(f"The mapping {name!r} is saved: choose it below to import a file with it.", "ok")
    return redirect(url_for("web.imports_page", kind=kind, profile=name))


def _profile_body(kind: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The profile the form describes, as the API's body: field -> header, each field's words, the date order."""
    fields = {f: form[f"fields.{f}"].strip() for f in presets.FIELDS[kind] if form.get(f"fields.{f}", "").strip()}
    values: dict[str, dict[str, str]] = {}
    for name, meanings in presets.WORDS.get(kind, {}).items():
        for meaning in meanings:
            for word in form.get(f"values.{name}.{meaning}", "").split(","):
                if word.strip():
                    values.setdefault(name, {})[word.strip()] = meaning
    return {
        "fields": fields,
        "values": values,
        "date_order": form.get("date_order") or None,
        "remember": form.get("remember") == "on",
        "comment": form.get("comment", ""),
    }


def _field_of(at: str, body: Mapping[str, Any]) -> str:
    """The form field an issue of the profile names ("values.status.Live" is in the status words meaning open...)."""
    parts = at.split(".")
    if len(parts) == 3 and parts[0] == "values":
        meaning = body.get("values", {}).get(parts[1], {}).get(parts[2])
        if meaning is not None:
            return f"values.{parts[1]}.{meaning}"
    return at
