"""A local fake of the Google Sheets API v4 and the Drive v3 calls gspread makes, served over real HTTP.

Real gspread (and google-auth service-account credentials) talk to it on 127.0.0.1 once the two Google
hosts (https://sheets.googleapis.com, https://www.googleapis.com) are rewritten to `SheetsFake.base_url`;
tests/gsheets/test_fake.py shows such a client. tests/gsheets/test_fidelity.py replays gspread's recorded
exchanges with the real APIs against it and compares status codes and JSON shapes. It is a development
package of its own (devtools/): `make demo` installs it for the demo's Google Sheets part, and the tests
import it; a production install of Plansheet never carries it.

What it models, and where it deliberately stops:
- OAuth: `POST /token` takes the JWT-bearer grant google-auth sends, checks the RS256 signature against
  the generated service-account key and issues opaque bearer tokens (3599 s); every API call needs one
  (401 with Google's body otherwise) and a scope that covers it (403 otherwise). While a fake runs,
  credentials whose token_uri is that fake skip google-auth's background "allowedLocations" lookup at
  iamcredentials.googleapis.com (see `_guard_regional_access_boundary`).
- Spreadsheets: create/get (with `fields` masks, `ranges`, `includeGridData`), batchUpdate applied
  all-or-nothing to a copy, the request kinds in `_BATCH_HANDLERS` (kinds the real API has but the fake
  does not model answer 501 UNIMPLEMENTED; unknown names 400 as the real API does), sheets.copyTo,
  developerMetadata get/search. Protected ranges and data validation are stored and returned, not
  enforced: the service account owns what it creates, and API writes are not validated.
- Values: get/batchGet/update/batchUpdate/append/clear/batchClear with RAW and USER_ENTERED input,
  FORMATTED_VALUE/UNFORMATTED_VALUE/FORMULA and SERIAL_NUMBER/FORMATTED_STRING rendering, ROWS/COLUMNS,
  grid limits, A1 parsing (quoted names, open ranges, named ranges). USER_ENTERED parses numbers (also
  "1,234.5", "12%", "$3.50"), booleans, ISO and US dates and times (stored as serial numbers with a date
  format, as Sheets does), a leading apostrophe as text, and "=..." as a formula. Formulas are evaluated
  for a subset: numbers, strings, booleans, cell and range references (also to other sheets),
  arithmetic, comparison, "&", and the functions in `_FUNCTIONS`. A formula outside that subset is
  stored and returned verbatim under FORMULA and reads as an empty cell under FORMATTED_VALUE and
  UNFORMATTED_VALUE (never a made-up "#NAME?"). References are not rewritten when rows or columns are
  inserted or deleted.
- Drive: files create/list (q on mimeType, name, trashed, parents)/get/patch/delete/copy, export as CSV
  or TSV, comments, permissions create/list/get/update/delete (notifications are recorded in
  `notifications`), and gspread's import_csv (upload v2).
- Limits: bodies over `max_request_bytes` get Google's 400 INVALID_ARGUMENT "Request payload size exceeds
  the limit: N bytes." (what Google's front end answers JSON API calls; 413 comes from other proxies).
- Test hooks: `inject()` for status codes and delays, `log` of every request, `grid()`, `formatted()`,
  `cell()`, `resource()`, `permissions()`, `add_spreadsheet()`, `expire_tokens()`, `reset()`.

State lives in `spreadsheets` (id -> Spreadsheet). A successful batchUpdate swaps in the updated copy's
contents, so look sheets up through `fake.spreadsheets[id]` again rather than keeping Sheet objects.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import csv
import datetime as dt
import io
import json
import pickle
import random
import re
import secrets
import string
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response

SHEETS_SCOPES = {
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
}
SHEETS_READ_SCOPES = SHEETS_SCOPES | {
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
}
DRIVE_SCOPES = {"https://www.googleapis.com/auth/drive", "https://www.googleapis.com/auth/drive.file"}
DRIVE_READ_SCOPES = DRIVE_SCOPES | {
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
}
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SPREADSHEET_MIME = "application/vnd.google-apps.spreadsheet"
MAX_CELLS = 10_000_000
DEFAULT_ROWS, DEFAULT_COLS = 1000, 26
EPOCH = dt.datetime(1899, 12, 30)


# --------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status and the JSON body Google would send."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("error", {}).get("message", ""))
        self.status = status
        self.body = body


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    408: "The request timed out.",
    409: "The operation was aborted.",
    429: "Quota exceeded for quota metric '{kind} requests' and limit '{kind} requests per minute per user' of "
    "service 'sheets.googleapis.com' for consumer 'project_number:{project}'.",
    500: "Internal error encountered.",
    501: "Operation is not implemented, or supported, or enabled.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}


def sheets_error(status: int, message: str | None = None, details: list[dict[str, Any]] | None = None) -> ApiError:
    """The Sheets API (gRPC-style) error body: {"error": {"code", "message", "status"[, "details"]}}."""
    err: dict[str, Any] = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, "Error"),
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return ApiError(status, {"error": err})


def drive_error(
    status: int, message: str, reason: str, location: str | None = None, domain: str = "global"
) -> ApiError:
    """The Drive v3 error body, which also lists `errors` with a reason (gspread reads it for backoff)."""
    item: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
    if location:
        item.update(location=location, locationType="parameter")
    return ApiError(status, {"error": {"code": status, "message": message, "errors": [item]}})


def bad_request(message: str) -> ApiError:
    return sheets_error(400, message)


class RequestInvalid(Exception):
    """Raised by a batchUpdate request handler; becomes "Invalid requests[N].kind: message"."""


class NotImplementedByFake(Exception):
    """A real API feature this fake does not model: answered 501 UNIMPLEMENTED."""


# --------------------------------------------------------------------------------------------- A1 notation


def col_letters(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA"."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def col_index(letters: str) -> int:
    value = 0
    for ch in letters.upper():
        value = value * 26 + (ord(ch) - 64)
    return value - 1


_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CELLISH = re.compile(r"^([A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*|TRUE|FALSE)$", re.IGNORECASE)


def quote_title(title: str) -> str:
    """Sheet names in returned ranges are quoted only when they need it ("Sheet1!A1", "'My plan'!A1")."""
    if _PLAIN_TITLE.match(title) and not _CELLISH.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


_ENDPOINT = re.compile(r"^\$?([A-Za-z]{1,3})?\$?([0-9]{1,7})?$")


@dataclass
class Bounds:
    """A grid range: 0-based, end-exclusive; None means unbounded (open) on that side."""

    r0: int
    r1: int | None
    c0: int
    c1: int | None

    def clip(self, rows: int, cols: int) -> Bounds:
        r1 = rows if self.r1 is None else min(self.r1, rows)
        c1 = cols if self.c1 is None else min(self.c1, cols)
        return Bounds(self.r0, r1, self.c0, c1)

    def closed(self, rows: int, cols: int) -> Bounds:
        return Bounds(self.r0, rows if self.r1 is None else self.r1, self.c0, cols if self.c1 is None else self.c1)

    def a1(self) -> str:
        assert self.r1 is not None and self.c1 is not None
        start = f"{col_letters(self.c0)}{self.r0 + 1}"
        if self.r1 - self.r0 <= 1 and self.c1 - self.c0 <= 1:
            return start
        return f"{start}:{col_letters(self.c1 - 1)}{self.r1}"


def split_sheet(text: str) -> tuple[str | None, str | None, bool]:
    """Split "'My sheet'!A1:B2" into (sheet title, cell part, was quoted); no "!" gives (None, text, False)."""
    if text.startswith("'"):
        i, title = 1, []
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    title.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if rest == "":
                    return "".join(title), None, True
                if rest.startswith("!"):
                    return "".join(title), rest[1:], True
                raise ValueError(text)
            title.append(ch)
            i += 1
        raise ValueError(text)
    if "!" in text:
        title, _, cells = text.rpartition("!")
        return title, cells, False
    return None, text, False


def parse_cells(cells: str) -> Bounds:
    """Parse the cell part of a range: A1, A1:B2, A:C, 2:5, A5:C, A1:1 (case-insensitive, "$" allowed)."""
    parts = cells.split(":")
    if len(parts) > 2 or not cells:
        raise ValueError(cells)
    ends = []
    for part in parts:
        m = _ENDPOINT.match(part.strip())
        if not m or not (m.group(1) or m.group(2)):
            raise ValueError(cells)
        col = col_index(m.group(1)) if m.group(1) else None
        row = int(m.group(2)) - 1 if m.group(2) else None
        if row is not None and row < 0:
            raise ValueError(cells)
        ends.append((row, col))
    if len(ends) == 1:
        row, col = ends[0]
        if row is None or col is None:
            raise ValueError(cells)  # a bare "A" or "5" is a name, not a range
        return Bounds(row, row + 1, col, col + 1)
    (ra, ca), (rb, cb) = ends
    r0, r1 = _span(ra, rb)
    c0, c1 = _span(ca, cb)
    return Bounds(r0, r1, c0, c1)


def _span(a: int | None, b: int | None) -> tuple[int, int | None]:
    """One axis of "X:Y": both given -> sorted and closed; an omitted end -> open (to the grid's edge)."""
    if a is not None and b is not None:
        return min(a, b), max(a, b) + 1
    if a is not None:
        return a, None
    if b is not None:
        return 0, b + 1
    return 0, None


def bounds_from_gridrange(gr: dict[str, Any]) -> Bounds:
    return Bounds(
        int(gr.get("startRowIndex", 0) or 0),
        None if gr.get("endRowIndex") is None else int(gr["endRowIndex"]),
        int(gr.get("startColumnIndex", 0) or 0),
        None if gr.get("endColumnIndex") is None else int(gr["endColumnIndex"]),
    )


def gridrange_json(sheet_id: int, b: Bounds) -> dict[str, Any]:
    """GridRange as the API returns it: sheetId 0 and unbounded sides are omitted (proto3 defaults)."""
    out: dict[str, Any] = {}
    if sheet_id:
        out["sheetId"] = sheet_id
    out["startRowIndex"] = b.r0
    if b.r1 is not None:
        out["endRowIndex"] = b.r1
    out["startColumnIndex"] = b.c0
    if b.c1 is not None:
        out["endColumnIndex"] = b.c1
    return out


def normalize_gridrange(gr: dict[str, Any]) -> dict[str, Any]:
    """Drop proto3 default values from a GridRange the client sent (sheetId 0 is implied)."""
    out = {k: v for k, v in gr.items() if v is not None}
    if not out.get("sheetId"):
        out.pop("sheetId", None)
    return out


# --------------------------------------------------------------------------------------------- field masks


def parse_field_mask(mask: str) -> dict[str, Any] | None:
    """Parse "a.b,c(d,e/f)" into a tree {name: subtree-or-None}; None (or "*") means everything."""
    mask = mask.strip()
    if not mask or mask == "*":
        return None
    pos = 0

    def parse_list(stop: str | None) -> dict[str, Any]:
        nonlocal pos
        tree: dict[str, Any] = {}
        while pos < len(mask):
            if stop and mask[pos] == stop:
                return tree
            start = pos
            while pos < len(mask) and mask[pos] not in ",()":
                pos += 1
            path = [p for p in re.split(r"[./]", mask[start:pos].strip()) if p]
            sub: dict[str, Any] | None = None
            if pos < len(mask) and mask[pos] == "(":
                pos += 1
                sub = parse_list(")")
                pos += 1  # ")"
            node = tree
            for i, name in enumerate(path):
                last = i == len(path) - 1
                if last:
                    if name in node and node[name] is not None and sub is not None:
                        node[name].update(sub)
                    elif name in node and node[name] is not None and sub is None:
                        node[name] = None
                    elif name not in node:
                        node[name] = sub
                else:
                    if name not in node or node[name] is None:
                        if name in node and node[name] is None:
                            break  # already everything
                        node[name] = {}
                    node = node[name]
            if pos < len(mask) and mask[pos] == ",":
                pos += 1
        return tree

    return parse_list(None)


def apply_field_mask(obj: Any, tree: dict[str, Any] | None) -> Any:
    """Project a JSON value onto a field-mask tree; keys absent from the object stay absent."""
    if tree is None:
        return obj
    if isinstance(obj, list):
        return [apply_field_mask(item, tree) for item in obj]
    if not isinstance(obj, dict):
        return obj
    if "*" in tree:
        return obj
    return {k: apply_field_mask(obj[k], sub) for k, sub in tree.items() if k in obj}


def mask_paths(mask: str) -> list[str]:
    """Flatten an update mask ("a.b,c(d)" or "a/b") into dotted paths, for updateXxx requests."""
    tree = parse_field_mask(mask)
    if tree is None:
        return ["*"]
    out: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, sub in node.items():
            path = f"{prefix}.{k}" if prefix else k
            if sub is None or not sub:
                out.append(path)
            else:
                walk(sub, path)

    walk(tree, "")
    return out


def get_path(obj: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_path(obj: dict[str, Any], path: str, value: Any, present: bool) -> None:
    """Set (or, when absent from the source, clear) a dotted path, as an update mask does."""
    parts = path.split(".")
    node = obj
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            if not present:
                return
            node[part] = {}
        node = node[part]
    if present and value is not None:
        node[parts[-1]] = copy.deepcopy(value)
    else:
        node.pop(parts[-1], None)


def apply_update_mask(target: dict[str, Any], source: dict[str, Any], mask: str | None, what: str) -> None:
    if mask is None or mask == "":
        raise RequestInvalid(f"At least one field must be specified for {what}.")
    for path in mask_paths(mask):
        if path == "*":
            for key in list(target):
                if key not in source:
                    target.pop(key)
            for key, value in source.items():
                target[key] = copy.deepcopy(value)
            continue
        present, value = get_path(source, path)
        set_path(target, path, value, present)


def prune_empty(obj: dict[str, Any]) -> dict[str, Any]:
    """Remove keys whose value is an empty dict (after an update mask cleared their content)."""
    for key in list(obj):
        value = obj[key]
        if isinstance(value, dict):
            prune_empty(value)
            if not value and key not in ("editors", "rgbColor"):
                obj.pop(key)
    return obj


# --------------------------------------------------------------------------------------------- numbers and text


def json_number(x: float) -> int | float:
    """Sheets returns integral numbers without a fraction (53, not 53.0)."""
    if isinstance(x, bool):
        return x
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


def normalize_color(color: dict[str, Any] | None) -> dict[str, Any]:
    """Colors as stored by the API: float32 precision, zero components and alpha 1 omitted."""
    out: dict[str, Any] = {}
    for key, value in (color or {}).items():
        if key in ("red", "green", "blue", "alpha") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value == 0 or (key == "alpha" and value == 1):
                continue
            out[key] = json_number(float(f"{float(value):.8g}"))
    return out


def normalize_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """Add the *ColorStyle twin of every Color (and vice versa) and drop zero color components."""
    fmt = copy.deepcopy(fmt)

    def fix(node: dict[str, Any]) -> None:
        for key in list(node):
            value = node[key]
            if key.endswith("Color") and isinstance(value, dict):
                node[key] = normalize_color(value)
                node.setdefault(key + "Style", {"rgbColor": node[key]})
            elif key.endswith("ColorStyle") and isinstance(value, dict):
                if "rgbColor" in value:
                    value["rgbColor"] = normalize_color(value["rgbColor"])
                    node.setdefault(key[: -len("Style")], value["rgbColor"])
            elif isinstance(value, dict):
                fix(value)
        for side in ("top", "bottom", "left", "right"):
            border = node.get(side)
            if isinstance(border, dict) and "style" in border and "width" not in border:
                border["width"] = (
                    2 if border["style"] == "SOLID_MEDIUM" else 3 if border["style"] == "SOLID_THICK" else 1
                )

    fix(fmt)
    return fmt


def serial_from_datetime(value: dt.datetime) -> float:
    delta = value - EPOCH
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6


def datetime_from_serial(serial: float) -> dt.datetime:
    return EPOCH + dt.timedelta(days=serial)


_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_RE_PLAIN = re.compile(rf"^[+-]?{_NUM}(?:[eE][+-]?\d+)?$")
_RE_GROUPED = re.compile(r"^([+-]?)(\d{1,3}(?:,\d{3})+)(\.\d*)?$")
_RE_PERCENT = re.compile(rf"^([+-]?)({_NUM})%$")
_RE_CURRENCY = re.compile(r"^([+-]?)\$(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?$")
_RE_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_RE_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_RE_ISO_DATETIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_RE_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_user_entered(text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """What Sheets makes of text typed into a cell: (ExtendedValue, detected numberFormat)."""
    if text == "":
        return None, None
    if text.startswith("'"):
        return {"stringValue": text[1:]}, None
    if text.startswith("=") and len(text) > 1:
        return {"formulaValue": text}, None
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return {"boolValue": stripped.upper() == "TRUE"}, None
    if _RE_PLAIN.match(stripped):
        return {"numberValue": float(stripped)}, None
    m = _RE_GROUPED.match(stripped)
    if m:
        decimals = len(m.group(3) or ".") - 1
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        value = float(m.group(1) + m.group(2).replace(",", "") + (m.group(3) or ""))
        return {"numberValue": value}, {"type": "NUMBER", "pattern": pattern}
    m = _RE_PERCENT.match(stripped)
    if m:
        decimals = len(m.group(2).partition(".")[2])
        pattern = "0" + ("." + "0" * decimals if decimals else "") + "%"
        return {"numberValue": float(m.group(1) + m.group(2)) / 100}, {"type": "PERCENT", "pattern": pattern}
    m = _RE_CURRENCY.match(stripped)
    if m:
        value = float(m.group(1) + m.group(2).replace(",", "") + (m.group(3) or ""))
        return {"numberValue": value}, {"type": "CURRENCY", "pattern": '"$"#,##0.00'}
    with contextlib.suppress(ValueError):
        m = _RE_ISO_DATE.match(stripped)
        if m:
            when = dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return {"numberValue": serial_from_datetime(when)}, {"type": "DATE", "pattern": "yyyy-mm-dd"}
        m = _RE_US_DATE.match(stripped)
        if m:
            when = dt.datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)))
            return {"numberValue": serial_from_datetime(when)}, {"type": "DATE", "pattern": "M/d/yyyy"}
        m = _RE_ISO_DATETIME.match(stripped)
        if m:
            when = dt.datetime(*(int(g or 0) for g in m.groups()))
            return {"numberValue": serial_from_datetime(when)}, {"type": "DATE_TIME", "pattern": "yyyy-mm-dd H:mm:ss"}
        m = _RE_TIME.match(stripped)
        if m and int(m.group(1)) < 24:
            seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0)
            return {"numberValue": seconds / 86400}, {"type": "TIME", "pattern": "h:mm:ss am/pm"}
    return {"stringValue": text}, None


