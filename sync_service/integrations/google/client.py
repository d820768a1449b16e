"""Google Sheets through gspread: team plan sheets (create, pull) and the finance master sheet (push).

- **Client**: gspread on google-auth service-account credentials (a key file, or the key's JSON
  in the environment; the key is never logged), with an HTTP client that retries 408, 429 and
  5xx answers and dropped connections with exponential backoff (honouring `Retry-After`), and
  that can send every call to another base address (a local Sheets API in tests).
- **Create**: one `spreadsheets.create` and one `spreadsheets.batchUpdate` build a team's plan
  sheet from the schema, whatever its size; then one Drive permission per editor.
- **Pull**: one `values.batchGet` reads the Plan sheet and the hidden identity sheet
  (unformatted values, dates as serial numbers); the grid goes through the same reader and
  validator as an Excel upload, so issues name the Google sheet's own cells.
- **Push**: the master, its rollup and its variance are written to hidden staging sheets, in
  chunks under the request-size limit, and then swapped in by one atomic `batchUpdate`
  (delete the old sheets, rename and show the new ones): a reader sees the old master or the
  new one, never half of one. Values are sent RAW, so text is never run as a formula.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gspread
import requests
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from sheet_templates.cells import excel_serial
from sheet_templates.gsheets_template import (
    META_SHEET,
    PLAN_ID,
    create_body,
    meta_from_grid,
    meta_range,
    plan_range,
    setup_requests,
)
from sheet_templates.schema import FIRST_DATA_ROW, ColumnType, PlanSchema
from sheet_templates.text import printable, printable_value

SCOPES = ("https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive")
GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
STAGING = "~new "  # prefix of the hidden sheets a push writes before it swaps them in
MASTER_SHEETS = ("Master", "Rollup", "Variance")


class GoogleSheetsError(Exception):
    """A Google Sheets operation failed; the message says what and what to do."""


@dataclass(frozen=True)
class GoogleSettings:
    """How to reach Google: the service-account key, the API address and the retry policy."""

    credentials_info: Mapping[str, Any] = field(repr=False)  # the key: never printed
    api_base: str | None = None  # None: Google itself
    retries: int = 5
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    max_backoff: float = 32.0
    timeout: float = 60.0
    max_request_bytes: int = 8 * 2**20  # below Google's 10 MB payload limit, with room for the envelope

    @property
    def service_email(self) -> str:
        return str(self.credentials_info.get("client_email", ""))


def load_credentials(path: str | None, inline: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The service-account key from `inline` JSON (an environment variable) or the file at `path`."""
    if isinstance(inline, Mapping):  # Flask's from_prefixed_env has already parsed the JSON
        info: Any = dict(inline)
    elif inline:
        try:
            info = json.loads(inline)
        except ValueError:
            raise GoogleSheetsError("the Google credentials JSON is not valid JSON (the value is not shown)") from None
    elif path:
        try:
            with open(path, encoding="utf-8") as fh:
                info = json.load(fh)
        except OSError as exc:
            raise GoogleSheetsError(f"cannot read the Google credentials file {path}: {exc.strerror}") from None
        except ValueError:
            raise GoogleSheetsError(f"the Google credentials file {path} is not valid JSON") from None
    else:
        raise GoogleSheetsError(
            "no Google credentials: set PLANSHEET_GOOGLE_CREDENTIALS to a service-account key file, or "
            "PLANSHEET_GOOGLE_CREDENTIALS_JSON to its contents (see docs/google-sheets.md)"
        )
    if (
        not isinstance(info, dict)
        or info.get("type") != "service_account"
        or not all(info.get(k) for k in ("client_email", "private_key", "token_uri"))
    ):
        raise GoogleSheetsError(
            "the Google credentials are not a service-account key (need type service_account, client_email, "
            "private_key, token_uri)"
        )
    return info


