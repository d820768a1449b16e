"""Replay gspread's recorded exchanges with the real Google APIs against the fake and compare answers.

The recordings (../shared/sheets_api_recordings/, read at run time, never copied here) hold the requests
real gspread sent and what Google answered. Each file is replayed in order against a fresh fake: ids the
recording's create calls returned are mapped to the ids the fake returned, and every answer is compared
on its status code and the *shape* of its JSON body (same keys at every level, same value types, same
list lengths); non-JSON bodies (CSV exports, empty 204s) must be equal.

Outcomes: matched, mismatched (fails the test), not_implemented (the fake answered 501, or 404 "no
endpoint"; reported, not a failure), after_not_implemented (a mismatch later in a file whose state
already diverged at a not-implemented call), justified (a mismatch listed in JUSTIFIED with its reason).
Two adjustments keep the comparison honest about things outside any fake's reach, both documented where
they are made: FREE_LENGTH_LISTS (Drive's file list also showed other tests' leftover files) and
seed_foreign_files (openall() then opened each of those leftovers).

pytest prints the report (totals, then per endpoint and request kind, then every exchange that did not
match); `python -m tests.gsheets.test_fidelity` prints it without running pytest.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.auth.transport.requests
import pytest
import requests
from google.oauth2.service_account import Credentials
from sheets_standin import SheetsFake

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "sheets_api_recordings"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive"]

# Measured on the recordings of gspread commit 5e2b628: all 1838 exchanges of the 106 files match.
MIN_MATCHED = 1838

ID_KEYS = {"id", "spreadsheetId", "sheetId", "protectedRangeId", "namedRangeId", "metadataId", "bandedRangeId"}
LONG_ID = re.compile(r"[A-Za-z0-9_-]{25,}")

# Mismatches accepted on purpose: (recording file, HTTP method, regex on the URL path, reason).
# Empty: since the adjustments below, every recorded exchange is reproduced. Add an entry only for an
# answer no faithful fake can give (say, a value Google computed from data the recording never sent).
JUSTIFIED: list[tuple[str, str, str, str]] = []

# Where a recorded list's length depends on state outside the recording, only element shapes are compared.
FREE_LENGTH_LISTS = {
    # Drive's file list returned every spreadsheet in the recording account (other tests' leftovers too).
    ".files",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@dataclass
class Outcome:
    file: str
    index: int
    method: str
    uri: str
    kind: str  # matched | mismatched | not_implemented | justified | after_not_implemented
    core: bool
    detail: str = ""


@dataclass
class Replay:
    """State of one file's replay: the id map from recorded values to the fake's."""

    ids: dict[Any, Any] = field(default_factory=dict)
    tainted: bool = False


def shape_diff(recorded: Any, got: Any, path: str = "") -> list[str]:
    """Differences in keys and value types between two JSON values (values themselves may differ)."""

    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        if v is None:
            return "null"
        return type(v).__name__

    if kind(recorded) != kind(got):
        return [f"{path or '.'}: {kind(recorded)} recorded, {kind(got)} from the fake"]
    if isinstance(recorded, dict):
        diffs = [f"{path}.{k}: missing from the fake" for k in recorded if k not in got]
        diffs += [f"{path}.{k}: only in the fake" for k in got if k not in recorded]
        for k in recorded:
            if k in got:
                diffs += shape_diff(recorded[k], got[k], f"{path}.{k}")
        return diffs
    if isinstance(recorded, list):
        generic = re.sub(r"\[\d+\]", "", path)
        if generic in FREE_LENGTH_LISTS:
            if bool(recorded) != bool(got):
                return [f"{path}: {len(recorded)} items recorded, {len(got)} from the fake"]
            return [d for item in got for d in shape_diff(recorded[0], item, f"{path}[]")] if recorded else []
        if len(recorded) != len(got):
            return [f"{path}: {len(recorded)} items recorded, {len(got)} from the fake"]
        return [d for i, (a, b) in enumerate(zip(recorded, got, strict=True)) for d in shape_diff(a, b, f"{path}[{i}]")]
    return []


def learn_ids(recorded: Any, got: Any, ids: dict[Any, Any], key: str | None = None) -> None:
    """Walk both answers in parallel and remember recorded id -> fake id."""
    if isinstance(recorded, dict) and isinstance(got, dict):
        for k, v in recorded.items():
            if k in got:
                learn_ids(v, got[k], ids, k)
    elif isinstance(recorded, list) and isinstance(got, list):
        for a, b in zip(recorded, got, strict=False):
            learn_ids(a, b, ids, key)
    elif key in ID_KEYS and type(recorded) is type(got) and recorded not in ids and recorded != got:
        ids[recorded] = got
        ids[str(recorded)] = str(got)


def map_ids(value: Any, ids: dict[Any, Any], key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: map_ids(v, ids, k) for k, v in value.items()}
    if isinstance(value, list):
        return [map_ids(v, ids, key) for v in value]
    if isinstance(value, (int, str)) and not isinstance(value, bool) and key in ID_KEYS and value in ids:
        return ids[value]
    if isinstance(value, str):
        return LONG_ID.sub(lambda m: ids.get(m.group(0), m.group(0)), value)
    return value


def endpoint_of(method: str, path: str, body: Any) -> tuple[str, bool]:
    """A readable name for the exchange, and whether it is on the endpoints the project relies on."""
    p = re.sub(r"/spreadsheets/[^/:]+", "/spreadsheets/ID", path)
    p = re.sub(r"/files/[^/]+", "/files/ID", p)
    p = re.sub(r"/values/[^:]+", "/values/RANGE", p)
    p = re.sub(r"/permissions/[^/]+", "/permissions/PID", p)
    name = f"{method} {p}"
    core_kinds = {
        "addSheet", "deleteSheet", "updateSheetProperties", "updateCells", "repeatCell", "appendCells",
        "setDataValidation", "addProtectedRange", "deleteProtectedRange", "createDeveloperMetadata",
        "updateDimensionProperties", "appendDimension", "insertDimension", "deleteDimension",
        "updateSpreadsheetProperties", "addNamedRange", "deleteNamedRange", "mergeCells", "addBanding", "sortRange",
    }  # fmt: skip
    if p.endswith(":batchUpdate") and "/values" not in p and isinstance(body, dict):
        kinds = sorted({k for r in body.get("requests") or [] for k in r})
        return f"{name} [{','.join(kinds)}]", set(kinds) <= core_kinds
    core_endpoints = {
        "POST /v4/spreadsheets", "GET /v4/spreadsheets/ID", "GET /v4/spreadsheets/ID/values/RANGE",
        "GET /v4/spreadsheets/ID/values:batchGet", "PUT /v4/spreadsheets/ID/values/RANGE",
        "POST /v4/spreadsheets/ID/values:batchUpdate", "POST /v4/spreadsheets/ID/values/RANGE:append",
        "POST /v4/spreadsheets/ID/values/RANGE:clear", "POST /v4/spreadsheets/ID/values:batchClear",
        "POST /drive/v3/files", "GET /drive/v3/files", "GET /drive/v3/files/ID", "DELETE /drive/v3/files/ID",
        "POST /drive/v3/files/ID/permissions", "GET /drive/v3/files/ID/permissions",
        "DELETE /drive/v3/files/ID/permissions/PID",
    }  # fmt: skip
    return name, name in core_endpoints


def seed_foreign_files(fake: SheetsFake, listing: dict[str, Any], ids: dict[Any, Any]) -> None:
    """The recording account held spreadsheets other tests left behind; give the fake a stand-in for each.

    gspread's openall() lists them and then opens every one, so without stand-ins those exchanges would
    only compare the fake's 404 with Google's 200. Each stand-in is a plain one-sheet spreadsheet.
    """
    for item in listing.get("files") or []:
        if item.get("id") and item["id"] not in ids:
            seeded = fake.add_spreadsheet(item.get("name") or "Untitled spreadsheet")
            ids[item["id"]] = seeded.id


def _decode(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text


def replay_file(fake: SheetsFake, session: requests.Session, token: str, path: Path) -> list[Outcome]:
    interactions = json.loads(path.read_text())["interactions"]
    state = Replay()
    outcomes = []
    for index, interaction in enumerate(interactions):
        request, response = interaction["request"], interaction["response"]
        method = request["method"]
        uri = map_ids(request["uri"], state.ids)
        parts = urlsplit(uri)
        raw_body = request.get("body")
        json_body = _decode(raw_body) if isinstance(raw_body, str) else None
        headers = {"Authorization": f"Bearer {token}"}
        content_type = (request["headers"].get("Content-Type") or [None])[0]
        if content_type:
            headers["Content-Type"] = content_type
        if isinstance(json_body, (dict, list)):
            data = json.dumps(map_ids(json_body, state.ids)).encode()
        else:
            data = raw_body.encode() if isinstance(raw_body, str) else None
        url = fake.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        answer = session.request(method, url, data=data, headers=headers)
        name, core = endpoint_of(method, parts.path, json_body)
        recorded_status = response["status"]["code"]
        recorded_body = _decode(response["body"].get("string", ""))
        got_body = _decode(answer.text)
        outcome = Outcome(path.name, index, method, name, "matched", core)
        not_implemented = answer.status_code == 501 or (
            answer.status_code == 404 and "Sheets fake has no endpoint" in answer.text
        )
        if not_implemented:
            outcome.kind, outcome.detail = "not_implemented", answer.text[:200]
            state.tainted = True
        else:
            diffs = []
            if answer.status_code != recorded_status:
                diffs.append(
                    f"status {recorded_status} recorded, {answer.status_code} from the fake: {answer.text[:300]}"
                )
            elif isinstance(recorded_body, (dict, list)) or isinstance(got_body, (dict, list)):
                diffs = shape_diff(recorded_body, got_body)
            elif (recorded_body or "") != (got_body or ""):
                diffs.append(f"body {recorded_body!r} recorded, {got_body!r} from the fake")
            if isinstance(recorded_body, (dict, list)) and isinstance(got_body, (dict, list)):
                learn_ids(recorded_body, got_body, state.ids)
            if name == "GET /drive/v3/files" and isinstance(recorded_body, dict):
                seed_foreign_files(fake, recorded_body, state.ids)
            if diffs:
                outcome.kind, outcome.detail = "mismatched", "; ".join(diffs[:8])
                for file, jmethod, pattern, reason in JUSTIFIED:
                    if file == path.name and jmethod == method and re.search(pattern, parts.path):
                        outcome.kind, outcome.detail = "justified", reason
                if outcome.kind == "mismatched" and state.tainted:
                    outcome.kind = "after_not_implemented"
        outcomes.append(outcome)
    return outcomes


def replay_all() -> list[Outcome]:
    outcomes: list[Outcome] = []
    with SheetsFake.serve() as fake, requests.Session() as session:
        credentials = Credentials.from_service_account_info(fake.service_account_info(), scopes=SCOPES)
        credentials.refresh(google.auth.transport.requests.Request(session))
        for path in sorted(RECORDINGS.glob("*.json")):
            fake.reset()
            outcomes.extend(replay_file(fake, session, credentials.token, path))
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    kinds = ("matched", "mismatched", "not_implemented", "after_not_implemented", "justified")
    counts = Counter(o.kind for o in outcomes)
    core = Counter(o.kind for o in outcomes if o.core)
    lines = [
        f"fidelity: {len(outcomes)} exchanges in {len({o.file for o in outcomes})} recordings: "
        + ", ".join(f"{k} {counts[k]}" for k in kinds),
        f"  on the endpoints and request kinds the project uses ({sum(core.values())} exchanges): "
        + ", ".join(f"{k} {core[k]}" for k in kinds),
    ]
    by_endpoint: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_endpoint.setdefault(o.uri, Counter())[o.kind] += 1
    for endpoint, c in sorted(by_endpoint.items()):
        lines.append(f"  {endpoint}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    for o in outcomes:
        if o.kind in ("mismatched", "not_implemented", "after_not_implemented"):
            lines.append(f"  {o.kind}: {o.file}#{o.index} {o.uri}: {o.detail}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    if not RECORDINGS.is_dir():
        if in_ci():
            pytest.fail(f"{RECORDINGS} is missing (CI is set, so the fidelity check cannot be skipped)", pytrace=False)
        pytest.skip(
            f"{RECORDINGS} is missing: the recorded Google exchanges are not checked out next to the repository"
        )
    return replay_all()


def test_replayed_exchanges_match_the_recordings(outcomes: list[Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + summary(outcomes))
    failures = [o for o in outcomes if o.kind == "mismatched"]
    assert not failures, "\n".join(f"{o.file}#{o.index} {o.uri}: {o.detail}" for o in failures)


def test_coverage_does_not_shrink(outcomes: list[Outcome]) -> None:
    matched = sum(1 for o in outcomes if o.kind == "matched")
    assert matched >= MIN_MATCHED, f"only {matched} exchanges matched, expected at least {MIN_MATCHED}"


if __name__ == "__main__":
    print(summary(replay_all()))