def format_general(x: float) -> str:
    """Sheets' automatic number format: integers as such, up to 10 decimals, E notation when huge/tiny."""
    x = float(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 1e15 or abs(x) < 1e-10:
        mantissa, _, exponent = f"{x:.2E}".partition("E")
        return f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0').zfill(2)}"
    text = f"{x:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


_DATE_TOKENS = re.compile(r'yyyy|yy|m{1,4}|M{1,4}|d{1,4}|hh|h|HH|H|ss|s|am/pm|AM/PM|"[^"]*"|\\.|.', re.S)


def format_datetime_pattern(serial: float, pattern: str) -> str:
    """Render a date/time serial with a Sheets date pattern (yyyy, mm, dd, h, mm after h = minutes, ss, am/pm)."""
    when = datetime_from_serial(serial + 1e-9)
    tokens = _DATE_TOKENS.findall(pattern)
    fields = [i for i, t in enumerate(tokens) if t[0].lower() in "ymdhs" or t.lower() == "am/pm"]
    twelve_hour = any(t.lower() == "am/pm" for t in tokens)
    out = []
    for i, tok in enumerate(tokens):
        low = tok.lower()
        position = fields.index(i) if i in fields else -1
        before = tokens[fields[position - 1]].lower() if position > 0 else ""
        after = tokens[fields[position + 1]].lower() if 0 <= position < len(fields) - 1 else ""
        if low in ("m", "mm") and (before in ("h", "hh") or after in ("s", "ss")):
            out.append(f"{when.minute:02d}" if low == "mm" else str(when.minute))
        elif low in ("m", "mm"):
            out.append(f"{when.month:02d}" if low == "mm" else str(when.month))
        elif low == "mmm":
            out.append(when.strftime("%b"))
        elif low == "mmmm":
            out.append(when.strftime("%B"))
        elif low in ("yyyy", "yy"):
            out.append(f"{when.year:04d}" if low == "yyyy" else f"{when.year % 100:02d}")
        elif low in ("d", "dd"):
            out.append(f"{when.day:02d}" if low == "dd" else str(when.day))
        elif low in ("ddd", "dddd"):
            out.append(when.strftime("%a" if low == "ddd" else "%A"))
        elif low in ("h", "hh"):
            hour = (when.hour % 12 or 12) if twelve_hour else when.hour
            out.append(f"{hour:02d}" if low == "hh" else str(hour))
        elif low in ("s", "ss"):
            out.append(f"{when.second:02d}" if low == "ss" else str(when.second))
        elif low == "am/pm":
            out.append("AM" if when.hour < 12 else "PM")
        elif tok.startswith('"'):
            out.append(tok[1:-1])
        elif tok.startswith("\\"):
            out.append(tok[1:])
        else:
            out.append(tok)
    return "".join(out)


def _literal(text: str) -> str:
    return re.sub(r'"([^"]*)"|\\(.)', lambda m: m.group(1) or m.group(2) or "", text)


def format_number_pattern(x: float, pattern: str) -> str:
    """Render a number with a Sheets number pattern: literals, grouping, decimals, percent, E notation."""
    section = pattern.split(";")[0]
    m = re.match(r'^((?:"[^"]*"|\\.|[^0#?])*)(.*?)((?:"[^"]*"|\\.|[^0#?%.,E+-])*)$', section)
    prefix, core, suffix = (m.group(1), m.group(2), m.group(3)) if m else ("", section, "")
    percent = "%" in core
    value = x * 100 if percent else x
    sci = re.search(r"E\+(0+)", core)
    decimals_match = re.search(r"\.([0#?]+)", core)
    decimals = len(decimals_match.group(1)) if decimals_match else 0
    if sci:
        mantissa, _, exponent = f"{abs(value):.{decimals}E}".partition("E")
        body = f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0').zfill(len(sci.group(1)))}"
    else:
        rounded = Decimal(repr(abs(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        body = f"{rounded:{',' if ',' in core else ''}.{decimals}f}"
        if decimals_match and "#" in decimals_match.group(1):
            body = body.rstrip("0").rstrip(".")
    sign = "-" if value < 0 and float(re.sub(r"[^0-9.]", "", body.split("E")[0]) or 0) != 0 else ""
    return sign + _literal(prefix) + body + ("%" if percent else "") + _literal(suffix)


def format_number(x: float, number_format: dict[str, Any] | None) -> str:
    if not number_format or number_format.get("type") in (None, "NUMBER_FORMAT_TYPE_UNSPECIFIED"):
        return format_general(x)
    kind = number_format.get("type")
    pattern = number_format.get("pattern")
    try:
        if kind in ("DATE", "TIME", "DATE_TIME"):
            default = {"DATE": "M/d/yyyy", "TIME": "h:mm:ss am/pm", "DATE_TIME": "M/d/yyyy H:mm:ss"}[kind]
            return format_datetime_pattern(x, pattern or default)
        if kind == "TEXT":
            return format_general(x)
        if not pattern:
            pattern = {"PERCENT": "0.00%", "CURRENCY": '"$"#,##0.00', "SCIENTIFIC": "0.00E+00"}.get(kind, "#,##0.00")
        return format_number_pattern(x, pattern)
    except (ValueError, OverflowError, IndexError):
        return format_general(x)


ERROR_TEXT = {
    "DIVIDE_BY_ZERO": "#DIV/0!",
    "VALUE": "#VALUE!",
    "REF": "#REF!",
    "NAME": "#NAME?",
    "NUM": "#NUM!",
    "N_A": "#N/A",
    "ERROR": "#ERROR!",
    "NULL_VALUE": "#NULL!",
}


# --------------------------------------------------------------------------------------------- formulas


class FormulaUnsupported(Exception):
    """The formula uses syntax or a function this fake does not evaluate."""


class FormulaErr(Exception):
    """A spreadsheet error value (#DIV/0!, #VALUE!, ...) raised while evaluating."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class RangeValue:
    rows: list[list[Any]]

    def flat(self) -> list[Any]:
        return [v for row in self.rows for v in row]


_SHEET_PREFIX = r"(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!"
_CELL = r"\$?[A-Za-z]{1,3}\$?[0-9]+"
_REF_BODY = rf"(?:{_CELL}(?::{_CELL})?|\$?[A-Za-z]{{1,3}}:\$?[A-Za-z]{{1,3}}|\$?[0-9]+:\$?[0-9]+)"
_TOKEN = re.compile(
    rf"""\s*(?:
    (?P<string>"(?:[^"]|"")*")
  | (?P<ref>(?:{_SHEET_PREFIX})?{_REF_BODY})(?![A-Za-z0-9_(])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<func>[A-Za-z_][A-Za-z0-9_.]*)\s*(?=\()
  | (?P<bool>TRUE|FALSE)(?![A-Za-z0-9_(])
  | (?P<op><=|>=|<>|[-+*/^&=<>%(),])
  | (?P<other>\S)
)""",
    re.VERBOSE | re.IGNORECASE,
)


def tokenize_formula(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.lastgroup is None:
            raise FormulaUnsupported(text)
        kind = m.lastgroup
        if kind == "other":
            raise FormulaUnsupported(text)
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive-descent parser for the formula subset; produces nested tuples."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FormulaErr("ERROR", "Formula parse error.")
        self.pos += 1
        return tok

    def accept(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ops:
            self.pos += 1
            return tok[1]
        return None

    def parse(self) -> Any:
        node = self.comparison()
        if self.peek() is not None:
            raise FormulaErr("ERROR", "Formula parse error.")
        return node

    def comparison(self) -> Any:
        node = self.concat()
        while op := self.accept("=", "<>", "<", ">", "<=", ">="):
            node = ("cmp", op, node, self.concat())
        return node

    def concat(self) -> Any:
        node = self.additive()
        while self.accept("&"):
            node = ("concat", node, self.additive())
        return node

    def additive(self) -> Any:
        node = self.term()
        while op := self.accept("+", "-"):
            node = ("arith", op, node, self.term())
        return node

    def term(self) -> Any:
        node = self.power()
        while op := self.accept("*", "/"):
            node = ("arith", op, node, self.power())
        return node

    def power(self) -> Any:
        node = self.unary()
        while self.accept("^"):
            node = ("arith", "^", node, self.unary())
        return node

    def unary(self) -> Any:
        if op := self.accept("-", "+"):
            return ("neg", self.unary()) if op == "-" else self.unary()
        node = self.primary()
        while self.accept("%"):
            node = ("arith", "/", node, ("num", 100.0))
        return node

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            return ("num", float(text))
        if kind == "string":
            return ("str", text[1:-1].replace('""', '"'))
        if kind == "bool":
            return ("bool", text.upper() == "TRUE")
        if kind == "ref":
            return ("ref", text)
        if kind == "func":
            name = text.upper()
            self.take()  # "("
            args: list[Any] = []
            if not self.accept(")"):
                while True:
                    args.append(self.comparison())
                    if self.accept(")"):
                        break
                    if not self.accept(","):
                        raise FormulaErr("ERROR", "Formula parse error.")
            return ("call", name, args)
        if kind == "op" and text == "(":
            node = self.comparison()
            if not self.accept(")"):
                raise FormulaErr("ERROR", "Formula parse error.")
            return node
        raise FormulaErr("ERROR", "Formula parse error.")


_FORMULA_CACHE: dict[str, Any] = {}


def parse_formula(formula: str) -> Any:
    if formula not in _FORMULA_CACHE:
        try:
            _FORMULA_CACHE[formula] = ("ok", _Parser(tokenize_formula(formula[1:])).parse())
        except FormulaErr as err:
            _FORMULA_CACHE[formula] = ("err", err)
        except FormulaUnsupported as err:
            _FORMULA_CACHE[formula] = ("unsupported", err)
    return _FORMULA_CACHE[formula]


def _to_number(value: Any) -> float:
    if isinstance(value, RangeValue):
        value = _single(value)
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        parsed, _ = parse_user_entered(value.strip()) if value.strip() else ({"numberValue": 0.0}, None)
        if parsed and "numberValue" in parsed:
            return parsed["numberValue"]
        raise FormulaErr("VALUE", f"Function expects number values. But '{value}' is a text and cannot be coerced.")
    raise FormulaErr("VALUE", "Invalid value.")


def _to_text(value: Any) -> str:
    if isinstance(value, RangeValue):
        value = _single(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format_general(value)
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, RangeValue):
        value = _single(value)
    if isinstance(value, str):
        if value.upper() in ("TRUE", "FALSE"):
            return value.upper() == "TRUE"
        raise FormulaErr("VALUE", f"Function IF parameter 1 expects boolean values. But '{value}' is a text.")
    return bool(_to_number(value))


def _single(value: RangeValue) -> Any:
    flat = value.rows
    if len(flat) == 1 and len(flat[0]) == 1:
        return flat[0][0]
    raise FormulaErr("VALUE", "An array value could not be found.")


def _numbers(args: list[Any]) -> list[float]:
    out: list[float] = []
    for arg in args:
        if isinstance(arg, RangeValue):
            out.extend(float(v) for v in arg.flat() if isinstance(v, (int, float)) and not isinstance(v, bool))
        else:
            out.append(_to_number(arg))
    return out


def _round_half_away(x: float, digits: int) -> float:
    q = Decimal(1).scaleb(-digits)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


_FUNCTIONS = {
    "IF", "IFERROR", "SUM", "AVERAGE", "MIN", "MAX", "COUNT", "COUNTA", "AND", "OR", "NOT", "ROUND", "ABS", "LEN",
    "UPPER", "LOWER", "TRIM", "CONCATENATE", "CONCAT", "ISBLANK",
}  # fmt: skip


class Evaluator:
    """Evaluates formula ASTs; `resolve(sheet_title, bounds)` returns the referenced values."""

    def __init__(self, resolve: Callable[[str | None, Bounds], RangeValue]):
        self.resolve = resolve

    def eval(self, node: Any) -> Any:
        kind = node[0]
        if kind in ("num", "str", "bool"):
            return node[1]
        if kind == "ref":
            return self.ref(node[1])
        if kind == "neg":
            return -_to_number(self.scalar(node[1]))
        if kind == "arith":
            a, b = _to_number(self.scalar(node[2])), _to_number(self.scalar(node[3]))
            op = node[1]
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                if b == 0:
                    raise FormulaErr("DIVIDE_BY_ZERO", "Function DIVIDE parameter 2 cannot be zero.")
                return a / b
            try:
                return float(a**b)
            except (OverflowError, ZeroDivisionError, TypeError) as exc:
                raise FormulaErr("NUM", "Function POW result is not a number.") from exc
        if kind == "concat":
            return _to_text(self.scalar(node[1])) + _to_text(self.scalar(node[2]))
        if kind == "cmp":
            return self.compare(node[1], self.scalar(node[2]), self.scalar(node[3]))
        if kind == "call":
            return self.call(node[1], node[2])
        raise FormulaUnsupported(kind)

    def scalar(self, node: Any) -> Any:
        value = self.eval(node)
        return _single(value) if isinstance(value, RangeValue) else value

    def ref(self, text: str) -> RangeValue:
        title, cells, _ = split_sheet(text)
        try:
            bounds = parse_cells((cells or "").replace("$", ""))
        except ValueError as exc:
            raise FormulaUnsupported(text) from exc
        return self.resolve(title, bounds)

    @staticmethod
    def compare(op: str, a: Any, b: Any) -> bool:
        def key(v: Any) -> tuple[int, Any]:
            if v is None:
                return (0, 0.0)
            if isinstance(v, bool):
                return (2, v)
            if isinstance(v, (int, float)):
                return (0, float(v))
            return (1, str(v).lower())

        if a is None and isinstance(b, str):
            a = ""
        if b is None and isinstance(a, str):
            b = ""
        ka, kb = key(a), key(b)
        if isinstance(a, str) and isinstance(b, str):
            ka, kb = (1, a.lower()), (1, b.lower())
        return {
            "=": ka == kb,
            "<>": ka != kb,
            "<": ka < kb,
            ">": ka > kb,
            "<=": ka <= kb,
            ">=": ka >= kb,
        }[op]

    def call(self, name: str, args: list[Any]) -> Any:
        if name not in _FUNCTIONS:
            raise FormulaUnsupported(name)
        if name == "IF":
            if not 1 <= len(args) <= 3:
                raise FormulaErr("N_A", "Wrong number of arguments to IF.")
            if _to_bool(self.scalar(args[0])):
                return self.eval(args[1]) if len(args) > 1 else True
            return self.eval(args[2]) if len(args) > 2 else False
        if name == "IFERROR":
            try:
                value = self.eval(args[0])
                return _single(value) if isinstance(value, RangeValue) else value
            except FormulaErr:
                return self.eval(args[1]) if len(args) > 1 else ""
        values = [self.eval(arg) for arg in args]
        if name == "SUM":
            return float(sum(_numbers(values)))
        if name == "AVERAGE":
            nums = _numbers(values)
            if not nums:
                raise FormulaErr("DIVIDE_BY_ZERO", "Evaluation of function AVERAGE caused a divide by zero error.")
            return sum(nums) / len(nums)
        if name in ("MIN", "MAX"):
            nums = _numbers(values)
            return (min(nums) if name == "MIN" else max(nums)) if nums else 0.0
        if name == "COUNT":
            return float(
                sum(
                    sum(1 for v in x.flat() if isinstance(v, (int, float)) and not isinstance(v, bool))
                    if isinstance(x, RangeValue)
                    else int(isinstance(x, (int, float)) and not isinstance(x, bool))
                    for x in values
                )
            )
        if name == "COUNTA":
            return float(
                sum(
                    sum(1 for v in x.flat() if v not in (None, "")) if isinstance(x, RangeValue) else int(x is not None)
                    for x in values
                )
            )
        scalars = [_single(v) if isinstance(v, RangeValue) else v for v in values]
        if name == "AND":
            return all(_to_bool(v) for v in scalars)
        if name == "OR":
            return any(_to_bool(v) for v in scalars)
        if name == "NOT":
            return not _to_bool(scalars[0])
        if name == "ROUND":
            return _round_half_away(_to_number(scalars[0]), int(_to_number(scalars[1])) if len(scalars) > 1 else 0)
        if name == "ABS":
            return abs(_to_number(scalars[0]))
        if name == "LEN":
            return float(len(_to_text(scalars[0])))
        if name == "UPPER":
            return _to_text(scalars[0]).upper()
        if name == "LOWER":
            return _to_text(scalars[0]).lower()
        if name == "TRIM":
            return " ".join(_to_text(scalars[0]).split())
        if name in ("CONCATENATE", "CONCAT"):
            return "".join(_to_text(v) for v in scalars)
        if name == "ISBLANK":
            return scalars[0] is None
        raise FormulaUnsupported(name)


# --------------------------------------------------------------------------------------------- the model


def _random_id() -> int:
    return random.randint(1, 2**31 - 1)


def _file_id() -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "1" + "".join(secrets.choice(alphabet) for _ in range(43))


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _default_format() -> dict[str, Any]:
    white = {"red": 1, "green": 1, "blue": 1}
    return {
        "backgroundColor": dict(white),
        "padding": {"top": 2, "right": 3, "bottom": 2, "left": 3},
        "verticalAlignment": "BOTTOM",
        "wrapStrategy": "OVERFLOW_CELL",
        "textFormat": {
            "foregroundColor": {},
            "fontFamily": "arial,sans,sans-serif",
            "fontSize": 10,
            "bold": False,
            "italic": False,
            "strikethrough": False,
            "underline": False,
            "foregroundColorStyle": {"rgbColor": {}},
        },
        "backgroundColorStyle": {"rgbColor": dict(white)},
    }


def _default_theme() -> dict[str, Any]:
    def rgb(r: float, g: float, b: float) -> dict[str, Any]:
        return {"rgbColor": normalize_color({"red": r, "green": g, "blue": b})}

    accents = [
        ("TEXT", rgb(0, 0, 0)),
        ("BACKGROUND", rgb(1, 1, 1)),
        ("ACCENT1", rgb(0.25882354, 0.52156866, 0.95686275)),
        ("ACCENT2", rgb(0.91764706, 0.2627451, 0.20784314)),
        ("ACCENT3", rgb(0.9843137, 0.7372549, 0.015686275)),
        ("ACCENT4", rgb(0.20392157, 0.65882355, 0.3254902)),
        ("ACCENT5", rgb(1, 0.42745098, 0.003921569)),
        ("ACCENT6", rgb(0.27450982, 0.7411765, 0.7764706)),
        ("LINK", rgb(0.06666667, 0.33333334, 0.8)),
    ]
    return {"primaryFontFamily": "Arial", "themeColors": [{"colorType": t, "color": c} for t, c in accents]}


@dataclass
class ErrorCell:
    kind: str
    message: str


_UNSUPPORTED = object()


class Sheet:
    """One tab: properties (as the API shows them), sparse cells (CellData JSON) and sheet-level objects."""

    def __init__(self, properties: dict[str, Any]):
        self.properties = properties
        self.cells: dict[tuple[int, int], dict[str, Any]] = {}
        self.merges: list[Bounds] = []
        self.protected_ranges: list[dict[str, Any]] = []
        self.basic_filter: dict[str, Any] | None = None
        self.banded_ranges: list[dict[str, Any]] = []
        self.conditional_formats: list[dict[str, Any]] = []
        self.row_groups: list[dict[str, Any]] = []
        self.column_groups: list[dict[str, Any]] = []
        self.row_meta: dict[int, dict[str, Any]] = {}
        self.col_meta: dict[int, dict[str, Any]] = {}

    @property
    def id(self) -> int:
        return int(self.properties["sheetId"])

    @property
    def title(self) -> str:
        return self.properties["title"]

    @property
    def rows(self) -> int:
        return int(self.properties["gridProperties"]["rowCount"])

    @property
    def cols(self) -> int:
        return int(self.properties["gridProperties"]["columnCount"])

    def properties_json(self) -> dict[str, Any]:
        props = copy.deepcopy(self.properties)
        grid = props["gridProperties"]
        for key in list(grid):
            if key not in ("rowCount", "columnCount") and not grid[key]:
                grid.pop(key)
        for key in ("hidden", "rightToLeft"):
            if not props.get(key):
                props.pop(key, None)
        return props

    def has_value(self, r: int, c: int) -> bool:
        cell = self.cells.get((r, c))
        return bool(cell and "userEnteredValue" in cell)

    def data_extent(self) -> tuple[int, int]:
        """(rows, cols) spanned by cells holding a value."""
        rows = cols = 0
        for (r, c), cell in self.cells.items():
            if "userEnteredValue" in cell:
                rows, cols = max(rows, r + 1), max(cols, c + 1)
        return rows, cols

    def cell_for_write(self, r: int, c: int) -> dict[str, Any]:
        return self.cells.setdefault((r, c), {})

    def drop_if_empty(self, r: int, c: int) -> None:
        cell = self.cells.get((r, c))
        if cell is not None and not cell:
            del self.cells[(r, c)]


class Spreadsheet:
    """A spreadsheet file: Sheets properties, tabs, named ranges, developer metadata and Drive metadata."""

    def __init__(self, spreadsheet_id: str, title: str, owner: str):
        self.id = spreadsheet_id
        self.properties: dict[str, Any] = {
            "title": title,
            "locale": "en_US",
            "autoRecalc": "ON_CHANGE",
            "timeZone": "Etc/GMT",
            "defaultFormat": _default_format(),
            "spreadsheetTheme": _default_theme(),
        }
        self.sheets: list[Sheet] = []
        self.named_ranges: list[dict[str, Any]] = []
        self.developer_metadata: list[dict[str, Any]] = []
        self.created_time = _now_rfc3339()
        self.modified_time = self.created_time
        self.owner = owner
        self.permissions: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.parents: list[str] = []

    @property
    def title(self) -> str:
        return self.properties["title"]

    def touch(self) -> None:
        self.modified_time = _now_rfc3339()

    def sheet_by_id(self, sheet_id: Any) -> Sheet:
        for sheet in self.sheets:
            if sheet.id == int(sheet_id or 0):
                return sheet
        raise RequestInvalid(f"No grid with id: {int(sheet_id or 0)}")

    def sheet_by_title(self, title: str) -> Sheet | None:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        lowered = [s for s in self.sheets if s.title.lower() == title.lower()]
        return lowered[0] if len(lowered) == 1 else None

    def reindex(self) -> None:
        for i, sheet in enumerate(self.sheets):
            sheet.properties["index"] = i

    def add_sheet(self, props: dict[str, Any]) -> Sheet:
        props = copy.deepcopy({k: v for k, v in props.items() if v is not None})
        if "sheetId" in props:
            sheet_id = int(props["sheetId"])
            if any(s.id == sheet_id for s in self.sheets):
                raise RequestInvalid(f"A sheet with the id {sheet_id} already exists.")
        else:
            sheet_id = 0 if not self.sheets else _random_id()
            while any(s.id == sheet_id for s in self.sheets):
                sheet_id = _random_id()
        title = props.get("title")
        if not title:
            n = len(self.sheets) + 1
            while self.sheet_by_title(f"Sheet{n}") is not None:
                n += 1
            title = f"Sheet{n}"
        if self.sheet_by_title(title) is not None:
            raise RequestInvalid(f'A sheet with the name "{title}" already exists. Please enter another name.')
        grid = props.get("gridProperties") or {}
        rows = int(grid.get("rowCount", DEFAULT_ROWS))
        cols = int(grid.get("columnCount", DEFAULT_COLS))
        if rows < 1 or cols < 1:
            raise RequestInvalid("The grid must have at least one row and one column.")
        properties: dict[str, Any] = {
            "sheetId": sheet_id,
            "title": title,
            "index": 0,
            "sheetType": props.get("sheetType", "GRID"),
            "gridProperties": {**grid, "rowCount": rows, "columnCount": cols},
        }
        for key in ("hidden", "rightToLeft"):
            if props.get(key):
                properties[key] = True
        for key in ("tabColor", "tabColorStyle"):
            if key in props:
                properties.update(_tab_color(props[key], key))
        sheet = Sheet(properties)
        index = props.get("index")
        position = len(self.sheets) if index is None else max(0, min(int(index), len(self.sheets)))
        self.sheets.insert(position, sheet)
        self.reindex()
        if sum(s.rows * s.cols for s in self.sheets) > MAX_CELLS:
            raise RequestInvalid(
                f"This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."
            )
        return sheet


def _tab_color(value: Any, key: str) -> dict[str, Any]:
    if key == "tabColor":
        color = normalize_color(value)
    else:
        color = normalize_color((value or {}).get("rgbColor")) if value and value.get("rgbColor") is not None else None
        if value and "themeColor" in value:
            return {"tabColorStyle": {"themeColor": value["themeColor"]}}
    if color is None:
        return {}
    return {"tabColor": color, "tabColorStyle": {"rgbColor": color}}


def _clone(ss: Spreadsheet) -> Spreadsheet:
    """A deep copy for all-or-nothing updates (pickle round trip: several times faster than deepcopy)."""
    return pickle.loads(pickle.dumps(ss, protocol=pickle.HIGHEST_PROTOCOL))


def resolve_range(ss: Spreadsheet, text: str) -> tuple[Sheet, Bounds]:
    """A1 text (or a named range) to (sheet, bounds); 400 "Unable to parse range" when it names nothing."""
    try:
        title, cells, _quoted = split_sheet(text.strip())
    except ValueError:
        raise bad_request(f"Unable to parse range: {text}") from None
    sheet: Sheet | None
    if title is not None:
        sheet = ss.sheet_by_title(title)
        if sheet is None:
            raise bad_request(f"Unable to parse range: {text}")
        if cells is None:
            return sheet, Bounds(0, None, 0, None)
        try:
            return sheet, parse_cells(cells)
        except ValueError:
            named = _named_bounds(ss, cells)
            if named is None:
                raise bad_request(f"Unable to parse range: {text}") from None
            return named
    assert cells is not None
    sheet = ss.sheet_by_title(cells)
    if sheet is not None:
        return sheet, Bounds(0, None, 0, None)
    named = _named_bounds(ss, cells)
    if named is not None:
        return named
    try:
        bounds = parse_cells(cells)
    except ValueError:
        raise bad_request(f"Unable to parse range: {text}") from None
    return ss.sheets[0], bounds


def _named_bounds(ss: Spreadsheet, name: str) -> tuple[Sheet, Bounds] | None:
    for named in ss.named_ranges:
        if named["name"].lower() == name.lower():
            gr = named["range"]
            return ss.sheet_by_id(gr.get("sheetId", 0)), bounds_from_gridrange(gr)
    return None


def grid_limit_error(sheet: Sheet, b: Bounds) -> ApiError:
    r = b.r0 if (b.r1 or b.r0 + 1) <= sheet.rows else max(b.r0, sheet.rows)
    c = b.c0 if (b.c1 or b.c0 + 1) <= sheet.cols else max(b.c0, sheet.cols)
    where = Bounds(r, r + 1, c, c + 1).a1()
    return bad_request(
        f"Range ({quote_title(sheet.title)}!{where}) exceeds grid limits. "
        f"Max rows: {sheet.rows}, max columns: {sheet.cols}"
    )


def check_in_grid(sheet: Sheet, b: Bounds) -> None:
    r1 = b.r0 + 1 if b.r1 is None else b.r1
    c1 = b.c0 + 1 if b.c1 is None else b.c1
    if b.r0 >= sheet.rows or b.c0 >= sheet.cols or r1 > sheet.rows or c1 > sheet.cols:
        raise grid_limit_error(sheet, b)


def range_label(sheet: Sheet, b: Bounds) -> str:
    return f"{quote_title(sheet.title)}!{b.closed(sheet.rows, sheet.cols).a1()}"


class Renderer:
    """Computes effective and rendered values of cells, evaluating formulas with a per-call cache."""

    def __init__(self, ss: Spreadsheet):
        self.ss = ss
        self.cache: dict[tuple[int, int, int], Any] = {}
        self.active: set[tuple[int, int, int]] = set()

    def effective(self, sheet: Sheet, r: int, c: int) -> Any:
        """None (empty), float, str, bool, ErrorCell or _UNSUPPORTED."""
        cell = sheet.cells.get((r, c))
        uev = cell.get("userEnteredValue") if cell else None
        if not uev:
            return None
        if "formulaValue" not in uev:
            if "numberValue" in uev:
                return float(uev["numberValue"])
            if "stringValue" in uev:
                return uev["stringValue"]
            if "boolValue" in uev:
                return bool(uev["boolValue"])
            if "errorValue" in uev:
                err = uev["errorValue"]
                return ErrorCell(err.get("type", "ERROR"), err.get("message", ""))
            return None
        key = (sheet.id, r, c)
        if key in self.cache:
            return self.cache[key]
        if key in self.active:
            raise FormulaErr(
                "REF", "Circular dependency detected. To resolve with iterative calculation, see File > Settings."
            )
        self.active.add(key)
        try:
            value = self._evaluate(sheet, uev["formulaValue"])
        finally:
            self.active.discard(key)
        self.cache[key] = value
        return value

    def _evaluate(self, sheet: Sheet, formula: str) -> Any:
        status, parsed = parse_formula(formula)
        if status == "unsupported":
            return _UNSUPPORTED
        if status == "err":
            return ErrorCell(parsed.kind, parsed.message)

        def resolve(title: str | None, b: Bounds) -> RangeValue:
            target = sheet if title is None else self.ss.sheet_by_title(title)
            if target is None:
                raise FormulaErr("REF", f"Unresolved sheet name '{title}'.")
            closed = b.clip(target.rows, target.cols)
            if closed.r0 >= target.rows or closed.c0 >= target.cols:
                raise FormulaErr("REF", "Reference does not exist.")
            rows = []
            assert closed.r1 is not None and closed.c1 is not None
            for rr in range(closed.r0, closed.r1):
                row = []
                for cc in range(closed.c0, closed.c1):
                    value = self.effective(target, rr, cc)
                    if isinstance(value, ErrorCell):
                        raise FormulaErr(value.kind, value.message)
                    row.append(None if value is _UNSUPPORTED else value)
                rows.append(row)
            return RangeValue(rows)

        try:
            value = Evaluator(resolve).eval(parsed)
            if isinstance(value, RangeValue):
                value = value.rows[0][0] if value.rows and value.rows[0] else None
            return 0.0 if value is None else value
        except FormulaErr as err:
            return ErrorCell(err.kind, err.message)
        except FormulaUnsupported:
            return _UNSUPPORTED
        except (RecursionError, ValueError, OverflowError):
            return _UNSUPPORTED

    def number_format(self, sheet: Sheet, r: int, c: int) -> dict[str, Any] | None:
        cell = sheet.cells.get((r, c)) or {}
        return (cell.get("userEnteredFormat") or {}).get("numberFormat")

    def render(self, sheet: Sheet, r: int, c: int, value_render: str, datetime_render: str) -> Any:
        """The value values.get returns for a cell, or None when it reads as empty."""
        cell = sheet.cells.get((r, c))
        if not cell or "userEnteredValue" not in cell:
            return None
        uev = cell["userEnteredValue"]
        if value_render == "FORMULA" and "formulaValue" in uev:
            return uev["formulaValue"]
        value = self.effective(sheet, r, c)
        if value is None or value is _UNSUPPORTED:
            return None
        if isinstance(value, ErrorCell):
            return ERROR_TEXT.get(value.kind, "#ERROR!")
        if isinstance(value, str):
            return value
        fmt = self.number_format(sheet, r, c)
        if isinstance(value, bool):
            return ("TRUE" if value else "FALSE") if value_render == "FORMATTED_VALUE" else value
        if value_render == "FORMATTED_VALUE":
            return format_number(value, fmt)
        if datetime_render == "FORMATTED_STRING" and fmt and fmt.get("type") in ("DATE", "TIME", "DATE_TIME"):
            return format_number(value, fmt)
        return json_number(value)

    def extended(self, sheet: Sheet, r: int, c: int) -> dict[str, Any] | None:
        value = self.effective(sheet, r, c)
        if value is None or value is _UNSUPPORTED:
            return None
        if isinstance(value, ErrorCell):
            return {"errorValue": {"type": value.kind, "message": value.message}}
        if isinstance(value, bool):
            return {"boolValue": value}
        if isinstance(value, float):
            return {"numberValue": json_number(value)}
        return {"stringValue": value}

    def read(self, sheet: Sheet, b: Bounds, major: str, value_render: str, datetime_render: str) -> list[list[Any]]:
        """values.get semantics: only populated cells, trailing empty cells and rows trimmed."""
        assert b.r1 is not None and b.c1 is not None
        grid: dict[int, dict[int, Any]] = {}
        for (r, c), cell in list(sheet.cells.items()):
            if "userEnteredValue" not in cell or not (b.r0 <= r < b.r1 and b.c0 <= c < b.c1):
                continue
            value = self.render(sheet, r, c, value_render, datetime_render)
            if value is None or value == "":
                continue
            outer, inner = (r - b.r0, c - b.c0) if major != "COLUMNS" else (c - b.c0, r - b.r0)
            grid.setdefault(outer, {})[inner] = value
        if not grid:
            return []
        out = []
        for i in range(max(grid) + 1):
            row = grid.get(i, {})
            out.append([row.get(j, "") for j in range(max(row) + 1)] if row else [])
        return out


def write_user_value(sheet: Sheet, r: int, c: int, raw: Any, input_option: str) -> None:
    """Store one value from a ValueRange, as RAW or USER_ENTERED input; None leaves the cell alone."""
    if raw is None:
        return
    fmt = None
    if isinstance(raw, bool):
        uev: dict[str, Any] | None = {"boolValue": raw}
    elif isinstance(raw, (int, float)):
        uev = {"numberValue": float(raw)}
    elif input_option == "RAW":
        uev = {"stringValue": raw} if raw != "" else None
    else:
        uev, fmt = parse_user_entered(raw)
    if uev is None:
        cell = sheet.cells.get((r, c))
        if cell is not None:
            cell.pop("userEnteredValue", None)
            sheet.drop_if_empty(r, c)
        return
    cell = sheet.cell_for_write(r, c)
    cell["userEnteredValue"] = uev
    if fmt:
        cell.setdefault("userEnteredFormat", {})["numberFormat"] = fmt


# --------------------------------------------------------------------------------------------- batchUpdate


def _grid(ss: Spreadsheet, gr: dict[str, Any] | None, *, check: bool = True) -> tuple[Sheet, Bounds]:
    if gr is None:
        raise RequestInvalid("range must be specified")
    sheet = ss.sheet_by_id(gr.get("sheetId", 0))
    b = bounds_from_gridrange(gr)
    if check:
        r1 = b.r1 if b.r1 is not None else sheet.rows
        c1 = b.c1 if b.c1 is not None else sheet.cols
        if b.r0 < 0 or b.c0 < 0 or r1 > sheet.rows or c1 > sheet.cols or b.r0 > r1 or b.c0 > c1:
            raise RequestInvalid(grid_limit_error(sheet, b).body["error"]["message"])
    return sheet, b.closed(sheet.rows, sheet.cols)


def _dims(ss: Spreadsheet, dr: dict[str, Any] | None) -> tuple[Sheet, str, int, int]:
    if not dr or dr.get("dimension") not in ("ROWS", "COLUMNS"):
        raise RequestInvalid("range.dimension must be ROWS or COLUMNS")
    sheet = ss.sheet_by_id(dr.get("sheetId", 0))
    size = sheet.rows if dr["dimension"] == "ROWS" else sheet.cols
    start = int(dr.get("startIndex", 0) or 0)
    end = size if dr.get("endIndex") is None else int(dr["endIndex"])
    if start < 0 or end > size or start >= end:
        kind = "row" if dr["dimension"] == "ROWS" else "column"
        raise RequestInvalid(f"Invalid dimension range: {kind}s [{start}, {end}) with a grid of {size} {kind}s.")
    return sheet, dr["dimension"], start, end


def _check_total_cells(ss: Spreadsheet) -> None:
    if sum(s.rows * s.cols for s in ss.sheets) > MAX_CELLS:
        raise RequestInvalid(
            f"This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."
        )


def _apply_cell_data(sheet: Sheet, r: int, c: int, data: dict[str, Any] | None, fields: str) -> None:
    """Write CellData into a cell under an update mask (updateCells / repeatCell semantics)."""
    data = copy.deepcopy(data or {})
    if "userEnteredFormat" in data and data["userEnteredFormat"] is not None:
        data["userEnteredFormat"] = normalize_format(data["userEnteredFormat"])
    if "dataValidation" in data and data["dataValidation"] is not None:
        data["dataValidation"] = _clean(data["dataValidation"])
    if data.get("note") == "":
        data.pop("note")
    cell = sheet.cell_for_write(r, c)
    for path in mask_paths(fields):
        if path == "*":
            for key in (
                "userEnteredValue",
                "userEnteredFormat",
                "note",
                "dataValidation",
                "hyperlink",
                "textFormatRuns",
            ):
                if data.get(key) is not None:
                    cell[key] = data[key]
                else:
                    cell.pop(key, None)
            continue
        present, value = get_path(data, path)
        set_path(cell, path, value, present)
        if path.endswith("Color"):  # Sheets keeps a Color and its ColorStyle twin in step
            set_path(cell, path + "Style", {"rgbColor": value} if present else None, present)
        elif path.endswith("ColorStyle"):
            rgb = value.get("rgbColor") if present and isinstance(value, dict) else None
            set_path(cell, path[: -len("Style")], rgb, rgb is not None)
    if isinstance(cell.get("userEnteredFormat"), dict):
        prune_empty(cell["userEnteredFormat"])
        if not cell["userEnteredFormat"]:
            cell.pop("userEnteredFormat")
    sheet.drop_if_empty(r, c)


def _clean(obj: Any) -> Any:
    """Drop nulls (gspread sends "description": null) the way the API ignores unset fields."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _shift_interval(a0: int, a1: int | None, start: int, count: int, delete_end: int | None) -> tuple[int, int | None]:
    if delete_end is None:  # insert `count` before `start`
        return (a0 + count if a0 >= start else a0), (a1 + count if a1 is not None and a1 > start else a1)
    n = delete_end - start
    new0 = a0 if a0 < start else max(start, a0 - n)
    new1 = None if a1 is None else (a1 if a1 <= start else max(start, a1 - n))
    return new0, new1


def _shift_sheet(ss: Spreadsheet, sheet: Sheet, dim: str, start: int, count: int, delete_end: int | None) -> None:
    """Move cells and every range-bearing object after inserting or deleting rows/columns."""
    rows = dim == "ROWS"

    def move(index: int) -> int | None:
        if delete_end is None:
            return index + count if index >= start else index
        if start <= index < delete_end:
            return None
        return index - (delete_end - start) if index >= delete_end else index

    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for (r, c), cell in sheet.cells.items():
        moved = move(r if rows else c)
        if moved is not None:
            cells[(moved, c) if rows else (r, moved)] = cell
    sheet.cells = cells
    meta = sheet.row_meta if rows else sheet.col_meta
    moved_meta = {}
    for index, value in meta.items():
        target = move(index)
        if target is not None:
            moved_meta[target] = value
    if rows:
        sheet.row_meta = moved_meta
    else:
        sheet.col_meta = moved_meta

    def fix(b: Bounds) -> Bounds | None:
        if rows:
            r0, r1 = _shift_interval(b.r0, b.r1, start, count, delete_end)
            out = Bounds(r0, r1, b.c0, b.c1)
        else:
            c0, c1 = _shift_interval(b.c0, b.c1, start, count, delete_end)
            out = Bounds(b.r0, b.r1, c0, c1)
        if (out.r1 is not None and out.r0 >= out.r1) or (out.c1 is not None and out.c0 >= out.c1):
            return None
        return out

    def fix_gr(holder: dict[str, Any], key: str = "range") -> bool:
        gr = holder.get(key)
        if not isinstance(gr, dict) or int(gr.get("sheetId", 0) or 0) != sheet.id:
            return True
        b = fix(bounds_from_gridrange(gr))
        if b is None:
            return False
        holder[key] = gridrange_json(sheet.id, b)
        return True

    sheet.merges = [m for m in (fix(b) for b in sheet.merges) if m is not None]
    sheet.protected_ranges = [p for p in sheet.protected_ranges if "range" not in p or fix_gr(p)]
    sheet.banded_ranges = [p for p in sheet.banded_ranges if fix_gr(p)]
    ss.named_ranges = [n for n in ss.named_ranges if fix_gr(n)]
    if sheet.basic_filter is not None and not fix_gr(sheet.basic_filter):
        sheet.basic_filter = None
    for rule in sheet.conditional_formats:
        rule["ranges"] = [
            gridrange_json(sheet.id, b) for b in (fix(bounds_from_gridrange(g)) for g in rule["ranges"]) if b
        ]
    sheet.conditional_formats = [r for r in sheet.conditional_formats if r["ranges"]]
    groups = sheet.row_groups if rows else sheet.column_groups
    kept = []
    for group in groups:
        s0, s1 = _shift_interval(group["range"]["startIndex"], group["range"]["endIndex"], start, count, delete_end)
        if s1 is not None and s0 < s1:
            group["range"].update(startIndex=s0, endIndex=s1)
            kept.append(group)
    groups[:] = kept


def _h_add_sheet(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    sheet = ss.add_sheet(req.get("properties") or {})
    return {"addSheet": {"properties": sheet.properties_json()}}


def _h_delete_sheet(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet = ss.sheet_by_id(req.get("sheetId", 0))
    if len(ss.sheets) == 1:
        raise RequestInvalid("You can't remove all the sheets in a document.")
    ss.sheets.remove(sheet)
    ss.named_ranges = [n for n in ss.named_ranges if int(n["range"].get("sheetId", 0) or 0) != sheet.id]
    ss.developer_metadata = [
        m
        for m in ss.developer_metadata
        if _metadata_sheet(m) != sheet.id or m["location"]["locationType"] == "SPREADSHEET"
    ]
    if all(s.properties.get("hidden") for s in ss.sheets):
        ss.sheets[0].properties["hidden"] = False
    ss.reindex()


def _h_duplicate_sheet(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    source = ss.sheet_by_id(req.get("sourceSheetId", 0))
    props = copy.deepcopy(source.properties)
    props.pop("sheetId")
    if req.get("newSheetId") is not None:
        props["sheetId"] = req["newSheetId"]
    n = 2
    title = req.get("newSheetName") or f"Copy of {source.title}"
    while not req.get("newSheetName") and ss.sheet_by_title(title) is not None:
        title = f"Copy of {source.title} {n}"
        n += 1
    props["title"] = title
    props["index"] = req.get("insertSheetIndex", len(ss.sheets))
    new = ss.add_sheet(props)
    for attr in ("cells", "merges", "banded_ranges", "conditional_formats", "row_meta", "col_meta", "basic_filter"):
        setattr(new, attr, copy.deepcopy(getattr(source, attr)))
    return {"duplicateSheet": {"properties": new.properties_json()}}


def _h_update_sheet_properties(ss: Spreadsheet, req: dict[str, Any]) -> None:
    props = req.get("properties") or {}
    sheet = ss.sheet_by_id(props.get("sheetId", 0))
    before = copy.deepcopy(sheet.properties)
    target = copy.deepcopy(sheet.properties)
    source = copy.deepcopy(props)
    if "tabColorStyle" in source or "tabColor" in source:
        for key in ("tabColor", "tabColorStyle"):
            if key in source:
                colors = _tab_color(source[key], key)
                source.pop("tabColor", None)
                source.pop("tabColorStyle", None)
                source.update(colors)
                break
    mask = req.get("fields")
    paths = mask_paths(mask) if mask else []
    if any(p in ("tabColor", "tabColorStyle") for p in paths) and mask:
        mask = mask + ",tabColor,tabColorStyle"
    apply_update_mask(target, source, mask, "updateSheetProperties")
    if target.get("sheetId", sheet.id) != sheet.id:
        raise RequestInvalid("You can't change the sheetId of a sheet.")
    target["sheetId"] = sheet.id
    target.setdefault("sheetType", "GRID")
    grid = target.setdefault("gridProperties", {})
    grid.setdefault("rowCount", before["gridProperties"]["rowCount"])
    grid.setdefault("columnCount", before["gridProperties"]["columnCount"])
    title = target.get("title") or before["title"]
    other = ss.sheet_by_title(title)
    if other is not None and other is not sheet:
        raise RequestInvalid(f'A sheet with the name "{title}" already exists. Please enter another name.')
    target["title"] = title
    if target.get("hidden") and all(s is sheet or s.properties.get("hidden") for s in ss.sheets):
        raise RequestInvalid("You can't hide all the sheets in a document.")
    rows, cols = int(grid["rowCount"]), int(grid["columnCount"])
    if rows < 1 or cols < 1:
        raise RequestInvalid("The grid must have at least one row and one column.")
    if int(grid.get("frozenRowCount") or 0) >= rows or int(grid.get("frozenColumnCount") or 0) >= cols:
        raise RequestInvalid("You can't freeze all visible rows on the sheet.")
    new_index = target.get("index", before["index"])
    target["index"] = before["index"]
    sheet.properties = target
    if rows < before["gridProperties"]["rowCount"]:
        _shift_sheet(ss, sheet, "ROWS", rows, 0, before["gridProperties"]["rowCount"])
    if cols < before["gridProperties"]["columnCount"]:
        _shift_sheet(ss, sheet, "COLUMNS", cols, 0, before["gridProperties"]["columnCount"])
    _check_total_cells(ss)
    if new_index != before["index"]:
        ss.sheets.remove(sheet)
        ss.sheets.insert(max(0, min(int(new_index), len(ss.sheets))), sheet)
        ss.reindex()


def _h_update_spreadsheet_properties(ss: Spreadsheet, req: dict[str, Any]) -> None:
    props = copy.deepcopy(req.get("properties") or {})
    if "defaultFormat" in props and props["defaultFormat"] is not None:
        props["defaultFormat"] = normalize_format(props["defaultFormat"])
    before = copy.deepcopy(ss.properties)
    apply_update_mask(ss.properties, props, req.get("fields"), "updateSpreadsheetProperties")
    if not ss.properties.get("title"):
        raise RequestInvalid("The spreadsheet title must not be empty.")
    defaults = Spreadsheet("", "", "").properties
    for key in ("locale", "autoRecalc", "timeZone", "defaultFormat", "spreadsheetTheme"):
        if not ss.properties.get(key):  # a cleared field falls back to its default, as in Sheets
            ss.properties[key] = before.get(key) if key in ("locale", "timeZone") and before.get(key) else defaults[key]


def _h_update_cells(ss: Spreadsheet, req: dict[str, Any]) -> None:
    fields = req.get("fields")
    if not fields:
        raise RequestInvalid("At least one field must be specified for updateCells.")
    rows = req.get("rows") or []
    if "start" in req:
        start = req["start"] or {}
        sheet = ss.sheet_by_id(start.get("sheetId", 0))
        r0, c0 = int(start.get("rowIndex", 0) or 0), int(start.get("columnIndex", 0) or 0)
        height = len(rows)
        width = max((len(row.get("values") or []) for row in rows), default=0)
        if r0 + height > sheet.rows and height:
            raise RequestInvalid(
                f"GridCoordinate.rowIndex[{r0 + height - 1}] is after last row in grid[{sheet.rows - 1}]"
            )
        if c0 + width > sheet.cols and width:
            raise RequestInvalid(
                f"GridCoordinate.columnIndex[{c0 + width - 1}] is after last column in grid[{sheet.cols - 1}]"
            )
        for i, row in enumerate(rows):
            for j, data in enumerate(row.get("values") or []):
                _apply_cell_data(sheet, r0 + i, c0 + j, data, fields)
        return
    sheet, b = _grid(ss, req.get("range"))
    assert b.r1 is not None and b.c1 is not None
    if len(rows) > b.r1 - b.r0:
        raise RequestInvalid(
            f"Attempting to write row: {b.r0 + len(rows)}, beyond the last requested row of: {b.r1 - 1}"
        )
    for i in range(b.r0, b.r1):
        values = (rows[i - b.r0].get("values") or []) if i - b.r0 < len(rows) else []
        if len(values) > b.c1 - b.c0:
            raise RequestInvalid(
                f"Attempting to write column: {b.c0 + len(values)}, beyond the last requested column of: {b.c1 - 1}"
            )
        for j in range(b.c0, b.c1):
            data = values[j - b.c0] if j - b.c0 < len(values) else None
            if data is None and (i, j) not in sheet.cells:
                continue
            _apply_cell_data(sheet, i, j, data, fields)


def _h_repeat_cell(ss: Spreadsheet, req: dict[str, Any]) -> None:
    fields = req.get("fields")
    if not fields:
        raise RequestInvalid("At least one field must be specified for repeatCell.")
    sheet, b = _grid(ss, req.get("range"))
    assert b.r1 is not None and b.c1 is not None
    for r in range(b.r0, b.r1):
        for c in range(b.c0, b.c1):
            _apply_cell_data(sheet, r, c, req.get("cell"), fields)


def _h_append_cells(ss: Spreadsheet, req: dict[str, Any]) -> None:
    fields = req.get("fields")
    if not fields:
        raise RequestInvalid("At least one field must be specified for appendCells.")
    sheet = ss.sheet_by_id(req.get("sheetId", 0))
    rows = req.get("rows") or []
    last, _ = sheet.data_extent()
    width = max((len(row.get("values") or []) for row in rows), default=0)
    if width > sheet.cols:
        raise RequestInvalid(f"GridCoordinate.columnIndex[{width - 1}] is after last column in grid[{sheet.cols - 1}]")
    if last + len(rows) > sheet.rows:
        sheet.properties["gridProperties"]["rowCount"] = last + len(rows)
        _check_total_cells(ss)
    for i, row in enumerate(rows):
        for j, data in enumerate(row.get("values") or []):
            _apply_cell_data(sheet, last + i, j, data, fields)


def _h_set_data_validation(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, b = _grid(ss, req.get("range"))
    rule = _clean(req.get("rule"))
    if rule is not None:
        condition = rule.get("condition") or {}
        if not condition.get("type"):
            raise RequestInvalid("A condition type is required.")
        if condition["type"] in ("ONE_OF_LIST", "ONE_OF_RANGE") and not condition.get("values"):
            raise RequestInvalid(f"Invalid ConditionValue for {condition['type']}: exactly one value is required.")
    assert b.r1 is not None and b.c1 is not None
    for r in range(b.r0, b.r1):
        for c in range(b.c0, b.c1):
            if rule is None:
                if (r, c) in sheet.cells:
                    sheet.cells[(r, c)].pop("dataValidation", None)
                    sheet.drop_if_empty(r, c)
            else:
                sheet.cell_for_write(r, c)["dataValidation"] = copy.deepcopy(rule)


def _protected_range(
    ss: Spreadsheet, pr: dict[str, Any], existing_id: int | None = None
) -> tuple[Sheet, dict[str, Any]]:
    pr = _clean(pr)
    if "range" in pr:
        sheet, _b = _grid(ss, pr["range"])
        gr = gridrange_json(sheet.id, bounds_from_gridrange(pr["range"]))
    elif "namedRangeId" in pr:
        named = _named_range(ss, pr["namedRangeId"])
        sheet = ss.sheet_by_id(named["range"].get("sheetId", 0))
        gr = None
    else:
        raise RequestInvalid("A protected range must have a range or a named range.")
    out: dict[str, Any] = {"protectedRangeId": existing_id if existing_id is not None else _random_id()}
    if gr is not None:
        out["range"] = gr
    else:
        out["namedRangeId"] = pr["namedRangeId"]
    if pr.get("description"):
        out["description"] = pr["description"]
    if pr.get("warningOnly"):
        if pr.get("editors") and any(pr["editors"].get(k) for k in ("users", "groups", "domainUsersCanEdit")):
            raise RequestInvalid("ProtectedRange with warningOnly cannot have editors.")
        out["warningOnly"] = True
    if pr.get("unprotectedRanges"):
        out["unprotectedRanges"] = [normalize_gridrange(g) for g in pr["unprotectedRanges"]]
    out["requestingUserCanEdit"] = True
    editors = {k: v for k, v in (pr.get("editors") or {}).items() if v}
    out["editors"] = editors
    return sheet, out


def _stored_protected_range(ss: Spreadsheet, reply: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(reply)
    if not stored.get("warningOnly"):
        users = list(stored["editors"].get("users", []))
        if ss.owner not in users:
            users.insert(0, ss.owner)
        stored["editors"]["users"] = users
    else:
        stored.pop("editors", None)
    return stored


def _h_add_protected_range(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    sheet, reply = _protected_range(ss, req.get("protectedRange") or {})
    if any(p["protectedRangeId"] == reply["protectedRangeId"] for s in ss.sheets for p in s.protected_ranges):
        raise RequestInvalid(f"A protected range with id {reply['protectedRangeId']} already exists.")
    sheet.protected_ranges.append(_stored_protected_range(ss, reply))
    return {"addProtectedRange": {"protectedRange": reply}}


def _find_protected(ss: Spreadsheet, pid: Any) -> tuple[Sheet, dict[str, Any]]:
    for sheet in ss.sheets:
        for pr in sheet.protected_ranges:
            if pr["protectedRangeId"] == int(pid or 0):
                return sheet, pr
    raise RequestInvalid(f"No protected range with id: {int(pid or 0)}")


def _h_update_protected_range(ss: Spreadsheet, req: dict[str, Any]) -> None:
    pr = req.get("protectedRange") or {}
    sheet, stored = _find_protected(ss, pr.get("protectedRangeId"))
    merged = copy.deepcopy(stored)
    apply_update_mask(merged, _clean(pr), req.get("fields"), "updateProtectedRange")
    new_sheet, reply = _protected_range(ss, merged, existing_id=stored["protectedRangeId"])
    sheet.protected_ranges.remove(stored)
    new_sheet.protected_ranges.append(_stored_protected_range(ss, reply))


def _h_delete_protected_range(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, stored = _find_protected(ss, req.get("protectedRangeId"))
    sheet.protected_ranges.remove(stored)


def _metadata_sheet(meta: dict[str, Any]) -> int | None:
    loc = meta["location"]
    if "sheetId" in loc:
        return int(loc["sheetId"])
    if "dimensionRange" in loc:
        return int(loc["dimensionRange"].get("sheetId", 0) or 0)
    return None


def _metadata_location(ss: Spreadsheet, loc: dict[str, Any]) -> dict[str, Any]:
    if loc.get("spreadsheet"):
        return {"locationType": "SPREADSHEET", "spreadsheet": True}
    if "sheetId" in loc:
        sheet = ss.sheet_by_id(loc["sheetId"])
        out: dict[str, Any] = {"locationType": "SHEET"}
        if sheet.id:
            out["sheetId"] = sheet.id
        else:
            out["sheetId"] = 0
        return out
    if "dimensionRange" in loc:
        sheet, dim, start, end = _dims(ss, loc["dimensionRange"])
        rng: dict[str, Any] = {"dimension": dim, "startIndex": start, "endIndex": end}
        if sheet.id:
            rng = {"sheetId": sheet.id, **rng}
        return {"locationType": "ROW" if dim == "ROWS" else "COLUMN", "dimensionRange": rng}
    raise RequestInvalid("A developer metadata location must be specified.")


def _h_create_developer_metadata(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    meta = _clean(req.get("developerMetadata") or {})
    if not meta.get("metadataKey"):
        raise RequestInvalid("Developer metadata must have a key.")
    if meta.get("visibility") not in ("DOCUMENT", "PROJECT"):
        raise RequestInvalid("Developer metadata visibility must be DOCUMENT or PROJECT.")
    metadata_id = int(meta.get("metadataId") or _random_id())
    if any(m["metadataId"] == metadata_id for m in ss.developer_metadata):
        raise RequestInvalid(f"Developer metadata with id {metadata_id} already exists.")
    stored = {"metadataId": metadata_id, "metadataKey": meta["metadataKey"]}
    if meta.get("metadataValue"):
        stored["metadataValue"] = meta["metadataValue"]
    stored["location"] = _metadata_location(ss, meta.get("location") or {})
    stored["visibility"] = meta["visibility"]
    ss.developer_metadata.append(stored)
    return {"createDeveloperMetadata": {"developerMetadata": copy.deepcopy(stored)}}


def _lookup_matches(meta: dict[str, Any], lookup: dict[str, Any]) -> bool:
    if "metadataId" in lookup and int(lookup["metadataId"]) != meta["metadataId"]:
        return False
    if "metadataKey" in lookup and lookup["metadataKey"] != meta["metadataKey"]:
        return False
    if "metadataValue" in lookup and lookup["metadataValue"] != meta.get("metadataValue"):
        return False
    if "visibility" in lookup and lookup["visibility"] != meta["visibility"]:
        return False
    if "locationType" in lookup and lookup["locationType"] != meta["location"]["locationType"]:
        return False
    location = lookup.get("metadataLocation")
    if location:
        loc = meta["location"]
        if location.get("spreadsheet") and loc["locationType"] != "SPREADSHEET":
            return False
        if "sheetId" in location and (loc["locationType"] != "SHEET" or loc.get("sheetId") != location["sheetId"]):
            return False
    return True


def matching_metadata(ss: Spreadsheet, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for data_filter in filters:
        lookup = data_filter.get("developerMetadataLookup")
        if lookup is None:
            raise NotImplementedByFake("data filters other than developerMetadataLookup")
        for meta in ss.developer_metadata:
            if _lookup_matches(meta, lookup) and meta not in found:
                found.append(meta)
    return found


def _h_update_developer_metadata(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    targets = matching_metadata(ss, req.get("dataFilters") or [])
    changes = copy.deepcopy(_clean(req.get("developerMetadata") or {}))
    if "location" in changes:
        changes["location"] = _metadata_location(ss, changes["location"])
    for meta in targets:
        apply_update_mask(meta, changes, req.get("fields"), "updateDeveloperMetadata")
    return {"updateDeveloperMetadata": {"developerMetadata": copy.deepcopy(targets)}}


def _h_delete_developer_metadata(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    targets = matching_metadata(ss, [req.get("dataFilter") or {}])
    ss.developer_metadata = [m for m in ss.developer_metadata if m not in targets]
    return (
        {"deleteDeveloperMetadata": {"deletedDeveloperMetadata": copy.deepcopy(targets)}}
        if targets
        else {"deleteDeveloperMetadata": {}}
    )


def _h_update_dimension_properties(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, dim, start, end = _dims(ss, req.get("range"))
    props = _clean(req.get("properties") or {})
    meta = sheet.row_meta if dim == "ROWS" else sheet.col_meta
    for index in range(start, end):
        target = meta.setdefault(index, {})
        apply_update_mask(target, props, req.get("fields"), "updateDimensionProperties")
        target.pop("developerMetadata", None)


def _h_auto_resize_dimensions(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, dim, start, end = _dims(ss, req.get("dimensions"))
    renderer = Renderer(ss)
    meta = sheet.row_meta if dim == "ROWS" else sheet.col_meta
    for index in range(start, end):
        longest = 0
        for r, c in list(sheet.cells):
            if (c if dim == "COLUMNS" else r) == index:
                text = renderer.render(sheet, r, c, "FORMATTED_VALUE", "SERIAL_NUMBER")
                longest = max(longest, len(str(text or "")))
        if longest:
            meta.setdefault(index, {})["pixelSize"] = 7 * longest + 10 if dim == "COLUMNS" else 21


def _h_append_dimension(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet = ss.sheet_by_id(req.get("sheetId", 0))
    length = int(req.get("length") or 0)
    if length < 1:
        raise RequestInvalid("length must be greater than zero")
    key = "rowCount" if req.get("dimension") == "ROWS" else "columnCount"
    if req.get("dimension") not in ("ROWS", "COLUMNS"):
        raise RequestInvalid("dimension must be ROWS or COLUMNS")
    sheet.properties["gridProperties"][key] += length
    _check_total_cells(ss)


def _h_insert_dimension(ss: Spreadsheet, req: dict[str, Any]) -> None:
    dr = req.get("range") or {}
    if dr.get("dimension") not in ("ROWS", "COLUMNS"):
        raise RequestInvalid("range.dimension must be ROWS or COLUMNS")
    sheet = ss.sheet_by_id(dr.get("sheetId", 0))
    size = sheet.rows if dr["dimension"] == "ROWS" else sheet.cols
    start, end = int(dr.get("startIndex", 0) or 0), int(dr.get("endIndex", 0) or 0)
    if start < 0 or end <= start or start > size:
        raise RequestInvalid(f"Invalid dimension range [{start}, {end}) for a grid of {size}.")
    if req.get("inheritFromBefore") and start == 0:
        raise RequestInvalid("Cannot inherit from before the first row or column.")
    count = end - start
    _shift_sheet(ss, sheet, dr["dimension"], start, count, None)
    key = "rowCount" if dr["dimension"] == "ROWS" else "columnCount"
    sheet.properties["gridProperties"][key] += count
    _check_total_cells(ss)


def _h_delete_dimension(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, dim, start, end = _dims(ss, req.get("range"))
    size = sheet.rows if dim == "ROWS" else sheet.cols
    if end - start >= size:
        raise RequestInvalid(f"You can't delete all the {'rows' if dim == 'ROWS' else 'columns'} on the sheet.")
    _shift_sheet(ss, sheet, dim, start, 0, end)
    grid = sheet.properties["gridProperties"]
    grid["rowCount" if dim == "ROWS" else "columnCount"] = size - (end - start)
    frozen = "frozenRowCount" if dim == "ROWS" else "frozenColumnCount"
    if grid.get(frozen):
        grid[frozen] = min(grid[frozen], size - (end - start) - 1)


def _named_range(ss: Spreadsheet, named_range_id: Any) -> dict[str, Any]:
    for named in ss.named_ranges:
        if named["namedRangeId"] == str(named_range_id):
            return named
    raise RequestInvalid(f"No named range with id: {named_range_id}")


_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _check_name(ss: Spreadsheet, name: Any, exclude: dict[str, Any] | None = None) -> str:
    if not isinstance(name, str) or not _NAME_OK.match(name) or _CELLISH.match(name) or len(name) > 250:
        raise RequestInvalid(f"The name '{name}' is not a valid name for a named range.")
    for named in ss.named_ranges:
        if named is not exclude and named["name"].lower() == name.lower():
            raise RequestInvalid(f"A named range with the name '{name}' already exists.")
    return name


def _h_add_named_range(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    nr = req.get("namedRange") or {}
    name = _check_name(ss, nr.get("name"))
    sheet, _b = _grid(ss, nr.get("range"))
    named_id = str(nr.get("namedRangeId") or _random_id())
    if any(n["namedRangeId"] == named_id for n in ss.named_ranges):
        raise RequestInvalid(f"A named range with id {named_id} already exists.")
    stored = {
        "namedRangeId": named_id,
        "name": name,
        "range": gridrange_json(sheet.id, bounds_from_gridrange(nr["range"])),
    }
    ss.named_ranges.append(stored)
    return {"addNamedRange": {"namedRange": copy.deepcopy(stored)}}


def _h_update_named_range(ss: Spreadsheet, req: dict[str, Any]) -> None:
    nr = req.get("namedRange") or {}
    stored = _named_range(ss, nr.get("namedRangeId"))
    merged = copy.deepcopy(stored)
    apply_update_mask(merged, _clean(nr), req.get("fields"), "updateNamedRange")
    merged["namedRangeId"] = stored["namedRangeId"]
    _check_name(ss, merged.get("name"), exclude=stored)
    sheet, _ = _grid(ss, merged.get("range"))
    merged["range"] = gridrange_json(sheet.id, bounds_from_gridrange(merged["range"]))
    stored.clear()
    stored.update(merged)


def _h_delete_named_range(ss: Spreadsheet, req: dict[str, Any]) -> None:
    ss.named_ranges.remove(_named_range(ss, req.get("namedRangeId")))


def _overlaps(a: Bounds, b: Bounds) -> bool:
    assert a.r1 is not None and a.c1 is not None and b.r1 is not None and b.c1 is not None
    return a.r0 < b.r1 and b.r0 < a.r1 and a.c0 < b.c1 and b.c0 < a.c1


def _contains(outer: Bounds, inner: Bounds) -> bool:
    assert outer.r1 is not None and outer.c1 is not None and inner.r1 is not None and inner.c1 is not None
    return outer.r0 <= inner.r0 and inner.r1 <= outer.r1 and outer.c0 <= inner.c0 and inner.c1 <= outer.c1


def _h_merge_cells(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, b = _grid(ss, req.get("range"))
    assert b.r1 is not None and b.c1 is not None
    kind = req.get("mergeType", "MERGE_ALL")
    if kind == "MERGE_ALL":
        parts = [b]
    elif kind == "MERGE_COLUMNS":
        parts = [Bounds(b.r0, b.r1, c, c + 1) for c in range(b.c0, b.c1)]
    elif kind == "MERGE_ROWS":
        parts = [Bounds(r, r + 1, b.c0, b.c1) for r in range(b.r0, b.r1)]
    else:
        raise RequestInvalid(f"Unknown merge type: {kind}")
    parts = [p for p in parts if (p.r1 or 0) - p.r0 > 1 or (p.c1 or 0) - p.c0 > 1]
    inside = [m for m in sheet.merges if _contains(b, m)]
    if any(_overlaps(b, m) for m in sheet.merges if m not in inside):
        raise RequestInvalid("You can't merge cells that partially overlap with an existing merge.")
    sheet.merges = [m for m in sheet.merges if m not in inside]
    for part in parts:
        assert part.r1 is not None and part.c1 is not None
        for r in range(part.r0, part.r1):
            for c in range(part.c0, part.c1):
                if (r, c) != (part.r0, part.c0) and (r, c) in sheet.cells:
                    sheet.cells[(r, c)].pop("userEnteredValue", None)
                    sheet.drop_if_empty(r, c)
        sheet.merges.append(part)


def _h_unmerge_cells(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, b = _grid(ss, req.get("range"))
    kept = []
    for merge in sheet.merges:
        if not _overlaps(merge, b):
            kept.append(merge)
            continue
        if not _contains(b, merge):
            raise RequestInvalid("You must select all cells in a merged range to merge or unmerge them.")
    sheet.merges = kept


def _h_add_banding(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    banded = _clean(req.get("bandedRange") or {})
    sheet, b = _grid(ss, banded.get("range"))
    stored = {"bandedRangeId": int(banded.get("bandedRangeId") or _random_id())}
    stored["range"] = gridrange_json(sheet.id, b)
    for key in ("rowProperties", "columnProperties"):
        if key in banded:
            stored[key] = normalize_format(banded[key])
    if any(_overlaps(bounds_from_gridrange(x["range"]).closed(sheet.rows, sheet.cols), b) for x in sheet.banded_ranges):
        raise RequestInvalid("You cannot add alternating background colors to a range that already has them.")
    sheet.banded_ranges.append(stored)
    return {"addBanding": {"bandedRange": copy.deepcopy(stored)}}


def _h_delete_banding(ss: Spreadsheet, req: dict[str, Any]) -> None:
    for sheet in ss.sheets:
        for banded in sheet.banded_ranges:
            if banded["bandedRangeId"] == int(req.get("bandedRangeId") or 0):
                sheet.banded_ranges.remove(banded)
                return
    raise RequestInvalid(f"No banded range with id: {req.get('bandedRangeId')}")


def _h_add_conditional_format_rule(ss: Spreadsheet, req: dict[str, Any]) -> None:
    rule = _clean(req.get("rule") or {})
    ranges = rule.get("ranges") or []
    if not ranges:
        raise RequestInvalid("A conditional format rule must have at least one range.")
    sheet = None
    normalized = []
    for gr in ranges:
        sheet, _b = _grid(ss, gr)
        normalized.append(gridrange_json(sheet.id, bounds_from_gridrange(gr)))
    assert sheet is not None
    rule["ranges"] = normalized
    index = int(req.get("index", 0) or 0)
    sheet.conditional_formats.insert(index, rule)


def _h_set_basic_filter(ss: Spreadsheet, req: dict[str, Any]) -> None:
    flt = _clean(req.get("filter") or {})
    sheet, b = _grid(ss, flt.get("range"))
    stored = dict(flt)
    stored["range"] = gridrange_json(sheet.id, b)
    sheet.basic_filter = stored


def _h_clear_basic_filter(ss: Spreadsheet, req: dict[str, Any]) -> None:
    ss.sheet_by_id(req.get("sheetId", 0)).basic_filter = None


def _sort_key(value: Any, descending: bool) -> tuple[int, Any]:
    if value is None or value is _UNSUPPORTED or value == "":
        return (1, 0)  # blanks last whatever the order
    if isinstance(value, bool):
        rank, key = 2, value
    elif isinstance(value, float):
        rank, key = 0, value
    elif isinstance(value, ErrorCell):
        rank, key = 3, value.kind
    else:
        rank, key = 1, str(value).lower()
    return (0, (rank, key))


def _h_sort_range(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, b = _grid(ss, req.get("range"))
    assert b.r1 is not None and b.c1 is not None
    renderer = Renderer(ss)
    rows = list(range(b.r0, b.r1))
    snapshot = {(r, c): sheet.cells.get((r, c)) for r in rows for c in range(b.c0, b.c1)}
    for spec in reversed(req.get("sortSpecs") or [{"dimensionIndex": 0}]):
        col = int(spec.get("dimensionIndex", 0) or 0)
        descending = spec.get("sortOrder") == "DESCENDING"
        present = [r for r in rows if _sort_key(renderer.effective(sheet, r, col), descending)[0] == 0]
        blanks = [r for r in rows if r not in present]
        present.sort(key=lambda r: _sort_key(renderer.effective(sheet, r, col), descending)[1], reverse=descending)
        rows = present + blanks
    for target, source in zip(range(b.r0, b.r1), rows, strict=True):
        for c in range(b.c0, b.c1):
            cell = snapshot[(source, c)]
            if cell is None:
                sheet.cells.pop((target, c), None)
            else:
                sheet.cells[(target, c)] = cell


def _paste(
    ss: Spreadsheet, source: dict[str, Any], dest: Bounds, dest_sheet: Sheet, paste_type: str, cut: bool
) -> None:
    src_sheet, sb = _grid(ss, source)
    assert sb.r1 is not None and sb.c1 is not None and dest.r1 is not None and dest.c1 is not None
    height, width = sb.r1 - sb.r0, sb.c1 - sb.c0
    snapshot = {
        (r, c): copy.deepcopy(src_sheet.cells.get((sb.r0 + r, sb.c0 + c))) for r in range(height) for c in range(width)
    }
    if cut:
        for r in range(height):
            for c in range(width):
                src_sheet.cells.pop((sb.r0 + r, sb.c0 + c), None)
    keys = {
        "PASTE_NORMAL": ("userEnteredValue", "userEnteredFormat", "note", "dataValidation"),
        "PASTE_VALUES": ("userEnteredValue",),
        "PASTE_FORMAT": ("userEnteredFormat",),
        "PASTE_NO_BORDERS": ("userEnteredValue", "userEnteredFormat", "note", "dataValidation"),
        "PASTE_FORMULA": ("userEnteredValue",),
        "PASTE_DATA_VALIDATION": ("dataValidation",),
        "PASTE_CONDITIONAL_FORMATTING": (),
    }.get(paste_type, ("userEnteredValue", "userEnteredFormat", "note", "dataValidation"))
    for r in range(dest.r0, dest.r1):
        for c in range(dest.c0, dest.c1):
            if r >= dest_sheet.rows or c >= dest_sheet.cols:
                raise RequestInvalid(grid_limit_error(dest_sheet, Bounds(r, r + 1, c, c + 1)).body["error"]["message"])
            src = snapshot[((r - dest.r0) % height, (c - dest.c0) % width)] or {}
            cell = dest_sheet.cell_for_write(r, c)
            for key in keys:
                if key in src:
                    cell[key] = copy.deepcopy(src[key])
                else:
                    cell.pop(key, None)
            dest_sheet.drop_if_empty(r, c)


def _h_copy_paste(ss: Spreadsheet, req: dict[str, Any]) -> None:
    dest_sheet, dest = _grid(ss, req.get("destination"), check=False)
    _paste(ss, req.get("source") or {}, dest, dest_sheet, req.get("pasteType", "PASTE_NORMAL"), cut=False)


def _h_cut_paste(ss: Spreadsheet, req: dict[str, Any]) -> None:
    _src_sheet, sb = _grid(ss, req.get("source"))
    coord = req.get("destination") or {}
    dest_sheet = ss.sheet_by_id(coord.get("sheetId", 0))
    r0, c0 = int(coord.get("rowIndex", 0) or 0), int(coord.get("columnIndex", 0) or 0)
    assert sb.r1 is not None and sb.c1 is not None
    dest = Bounds(r0, r0 + sb.r1 - sb.r0, c0, c0 + sb.c1 - sb.c0)
    _paste(ss, req.get("source") or {}, dest, dest_sheet, req.get("pasteType", "PASTE_NORMAL"), cut=True)


def _dimension_groups(sheet: Sheet, dim: str) -> list[dict[str, Any]]:
    return sheet.row_groups if dim == "ROWS" else sheet.column_groups


def _group_json(sheet: Sheet, group: dict[str, Any]) -> dict[str, Any]:
    rng = dict(group["range"])
    if sheet.id:
        rng = {"sheetId": sheet.id, **rng}
    out: dict[str, Any] = {"range": rng, "depth": group["depth"]}
    if group.get("collapsed"):
        out["collapsed"] = True
    return out


def _h_add_dimension_group(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    sheet, dim, start, end = _dims(ss, req.get("range"))
    groups = _dimension_groups(sheet, dim)
    depth = 1 + sum(1 for g in groups if g["range"]["startIndex"] <= start and end <= g["range"]["endIndex"])
    if depth > 8:
        raise RequestInvalid("You can't group rows or columns more than 8 levels deep.")
    groups.append({"range": {"dimension": dim, "startIndex": start, "endIndex": end}, "depth": depth})
    groups.sort(key=lambda g: (g["depth"], g["range"]["startIndex"]))
    sheet.properties["gridProperties"]["rowGroupControlAfter" if dim == "ROWS" else "columnGroupControlAfter"] = True
    return {"addDimensionGroup": {"dimensionGroups": [_group_json(sheet, g) for g in groups]}}


def _h_delete_dimension_group(ss: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    sheet, dim, start, end = _dims(ss, req.get("range"))
    groups = _dimension_groups(sheet, dim)
    matching = [g for g in groups if g["range"]["startIndex"] == start and g["range"]["endIndex"] == end]
    if not matching:
        raise RequestInvalid("No dimension group matches the range to delete.")
    deepest = max(matching, key=lambda g: g["depth"])
    groups.remove(deepest)
    reply = {"dimensionGroups": [_group_json(sheet, g) for g in groups]} if groups else {}
    return {"deleteDimensionGroup": reply}


def _h_update_borders(ss: Spreadsheet, req: dict[str, Any]) -> None:
    sheet, b = _grid(ss, req.get("range"))
    assert b.r1 is not None and b.c1 is not None
    edges = {k: normalize_format({"b": req[k]})["b"] for k in ("top", "bottom", "left", "right") if req.get(k)}
    for r in range(b.r0, b.r1):
        for c in range(b.c0, b.c1):
            sides = {}
            if r == b.r0 and "top" in edges:
                sides["top"] = edges["top"]
            if r == b.r1 - 1 and "bottom" in edges:
                sides["bottom"] = edges["bottom"]
            if c == b.c0 and "left" in edges:
                sides["left"] = edges["left"]
            if c == b.c1 - 1 and "right" in edges:
                sides["right"] = edges["right"]
            if sides:
                cell = sheet.cell_for_write(r, c)
                cell.setdefault("userEnteredFormat", {}).setdefault("borders", {}).update(sides)


_BATCH_HANDLERS: dict[str, Callable[[Spreadsheet, dict[str, Any]], dict[str, Any] | None]] = {
    "addSheet": _h_add_sheet,
    "deleteSheet": _h_delete_sheet,
    "duplicateSheet": _h_duplicate_sheet,
    "updateSheetProperties": _h_update_sheet_properties,
    "updateSpreadsheetProperties": _h_update_spreadsheet_properties,
    "updateCells": _h_update_cells,
    "repeatCell": _h_repeat_cell,
    "appendCells": _h_append_cells,
    "setDataValidation": _h_set_data_validation,
    "addProtectedRange": _h_add_protected_range,
    "updateProtectedRange": _h_update_protected_range,
    "deleteProtectedRange": _h_delete_protected_range,
    "createDeveloperMetadata": _h_create_developer_metadata,
    "updateDeveloperMetadata": _h_update_developer_metadata,
    "deleteDeveloperMetadata": _h_delete_developer_metadata,
    "updateDimensionProperties": _h_update_dimension_properties,
    "autoResizeDimensions": _h_auto_resize_dimensions,
    "appendDimension": _h_append_dimension,
    "insertDimension": _h_insert_dimension,
    "deleteDimension": _h_delete_dimension,
    "addNamedRange": _h_add_named_range,
    "updateNamedRange": _h_update_named_range,
    "deleteNamedRange": _h_delete_named_range,
    "mergeCells": _h_merge_cells,
    "unmergeCells": _h_unmerge_cells,
    "addBanding": _h_add_banding,
    "deleteBanding": _h_delete_banding,
    "addConditionalFormatRule": _h_add_conditional_format_rule,
    "setBasicFilter": _h_set_basic_filter,
    "clearBasicFilter": _h_clear_basic_filter,
    "sortRange": _h_sort_range,
    "copyPaste": _h_copy_paste,
    "cutPaste": _h_cut_paste,
    "addDimensionGroup": _h_add_dimension_group,
    "deleteDimensionGroup": _h_delete_dimension_group,
    "updateBorders": _h_update_borders,
}

# Request kinds the real API has but this fake does not model: answered 501, not 400.
_KNOWN_UNIMPLEMENTED = {
    "updateConditionalFormatRule", "deleteConditionalFormatRule", "updateEmbeddedObjectPosition",
    "updateDimensionGroup",
    "updateFilterView", "deleteFilterView", "duplicateFilterView", "addFilterView", "addChart", "updateChartSpec",
    "deleteEmbeddedObject", "findReplace", "insertRange", "deleteRange", "moveDimension", "pasteData", "textToColumns",
    "autoFill", "randomizeRange", "updateBanding", "addSlicer", "updateSlicerSpec", "trimWhitespace",
    "deleteDuplicates", "updateEmbeddedObjectBorder", "addDataSource", "updateDataSource", "deleteDataSource",
    "refreshDataSource", "cancelDataSourceRefresh", "addTable", "updateTable", "deleteTable",
}  # fmt: skip


# --------------------------------------------------------------------------------------------- request schema

# Field names and types of the request messages the fake implements, after the Sheets API v4 discovery
# document (revision 20180727), one message per line: name=type with s string, i integer, n number,
# b boolean, @Message, [type] a list, o anything (not checked). Fields added since then follow in
# _SCHEMA_ADDITIONS, and every Color field has its *Style twin. Bodies are checked against it as the
# real front end checks them: an unknown name or a value of the wrong type is a 400 before anything runs.
_SCHEMA_TEXT = """
BatchUpdateSpreadsheetRequest: includeSpreadsheetInResponse=b requests=[@Request] responseIncludeGridData=b
    responseRanges=[s]
AddSheetRequest: properties=@SheetProperties
DeleteSheetRequest: sheetId=i
DuplicateSheetRequest: insertSheetIndex=i newSheetId=i newSheetName=s sourceSheetId=i
UpdateSheetPropertiesRequest: fields=s properties=@SheetProperties
UpdateSpreadsheetPropertiesRequest: fields=s properties=@SpreadsheetProperties
UpdateCellsRequest: fields=s range=@GridRange rows=[@RowData] start=@GridCoordinate
RepeatCellRequest: cell=@CellData fields=s range=@GridRange
AppendCellsRequest: fields=s rows=[@RowData] sheetId=i
SetDataValidationRequest: range=@GridRange rule=@DataValidationRule
AddProtectedRangeRequest: protectedRange=@ProtectedRange
UpdateProtectedRangeRequest: fields=s protectedRange=@ProtectedRange
DeleteProtectedRangeRequest: protectedRangeId=i
CreateDeveloperMetadataRequest: developerMetadata=@DeveloperMetadata
UpdateDeveloperMetadataRequest: dataFilters=[@DataFilter] developerMetadata=@DeveloperMetadata fields=s
DeleteDeveloperMetadataRequest: dataFilter=@DataFilter
UpdateDimensionPropertiesRequest: fields=s properties=@DimensionProperties range=@DimensionRange
AutoResizeDimensionsRequest: dimensions=@DimensionRange
AppendDimensionRequest: dimension=s length=i sheetId=i
InsertDimensionRequest: inheritFromBefore=b range=@DimensionRange
DeleteDimensionRequest: range=@DimensionRange
AddNamedRangeRequest: namedRange=@NamedRange
UpdateNamedRangeRequest: fields=s namedRange=@NamedRange
DeleteNamedRangeRequest: namedRangeId=s
MergeCellsRequest: mergeType=s range=@GridRange
UnmergeCellsRequest: range=@GridRange
AddBandingRequest: bandedRange=@BandedRange
DeleteBandingRequest: bandedRangeId=i
AddConditionalFormatRuleRequest: index=i rule=@ConditionalFormatRule
SetBasicFilterRequest: filter=@BasicFilter
ClearBasicFilterRequest: sheetId=i
SortRangeRequest: range=@GridRange sortSpecs=[@SortSpec]
CopyPasteRequest: destination=@GridRange pasteOrientation=s pasteType=s source=@GridRange
CutPasteRequest: destination=@GridCoordinate pasteType=s source=@GridRange
AddDimensionGroupRequest: range=@DimensionRange
DeleteDimensionGroupRequest: range=@DimensionRange
UpdateBordersRequest: bottom=@Border innerHorizontal=@Border innerVertical=@Border left=@Border range=@GridRange
    right=@Border top=@Border
SheetProperties: gridProperties=@GridProperties hidden=b index=i rightToLeft=b sheetId=i sheetType=s
    tabColor=@Color title=s
GridProperties: columnCount=i columnGroupControlAfter=b frozenColumnCount=i frozenRowCount=i hideGridlines=b
    rowCount=i rowGroupControlAfter=b
SpreadsheetProperties: autoRecalc=s defaultFormat=@CellFormat
    iterativeCalculationSettings=@IterativeCalculationSettings locale=s timeZone=s title=s
CellData: dataValidation=@DataValidationRule effectiveFormat=@CellFormat effectiveValue=@ExtendedValue
    formattedValue=s hyperlink=s note=s pivotTable=o textFormatRuns=[@TextFormatRun]
    userEnteredFormat=@CellFormat userEnteredValue=@ExtendedValue
RowData: values=[@CellData]
CellFormat: backgroundColor=@Color borders=@Borders horizontalAlignment=s hyperlinkDisplayType=s
    numberFormat=@NumberFormat padding=@Padding textDirection=s textFormat=@TextFormat
    textRotation=@TextRotation verticalAlignment=s wrapStrategy=s
TextFormat: bold=b fontFamily=s fontSize=i foregroundColor=@Color italic=b strikethrough=b underline=b
NumberFormat: pattern=s type=s
Color: alpha=n blue=n green=n red=n
Borders: bottom=@Border left=@Border right=@Border top=@Border
Border: color=@Color style=s width=i
Padding: bottom=i left=i right=i top=i
ExtendedValue: boolValue=b errorValue=@ErrorValue formulaValue=s numberValue=n stringValue=s
ErrorValue: message=s type=s
GridRange: endColumnIndex=i endRowIndex=i sheetId=i startColumnIndex=i startRowIndex=i
GridCoordinate: columnIndex=i rowIndex=i sheetId=i
DimensionRange: dimension=s endIndex=i sheetId=i startIndex=i
DimensionProperties: developerMetadata=[@DeveloperMetadata] hiddenByFilter=b hiddenByUser=b pixelSize=i
ProtectedRange: description=s editors=@Editors namedRangeId=s protectedRangeId=i range=@GridRange
    requestingUserCanEdit=b unprotectedRanges=[@GridRange] warningOnly=b
Editors: domainUsersCanEdit=b groups=[s] users=[s]
DataValidationRule: condition=@BooleanCondition inputMessage=s showCustomUi=b strict=b
BooleanCondition: type=s values=[@ConditionValue]
ConditionValue: relativeDate=s userEnteredValue=s
DeveloperMetadata: location=@DeveloperMetadataLocation metadataId=i metadataKey=s metadataValue=s visibility=s
DeveloperMetadataLocation: dimensionRange=@DimensionRange locationType=s sheetId=i spreadsheet=b
DeveloperMetadataLookup: locationMatchingStrategy=s locationType=s metadataId=i metadataKey=s
    metadataLocation=@DeveloperMetadataLocation metadataValue=s visibility=s
DataFilter: a1Range=s developerMetadataLookup=@DeveloperMetadataLookup gridRange=@GridRange
NamedRange: name=s namedRangeId=s range=@GridRange
BandedRange: bandedRangeId=i columnProperties=@BandingProperties range=@GridRange
    rowProperties=@BandingProperties
BandingProperties: firstBandColor=@Color footerColor=@Color headerColor=@Color secondBandColor=@Color
BasicFilter: criteria=o range=@GridRange sortSpecs=[@SortSpec]
SortSpec: dimensionIndex=i sortOrder=s
ConditionalFormatRule: booleanRule=@BooleanRule gradientRule=o ranges=[@GridRange]
BooleanRule: condition=@BooleanCondition format=@CellFormat
ValueRange: majorDimension=s range=s values=[[o]]
BatchUpdateValuesRequest: data=[@ValueRange] includeValuesInResponse=b responseDateTimeRenderOption=s
    responseValueRenderOption=s valueInputOption=s
BatchClearValuesRequest: ranges=[s]
SearchDeveloperMetadataRequest: dataFilters=[@DataFilter]
Spreadsheet: developerMetadata=[@DeveloperMetadata] namedRanges=[@NamedRange] properties=@SpreadsheetProperties
    sheets=[@Sheet] spreadsheetId=s spreadsheetUrl=s
Sheet: bandedRanges=[@BandedRange] basicFilter=@BasicFilter charts=[o] columnGroups=[o]
    conditionalFormats=[@ConditionalFormatRule] data=[@GridData] developerMetadata=[@DeveloperMetadata]
    filterViews=[o] merges=[@GridRange] properties=@SheetProperties protectedRanges=[@ProtectedRange]
    rowGroups=[o]
GridData: columnMetadata=[@DimensionProperties] rowData=[@RowData] rowMetadata=[@DimensionProperties]
    startColumn=i startRow=i
TextFormatRun: format=@TextFormat startIndex=i
TextRotation: angle=i vertical=b
IterativeCalculationSettings: convergenceThreshold=n maxIterations=i
"""

_SCHEMA_ADDITIONS: dict[str, dict[str, str]] = {
    "SheetProperties": {"dataSourceSheetProperties": "o"},
    "SpreadsheetProperties": {"spreadsheetTheme": "o", "importFunctionsExternalUrlAccessAllowed": "b"},
    "CellData": {"dataSourceTable": "o", "dataSourceFormula": "o", "chipRuns": "[o]"},
    "TextFormat": {"link": "o"},
    "BasicFilter": {"filterSpecs": "[o]", "tableId": "s"},
    "SortSpec": {"foregroundColor": "@Color", "backgroundColor": "@Color", "dataSourceColumnReference": "o"},
    "DimensionProperties": {"dataSourceColumnReference": "o"},
    "AutoResizeDimensionsRequest": {"dataSourceSheetDimensions": "o"},
    "UpdateDimensionPropertiesRequest": {"dataSourceSheetRange": "o"},
    "Sheet": {"slicers": "[o]", "tables": "[o]"},
    "Spreadsheet": {"dataSources": "[o]", "dataSourceSchedules": "[o]"},
}


def _parse_schema(text: str) -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        rest = line
        if not line[0].isspace():
            name, _, rest = line.partition(":")
            current = types.setdefault(name.strip(), {})
        for item in rest.split():
            key, _, spec = item.partition("=")
            current[key] = spec
    for name, extra in _SCHEMA_ADDITIONS.items():
        types[name].update(extra)
    types["ColorStyle"] = {"rgbColor": "@Color", "themeColor": "s"}
    for fields in types.values():
        for key, spec in list(fields.items()):
            if spec == "@Color":
                fields.setdefault(key + "Style", "@ColorStyle")
    return types


SCHEMA = _parse_schema(_SCHEMA_TEXT)
_PROTO_TYPES = {"i": "TYPE_INT32", "n": "TYPE_DOUBLE", "b": "TYPE_BOOL", "s": "TYPE_STRING"}


def _payload_error(message: str, field_path: str) -> ApiError:
    violation = {"field": field_path, "description": message} if field_path else {"description": message}
    return sheets_error(
        400, message, [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
    )


def _invalid_value(path: str, proto: str, value: Any) -> ApiError:
    shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else ""
    return _payload_error(f"Invalid value at '{path}' ({proto}), {shown}".rstrip(", "), path)


def _unknown_name(name: str, path: str) -> ApiError:
    where = f" at '{path}'" if path else ""
    return _payload_error(f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.', path)


def validate_payload(value: Any, spec: str, path: str = "") -> None:
    """Check a JSON body against SCHEMA the way the API front end does (paths in snake_case, like Google's)."""
    if value is None or spec == "o":
        return
    if spec.startswith("["):
        if not isinstance(value, list):
            raise _invalid_value(path, "type.googleapis.com/google.protobuf.ListValue", value)
        for i, item in enumerate(value):
            validate_payload(item, spec[1:-1], f"{path}[{i}]")
        return
    if spec.startswith("@"):
        name = spec[1:]
        if not isinstance(value, dict):
            raise _invalid_value(path, f"type.googleapis.com/google.apps.sheets.v4.{name}", value)
        if name == "Request":
            _validate_request(value, path)
            return
        fields = SCHEMA[name]
        for key, item in value.items():
            if key not in fields:
                raise _unknown_name(key, path)
            validate_payload(item, fields[key], f"{path}.{_snake(key)}" if path else _snake(key))
        return
    if not _type_ok(spec, value):
        raise _invalid_value(path, _PROTO_TYPES[spec], value)


def _type_ok(spec: str, value: Any) -> bool:
    if spec == "b":
        return isinstance(value, bool)
    if spec == "s":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if spec == "i":
        return isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None)
    return isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _validate_request(value: dict[str, Any], path: str) -> None:
    for kind, payload in value.items():
        if kind in _BATCH_HANDLERS:
            message = kind[0].upper() + kind[1:] + "Request"
            if message in SCHEMA:
                validate_payload(payload, "@" + message, f"{path}.{_snake(kind)}")
        elif kind not in _KNOWN_UNIMPLEMENTED:
            raise _unknown_name(kind, path)


# --------------------------------------------------------------------------------------------- resources


def _cell_json(renderer: Renderer, ss: Spreadsheet, sheet: Sheet, r: int, c: int) -> dict[str, Any]:
    cell = sheet.cells.get((r, c)) or {}
    out: dict[str, Any] = {}
    if "userEnteredValue" in cell:
        uev = copy.deepcopy(cell["userEnteredValue"])
        if "numberValue" in uev:
            uev["numberValue"] = json_number(uev["numberValue"])
        out["userEnteredValue"] = uev
        effective = renderer.extended(sheet, r, c)
        if effective is not None:
            out["effectiveValue"] = effective
            out["formattedValue"] = renderer.render(sheet, r, c, "FORMATTED_VALUE", "SERIAL_NUMBER")
    if "userEnteredFormat" in cell:
        out["userEnteredFormat"] = copy.deepcopy(cell["userEnteredFormat"])
    if out:
        effective_format = copy.deepcopy(ss.properties["defaultFormat"])
        _deep_merge(effective_format, cell.get("userEnteredFormat") or {})
        effective_format["hyperlinkDisplayType"] = "PLAIN_TEXT"
        out["effectiveFormat"] = effective_format
    for key in ("hyperlink", "note", "dataValidation", "textFormatRuns"):
        if key in cell:
            out[key] = copy.deepcopy(cell[key])
    return out


def _deep_merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _grid_data(renderer: Renderer, ss: Spreadsheet, sheet: Sheet, b: Bounds) -> dict[str, Any]:
    assert b.r1 is not None and b.c1 is not None
    out: dict[str, Any] = {}
    if b.r0:
        out["startRow"] = b.r0
    if b.c0:
        out["startColumn"] = b.c0
    by_row: dict[int, dict[int, dict[str, Any]]] = {}
    for r, c in sorted(sheet.cells):
        if b.r0 <= r < b.r1 and b.c0 <= c < b.c1:
            data = _cell_json(renderer, ss, sheet, r, c)
            if data:
                by_row.setdefault(r - b.r0, {})[c - b.c0] = data
    if by_row:
        out["rowData"] = [
            {"values": [by_row[i].get(j, {}) for j in range(max(by_row[i]) + 1)]} if i in by_row else {}
            for i in range(max(by_row) + 1)
        ]
    out["rowMetadata"] = [_dimension_json(sheet.row_meta.get(i), 21) for i in range(b.r0, b.r1)]
    out["columnMetadata"] = [_dimension_json(sheet.col_meta.get(i), 100) for i in range(b.c0, b.c1)]
    return out


def _dimension_json(meta: dict[str, Any] | None, default_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"pixelSize": default_size}
    if meta:
        out.update({k: v for k, v in meta.items() if v not in (None, False)})
    return out


def spreadsheet_json(ss: Spreadsheet, include_grid: bool, ranges: list[str]) -> dict[str, Any]:
    wanted: dict[int, list[Bounds]] = {}
    for text in ranges:
        sheet, b = resolve_range(ss, text)
        if b.r0 >= sheet.rows or b.c0 >= sheet.cols:
            raise grid_limit_error(sheet, b)
        wanted.setdefault(sheet.id, []).append(b.clip(sheet.rows, sheet.cols))
    renderer = Renderer(ss)
    sheets = []
    for sheet in ss.sheets:
        if ranges and sheet.id not in wanted:
            continue
        item: dict[str, Any] = {"properties": sheet.properties_json()}
        if include_grid:
            areas = wanted.get(sheet.id) or [Bounds(0, sheet.rows, 0, sheet.cols)]
            item["data"] = [_grid_data(renderer, ss, sheet, b) for b in areas]
        if sheet.merges:
            item["merges"] = [gridrange_json(sheet.id, m) for m in sheet.merges]
        if sheet.conditional_formats:
            item["conditionalFormats"] = copy.deepcopy(sheet.conditional_formats)
        if sheet.protected_ranges:
            item["protectedRanges"] = copy.deepcopy(sheet.protected_ranges)
        if sheet.basic_filter:
            item["basicFilter"] = copy.deepcopy(sheet.basic_filter)
        sheet_meta = [
            m
            for m in ss.developer_metadata
            if m["location"]["locationType"] == "SHEET" and _metadata_sheet(m) == sheet.id
        ]
        if sheet_meta:
            item["developerMetadata"] = copy.deepcopy(sheet_meta)
        if sheet.banded_ranges:
            item["bandedRanges"] = copy.deepcopy(sheet.banded_ranges)
        if sheet.row_groups:
            item["rowGroups"] = [_group_json(sheet, g) for g in sheet.row_groups]
        if sheet.column_groups:
            item["columnGroups"] = [_group_json(sheet, g) for g in sheet.column_groups]
        sheets.append(item)
    out: dict[str, Any] = {"spreadsheetId": ss.id, "properties": copy.deepcopy(ss.properties), "sheets": sheets}
    if ss.named_ranges:
        out["namedRanges"] = copy.deepcopy(ss.named_ranges)
    top_meta = [m for m in ss.developer_metadata if m["location"]["locationType"] == "SPREADSHEET"]
    if top_meta:
        out["developerMetadata"] = copy.deepcopy(top_meta)
    out["spreadsheetUrl"] = f"https://docs.google.com/spreadsheets/d/{ss.id}/edit"
    return out


def _enum(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str, proto: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        return default
    if value not in allowed and value != allowed[0].split("_")[0] + "_UNSPECIFIED":
        raise bad_request(
            f"Invalid value at '{_snake(name)}' (type.googleapis.com/google.apps.sheets.v4.{proto}), \"{value}\""
        )
    return value if value in allowed else default


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _render_params(params: dict[str, Any], prefix: str = "") -> tuple[str, str]:
    value_render = _enum(
        params,
        prefix + ("valueRenderOption" if not prefix else "ValueRenderOption"),
        ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"),
        "FORMATTED_VALUE",
        "ValueRenderOption",
    )
    datetime_render = _enum(
        params,
        prefix + ("dateTimeRenderOption" if not prefix else "DateTimeRenderOption"),
        ("SERIAL_NUMBER", "FORMATTED_STRING"),
        "SERIAL_NUMBER",
        "DateTimeRenderOption",
    )
    return value_render, datetime_render


def values_get(ss: Spreadsheet, text: str, params: dict[str, Any]) -> dict[str, Any]:
    sheet, b = resolve_range(ss, text)
    if b.r0 >= sheet.rows or b.c0 >= sheet.cols:
        raise grid_limit_error(sheet, b)
    major = _enum(params, "majorDimension", ("ROWS", "COLUMNS"), "ROWS", "Dimension")
    value_render, datetime_render = _render_params(params)
    clipped = b.clip(sheet.rows, sheet.cols)
    values = Renderer(ss).read(sheet, clipped, major, value_render, datetime_render)
    out: dict[str, Any] = {"range": range_label(sheet, clipped), "majorDimension": major}
    if values:
        out["values"] = values
    return out


def _invalid_enum(field_name: str, proto: str, value: Any) -> str:
    return f"Invalid value at '{field_name}' (type.googleapis.com/google.apps.sheets.v4.{proto}), \"{value}\""


def _check_values(values: Any, where: str) -> list[list[Any]]:
    if values is None:
        return []
    if not isinstance(values, list):
        shown = json.dumps(values, ensure_ascii=False)
        message = f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.ListValue), {shown}"
        violation = {"field": where, "description": message}
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
        raise sheets_error(400, message, details)
    for i, row in enumerate(values):
        if not isinstance(row, list):
            _check_values(row, f"{where}[{i}]")
        for j, value in enumerate(row):
            if isinstance(value, (list, dict)):
                raise bad_request(
                    f"Invalid values[{i}][{j}]: {'list_value' if isinstance(value, list) else 'struct_value'} {{\n}}\n"
                )
    return values


@dataclass
class PlannedWrite:
    sheet: Sheet
    r0: int
    c0: int
    rows: list[list[Any]]
    response: dict[str, Any]


def plan_values_update(
    ss: Spreadsheet,
    text: str,
    body: dict[str, Any],
    input_option: str,
    where: str = "data.values",
    append_rows: bool = False,
) -> PlannedWrite:
    """Validate one ValueRange write and work out where it lands; nothing is changed yet."""
    values = _check_values(body.get("values"), where)
    sheet, b = resolve_range(ss, text)
    major = body.get("majorDimension") or "ROWS"
    if major not in ("ROWS", "COLUMNS", "DIMENSION_UNSPECIFIED"):
        raise bad_request(_invalid_enum("data.major_dimension", "Dimension", major))
    if major == "COLUMNS":
        height = max((len(col) for col in values), default=0)
        values = [[col[i] if i < len(col) else None for col in values] for i in range(height)]
    nrows = len(values)
    ncols = max((len(row) for row in values), default=0)
    single = b.r1 == b.r0 + 1 and b.c1 == b.c0 + 1
    if (
        b.r0 >= sheet.rows
        or b.c0 >= sheet.cols
        or (b.r1 is not None and b.r1 > sheet.rows and not append_rows)
        or (b.c1 is not None and b.c1 > sheet.cols)
    ):
        raise grid_limit_error(sheet, b)
    if not single:
        label = f"{quote_title(sheet.title)}!{b.closed(sheet.rows, sheet.cols).a1()}"
        if b.r1 is not None and nrows > b.r1 - b.r0:
            raise bad_request(f"Requested writing within range [{label}], but tried writing to row [{b.r0 + nrows}]")
        if b.c1 is not None and ncols > b.c1 - b.c0:
            raise bad_request(
                f"Requested writing within range [{label}], "
                f"but tried writing to column [{col_letters(b.c0 + ncols - 1)}]"
            )
    area = Bounds(b.r0, b.r0 + max(nrows, 1), b.c0, b.c0 + max(ncols, 1))
    if not append_rows and ((area.r1 or 0) > sheet.rows or (area.c1 or 0) > sheet.cols):
        raise grid_limit_error(sheet, area)
    if append_rows and (area.c1 or 0) > sheet.cols:
        raise grid_limit_error(sheet, area)
    response: dict[str, Any] = {"spreadsheetId": ss.id}
    if nrows and ncols:
        response.update(
            updatedRange=f"{quote_title(sheet.title)}!{area.a1()}",
            updatedRows=nrows,
            updatedColumns=ncols,
            updatedCells=sum(1 for row in values for v in row if v is not None),
        )
    else:
        response["updatedRange"] = f"{quote_title(sheet.title)}!{Bounds(b.r0, b.r0 + 1, b.c0, b.c0 + 1).a1()}"
    return PlannedWrite(sheet, b.r0, b.c0, values, response)


def apply_write(plan: PlannedWrite, input_option: str) -> None:
    for i, row in enumerate(plan.rows):
        for j, value in enumerate(row):
            write_user_value(plan.sheet, plan.r0 + i, plan.c0 + j, value, input_option)


def _input_option(value: Any) -> str:
    if value in (None, "", "INPUT_VALUE_OPTION_UNSPECIFIED"):
        raise bad_request("'valueInputOption' is required but not specified")
    if value not in ("RAW", "USER_ENTERED"):
        raise bad_request(_invalid_enum("value_input_option", "ValueInputOption", value))
    return value


def _updated_data(ss: Spreadsheet, plan: PlannedWrite, params: dict[str, Any]) -> dict[str, Any]:
    value_render, datetime_render = _render_params(params, "response")
    sheet = plan.sheet
    height = max(len(plan.rows), 1)
    width = max((len(r) for r in plan.rows), default=1) or 1
    b = Bounds(plan.r0, plan.r0 + height, plan.c0, plan.c0 + width)
    values = Renderer(ss).read(sheet, b, "ROWS", value_render, datetime_render)
    out: dict[str, Any] = {"range": range_label(sheet, b), "majorDimension": "ROWS"}
    if values:
        out["values"] = values
    return out


def values_update(ss: Spreadsheet, text: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    option = _input_option(params.get("valueInputOption"))
    plan = plan_values_update(ss, text, body, option)
    apply_write(plan, option)
    if _truthy(params.get("includeValuesInResponse")):
        plan.response["updatedData"] = _updated_data(ss, plan, params)
    return plan.response


def values_batch_update(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    option = _input_option(body.get("valueInputOption"))
    plans = []
    for i, item in enumerate(body.get("data") or []):
        plans.append(plan_values_update(ss, item.get("range", ""), item, option, where=f"data[{i}].values"))
    for plan in plans:
        apply_write(plan, option)
    out: dict[str, Any] = {"spreadsheetId": ss.id}
    if plans:
        rows, cols, sheets = set(), set(), set()
        for plan in plans:
            sheets.add(plan.sheet.id)
            for i, row in enumerate(plan.rows):
                rows.add((plan.sheet.id, plan.r0 + i))
                for j in range(len(row)):
                    cols.add((plan.sheet.id, plan.c0 + j))
        out.update(
            totalUpdatedRows=len(rows),
            totalUpdatedColumns=len(cols),
            totalUpdatedCells=sum(p.response.get("updatedCells", 0) for p in plans),
            totalUpdatedSheets=len(sheets),
        )
        if _truthy(body.get("includeValuesInResponse")):
            for plan in plans:
                plan.response["updatedData"] = _updated_data(ss, plan, body)
        out["responses"] = [p.response for p in plans]
    return out


def _table_bounds(sheet: Sheet, b: Bounds) -> Bounds | None:
    """The "logical table" values.append appends to: the block of data around the last filled cell."""
    single = b.r1 == b.r0 + 1 and b.c1 == b.c0 + 1
    area = Bounds(0, sheet.rows, 0, sheet.cols) if single else b.clip(sheet.rows, sheet.cols)
    assert area.r1 is not None and area.c1 is not None
    filled = {
        key
        for key, cell in sheet.cells.items()
        if "userEnteredValue" in cell and area.r0 <= key[0] < area.r1 and area.c0 <= key[1] < area.c1
    }
    seed = ((b.r0, b.c0) if (b.r0, b.c0) in filled else None) if single else max(filled) if filled else None
    if seed is None:
        return None
    component, todo = {seed}, [seed]
    while todo:
        r, c = todo.pop()
        for nb in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if nb in filled and nb not in component:
                component.add(nb)
                todo.append(nb)
    rows = [k[0] for k in component]
    cols = [k[1] for k in component]
    return Bounds(min(rows), max(rows) + 1, min(cols), max(cols) + 1)


def values_append(ss: Spreadsheet, text: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    option = _input_option(params.get("valueInputOption"))
    sheet, b = resolve_range(ss, text)
    if b.r0 >= sheet.rows or b.c0 >= sheet.cols:
        raise grid_limit_error(sheet, b)
    insert = params.get("insertDataOption", "OVERWRITE")
    if insert not in ("OVERWRITE", "INSERT_ROWS"):
        raise bad_request(_invalid_enum("insert_data_option", "InsertDataOption", insert))
    table = _table_bounds(sheet, b)
    start_row, start_col = (table.r1, table.c0) if table else (b.r0, b.c0)
    assert start_row is not None
    target = f"{quote_title(sheet.title)}!{col_letters(start_col)}{start_row + 1}"
    sheet_rows_before = sheet.rows
    values = _check_values(body.get("values"), "data.values")
    nrows = (
        len(values) if (body.get("majorDimension") or "ROWS") != "COLUMNS" else max((len(c) for c in values), default=0)
    )
    if insert == "INSERT_ROWS" and nrows:
        _shift_sheet(ss, sheet, "ROWS", start_row, nrows, None)
        sheet.properties["gridProperties"]["rowCount"] += nrows
    elif start_row + nrows > sheet.rows:
        sheet.properties["gridProperties"]["rowCount"] = start_row + nrows
    try:
        _check_total_cells(ss)
        if start_row >= sheet.rows:
            raise grid_limit_error(sheet, Bounds(start_row, start_row + 1, start_col, start_col + 1))
        plan = plan_values_update(ss, target, body, option, append_rows=True)
    except (ApiError, RequestInvalid):
        sheet.properties["gridProperties"]["rowCount"] = sheet_rows_before
        raise
    apply_write(plan, option)
    if _truthy(params.get("includeValuesInResponse")):
        plan.response["updatedData"] = _updated_data(ss, plan, params)
    out: dict[str, Any] = {"spreadsheetId": ss.id}
    if table is not None:
        out["tableRange"] = f"{quote_title(sheet.title)}!{table.a1()}"
    out["updates"] = plan.response
    return out


def values_clear(ss: Spreadsheet, text: str) -> str:
    sheet, b = resolve_range(ss, text)
    if b.r0 >= sheet.rows or b.c0 >= sheet.cols:
        raise grid_limit_error(sheet, b)
    clipped = b.clip(sheet.rows, sheet.cols)
    assert clipped.r1 is not None and clipped.c1 is not None
    for r, c in list(sheet.cells):
        if clipped.r0 <= r < clipped.r1 and clipped.c0 <= c < clipped.c1:
            sheet.cells[(r, c)].pop("userEnteredValue", None)
            sheet.drop_if_empty(r, c)
    return range_label(sheet, clipped)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


# --------------------------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Request:
    """One request the fake answered (or refused): what a test asserts on via `SheetsFake.log`."""

    method: str
    path: str
    query: dict[str, Any]
    body_bytes: int
    status: int
    body: bytes = field(default=b"", repr=False)
    injected: bool = False
    duration: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Injection:
    """A fault to inject: requests matching `method` and the `path` regex get `status` and/or `delay`."""

    method: str | None
    path: re.Pattern[str]
    status: int | None
    delay: float
    times: int | None
    after: int
    body: dict[str, Any] | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return bool(self.path.search(path))

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass
class _Token:
    scopes: set[str]
    expires: float


class _Handler(WSGIRequestHandler):
    """werkzeug's handler, quiet, and tracking open connections so stop() can close them."""

    def setup(self) -> None:
        super().setup()
        self.server.fake_connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.fake_connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("POST", r"^/token$", "token"),
        ("POST", r"^/v4/spreadsheets$", "create_spreadsheet"),
        ("GET", r"^/v4/spreadsheets/(?P<sid>[^/:]+)$", "get_spreadsheet"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+):batchUpdate$", "batch_update"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+):getByDataFilter$", "unimplemented"),
        ("GET", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values:batchGet$", "values_batch_get"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values:batchUpdate$", "values_batch_update"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values:batchClear$", "values_batch_clear"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values:batch(Get|Update|Clear)ByDataFilter$", "unimplemented"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values/(?P<range>.+):append$", "values_append"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values/(?P<range>.+):clear$", "values_clear"),
        ("GET", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values/(?P<range>.+)$", "values_get"),
        ("PUT", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/values/(?P<range>.+)$", "values_update"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/sheets/(?P<sheet>\d+):copyTo$", "copy_to"),
        ("GET", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/developerMetadata/(?P<mid>\d+)$", "metadata_get"),
        ("POST", r"^/v4/spreadsheets/(?P<sid>[^/:]+)/developerMetadata:search$", "metadata_search"),
        ("POST", r"^/drive/v3/files$", "drive_create"),
        ("GET", r"^/drive/v3/files$", "drive_list"),
        ("GET", r"^/drive/v3/files/(?P<fid>[^/]+)$", "drive_get"),
        ("PATCH", r"^/drive/v3/files/(?P<fid>[^/]+)$", "drive_patch"),
        ("DELETE", r"^/drive/v3/files/(?P<fid>[^/]+)$", "drive_delete"),
        ("POST", r"^/drive/v3/files/(?P<fid>[^/]+)/copy$", "drive_copy"),
        ("GET", r"^/drive/v3/files/(?P<fid>[^/]+)/export$", "drive_export"),
        ("GET", r"^/drive/v3/files/(?P<fid>[^/]+)/comments$", "comments_list"),
        ("POST", r"^/drive/v3/files/(?P<fid>[^/]+)/comments$", "comments_create"),
        ("GET", r"^/drive/v3/files/(?P<fid>[^/]+)/permissions$", "permissions_list"),
        ("POST", r"^/drive/v3/files/(?P<fid>[^/]+)/permissions$", "permissions_create"),
        ("GET", r"^/drive/v3/files/(?P<fid>[^/]+)/permissions/(?P<pid>[^/]+)$", "permissions_get"),
        ("PATCH", r"^/drive/v3/files/(?P<fid>[^/]+)/permissions/(?P<pid>[^/]+)$", "permissions_update"),
        ("DELETE", r"^/drive/v3/files/(?P<fid>[^/]+)/permissions/(?P<pid>[^/]+)$", "permissions_delete"),
        ("PUT", r"^/upload/drive/v2/files/(?P<fid>[^/]+)$", "import_csv"),
        ("POST", r"^/upload/drive/v3/files$", "unimplemented"),
    ]
]  # fmt: skip

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


_FAKE_TOKEN_URIS: set[str] = set()
_GUARD_LOCK = threading.Lock()
_GUARD_ORIGINAL: list[Any] = []


def _guard_regional_access_boundary(token_uri: str, active: bool) -> None:
    """Keep google-auth (2.5x+) from looking up "allowedLocations" at iamcredentials.googleapis.com.

    After each token refresh, recent google-auth starts a background request to the real IAM
    Credentials API; the fake cannot receive it (the host is not rewritten), offline it fails on DNS,
    online it would call Google. Only credentials whose token_uri is a running fake are affected.
    """
    try:
        from google.auth.credentials import CredentialsWithRegionalAccessBoundary as Base
    except ImportError:  # older google-auth: no such lookup
        return
    if not hasattr(Base, "_is_regional_access_boundary_lookup_required"):
        return
    with _GUARD_LOCK:
        if active:
            _FAKE_TOKEN_URIS.add(token_uri)
        else:
            _FAKE_TOKEN_URIS.discard(token_uri)
        if _FAKE_TOKEN_URIS and not _GUARD_ORIGINAL:
            original = Base._is_regional_access_boundary_lookup_required
            _GUARD_ORIGINAL.append(original)

            def lookup_required(self: Any) -> bool:
                if getattr(self, "_token_uri", None) in _FAKE_TOKEN_URIS:
                    return False
                return original(self)

            Base._is_regional_access_boundary_lookup_required = lookup_required  # type: ignore[method-assign]
        elif not _FAKE_TOKEN_URIS and _GUARD_ORIGINAL:
            Base._is_regional_access_boundary_lookup_required = _GUARD_ORIGINAL.pop()  # type: ignore[method-assign]


class SheetsFake:
    """In-memory Google Sheets v4 + Drive v3 served on 127.0.0.1 (see the module docstring for its scope)."""

    def __init__(self, project_id: str = "plansheet-fake", client_email: str | None = None):
        self.project_id = project_id
        self.client_email = client_email or f"plansheet-sync@{project_id}.iam.gserviceaccount.com"
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.log: list[Request] = []
        self.notifications: list[dict[str, Any]] = []
        self.max_request_bytes = 10 * 2**20
        self.base_url = ""
        self._lock = threading.RLock()
        self._injections: list[Injection] = []
        self._tokens: dict[str, _Token] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = secrets.token_hex(20)
        self._client_id = str(random.randint(10**20, 10**21 - 1))
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_size = threading.local()

    # ----------------------------------------------------------------------------------------- lifecycle

    @classmethod
    @contextlib.contextmanager
    def serve(cls, **kwargs: Any) -> Iterator[SheetsFake]:
        """Start a fake on a free port of 127.0.0.1; it stops (and closes every socket) on exit."""
        fake = cls(**kwargs)
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()

    def start(self) -> None:
        self._server = make_server("127.0.0.1", 0, self.wsgi_app, threaded=True, request_handler=_Handler)
        self._server.fake_connections = set()
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sheets-fake", daemon=True
        )
        self._thread.start()
        _guard_regional_access_boundary(f"{self.base_url}/token", active=True)

    def stop(self) -> None:
        if self._server is None:
            return
        _guard_regional_access_boundary(f"{self.base_url}/token", active=False)
        self._stopping.set()
        self._server.shutdown()
        for conn in list(self._server.fake_connections):
            with contextlib.suppress(OSError):
                conn.shutdown(2)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + 5
        while self._server.fake_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        self._server = None

    # ----------------------------------------------------------------------------------------- test hooks

    def service_account_info(self) -> dict[str, Any]:
        """A service-account key like the JSON file Google issues, whose token_uri is this fake."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self._key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": self._client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{self.client_email}",
            "universe_domain": "googleapis.com",
        }

    def inject(
        self,
        method: str | None = None,
        path: str = "",
        status: int | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        after: int = 0,
        body: dict[str, Any] | None = None,
    ) -> Injection:
        """Fail or slow down matching requests: skip `after` matches, then affect `times` (None: all) of them.

        `path` is a regular expression searched in the URL path (e.g. r":batchUpdate$"); `status` answers
        with the body the real API sends for that code (or `body`), `delay` sleeps before answering.
        """
        injection = Injection(method, re.compile(path), status, delay, times, after, body)
        with self._lock:
            self._injections.append(injection)
        return injection

    def reset(self) -> None:
        """Forget every spreadsheet, injection, notification and logged request (issued tokens stay valid)."""
        with self._lock:
            self.spreadsheets.clear()
            self._injections.clear()
            self.notifications.clear()
            self.log.clear()

    def clear_injections(self) -> None:
        with self._lock:
            self._injections.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def expire_tokens(self) -> None:
        """Make every issued access token invalid (the next call gets 401 and google-auth refreshes)."""
        with self._lock:
            self._tokens.clear()

    def grid(self, spreadsheet_id: str, a1: str) -> list[list[Any]]:
        """Effective values of a range, as values.get with UNFORMATTED_VALUE returns them (trimmed rows)."""
        with self._lock:
            return values_get(self.spreadsheets[spreadsheet_id], a1, {"valueRenderOption": "UNFORMATTED_VALUE"}).get(
                "values", []
            )

    def formatted(self, spreadsheet_id: str, a1: str) -> list[list[Any]]:
        """Values of a range as the user sees them (FORMATTED_VALUE)."""
        with self._lock:
            return values_get(self.spreadsheets[spreadsheet_id], a1, {}).get("values", [])

    def cell(self, spreadsheet_id: str, a1: str) -> dict[str, Any]:
        """The stored CellData of one cell (userEnteredValue, userEnteredFormat, note, dataValidation...)."""
        with self._lock:
            sheet, b = resolve_range(self.spreadsheets[spreadsheet_id], a1)
            return copy.deepcopy(sheet.cells.get((b.r0, b.c0), {}))

    def resource(self, spreadsheet_id: str, include_grid: bool = False) -> dict[str, Any]:
        """The spreadsheet as spreadsheets.get returns it."""
        with self._lock:
            return spreadsheet_json(self.spreadsheets[spreadsheet_id], include_grid, [])

    def permissions(self, spreadsheet_id: str) -> list[dict[str, Any]]:
        """Drive permissions of a file (the owner's included), as the API lists them."""
        with self._lock:
            return copy.deepcopy(self.spreadsheets[spreadsheet_id].permissions)

    def add_spreadsheet(
        self, title: str, sheet_titles: tuple[str, ...] = ("Sheet1",), owner: str | None = None, shared: bool = True
    ) -> Spreadsheet:
        """Seed a spreadsheet directly, e.g. one a person owns and shared (or not) with the service account."""
        with self._lock:
            ss = self._new_spreadsheet(title, owner=owner or self.client_email)
            for i, name in enumerate(sheet_titles):
                ss.add_sheet({"title": name} if i else {"title": name, "sheetId": 0})
            if owner and owner != self.client_email and shared:
                self._add_permission(ss, {"type": "user", "role": "writer", "emailAddress": self.client_email})
            if not shared:
                ss.permissions = [p for p in ss.permissions if p.get("emailAddress") != self.client_email]
            return ss

    def rewrite_url(self, url: str) -> str:
        """Point a Google API URL (sheets.googleapis.com / www.googleapis.com) at this fake."""
        for host in ("https://sheets.googleapis.com", "https://www.googleapis.com"):
            if url.startswith(host):
                return self.base_url + url[len(host) :]
        return url

    def http_client_class(self, base: type[Any] | None = None) -> type[Any]:
        """A gspread HTTP client class (HTTPClient, or `base` such as BackOffHTTPClient) talking to this fake."""
        from gspread.http_client import HTTPClient

        fake = self

        class FakeHTTPClient(base or HTTPClient):  # type: ignore[misc, valid-type]
            def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
                return super().request(method, fake.rewrite_url(endpoint), *args, **kwargs)

        return FakeHTTPClient

    # ----------------------------------------------------------------------------------------- WSGI

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.monotonic()
        req = WRequest(environ)
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or req.path
        raw_path = raw_path.split("?", 1)[0]
        if raw_path.startswith("http://") or raw_path.startswith("https://"):
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        path = unquote(raw_path)
        query: dict[str, Any] = {}
        for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            if key in query:
                query[key] = [*query[key], value] if isinstance(query[key], list) else [query[key], value]
            else:
                query[key] = value
        body, too_big = self._read_body(req)
        injection = None if too_big else self._take_injection(req.method, path)
        if injection and injection.delay:
            self._stopping.wait(injection.delay)
        if too_big:
            status, payload, headers = self._error_response(
                sheets_error(400, f"Request payload size exceeds the limit: {self.max_request_bytes} bytes.")
                if not path.startswith("/drive") and not path.startswith("/upload")
                else drive_error(
                    400, f"Request payload size exceeds the limit: {self.max_request_bytes} bytes.", "badRequest"
                )
            )
        elif injection and injection.status:
            error = (
                ApiError(injection.status, injection.body)
                if injection.body
                else self._injected_error(injection.status, req.method, path)
            )
            status, payload, headers = self._error_response(error)
        else:
            status, payload, headers = self._dispatch(req.method, raw_path, path, query, body, req)
        body_bytes = self._last_size.value
        record = Request(
            req.method,
            path,
            query,
            body_bytes,
            status,
            body,
            injected=bool(injection and injection.status),
            duration=time.monotonic() - started,
        )
        with self._lock:
            self.log.append(record)
        if isinstance(payload, (bytes, str)):
            response = Response(payload, status=status, headers=headers)
        elif payload is None:
            response = Response(b"", status=status, headers=headers)
        else:
            response = Response(json.dumps(payload, ensure_ascii=False, indent=2), status=status, headers=headers)
            response.headers["Content-Type"] = "application/json; charset=UTF-8"
        return response(environ, start_response)

    def _read_body(self, req: WRequest) -> tuple[bytes, bool]:
        """Read the body; past max_request_bytes drain and drop it, so the client sees the answer, not a reset."""
        stream = req.stream
        length = req.headers.get("Content-Length")
        limit = self.max_request_bytes
        chunks, total = [], 0
        remaining = int(length) if length and length.isdigit() else None
        while True:
            size = 1 << 16 if remaining is None else min(1 << 16, remaining)
            if size <= 0:
                break
            chunk = stream.read(size)
            if not chunk:
                break
            total += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            if total <= limit:
                chunks.append(chunk)
        self._last_size.value = total
        return (b"".join(chunks), False) if total <= limit else (b"", True)

    def _take_injection(self, method: str, path: str) -> Injection | None:
        with self._lock:
            for injection in self._injections:
                if injection.exhausted or not injection.matches(method, path):
                    continue
                injection.seen += 1
                if injection.seen <= injection.after:
                    continue
                injection.fired += 1
                return injection
        return None

    def _injected_error(self, status: int, method: str, path: str) -> ApiError:
        drive = path.startswith("/drive") or path.startswith("/upload")
        if status == 429 and not drive:
            kind = "Read" if method == "GET" else "Write"
            number = "".join(ch for ch in self._client_id[:12])
            message = _DEFAULT_MESSAGES[429].format(kind=kind, project=number)
            return sheets_error(
                429,
                message,
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                        "metadata": {
                            "consumer": f"projects/{number}",
                            "quota_limit": f"{kind}RequestsPerMinutePerUser",
                            "quota_limit_value": "60",
                            "quota_location": "global",
                            "quota_metric": f"sheets.googleapis.com/{kind.lower()}_requests",
                            "service": "sheets.googleapis.com",
                        },
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.Help",
                        "links": [
                            {
                                "description": "Request a higher quota limit.",
                                "url": "https://cloud.google.com/docs/quota#requesting_higher_quota",
                            }
                        ],
                    },
                ],
            )
        if drive:
            reasons = {
                403: ("User rate limit exceeded.", "userRateLimitExceeded", "usageLimits"),
                429: ("Rate Limit Exceeded", "rateLimitExceeded", "usageLimits"),
                500: ("Internal Error", "internalError", "global"),
                503: ("Service Unavailable", "backendError", "global"),
            }
            message, reason, domain = reasons.get(status, (_DEFAULT_MESSAGES.get(status, "Error"), "error", "global"))
            return drive_error(status, message, reason, domain=domain)
        if status == 401:
            return self._unauthenticated(path, missing=False)
        return sheets_error(status)

    def _error_response(self, error: ApiError) -> tuple[int, Any, dict[str, str]]:
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        return error.status, error.body, headers

    def _dispatch(
        self, method: str, raw_path: str, path: str, query: dict[str, Any], body: bytes, req: WRequest
    ) -> tuple[int, Any, dict[str, str]]:
        known_path = False
        for route_method, pattern, name in _ROUTES:
            m = pattern.match(raw_path)
            if not m:
                continue
            known_path = True
            if route_method != method:
                continue
            args = {k: unquote(v) for k, v in m.groupdict().items()}
            try:
                if name != "token":
                    self._authorize(req, path, method)
                handler = getattr(self, "_api_" + name)
                with self._lock:
                    result = handler(body=body, query=query, req=req, **args)
                if isinstance(result, tuple):
                    return result
                return (200 if result is not None else 204), result, {}
            except ApiError as err:
                return self._error_response(err)
            except NotImplementedByFake as exc:
                return self._error_response(sheets_error(501, f"Not implemented by the Sheets fake: {exc}"))
            except Exception as exc:  # a bug in the fake: answer like Google's 500, with the cause for the test log
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                return self._error_response(sheets_error(500, f"Internal error encountered. (fake: {detail})"))
        if known_path:
            return self._error_response(sheets_error(404, f"Method {method} is not supported at {path}."))
        return self._error_response(sheets_error(404, f"The Sheets fake has no endpoint {method} {path}."))

    # ----------------------------------------------------------------------------------------- auth

    def _unauthenticated(self, path: str, missing: bool) -> ApiError:
        if missing:
            message = (
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project."
            )
        else:
            message = _DEFAULT_MESSAGES[401]
        if path.startswith("/drive") or path.startswith("/upload"):
            body = {
                "error": {
                    "code": 401,
                    "message": message,
                    "errors": [
                        {
                            "message": "Login Required." if missing else "Invalid Credentials",
                            "domain": "global",
                            "reason": "required" if missing else "authError",
                            "location": "Authorization",
                            "locationType": "header",
                        }
                    ],
                    "status": "UNAUTHENTICATED",
                }
            }
            return ApiError(401, body)
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CREDENTIALS_MISSING" if missing else "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "domain": "googleapis.com",
                "metadata": {"service": "sheets.googleapis.com", "method": "google.apps.sheets.v4.SpreadsheetsService"},
            }
        ]
        return sheets_error(401, message, details)

    def _authorize(self, req: WRequest, path: str, method: str) -> None:
        header = req.headers.get("Authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise self._unauthenticated(path, missing=True)
        token = header[7:].strip()
        with self._lock:
            info = self._tokens.get(token)
        if info is None and token.count(".") == 2:
            claims = self._verify_jwt(token, audiences=None)
            if claims is not None:
                info = _Token(
                    set(str(claims.get("scope", "")).split()) or set(SHEETS_SCOPES | DRIVE_SCOPES), claims["exp"]
                )
        if info is None or info.expires < time.time():
            raise self._unauthenticated(path, missing=False)
        drive = path.startswith("/drive") or path.startswith("/upload")
        needed = (
            (DRIVE_SCOPES if method in _WRITE_METHODS else DRIVE_READ_SCOPES)
            if drive
            else (SHEETS_SCOPES if method in _WRITE_METHODS or path.endswith(":search") else SHEETS_READ_SCOPES)
        )
        if not info.scopes & needed and info.scopes != {""}:
            if drive:
                raise drive_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
            raise sheets_error(
                403,
                "Request had insufficient authentication scopes.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                        "domain": "googleapis.com",
                        "metadata": {
                            "service": "sheets.googleapis.com",
                            "method": "google.apps.sheets.v4.SpreadsheetsService",
                        },
                    }
                ],
            )

    def _verify_jwt(self, assertion: str, audiences: set[str] | None) -> dict[str, Any] | None:
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            if header.get("alg") != "RS256":
                return None
            self._key.public_key().verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{payload_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if claims.get("iss") != self.client_email or float(claims.get("exp", 0)) < time.time() - 60:
            return None
        if audiences is not None and claims.get("aud") not in audiences:
            return None
        return claims

    def _api_token(self, body: bytes, req: WRequest, **_: Any) -> tuple[int, Any, dict[str, str]]:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}, {}
        claims = self._verify_jwt(form.get("assertion", ""), {GOOGLE_TOKEN_AUDIENCE, f"{self.base_url}/token"})
        if claims is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {}
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes:
            return (
                400,
                {"error": "invalid_scope", "error_description": "Invalid OAuth scope or ID token audience provided."},
                {},
            )
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(scopes, time.time() + 3599)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {}

    # ----------------------------------------------------------------------------------------- helpers

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(parsed, dict):
            raise bad_request(f"Invalid JSON payload received. Expected an object, got {type(parsed).__name__}.")
        return parsed

    def _can_access(self, ss: Spreadsheet) -> bool:
        return ss.owner == self.client_email or any(
            p.get("emailAddress") == self.client_email or p.get("type") == "anyone" for p in ss.permissions
        )

    def _spreadsheet(self, sid: str, write: bool = False) -> Spreadsheet:
        ss = self.spreadsheets.get(sid)
        if ss is None:
            raise sheets_error(404, "Requested entity was not found.")
        if not self._can_access(ss):
            raise sheets_error(403, "The caller does not have permission")
        if write and ss.owner != self.client_email:
            roles = {
                p["role"] for p in ss.permissions if p.get("emailAddress") == self.client_email or p["type"] == "anyone"
            }
            if not roles & {"owner", "writer", "organizer", "fileOrganizer"}:
                raise sheets_error(403, "The caller does not have permission")
        return ss

    def _file(self, fid: str) -> Spreadsheet:
        ss = self.spreadsheets.get(fid)
        if ss is None or not self._can_access(ss):
            raise drive_error(404, f"File not found: {fid}.", "notFound", location="fileId")
        return ss

    def _new_spreadsheet(self, title: str, owner: str | None = None) -> Spreadsheet:
        sid = _file_id()
        ss = Spreadsheet(sid, title, owner or self.client_email)
        owner_email = owner or self.client_email
        ss.permissions.append(
            {
                "kind": "drive#permission",
                "id": str(random.randint(10**19, 10**20 - 1)),
                "type": "user",
                "emailAddress": owner_email,
                "role": "owner",
                "displayName": owner_email.split("@")[0],
                "deleted": False,
                "pendingOwner": False,
            }
        )
        self.spreadsheets[sid] = ss
        return ss

    # ----------------------------------------------------------------------------------------- Sheets API

    def _api_create_spreadsheet(self, body: bytes, **_: Any) -> dict[str, Any]:
        data = self._json_body(body)
        validate_payload(data, "@Spreadsheet")
        props = data.get("properties") or {}
        ss = self._new_spreadsheet(props.get("title") or "Untitled spreadsheet")
        for key in ("locale", "timeZone", "autoRecalc"):
            if props.get(key):
                ss.properties[key] = props[key]
        try:
            sheets = data.get("sheets") or [{"properties": {"sheetId": 0}}]
            for item in sheets:
                sheet_props = dict(item.get("properties") or {})
                sheet = ss.add_sheet(sheet_props)
                for grid in item.get("data") or []:
                    r0, c0 = int(grid.get("startRow", 0) or 0), int(grid.get("startColumn", 0) or 0)
                    for i, row in enumerate(grid.get("rowData") or []):
                        for j, cell in enumerate(row.get("values") or []):
                            _apply_cell_data(sheet, r0 + i, c0 + j, cell, "*")
                for merge in item.get("merges") or []:
                    sheet.merges.append(bounds_from_gridrange(merge).closed(sheet.rows, sheet.cols))
            for named in data.get("namedRanges") or []:
                _h_add_named_range(ss, {"namedRange": named})
        except RequestInvalid as exc:
            del self.spreadsheets[ss.id]
            raise bad_request(str(exc)) from None
        return spreadsheet_json(ss, False, [])

    def _api_get_spreadsheet(self, sid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid)
        ranges = query.get("ranges") or []
        ranges = [ranges] if isinstance(ranges, str) else ranges
        tree = parse_field_mask(query["fields"]) if query.get("fields") else None
        wants_data = tree is not None and isinstance(tree.get("sheets"), dict) and "data" in tree["sheets"]
        result = spreadsheet_json(ss, _truthy(query.get("includeGridData")) or wants_data, ranges)
        return apply_field_mask(result, tree)

    def _api_batch_update(self, sid: str, body: bytes, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        data = self._json_body(body)
        validate_payload(data, "@BatchUpdateSpreadsheetRequest")
        requests = data.get("requests")
        if not requests:
            raise bad_request("Must specify at least one request.")
        if not isinstance(requests, list):
            raise bad_request(
                "Invalid value at 'requests' (type.googleapis.com/google.apps.sheets.v4.Request), not a list"
            )
        work = _clone(ss)
        replies = []
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or not item:
                raise bad_request(f"Invalid requests[{i}]: No request set.")
            kinds = list(item)
            if len(kinds) > 1:
                raise bad_request(
                    f"Invalid value at 'requests[{i}]' (oneof), oneof field 'kind' is already set. "
                    f"Cannot set '{kinds[1]}'"
                )
            kind = kinds[0]
            handler = _BATCH_HANDLERS.get(kind)
            if handler is None:
                if kind in _KNOWN_UNIMPLEMENTED:
                    raise NotImplementedByFake(f"batchUpdate request kind {kind!r}")
                message = (
                    f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': Cannot find field."
                )
                raise sheets_error(
                    400,
                    message,
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": f"requests[{i}]", "description": message}],
                        }
                    ],
                )
            try:
                reply = handler(work, item[kind] or {})
            except RequestInvalid as exc:
                raise bad_request(f"Invalid requests[{i}].{kind}: {exc}") from None
            except ApiError as err:
                raise bad_request(f"Invalid requests[{i}].{kind}: {err}") from None
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise bad_request(f"Invalid requests[{i}].{kind}: {type(exc).__name__}: {exc}") from None
            replies.append(reply or {})
        ss.__dict__.update(work.__dict__)
        ss.touch()
        out: dict[str, Any] = {"spreadsheetId": ss.id, "replies": replies}
        if _truthy(data.get("includeSpreadsheetInResponse")):
            out["updatedSpreadsheet"] = spreadsheet_json(
                ss, _truthy(data.get("responseIncludeGridData")), list(data.get("responseRanges") or [])
            )
        return out

    def _api_values_get(self, sid: str, range: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        return values_get(self._spreadsheet(sid), range, query)

    def _api_values_batch_get(self, sid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid)
        ranges = query.get("ranges") or []
        ranges = [ranges] if isinstance(ranges, str) else ranges
        out: dict[str, Any] = {"spreadsheetId": ss.id}
        if ranges:
            out["valueRanges"] = [values_get(ss, r, query) for r in ranges]
        return out

    def _api_values_update(self, sid: str, range: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        data = self._json_body(body)
        validate_payload(data, "@ValueRange", "data")
        result = values_update(ss, range, data, query)
        ss.touch()
        return result

    def _api_values_batch_update(self, sid: str, body: bytes, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        data = self._json_body(body)
        validate_payload(data, "@BatchUpdateValuesRequest")
        result = values_batch_update(ss, data)
        ss.touch()
        return result

    def _api_values_append(self, sid: str, range: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        data = self._json_body(body)
        validate_payload(data, "@ValueRange", "data")
        work = _clone(ss) if query.get("insertDataOption") == "INSERT_ROWS" else ss
        result = values_append(work, range, data, query)
        if work is not ss:
            ss.__dict__.update(work.__dict__)
        ss.touch()
        return result

    def _api_values_clear(self, sid: str, range: str, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        cleared = values_clear(ss, range)
        ss.touch()
        return {"spreadsheetId": ss.id, "clearedRange": cleared}

    def _api_values_batch_clear(self, sid: str, body: bytes, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid, write=True)
        data = self._json_body(body)
        validate_payload(data, "@BatchClearValuesRequest")
        ranges = data.get("ranges") or []
        for text in ranges:
            resolve_range(ss, text)
        cleared = [values_clear(ss, text) for text in ranges]
        ss.touch()
        out: dict[str, Any] = {"spreadsheetId": ss.id}
        if cleared:
            out["clearedRanges"] = cleared
        return out

    def _api_copy_to(self, sid: str, sheet: str, body: bytes, **_: Any) -> dict[str, Any]:
        source = self._spreadsheet(sid)
        dest_id = self._json_body(body).get("destinationSpreadsheetId")
        if not dest_id:
            raise bad_request("Invalid destinationSpreadsheetId")
        dest = self._spreadsheet(dest_id, write=True)
        try:
            original = source.sheet_by_id(int(sheet))
        except RequestInvalid:
            raise sheets_error(404, "Requested entity was not found.") from None
        title, n = f"Copy of {original.title}", 2
        while dest.sheet_by_title(title) is not None:
            title, n = f"Copy of {original.title} {n}", n + 1
        props = copy.deepcopy(original.properties)
        props.pop("sheetId")
        props.pop("index")
        props["title"] = title
        try:
            new = dest.add_sheet(props)
        except RequestInvalid as exc:
            raise bad_request(str(exc)) from None
        for attr in ("cells", "merges", "banded_ranges", "conditional_formats", "row_meta", "col_meta"):
            setattr(new, attr, copy.deepcopy(getattr(original, attr)))
        dest.touch()
        return new.properties_json()

    def _api_metadata_get(self, sid: str, mid: str, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid)
        for meta in ss.developer_metadata:
            if meta["metadataId"] == int(mid):
                return copy.deepcopy(meta)
        raise sheets_error(404, f"No developer metadata with ID: {mid}")

    def _api_metadata_search(self, sid: str, body: bytes, **_: Any) -> dict[str, Any]:
        ss = self._spreadsheet(sid)
        data = self._json_body(body)
        validate_payload(data, "@SearchDeveloperMetadataRequest")
        filters = data.get("dataFilters") or []
        matched = []
        for data_filter in filters:
            for meta in matching_metadata(ss, [data_filter]):
                matched.append({"developerMetadata": copy.deepcopy(meta), "dataFilters": [data_filter]})
        return {"matchedDeveloperMetadata": matched} if matched else {}

    def _api_unimplemented(self, **_: Any) -> dict[str, Any]:
        raise NotImplementedByFake("this endpoint")

    # ----------------------------------------------------------------------------------------- Drive API

    def _file_json(self, ss: Spreadsheet) -> dict[str, Any]:
        owner = next((p for p in ss.permissions if p["role"] == "owner"), None)
        return {
            "kind": "drive#file",
            "id": ss.id,
            "name": ss.title,
            "mimeType": SPREADSHEET_MIME,
            "starred": False,
            "trashed": False,
            "explicitlyTrashed": False,
            "parents": list(ss.parents) or ["0AFakeRootFolder"],
            "spaces": ["drive"],
            "version": "1",
            "webViewLink": f"https://docs.google.com/spreadsheets/d/{ss.id}/edit?usp=drivesdk",
            "iconLink": f"https://drive-thirdparty.googleusercontent.com/16/type/{SPREADSHEET_MIME}",
            "hasThumbnail": False,
            "viewedByMe": True,
            "createdTime": ss.created_time,
            "modifiedTime": ss.modified_time,
            "modifiedByMe": True,
            "owners": [
                {
                    "kind": "drive#user",
                    "displayName": (owner or {}).get("displayName", ""),
                    "me": (owner or {}).get("emailAddress") == self.client_email,
                    "permissionId": (owner or {}).get("id", ""),
                    "emailAddress": (owner or {}).get("emailAddress", ""),
                }
            ],
            "shared": len(ss.permissions) > 1,
            "ownedByMe": ss.owner == self.client_email,
            "capabilities": {
                "canEdit": True,
                "canCopy": True,
                "canShare": True,
                "canDelete": ss.owner == self.client_email,
            },
            "permissionIds": [p["id"] for p in ss.permissions],
            "size": "1024",
        }

    @staticmethod
    def _project(resource: dict[str, Any], query: dict[str, Any], default: tuple[str, ...]) -> dict[str, Any]:
        if query.get("fields"):
            return apply_field_mask(resource, parse_field_mask(query["fields"]))
        return {k: resource[k] for k in default if k in resource}

    def _api_drive_create(self, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        data = self._json_body(body)
        if data.get("mimeType") != SPREADSHEET_MIME:
            raise NotImplementedByFake(f"creating Drive files of type {data.get('mimeType')!r}")
        ss = self._new_spreadsheet(data.get("name") or "Untitled spreadsheet")
        ss.add_sheet({"sheetId": 0, "title": "Sheet1"})
        ss.parents = list(data.get("parents") or [])
        return self._project(self._file_json(ss), query, ("kind", "id", "name", "mimeType"))

    _Q_CLAUSE = re.compile(
        r"""^\s*(?:(?P<field>mimeType|name|trashed|starred)\s*(?P<op>=|!=|contains)\s*(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|true|false)"""
        r"""|(?P<parent>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s+in\s+parents)\s*$"""
    )  # fmt: skip

    def _q_matches(self, ss: Spreadsheet, q: str) -> bool:
        for clause in re.split(r"\s+and\s+", q.strip()) if q.strip() else []:
            m = self._Q_CLAUSE.match(clause)
            if not m:
                raise drive_error(400, "Invalid Value", "invalid", location="q")
            if m.group("parent"):
                if m.group("parent")[1:-1] not in ss.parents:
                    return False
                continue
            raw = m.group("value")
            value: Any = raw[1:-1].replace("\\'", "'").replace('\\"', '"') if raw[0] in "'\"" else raw == "true"
            actual: Any = {"mimeType": SPREADSHEET_MIME, "name": ss.title, "trashed": False, "starred": False}[
                m.group("field")
            ]
            op = m.group("op")
            if op == "=" and actual != value:
                return False
            if op == "!=" and actual == value:
                return False
            if op == "contains" and str(value).lower() not in str(actual).lower():
                return False
        return True

    def _api_drive_list(self, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        files = [
            ss for ss in self.spreadsheets.values() if self._can_access(ss) and self._q_matches(ss, query.get("q", ""))
        ]
        files.sort(key=lambda ss: ss.modified_time, reverse=True)
        size = int(query.get("pageSize") or 100)
        start = int(query.get("pageToken") or 0)
        page = files[start : start + size]
        resource: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [self._file_json(s) for s in page],
        }
        if start + size < len(files):
            resource["nextPageToken"] = str(start + size)
        if query.get("fields"):
            return apply_field_mask(resource, parse_field_mask(query["fields"]))
        resource["files"] = [{k: f[k] for k in ("kind", "mimeType", "id", "name")} for f in resource["files"]]
        return resource

    def _api_drive_get(self, fid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        return self._project(self._file_json(self._file(fid)), query, ("kind", "id", "name", "mimeType"))

    def _api_drive_patch(self, fid: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        data = self._json_body(body)
        if data.get("name"):
            ss.properties["title"] = data["name"]
        for parent in str(query.get("addParents") or "").split(","):
            if parent:
                ss.parents.append(parent)
        for parent in str(query.get("removeParents") or "").split(","):
            if parent in ss.parents:
                ss.parents.remove(parent)
        ss.touch()
        return self._project(self._file_json(ss), query, ("kind", "id", "name", "mimeType"))

    def _api_drive_delete(self, fid: str, **_: Any) -> None:
        ss = self._file(fid)
        if ss.owner != self.client_email:
            raise drive_error(
                403, "The user does not have sufficient permissions for this file.", "insufficientFilePermissions"
            )
        del self.spreadsheets[fid]

    def _api_drive_copy(self, fid: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        source = self._file(fid)
        data = self._json_body(body)
        copied = _clone(source)
        copied.id = _file_id()
        copied.properties["title"] = data.get("name") or f"Copy of {source.title}"
        copied.owner = self.client_email
        copied.created_time = copied.modified_time = _now_rfc3339()
        copied.permissions = []
        copied.comments = []
        copied.parents = list(data.get("parents") or [])
        self.spreadsheets[copied.id] = copied
        fresh = self._new_spreadsheet("")  # borrow a fresh owner permission
        del self.spreadsheets[fresh.id]
        copied.permissions = fresh.permissions
        return self._project(self._file_json(copied), query, ("kind", "id", "name", "mimeType"))

    def _api_drive_export(self, fid: str, query: dict[str, Any], **_: Any) -> tuple[int, Any, dict[str, str]]:
        ss = self._file(fid)
        mime = query.get("mimeType")
        delimiters = {"text/csv": ",", "text/tab-separated-values": "\t"}
        if mime not in delimiters:
            if not mime:
                raise drive_error(400, "Required parameter: mimeType", "required", location="mimeType")
            raise NotImplementedByFake(f"export as {mime}")
        sheet = ss.sheets[0]
        rows = Renderer(ss).read(
            sheet, Bounds(0, sheet.rows, 0, sheet.cols), "ROWS", "FORMATTED_VALUE", "SERIAL_NUMBER"
        )
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiters[mime], lineterminator="\r\n")
        width = max((len(r) for r in rows), default=0)
        for row in rows:
            writer.writerow([*row, *[""] * (width - len(row))])
        return 200, out.getvalue().rstrip("\r\n").encode(), {"Content-Type": mime}

    def _api_comments_list(self, fid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        if not query.get("fields"):
            raise drive_error(400, "The 'fields' parameter is required for this method.", "required", location="fields")
        resource = {"kind": "drive#commentList", "comments": copy.deepcopy(ss.comments)}
        return apply_field_mask(resource, parse_field_mask(query["fields"]))

    def _api_comments_create(self, fid: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        data = self._json_body(body)
        comment = {"kind": "drive#comment", "id": secrets.token_urlsafe(8), "content": data.get("content", "")}
        if "anchor" in data:
            comment["anchor"] = data["anchor"]
        ss.comments.append(comment)
        return self._project(comment, query, ("kind", "id", "content"))

    def _add_permission(self, ss: Spreadsheet, data: dict[str, Any]) -> dict[str, Any]:
        kind, role = data.get("type"), data.get("role")
        if not kind:
            raise drive_error(400, "The permission type field is required.", "required", location="permission.type")
        if not role:
            raise drive_error(400, "The permission role field is required.", "required", location="permission.role")
        if kind not in ("user", "group", "domain", "anyone"):
            raise drive_error(
                400, f"The provided permission type '{kind}' is invalid.", "invalid", location="permission.type"
            )
        if role not in ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"):
            raise drive_error(
                400, f"The provided permission role '{role}' is invalid.", "invalid", location="permission.role"
            )
        permission: dict[str, Any] = {"kind": "drive#permission", "type": kind, "role": role}
        if kind in ("user", "group"):
            email = data.get("emailAddress")
            if not email or "@" not in str(email):
                raise drive_error(
                    400,
                    "The permission emailAddress field is required.",
                    "required",
                    location="permission.emailAddress",
                )
            for existing in ss.permissions:
                if existing.get("emailAddress", "").lower() == email.lower():
                    if existing["role"] != "owner":
                        existing["role"] = role
                    return existing
            permission.update(
                id=str(random.randint(10**19, 10**20 - 1)),
                emailAddress=email,
                displayName=email.split("@")[0],
                deleted=False,
                pendingOwner=False,
            )
        elif kind == "domain":
            if not data.get("domain"):
                raise drive_error(
                    400, "The permission domain field is required.", "required", location="permission.domain"
                )
            permission.update(
                id=str(random.randint(10**19, 10**20 - 1)), domain=data["domain"], displayName=data["domain"]
            )
            permission["allowFileDiscovery"] = bool(data.get("allowFileDiscovery", False))
        else:
            discoverable = bool(data.get("allowFileDiscovery", False))
            permission.update(id="anyone" if discoverable else "anyoneWithLink", allowFileDiscovery=discoverable)
            ss.permissions = [p for p in ss.permissions if p["type"] != "anyone"]
        ss.permissions.append(permission)
        return permission

    def _api_permissions_create(self, fid: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        data = self._json_body(body)
        if data.get("role") == "owner" and not _truthy(query.get("transferOwnership")):
            raise drive_error(
                403,
                "The transferOwnership parameter must be enabled when the permission role is 'owner'.",
                "forbidden",
                location="transferOwnership",
            )
        notify = query.get("sendNotificationEmail")
        if notify is not None and not _truthy(notify) and query.get("emailMessage"):
            raise drive_error(
                400,
                "An email message may not be specified when sendNotificationEmail is false.",
                "invalidSharingRequest",
                location="emailMessage",
            )
        permission = self._add_permission(ss, data)
        if data.get("role") == "owner" and permission.get("emailAddress"):
            for other in ss.permissions:
                if other["role"] == "owner" and other is not permission:
                    other["role"] = "writer"
            permission["role"] = "owner"
            ss.owner = permission["emailAddress"]
        if data.get("type") in ("user", "group") and (notify is None or _truthy(notify)):
            self.notifications.append(
                {
                    "fileId": ss.id,
                    "emailAddress": data.get("emailAddress"),
                    "role": data.get("role"),
                    "emailMessage": query.get("emailMessage"),
                }
            )
        return self._project(copy.deepcopy(permission), query, ("kind", "id", "type", "role"))

    def _api_permissions_list(self, fid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        resource = {"kind": "drive#permissionList", "permissions": copy.deepcopy(ss.permissions)}
        if query.get("fields"):
            return apply_field_mask(resource, parse_field_mask(query["fields"]))
        resource["permissions"] = [
            {k: p[k] for k in ("kind", "id", "type", "role") if k in p} for p in resource["permissions"]
        ]
        return resource

    def _permission(self, ss: Spreadsheet, pid: str) -> dict[str, Any]:
        for permission in ss.permissions:
            if permission["id"] == pid:
                return permission
        raise drive_error(404, f"Permission not found: {pid}.", "notFound", location="permissionId")

    def _api_permissions_get(self, fid: str, pid: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        permission = self._permission(self._file(fid), pid)
        return self._project(copy.deepcopy(permission), query, ("kind", "id", "type", "role"))

    def _api_permissions_update(
        self, fid: str, pid: str, body: bytes, query: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        permission = self._permission(self._file(fid), pid)
        role = self._json_body(body).get("role")
        if role:
            permission["role"] = role
        return self._project(copy.deepcopy(permission), query, ("kind", "id", "type", "role"))

    def _api_permissions_delete(self, fid: str, pid: str, **_: Any) -> None:
        ss = self._file(fid)
        permission = self._permission(ss, pid)
        if permission["role"] == "owner":
            raise drive_error(403, "The owner of a file cannot be removed.", "cannotRemoveOwner")
        ss.permissions.remove(permission)

    def _api_import_csv(self, fid: str, body: bytes, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        ss = self._file(fid)
        if not _truthy(query.get("convert")):
            raise NotImplementedByFake("uploading without convert=true")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        width = max((len(r) for r in rows), default=0)
        ss.sheets = []
        ss.named_ranges = []
        sheet = ss.add_sheet(
            {
                "title": ss.title,
                "sheetId": _random_id(),
                "gridProperties": {"rowCount": max(DEFAULT_ROWS, len(rows)), "columnCount": max(DEFAULT_COLS, width)},
            }
        )
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                write_user_value(sheet, i, j, value, "USER_ENTERED")
        ss.touch()
        return self._v2_file_json(ss)

    def _v2_file_json(self, ss: Spreadsheet) -> dict[str, Any]:
        base = "https://www.googleapis.com/drive/v2/files"
        user = {
            "displayName": self.client_email,
            "kind": "drive#user",
            "isAuthenticatedUser": True,
            "permissionId": ss.permissions[0]["id"],
            "emailAddress": self.client_email,
            "picture": {"url": "https://lh3.googleusercontent.com/a/default-user=s64"},
        }
        export = "https://docs.google.com/spreadsheets/export?id=" + ss.id + "&exportFormat="
        formats = {
            "application/x-vnd.oasis.opendocument.spreadsheet": "ods",
            "text/tab-separated-values": "tsv",
            "application/pdf": "pdf",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
            "text/csv": "csv",
            "application/zip": "zip",
            "application/vnd.oasis.opendocument.spreadsheet": "ods",
        }
        root = "0AFakeRootFolder"
        return {
            "kind": "drive#file",
            "userPermission": {
                "id": "me",
                "type": "user",
                "role": "owner",
                "kind": "drive#permission",
                "selfLink": f"{base}/{ss.id}/permissions/me",
                "etag": '"fake"',
                "pendingOwner": False,
            },
            "selfLink": f"{base}/{ss.id}",
            "ownerNames": [self.client_email],
            "lastModifyingUserName": self.client_email,
            "editable": True,
            "writersCanShare": True,
            "mimeType": SPREADSHEET_MIME,
            "exportLinks": {mime: export + ext for mime, ext in formats.items()},
            "parents": [
                {
                    "selfLink": f"{base}/{ss.id}/parents/{root}",
                    "id": root,
                    "isRoot": True,
                    "kind": "drive#parentReference",
                    "parentLink": f"{base}/{root}",
                }
            ],
            "thumbnailLink": f"https://docs.google.com/feeds/vt?gd=true&id={ss.id}&v=1&sz=s220",
            "appDataContents": False,
            "iconLink": f"https://drive-thirdparty.googleusercontent.com/16/type/{SPREADSHEET_MIME}",
            "shared": len(ss.permissions) > 1,
            "lastModifyingUser": dict(user),
            "owners": [dict(user)],
            "copyable": True,
            "etag": '"fake"',
            "alternateLink": f"https://docs.google.com/spreadsheets/d/{ss.id}/edit?usp=drivesdk",
            "embedLink": f"https://docs.google.com/spreadsheets/d/{ss.id}/htmlembed",
            "fileSize": "1024",
            "copyRequiresWriterPermission": False,
            "spaces": ["drive"],
            "id": ss.id,
            "title": ss.title,
            "labels": {"viewed": True, "restricted": False, "starred": False, "hidden": False, "trashed": False},
            "explicitlyTrashed": False,
            "createdDate": ss.created_time,
            "modifiedDate": ss.modified_time,
            "modifiedByMeDate": ss.modified_time,
            "lastViewedByMeDate": ss.modified_time,
            "markedViewedByMeDate": "1970-01-01T00:00:00.000Z",
            "quotaBytesUsed": "1024",
            "version": "5",
            "capabilities": {"canEdit": True, "canCopy": True},
        }