def http_client_class(settings: GoogleSettings) -> type[HTTPClient]:
    """The gspread HTTP client class with our base address and retry policy (gspread instantiates it)."""

    class PlansheetHTTPClient(HTTPClient):
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> requests.Response:
            if settings.api_base:
                for host in GOOGLE_HOSTS:
                    if endpoint.startswith(host):
                        endpoint = settings.api_base.rstrip("/") + endpoint[len(host) :]
            # A call that may have been carried out although it failed (5xx, cut off) is repeated only when
            # repeating it is harmless: reads, and values written to fixed ranges. 408 and 429 were not carried out.
            repeatable = method.lower() == "get" or endpoint.endswith("values:batchUpdate")
            attempt = 0
            while True:
                try:
                    return super().request(method, endpoint, *args, **kwargs)
                except APIError as err:
                    retry = err.code in (408, 429) or (repeatable and err.code in RETRY_STATUSES)
                    if not retry or attempt >= settings.retries:
                        raise
                    wait = _retry_after(err.response) or _backoff(settings, attempt)
                except (requests.ConnectionError, requests.Timeout):
                    if not repeatable or attempt >= settings.retries:
                        raise
                    wait = _backoff(settings, attempt)
                time.sleep(wait)
                attempt += 1

    return PlansheetHTTPClient


def _backoff(settings: GoogleSettings, attempt: int) -> float:
    """Exponential backoff with full jitter, as Google's API guidance asks."""
    return random.uniform(0, min(settings.max_backoff, settings.backoff * 2**attempt))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 120.0) if value.replace(".", "", 1).isdigit() else None


def client(settings: GoogleSettings) -> gspread.Client:
    """A gspread client for the service account, through our retrying HTTP client."""
    credentials = Credentials.from_service_account_info(dict(settings.credentials_info), scopes=SCOPES)
    gc = gspread.authorize(credentials, http_client=http_client_class(settings))
    gc.http_client.set_timeout(settings.timeout)
    return gc


# --- team plan sheets --------------------------------------------------------------------------------


@dataclass
class CreatedSheet:
    spreadsheet_id: str
    url: str
    requests: int  # API calls made


def create_team_sheet(
    gc: gspread.Client,
    schema: PlanSchema,
    region: str,
    team: str,
    settings: GoogleSettings,
    editors: Sequence[str] = (),
    rows: int | None = None,
    lines: Sequence[Mapping[str, Any]] = (),
    *,
    cycle: int | None = None,
    closed: Sequence[str] = (),
) -> CreatedSheet:
    """A new plan spreadsheet for `team`, shared with `editors` (writer): 2 API calls, plus one per editor.

    It is filled with `lines` (the team's approved plan, in stored form: cents, ISO dates). A
    reforecast sheet names its `cycle` and `closed` months, whose cells (holding what `lines`
    gives: the actual spend) are protected.
    """
    rows = max(rows or schema.config.template_rows, len(lines) + 50)
    title = f"{schema.config.org_name} marketing plan {team} {schema.calendar.label}"
    http = gc.http_client
    created = http.request(
        "post", "https://sheets.googleapis.com/v4/spreadsheets", json=create_body(schema, title, rows)
    )
    body = created.json()
    sid = body["spreadsheetId"]
    requests_ = setup_requests(schema, region, team, rows, settings.service_email, cycle=cycle, closed=closed)
    if lines:
        requests_.append(line_cells(schema, lines))
    http.batch_update(sid, {"requests": requests_})
    for email in editors:
        http.insert_permission(sid, email, "user", "writer", notify=True, email_message=f"Your {team} plan")
    url = body.get("spreadsheetUrl") or f"https://docs.google.com/spreadsheets/d/{sid}"
    return CreatedSheet(sid, url, 2 + len(editors))


