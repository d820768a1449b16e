"""Reading a JSON body within the limits, before it is turned into Python objects.

A body under the upload limit can still ask for far more work than it weighs: five million
empty objects fit in 15 MB and take gigabytes as Python dicts. So the body's objects, arrays
and values are counted first, at C speed on the bytes (and, only when braces inside strings
make the quick count uncertain, by a streaming parse that stops at the limit), and a body
that holds more than a plan of `max_lines` lines could is refused before it is parsed.
"""

from __future__ import annotations

import io
import json
from typing import Any

import ijson
from flask import current_app

from sync_service.platform.context import SCHEMA
from sync_service.platform.errors import ServiceError, TooLarge

VALUES_PER_LINE = 100  # a plan line has about 45 cells; room for the rows form and long lists of editors


def limits() -> tuple[int, int]:
    """(objects and arrays, values) a JSON body may hold: what the largest plan this service accepts needs."""
    max_lines = current_app.extensions[SCHEMA].config.max_lines
    return 2 * max_lines + 20_000, VALUES_PER_LINE * max_lines + 200_000


def read_json(raw: bytes, mimetype: str, *, required: bool = True) -> Any:
    """The JSON body as Python data; None for an empty body when not `required`; 400 or 413 otherwise."""
    if not raw.strip():
        if required:
            raise ServiceError("send a JSON body (Content-Type: application/json)")
        return None
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ServiceError(f"send the body as application/json, not {mimetype or 'an unnamed type'}")
    containers, values = limits()
    if raw.count(b",") > values:
        raise TooLarge(f"the JSON holds more than {values:,} values; no plan or request of this service needs as many")
    if raw.count(b"{") + raw.count(b"[") > containers:
        _count_containers(raw, containers)  # braces inside strings do not count: look closer
    try:
        return json.loads(raw)
    except RecursionError:
        raise ServiceError("the JSON is nested too deeply") from None
    except UnicodeDecodeError:
        raise ServiceError("the JSON is not UTF-8 text") from None
    except ValueError as exc:
        raise ServiceError(f"the body is not valid JSON ({exc})") from None


def _count_containers(raw: bytes, limit: int) -> None:
    """413 as soon as the body's objects and arrays pass `limit`, counted by a streaming parse."""
    seen = 0
    try:
        for event, _ in ijson.basic_parse(io.BytesIO(raw), use_float=True):
            if event in ("start_map", "start_array"):
                seen += 1
                if seen > limit:
                    raise TooLarge(
                        f"the JSON holds more than {limit:,} objects and arrays; "
                        "no plan or request of this service needs as many"
                    )
    except ijson.JSONError as exc:
        raise ServiceError(f"the body is not valid JSON ({exc})") from None