def line_cells(schema: PlanSchema, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An updateCells request writing stored lines into the Plan sheet (money in units, dates as serials)."""
    values = []
    for line in lines:
        row = []
        for c in schema.input_columns:
            value = line.get(c.name)
            if value is None or value == "":
                row.append({})
            elif c.type is ColumnType.MONEY:
                row.append({"userEnteredValue": {"numberValue": value / 100}})
            elif c.type is ColumnType.COUNT:
                row.append({"userEnteredValue": {"numberValue": value}})
            elif c.type is ColumnType.DATE:
                row.append({"userEnteredValue": {"numberValue": _serial(value)}})
            else:
                row.append({"userEnteredValue": {"stringValue": printable(str(value))}})  # text stays text
        values.append({"values": row})
    return {
        "updateCells": {
            "rows": values,
            "fields": "userEnteredValue",
            "start": {"sheetId": PLAN_ID, "rowIndex": FIRST_DATA_ROW - 1, "columnIndex": 0},
        }
    }


@dataclass
class PulledSheet:
    grid: list[list[Any]]
    meta: dict[str, str]
    requests: int = 1


def pull_team_sheet(gc: gspread.Client, schema: PlanSchema, spreadsheet_id: str) -> PulledSheet:
    """The Plan sheet's cells (unformatted, dates as serial numbers) and the template identity: one API call."""
    rows = max(schema.config.template_rows, schema.config.max_lines)
    answer = gc.http_client.values_batch_get(
        spreadsheet_id,
        [plan_range(schema, rows), meta_range()],
        params={
            "valueRenderOption": "UNFORMATTED_VALUE",
            "dateTimeRenderOption": "SERIAL_NUMBER",
            "majorDimension": "ROWS",
        },
    )
    plan, meta = answer.get("valueRanges", [{}, {}])[:2]
    width = len(schema.columns)
    grid = [list(row) + [""] * (width - len(row)) for row in plan.get("values", [])]
    return PulledSheet(grid, meta_from_grid(meta.get("values", [])))


def check_meta(meta: Mapping[str, str], schema: PlanSchema, team: str, region: str) -> list[str]:
    """Why this sheet is not `team`'s plan template of this schema (empty when it is)."""
    expected = schema.meta_for(region)
    problems = []
    if not meta:
        problems.append(f"the spreadsheet has no {META_SHEET} sheet: it was not created by Plansheet")
        return problems
    if meta.get("template_id") != expected.template_id:
        problems.append(f"it is a template of {meta.get('template_id')!r}, not {expected.template_id!r}")
    if meta.get("template_version") != expected.version:
        problems.append(
            f"its template version is {meta.get('template_version')}, the current one is {expected.version}; "
            "create a new sheet for the team"
        )
    if meta.get("team") != team:
        problems.append(f"it is the plan sheet of team {meta.get('team')!r}, not {team!r}")
    if meta.get("fiscal_year") != str(expected.fiscal_year):
        problems.append(f"it is for fiscal year {meta.get('fiscal_year')}, not {expected.fiscal_year}")
    return problems


# --- the finance master sheet ------------------------------------------------------------------------


@dataclass
class SheetData:
    title: str
    header: list[str]
    rows: list[list[Any]]
    formats: dict[int, str] = field(default_factory=dict)  # column index -> "money" | "count" | "date"


@dataclass
class PushResult:
    spreadsheet_id: str
    sheets: dict[str, int]  # title -> rows written
    requests: int
    bytes_sent: int
    already_pushed: bool = False  # the push had landed before (its mark was on the sheet): nothing sent


def master_sheets(
    schema: PlanSchema,
    lines: list[dict[str, Any]],
    rollup: dict[str, Any],
    variance: dict[str, Any],
    performance: list[tuple[str, tuple[list[str], list[str], list[list[Any]]]]] = (),
) -> list[SheetData]:
    """The master (every line, money in units), its rollup, its variance and its performance tables as sheet data."""
    columns = [c for c in schema.input_columns]
    header = ["Team", *(c.label for c in columns)]
    formats = {}
    for j, c in enumerate(columns, start=1):
        if c.type is ColumnType.MONEY:
            formats[j] = "money"
        elif c.type is ColumnType.COUNT:
            formats[j] = "count"
        elif c.type is ColumnType.DATE:
            formats[j] = "date"
    rows = []
    for line in lines:
        row: list[Any] = [printable_value(line["team_id"])]
        for c in columns:
            value = line.get(c.name)
            if value is None:
                row.append("")
            elif c.type is ColumnType.MONEY:
                row.append(value / 100)
            elif c.type is ColumnType.DATE:
                row.append(_serial(value))
            else:
                row.append(printable_value(value))  # JSON carries any character, but no unpaired surrogate
        rows.append(row)
    sheets = [SheetData("Master", header, rows, formats)]
    for title, view in (("Rollup", rollup), ("Variance", variance)):
        keys = list(dict.fromkeys(k for r in view["rows"] for k in r)) or list(view.get("by", []))
        data = [[_number(r.get(k)) for k in keys] for r in view["rows"]]
        money = {
            j for j, k in enumerate(keys) if k not in view.get("by", []) and k not in ("period", "flag", "variance_pct")
        }
        sheets.append(SheetData(title, keys, data, dict.fromkeys(money, "money")))
    for title, (head, kinds, values) in performance:
        data = [
            [
                "" if v is None else (printable_value(v) if k == "text" else (v / 100 if k != "ratio" else float(v)))
                for v, k in zip(row, kinds, strict=True)
            ]
            for row in values
        ]
        kept = {j: k for j, k in enumerate(kinds) if k in ("money", "count")}
        sheets.append(SheetData(title, head, data, kept))
    return sheets


def _serial(value: str) -> float | str:
    try:
        return excel_serial(dt.date.fromisoformat(value))
    except (TypeError, ValueError):
        return value


def _number(value: Any) -> Any:
    """Money the API writes as exact decimal text ("1250.50") becomes a number for the sheet."""
    if isinstance(value, str):
        try:
            return float(value) if value.replace("-", "", 1).replace(".", "", 1).isdigit() else printable(value)
        except ValueError:
            return printable(value)
    return "" if value is None else value


NUMBER_FORMATS = {
    "money": {"type": "NUMBER", "pattern": "#,##0.00"},
    "count": {"type": "NUMBER", "pattern": "0"},
    "date": {"type": "DATE", "pattern": "yyyy-mm-dd"},
}


PUSH_MARK = "plansheet.push"  # developer metadata on a pushed sheet: the push (job) that swapped it in


def push_master(
    gc: gspread.Client,
    spreadsheet_id: str,
    sheets: Sequence[SheetData],
    settings: GoogleSettings,
    mark: str | None = None,
) -> PushResult:
    """Replace the master sheets atomically: stage hidden copies, fill them in chunks, swap them in one batchUpdate.

    With `mark` (a job id) the swap also marks the first sheet with it, in the same batchUpdate; a
    push whose mark is already there has landed (its worker died before recording it) and is not
    sent again: its result says `already_pushed`.
    """
    http = gc.http_client
    calls, sent = 0, 0
    meta = http.fetch_sheet_metadata(spreadsheet_id, params={"fields": "sheets(properties,developerMetadata)"})
    calls += 1
    marks = {
        m.get("metadataValue")
        for s in meta.get("sheets", [])
        for m in s.get("developerMetadata", [])
        if m.get("metadataKey") == PUSH_MARK
    }
    if mark is not None and mark in marks:
        return PushResult(spreadsheet_id, {s.title: len(s.rows) for s in sheets}, calls, sent, already_pushed=True)
    existing = {s["properties"]["title"]: s["properties"]["sheetId"] for s in meta.get("sheets", [])}
    taken = set(existing.values())
    staged: dict[str, int] = {}
    for sheet in sheets:
        sheet_id = random.randint(10_000_000, 2_000_000_000)
        while sheet_id in taken:
            sheet_id += 1
        taken.add(sheet_id)
        staged[sheet.title] = sheet_id
    # 1. Clear what a failed push left behind, and add the hidden staging sheets, formatted.
    requests_: list[dict[str, Any]] = [
        {"deleteSheet": {"sheetId": sid}} for title, sid in existing.items() if title.startswith(STAGING)
    ]
    for sheet in sheets:
        sid = staged[sheet.title]
        requests_.append(
            {
                "addSheet": {
                    "properties": {
                        "sheetId": sid,
                        "title": STAGING + sheet.title,
                        "hidden": True,
                        "gridProperties": {
                            "rowCount": len(sheet.rows) + 2,  # a frozen header needs a row below it
                            "columnCount": max(1, len(sheet.header)),
                            "frozenRowCount": 1,
                        },
                    }
                }
            }
        )
        requests_.append(
            {
                "repeatCell": {
                    "range": {"sheetId": sid, "startRowIndex": 0, "endRowIndex": 1},
                    "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                    "fields": "userEnteredFormat.textFormat.bold",
                }
            }
        )
        for j, kind in sheet.formats.items():
            requests_.append(
                {
                    "repeatCell": {
                        "range": {
                            "sheetId": sid,
                            "startRowIndex": 1,
                            "endRowIndex": len(sheet.rows) + 1,
                            "startColumnIndex": j,
                            "endColumnIndex": j + 1,
                        },
                        "cell": {"userEnteredFormat": {"numberFormat": NUMBER_FORMATS[kind]}},
                        "fields": "userEnteredFormat.numberFormat",
                    }
                }
            )
    sent += _send_batch(http, spreadsheet_id, requests_)
    calls += 1
    # 2. The values, RAW (text stays text), in requests under the size limit.
    for chunk in _value_chunks(sheets, settings.max_request_bytes):
        body = {"valueInputOption": "RAW", "data": chunk}
        sent += len(json.dumps(body, separators=(",", ":")))
        http.values_batch_update(spreadsheet_id, body)
        calls += 1
    # 3. The swap, atomic: the old sheets go and the new ones take their names in one batchUpdate.
    swap: list[dict[str, Any]] = [
        {"deleteSheet": {"sheetId": existing[s.title]}} for s in sheets if s.title in existing
    ]
    for index, sheet in enumerate(sheets):
        swap.append(
            {
                "updateSheetProperties": {
                    "properties": {
                        "sheetId": staged[sheet.title],
                        "title": sheet.title,
                        "hidden": False,
                        "index": index,
                    },
                    "fields": "title,hidden,index",
                }
            }
        )
    if mark is not None and sheets:
        swap.append(
            {
                "createDeveloperMetadata": {
                    "developerMetadata": {
                        "metadataKey": PUSH_MARK,
                        "metadataValue": mark,
                        "location": {"sheetId": staged[sheets[0].title]},
                        "visibility": "DOCUMENT",
                    }
                }
            }
        )
    sent += _send_batch(http, spreadsheet_id, swap)
    calls += 1
    return PushResult(spreadsheet_id, {s.title: len(s.rows) for s in sheets}, calls, sent)


def _send_batch(http: HTTPClient, spreadsheet_id: str, requests_: list[dict[str, Any]]) -> int:
    body = {"requests": requests_}
    http.batch_update(spreadsheet_id, body)
    return len(json.dumps(body, separators=(",", ":")))


def _value_chunks(sheets: Sequence[SheetData], limit: int) -> Iterator[list[dict[str, Any]]]:
    """ValueRanges for every sheet, grouped into requests whose JSON stays under `limit` bytes."""
    chunk: list[dict[str, Any]] = []
    size = 100
    for sheet in sheets:
        rows = [sheet.header, *sheet.rows]
        start = 0
        while start < len(rows):
            part, part_size = [], 0
            while start + len(part) < len(rows):
                row = rows[start + len(part)]
                row_size = len(json.dumps(row, separators=(",", ":"))) + 1
                if part and size + part_size + row_size > limit:
                    break
                part.append(row)
                part_size += row_size
            if not part:  # the request is full: send it and start the next one
                yield chunk
                chunk, size = [], 100
                continue
            title = STAGING + sheet.title
            chunk.append({"range": f"'{title}'!A{start + 1}", "majorDimension": "ROWS", "values": part})
            size += part_size + len(title) + 60
            start += len(part)
            if start < len(rows):
                yield chunk
                chunk, size = [], 100
    if chunk:
        yield chunk


def settings_from(config: Mapping[str, Any]) -> GoogleSettings:
    """Google settings from the app's configuration (PLANSHEET_GOOGLE_*)."""
    info = load_credentials(config.get("GOOGLE_CREDENTIALS"), config.get("GOOGLE_CREDENTIALS_JSON"))
    return GoogleSettings(
        credentials_info=info,
        api_base=config.get("GOOGLE_API_BASE") or None,
        retries=int(config.get("GOOGLE_RETRIES", 5)),
        backoff=float(config.get("GOOGLE_BACKOFF", 1.0)),
        timeout=float(config.get("GOOGLE_TIMEOUT", 60.0)),
        max_request_bytes=int(config.get("GOOGLE_MAX_REQUEST_BYTES", 8 * 2**20)),
    )


def environment_credentials() -> tuple[str | None, str | None]:
    return os.environ.get("PLANSHEET_GOOGLE_CREDENTIALS"), os.environ.get("PLANSHEET_GOOGLE_CREDENTIALS_JSON")
