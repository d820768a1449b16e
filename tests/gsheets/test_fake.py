"""The Sheets fake driven by real gspread and google-auth over HTTP, as the project's Google Sheets code will be."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import google.auth.crypt
import google.auth.jwt
import gspread
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError, SpreadsheetNotFound
from gspread.http_client import BackOffHTTPClient, HTTPClient
from gspread.utils import ValidationConditionType, ValueInputOption, ValueRenderOption
from sheets_standin import SheetsFake, format_general, parse_cells, parse_field_mask, parse_user_entered

SCOPES = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive"]
GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")


def gspread_client(
    fake: SheetsFake, base: type[HTTPClient] = HTTPClient, scopes: list[str] | None = None
) -> gspread.Client:
    """Real gspread with real service-account credentials; only the two Google hosts are rewritten."""

    class RewritingClient(base):  # type: ignore[valid-type, misc]
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> requests.Response:
            for host in GOOGLE_HOSTS:
                endpoint = endpoint.replace(host, fake.base_url)
            return super().request(method, endpoint, *args, **kwargs)

    credentials = Credentials.from_service_account_info(fake.service_account_info(), scopes=scopes or SCOPES)
    return gspread.authorize(credentials, http_client=RewritingClient)


@pytest.fixture(scope="module")
def server() -> Iterator[SheetsFake]:
    with SheetsFake.serve() as fake:
        yield fake


@pytest.fixture
def fake(server: SheetsFake) -> Iterator[SheetsFake]:
    server.reset()
    server.max_request_bytes = 10 * 2**20
    yield server
    server.reset()


@pytest.fixture
def gc(fake: SheetsFake) -> Iterator[gspread.Client]:
    client = gspread_client(fake)
    yield client
    client.http_client.session.close()


@pytest.fixture
def sh(gc: gspread.Client) -> gspread.Spreadsheet:
    return gc.create("Plan 2025")


@pytest.fixture
def ws(sh: gspread.Spreadsheet) -> gspread.Worksheet:
    return sh.add_worksheet("Plan", rows=20, cols=8)


def raw_get(fake: SheetsFake, gc: gspread.Client, path: str, **params: Any) -> requests.Response:
    return gc.http_client.session.get(fake.base_url + path, params=params)


# ------------------------------------------------------------------------------------------- spreadsheets


def test_create_spreadsheet_and_add_worksheet(fake: SheetsFake, gc: gspread.Client) -> None:
    sh = gc.create("Plan 2025")
    ws = sh.add_worksheet("Plan", rows=20, cols=8)

    assert [w.title for w in sh.worksheets()] == ["Sheet1", "Plan"]
    assert (ws.row_count, ws.col_count, ws.index) == (20, 8, 1)
    stored = fake.spreadsheets[sh.id]
    assert stored.title == "Plan 2025"
    assert [s.title for s in stored.sheets] == ["Sheet1", "Plan"]
    assert stored.sheets[0].id == 0 and 0 < ws.id < 2**31
    with pytest.raises(APIError, match='A sheet with the name "Plan" already exists') as err:
        sh.add_worksheet("Plan", rows=5, cols=5)
    assert err.value.response.status_code == 400


def test_sheets_api_create_with_properties_and_hidden_sheets(fake: SheetsFake, gc: gspread.Client) -> None:
    body = {
        "properties": {"title": "Template", "locale": "en_GB"},
        "sheets": [
            {
                "properties": {
                    "title": "Plan",
                    "gridProperties": {"rowCount": 50, "columnCount": 12, "frozenRowCount": 1},
                }
            },
            {"properties": {"title": "Lists", "hidden": True}},
        ],
    }
    created = gc.http_client.request("post", "https://sheets.googleapis.com/v4/spreadsheets", json=body).json()

    assert created["properties"]["title"] == "Template" and created["properties"]["locale"] == "en_GB"
    plan, lists = created["sheets"]
    assert plan["properties"]["gridProperties"] == {"rowCount": 50, "columnCount": 12, "frozenRowCount": 1}
    assert lists["properties"]["hidden"] is True and "hidden" not in plan["properties"]
    assert created["spreadsheetUrl"].endswith(f"/d/{created['spreadsheetId']}/edit")
    assert gc.open_by_key(created["spreadsheetId"]).worksheet("Lists").isSheetHidden


def test_unknown_spreadsheet_is_404(gc: gspread.Client) -> None:
    with pytest.raises(SpreadsheetNotFound):
        gc.open_by_key("no-such-spreadsheet")


def test_get_spreadsheet_with_fields_ranges_and_grid_data(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    ws.update([["Channel", "Budget"], ["Search", 1200]], "A1", value_input_option=ValueInputOption.user_entered)

    titles = sh.fetch_sheet_metadata({"fields": "sheets.properties.title"})
    assert titles == {"sheets": [{"properties": {"title": "Sheet1"}}, {"properties": {"title": "Plan"}}]}
    grid = sh.fetch_sheet_metadata({"includeGridData": "true", "ranges": "Plan!A1:B2"})
    assert [s["properties"]["title"] for s in grid["sheets"]] == ["Plan"]
    (data,) = grid["sheets"][0]["data"]
    cell = data["rowData"][1]["values"][1]
    assert cell["userEnteredValue"] == {"numberValue": 1200}
    assert cell["effectiveValue"] == {"numberValue": 1200} and cell["formattedValue"] == "1200"
    assert len(data["rowMetadata"]) == 2 and data["columnMetadata"][0] == {"pixelSize": 100}


# ------------------------------------------------------------------------------------------- values


def test_raw_keeps_text_and_user_entered_parses(fake: SheetsFake, sh, ws) -> None:
    row = ["=1+1", "12", "TRUE", "2024-03-01", "1,250.50", "'007"]
    ws.update([row], "A1", value_input_option=ValueInputOption.raw)
    assert ws.get("A1:F1", value_render_option=ValueRenderOption.unformatted) == [row]
    assert fake.cell(sh.id, "Plan!A1")["userEnteredValue"] == {"stringValue": "=1+1"}

    ws.update([row], "A1", value_input_option=ValueInputOption.user_entered)
    assert ws.get("A1:F1", value_render_option=ValueRenderOption.unformatted) == [[2, 12, True, 45352, 1250.5, "007"]]
    assert ws.get("A1:F1", value_render_option=ValueRenderOption.formula) == [["=1+1", 12, True, 45352, 1250.5, "007"]]
    assert ws.get("A1:F1") == [["2", "12", "TRUE", "2024-03-01", "1,250.50", "007"]]
    assert fake.grid(sh.id, "Plan!A1:F1") == [[2, 12, True, 45352, 1250.5, "007"]]


def test_values_get_trims_and_normalises_ranges(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    ws.update([["a", "", "c"], ["", "", ""], ["", "e"]], "B2")
    sid = sh.id

    whole = gc.http_client.values_get(sid, "Plan")
    assert whole == {
        "range": "Plan!A1:H20",
        "majorDimension": "ROWS",
        "values": [[], ["", "a", "", "c"], [], ["", "", "e"]],
    }
    assert gc.http_client.values_get(sid, "plan!c5:b2")["range"] == "Plan!B2:C5"
    assert gc.http_client.values_get(sid, "Plan!E1:F2") == {"range": "Plan!E1:F2", "majorDimension": "ROWS"}
    assert gc.http_client.values_get(sid, "Plan!A:B")["range"] == "Plan!A1:B20"
    assert gc.http_client.values_get(sid, "Plan!3:4")["range"] == "Plan!A3:H4"
    assert gc.http_client.values_get(sid, "Plan!B4:C")["range"] == "Plan!B4:C20"
    assert gc.http_client.values_get(sid, "A1")["range"] == "Sheet1!A1"  # no sheet name: the first sheet
    columns = gc.http_client.values_get(sid, "Plan!B2:D4", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a"], ["", "", "e"], ["c"]]


def test_sheet_names_are_quoted_when_needed(gc: gspread.Client, sh) -> None:
    sh.add_worksheet("It's Q1", rows=5, cols=3)
    result = gc.http_client.values_update(
        sh.id, "'It''s Q1'!A1", params={"valueInputOption": "RAW"}, body={"values": [["x"]]}
    )
    assert result["updatedRange"] == "'It''s Q1'!A1"
    assert gc.http_client.values_get(sh.id, "'It''s Q1'")["range"] == "'It''s Q1'!A1:C5"


def test_batch_get_with_unformatted_values(sh, ws) -> None:
    ws.update([["Search", "1200.5", "=B1*2"], ["Social", "300", "=B2*2"]], "A1", value_input_option="USER_ENTERED")

    first, second = ws.batch_get(["A1:C2", "C2"], value_render_option=ValueRenderOption.unformatted)
    assert first.range == "Plan!A1:C2" and second.range == "Plan!C2"
    assert first == [["Search", 1200.5, 2401], ["Social", 300, 600]]
    assert second == [[600]]


def test_values_batch_update_and_batch_clear(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    result = ws.batch_update(
        [{"range": "A1:B1", "values": [["a", "b"]]}, {"range": "A3", "values": [["c"]]}],
        value_input_option=ValueInputOption.raw,
    )
    assert result["totalUpdatedCells"] == 3 and result["totalUpdatedSheets"] == 1
    assert [r["updatedRange"] for r in result["responses"]] == ["Plan!A1:B1", "Plan!A3"]

    cleared = gc.http_client.values_batch_clear(sh.id, body={"ranges": ["Plan!A1", "Plan!A3"]})
    assert cleared["clearedRanges"] == ["Plan!A1", "Plan!A3"]
    assert fake.grid(sh.id, "Plan!A1:C3") == [["", "b"]]


def test_values_batch_update_is_atomic(fake: SheetsFake, sh, ws) -> None:
    body = {
        "valueInputOption": "RAW",
        "data": [{"range": "Plan!A1", "values": [["kept out"]]}, {"range": "Nowhere!A1", "values": [["x"]]}],
    }
    with pytest.raises(APIError, match="Unable to parse range: Nowhere!A1"):
        sh.values_batch_update(body)
    assert fake.grid(sh.id, "Plan!A1") == []


def test_append_finds_the_table_and_can_insert_rows(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    ws.update([["Channel", "Budget"], ["Search", 10]], "A1")
    first = ws.append_row(["Social", 20])
    assert first["tableRange"] == "Plan!A1:B2" and first["updates"]["updatedRange"] == "Plan!A3:B3"

    ws.update([["footer"]], "A10")
    inserted = ws.append_rows([["TV", 30]], insert_data_option="INSERT_ROWS", table_range="A1:B3")
    assert inserted["updates"]["updatedRange"] == "Plan!A4:B4"
    assert fake.grid(sh.id, "Plan!A11") == [["footer"]]  # pushed down one row
    assert fake.spreadsheets[sh.id].sheets[1].rows == 21

    full = gc.create("Full")
    tiny = full.add_worksheet("Tiny", rows=1, cols=2)
    tiny.append_row(["a", "b"])
    tiny.append_row(["c", "d"])  # append grows the grid instead of failing
    assert fake.grid(full.id, "Tiny") == [["a", "b"], ["c", "d"]]


def test_formulas_evaluate_a_documented_subset(fake: SheetsFake, sh, ws) -> None:
    ws.update(
        [
            [10, 20, "=SUM(A1:B1)", "=A1/0", '=IF(C1>25,"over","under")', "=VLOOKUP(1,A1:B1,2)"],
            ["=Sheet1!A1", '=A1&"-"&B1', "=ROUND(2/3,2)", "=AVERAGE(A1:B1)", "=C1", "=1+"],
        ],
        "A1",
        value_input_option=ValueInputOption.user_entered,
    )
    assert ws.get("A1:F2", value_render_option=ValueRenderOption.unformatted) == [
        [10, 20, 30, "#DIV/0!", "over"],
        [0, "10-20", 0.67, 15, 30, "#ERROR!"],
    ]
    assert ws.acell("F1", value_render_option=ValueRenderOption.formula).value == "=VLOOKUP(1,A1:B1,2)"
    assert ws.acell("F1").value is None  # outside the evaluated subset: reads as empty, never "#NAME?"


# ------------------------------------------------------------------------------------------- limits and errors


def test_unknown_range_is_400(sh, ws) -> None:
    with pytest.raises(APIError, match=r"Unable to parse range: Nope!A1") as err:
        ws.spreadsheet.values_get("Nope!A1")
    assert err.value.code == 400
    assert err.value.error["status"] == "INVALID_ARGUMENT"


def test_writing_beyond_the_grid_is_400(sh, ws) -> None:
    with pytest.raises(APIError, match=r"Range \(Plan!A21\) exceeds grid limits. Max rows: 20, max columns: 8"):
        ws.update([["x"]], "A21")
    with pytest.raises(APIError, match=r"exceeds grid limits"):
        ws.update([list(range(9))], "A1")
    with pytest.raises(
        APIError, match=r"Requested writing within range \[Plan!A1:B2\], but tried writing to row \[3\]"
    ):
        ws.update([[1], [2], [3]], "A1:B2")
    with pytest.raises(APIError, match=r"Invalid value at 'data.values'"):
        ws.spreadsheet.values_update("Plan!A1", params={"valueInputOption": "RAW"}, body={"values": "X"})
    with pytest.raises(APIError, match="'valueInputOption' is required but not specified"):
        ws.spreadsheet.values_update("Plan!A1", body={"values": [["x"]]})


def test_payload_limit(fake: SheetsFake, sh, ws) -> None:
    fake.max_request_bytes = 2000
    fake.clear_log()
    with pytest.raises(APIError, match=r"Request payload size exceeds the limit: 2000 bytes\.") as err:
        ws.update([["x" * 100] * 8] * 20, "A1")
    assert err.value.code == 400 and err.value.error["status"] == "INVALID_ARGUMENT"
    assert fake.log[-1].status == 400 and fake.log[-1].body_bytes > 2000
    assert fake.grid(sh.id, "Plan") == []
    ws.update([["small"]], "A1")
    assert fake.grid(sh.id, "Plan!A1") == [["small"]]


def test_request_log_counts_and_bytes(fake: SheetsFake, sh, ws) -> None:
    fake.clear_log()
    ws.update([["a", "b"]], "A1")
    ws.get("A1:B1")

    put, get = fake.log
    assert (put.method, put.path, put.status) == ("PUT", f"/v4/spreadsheets/{sh.id}/values/'Plan'!A1", 200)
    assert put.query == {"valueInputOption": "RAW"}
    assert put.body_bytes == len(put.body) == len(json.dumps({"values": [["a", "b"]], "majorDimension": None}))
    assert put.json() == {"values": [["a", "b"]], "majorDimension": None}
    assert (get.method, get.body_bytes, get.path.endswith("/values/'Plan'!A1:B1")) == ("GET", 0, True)
    assert sum(1 for r in fake.log if r.method == "GET") == 1


def test_unauthenticated_calls_get_401(fake: SheetsFake, sh) -> None:
    with requests.Session() as session:
        missing = session.get(f"{fake.base_url}/v4/spreadsheets/{sh.id}")
        bogus = session.get(f"{fake.base_url}/v4/spreadsheets/{sh.id}", headers={"Authorization": "Bearer nope"})
        drive = session.get(f"{fake.base_url}/drive/v3/files/{sh.id}")
    assert missing.status_code == bogus.status_code == drive.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert (
        missing.json()["error"]["code"] == 401
        and "missing required authentication" in missing.json()["error"]["message"]
    )
    assert "invalid authentication credentials" in bogus.json()["error"]["message"]
    assert drive.json()["error"]["errors"][0]["reason"] == "required"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_endpoint_checks_the_signature(fake: SheetsFake) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    now = int(time.time())
    claims = {
        "iss": fake.service_account_info()["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "scope": " ".join(SCOPES),
        "iat": now,
        "exp": now + 3600,
    }
    forged = google.auth.jwt.encode(google.auth.crypt.RSASigner.from_string(pem), claims).decode()
    genuine_signer = google.auth.crypt.RSASigner.from_service_account_info(fake.service_account_info())
    genuine = google.auth.jwt.encode(genuine_signer, claims).decode()
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    with requests.Session() as session:
        refused = session.post(f"{fake.base_url}/token", data={"grant_type": grant, "assertion": forged})
        issued = session.post(f"{fake.base_url}/token", data={"grant_type": grant, "assertion": genuine})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert issued.status_code == 200
    assert set(issued.json()) == {"access_token", "expires_in", "token_type"}
    assert issued.json()["expires_in"] == 3599 and issued.json()["token_type"] == "Bearer"


def test_expired_tokens_are_refreshed_by_google_auth(fake: SheetsFake, sh, ws) -> None:
    fake.expire_tokens()
    fake.clear_log()
    ws.update([["after refresh"]], "A1")
    assert [(r.path, r.status) for r in fake.log] == [
        (f"/v4/spreadsheets/{sh.id}/values/'Plan'!A1", 401),
        ("/token", 200),
        (f"/v4/spreadsheets/{sh.id}/values/'Plan'!A1", 200),
    ]


def test_scopes_are_enforced(fake: SheetsFake, sh) -> None:
    sheets_only = gspread_client(fake, scopes=["https://www.googleapis.com/auth/spreadsheets"])
    try:
        assert sheets_only.open_by_key(sh.id).title == "Plan 2025"
        with pytest.raises(APIError, match="insufficient authentication scopes") as err:
            sheets_only.create("Needs Drive")
        assert err.value.code == 403
    finally:
        sheets_only.http_client.session.close()


# ------------------------------------------------------------------------------------------- batchUpdate


def test_batch_update_is_all_or_nothing(fake: SheetsFake, sh, ws) -> None:
    ws.update([["before"]], "A1")
    body = {
        "requests": [
            {"addSheet": {"properties": {"title": "Rollup"}}},
            {
                "updateCells": {
                    "rows": [{"values": [{"userEnteredValue": {"stringValue": "after"}}]}],
                    "fields": "userEnteredValue",
                    "start": {"sheetId": ws.id, "rowIndex": 0, "columnIndex": 0},
                }
            },
            {"deleteSheet": {"sheetId": 123456}},
        ]
    }
    with pytest.raises(APIError, match=r"Invalid requests\[2\]\.deleteSheet: No grid with id: 123456") as err:
        sh.batch_update(body)
    assert err.value.code == 400
    assert [s.title for s in fake.spreadsheets[sh.id].sheets] == ["Sheet1", "Plan"]
    assert fake.grid(sh.id, "Plan!A1") == [["before"]]

    body["requests"].pop()
    replies = sh.batch_update(body)["replies"]
    assert replies[0]["addSheet"]["properties"]["title"] == "Rollup" and replies[1] == {}
    assert fake.grid(sh.id, "Plan!A1") == [["after"]]


def test_unknown_and_unimplemented_request_kinds(sh) -> None:
    with pytest.raises(APIError, match=r'Unknown name "fooBar" at \'requests\[0\]\'') as unknown:
        sh.batch_update({"requests": [{"fooBar": {}}]})
    assert unknown.value.code == 400
    with pytest.raises(APIError) as unimplemented:
        sh.batch_update({"requests": [{"addChart": {}}]})
    assert unimplemented.value.code == 501 and unimplemented.value.error["status"] == "UNIMPLEMENTED"


def test_request_bodies_are_checked_like_the_real_api(fake: SheetsFake, sh, ws) -> None:
    typo = {
        "rows": [{"values": [{"userEnteredValues": {"stringValue": "x"}}]}],
        "fields": "*",
        "start": {"sheetId": ws.id},
    }
    with pytest.raises(
        APIError, match=r'Unknown name "userEnteredValues" at .requests\[0\]\.update_cells\.rows\[0\]'
    ) as err:
        sh.batch_update({"requests": [{"updateCells": typo}]})
    assert err.value.code == 400
    assert err.value.error["details"][0]["fieldViolations"][0]["field"] == "requests[0].update_cells.rows[0].values[0]"
    with pytest.raises(
        APIError, match=r"Invalid value at 'requests\[0\]\.delete_sheet\.sheet_id' \(TYPE_INT32\), \"Plan\""
    ):
        sh.batch_update({"requests": [{"deleteSheet": {"sheetId": "Plan"}}]})
    with pytest.raises(APIError, match='Unknown name "valueInputOptions": Cannot find field'):
        sh.values_batch_update({"valueInputOptions": "RAW", "data": []})
    assert [s.title for s in fake.spreadsheets[sh.id].sheets] == ["Sheet1", "Plan"]

    ws.format(
        "A1", {"backgroundColorStyle": {"rgbColor": {"red": 1}}, "textFormat": {"bold": True}}
    )  # newer fields pass
    assert fake.cell(sh.id, "Plan!A1")["userEnteredFormat"]["backgroundColor"] == {"red": 1}


def test_update_sheet_properties_and_cells(fake: SheetsFake, sh, ws) -> None:
    ws.freeze(rows=1)
    ws.update_title("Plan FY25")
    ws.resize(rows=5, cols=4)
    sh.batch_update(
        {
            "requests": [
                {
                    "repeatCell": {
                        "range": {"sheetId": ws.id, "startRowIndex": 0, "endRowIndex": 1},
                        "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                        "fields": "userEnteredFormat.textFormat.bold",
                    }
                },
                {
                    "updateCells": {
                        "range": {
                            "sheetId": ws.id,
                            "startRowIndex": 1,
                            "endRowIndex": 2,
                            "startColumnIndex": 0,
                            "endColumnIndex": 2,
                        },
                        "rows": [
                            {
                                "values": [
                                    {"userEnteredValue": {"numberValue": 5}},
                                    {"userEnteredValue": {"formulaValue": "=A2*3"}},
                                ]
                            }
                        ],
                        "fields": "userEnteredValue",
                    }
                },
            ]
        }
    )
    props = sh.fetch_sheet_metadata()["sheets"][1]["properties"]
    assert props["title"] == "Plan FY25"
    assert props["gridProperties"] == {"rowCount": 5, "columnCount": 4, "frozenRowCount": 1}
    assert fake.cell(sh.id, "'Plan FY25'!C1")["userEnteredFormat"] == {"textFormat": {"bold": True}}
    assert fake.grid(sh.id, "'Plan FY25'!A2:B2") == [[5, 15]]
    with pytest.raises(APIError, match="You can't hide all the sheets in a document"):
        sh.batch_update(
            {
                "requests": [
                    {"updateSheetProperties": {"properties": {"sheetId": s.id, "hidden": True}, "fields": "hidden"}}
                    for s in sh.worksheets()
                ]
            }
        )


def test_protected_ranges(fake: SheetsFake, sh, ws) -> None:
    reply = ws.add_protected_range("A1:B2", editor_users_emails=["finance@example.com"], description="Totals")
    protected = reply["replies"][0]["addProtectedRange"]["protectedRange"]
    assert protected["range"] == {
        "sheetId": ws.id,
        "startRowIndex": 0,
        "endRowIndex": 2,
        "startColumnIndex": 0,
        "endColumnIndex": 2,
    }
    assert protected["description"] == "Totals" and protected["requestingUserCanEdit"] is True

    (listed,) = sh.list_protected_ranges(ws.id)
    assert listed["protectedRangeId"] == protected["protectedRangeId"]
    assert listed["editors"]["users"] == [fake.client_email, "finance@example.com"]
    assert fake.spreadsheets[sh.id].sheets[1].protected_ranges[0]["description"] == "Totals"

    ws.delete_protected_range(protected["protectedRangeId"])
    assert sh.list_protected_ranges(ws.id) == []
    with pytest.raises(APIError, match="No protected range with id"):
        ws.delete_protected_range(protected["protectedRangeId"])


def test_data_validation_is_stored(fake: SheetsFake, sh, ws) -> None:
    ws.add_validation(
        "C2:C4", ValidationConditionType.one_of_list, ["Search", "Social"], strict=True, showCustomUi=True
    )
    rule = fake.cell(sh.id, "Plan!C3")["dataValidation"]
    assert rule == {
        "condition": {
            "type": "ONE_OF_LIST",
            "values": [{"userEnteredValue": "Search"}, {"userEnteredValue": "Social"}],
        },
        "showCustomUi": True,
        "strict": True,
    }
    assert "dataValidation" not in fake.cell(sh.id, "Plan!C5")
    grid = sh.fetch_sheet_metadata({"fields": "sheets.data.rowData.values.dataValidation", "ranges": "Plan!C2"})
    assert grid["sheets"][0]["data"][0]["rowData"][0]["values"][0]["dataValidation"] == rule


def test_developer_metadata_and_named_ranges(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    reply = sh.batch_update(
        {
            "requests": [
                {
                    "createDeveloperMetadata": {
                        "developerMetadata": {
                            "metadataKey": "plansheet.template_version",
                            "metadataValue": "3",
                            "location": {"sheetId": ws.id},
                            "visibility": "DOCUMENT",
                        }
                    }
                },
                {
                    "addNamedRange": {
                        "namedRange": {
                            "name": "Budget",
                            "range": {"sheetId": ws.id, "startColumnIndex": 1, "endColumnIndex": 2},
                        }
                    }
                },
            ]
        }
    )
    meta = reply["replies"][0]["createDeveloperMetadata"]["developerMetadata"]
    assert meta["location"] == {"locationType": "SHEET", "sheetId": ws.id} and meta["visibility"] == "DOCUMENT"
    assert sh.fetch_sheet_metadata()["sheets"][1]["developerMetadata"] == [meta]

    search = gc.http_client.request(
        "post",
        f"https://sheets.googleapis.com/v4/spreadsheets/{sh.id}/developerMetadata:search",
        json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "plansheet.template_version"}}]},
    ).json()
    assert search["matchedDeveloperMetadata"][0]["developerMetadata"]["metadataValue"] == "3"

    ws.update([["x", 1], ["y", 2]], "A1")
    assert gc.http_client.values_get(sh.id, "Budget") == {
        "range": "Plan!B1:B20",
        "majorDimension": "ROWS",
        "values": [["1"], ["2"]],
    }
    assert [n["name"] for n in sh.list_named_ranges()] == ["Budget"]


def test_other_request_kinds(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    gid = ws.id
    first_column = {"sheetId": gid, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 1}
    first_row = {"sheetId": gid, "dimension": "ROWS", "startIndex": 0, "endIndex": 1}
    total_row = [{"userEnteredValue": {"stringValue": "Total"}}, {"userEnteredValue": {"formulaValue": "=SUM(C1:D1)"}}]
    bands = {"firstBandColor": {"red": 1}, "secondBandColor": {"blue": 1}}
    requests_ = [
        {
            "updateSpreadsheetProperties": {
                "properties": {"title": "Plan FY25", "timeZone": "Europe/Berlin"},
                "fields": "*",
            }
        },
        {"appendDimension": {"sheetId": gid, "dimension": "COLUMNS", "length": 2}},
        {"updateDimensionProperties": {"range": first_column, "properties": {"pixelSize": 240}, "fields": "pixelSize"}},
        {"appendCells": {"sheetId": gid, "rows": [{"values": total_row}], "fields": "userEnteredValue"}},
        {"addBanding": {"bandedRange": {"range": {"sheetId": gid, "endRowIndex": 5}, "rowProperties": bands}}},
        {
            "createDeveloperMetadata": {
                "developerMetadata": {
                    "metadataKey": "row.kind",
                    "metadataValue": "total",
                    "location": {"dimensionRange": first_row},
                    "visibility": "DOCUMENT",
                }
            }
        },
        {
            "createDeveloperMetadata": {
                "developerMetadata": {"metadataKey": "org", "location": {"spreadsheet": True}, "visibility": "PROJECT"}
            }
        },
        {"addNamedRange": {"namedRange": {"name": "Scratch", "range": {"sheetId": gid, "endRowIndex": 1}}}},
    ]
    replies = sh.batch_update({"requests": requests_})["replies"]
    banded = replies[4]["addBanding"]["bandedRange"]
    assert banded["rowProperties"]["firstBandColorStyle"] == {"rgbColor": {"red": 1}}
    assert replies[5]["createDeveloperMetadata"]["developerMetadata"]["location"]["locationType"] == "ROW"
    named_id = replies[7]["addNamedRange"]["namedRange"]["namedRangeId"]
    sh.batch_update({"requests": [{"deleteNamedRange": {"namedRangeId": named_id}}]})

    resource = fake.resource(sh.id)
    assert resource["properties"]["title"] == "Plan FY25" and resource["properties"]["timeZone"] == "Europe/Berlin"
    plan = resource["sheets"][1]
    assert plan["properties"]["gridProperties"]["columnCount"] == 10
    assert plan["bandedRanges"][0]["bandedRangeId"] == banded["bandedRangeId"]
    assert [m["metadataKey"] for m in resource["developerMetadata"]] == ["org"]
    assert "namedRanges" not in resource
    assert fake.grid(sh.id, "Plan!A1:B1") == [["Total", 0]]
    widths = sh.fetch_sheet_metadata({"fields": "sheets.data.columnMetadata.pixelSize", "ranges": "Plan!A1:B1"})
    assert widths["sheets"][0]["data"][0]["columnMetadata"] == [{"pixelSize": 240}, {"pixelSize": 100}]

    copied = gc.http_client.request(
        "post",
        f"https://sheets.googleapis.com/v4/spreadsheets/{sh.id}/sheets/{gid}:copyTo",
        json={"destinationSpreadsheetId": sh.id},
    ).json()
    assert copied["title"] == "Copy of Plan" and copied["index"] == 2
    assert fake.grid(sh.id, "'Copy of Plan'!A1") == [["Total"]]


def test_render_options_and_values_in_response(sh, ws) -> None:
    result = ws.update(
        [["2024-03-01", "0.5", "=A1+1"]],
        "A1",
        value_input_option=ValueInputOption.user_entered,
        include_values_in_response=True,
        response_value_render_option=ValueRenderOption.unformatted,
    )
    assert result["updatedData"] == {"range": "Plan!A1:C1", "majorDimension": "ROWS", "values": [[45352, 0.5, 45353]]}
    strings = sh.values_get(
        "Plan!A1:C1", params={"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "FORMATTED_STRING"}
    )
    assert strings["values"] == [["2024-03-01", 0.5, 45353]]
    with pytest.raises(APIError, match="value_render_option"):
        sh.values_get("Plan!A1", params={"valueRenderOption": "PRETTY"})


def test_insert_and_delete_rows_move_cells(fake: SheetsFake, sh, ws) -> None:
    ws.update([["a"], ["b"], ["c"]], "A1")
    ws.merge_cells("B2:C3")
    ws.insert_rows([["new"]], row=2)
    assert fake.grid(sh.id, "Plan!A1:A4") == [["a"], ["new"], ["b"], ["c"]]
    assert ws.row_count == 21
    assert sh.fetch_sheet_metadata()["sheets"][1]["merges"][0]["startRowIndex"] == 2
    ws.delete_rows(1, 2)
    assert fake.grid(sh.id, "Plan!A1:A4") == [["b"], ["c"]]
    assert fake.spreadsheets[sh.id].sheets[1].rows == 19


def test_sort_range(fake: SheetsFake, sh, ws) -> None:
    ws.update([["b", 2], ["", 9], ["a", 3], ["c", 1]], "A1")
    ws.sort((2, "des"), range="A1:B4")
    assert fake.grid(sh.id, "Plan!A1:B4") == [["", 9], ["a", 3], ["b", 2], ["c", 1]]


# ------------------------------------------------------------------------------------------- fault injection


def test_429_twice_then_success_with_a_retry_loop(fake: SheetsFake, sh) -> None:
    fake.inject(method="POST", path=r":batchUpdate$", status=429, times=2)
    attempts, errors = 0, []
    while True:
        attempts += 1
        try:
            sh.batch_update({"requests": [{"addSheet": {"properties": {"title": "Retry"}}}]})
            break
        except APIError as err:
            errors.append(err)
            assert attempts < 5
    assert attempts == 3
    assert {e.code for e in errors} == {429}
    assert errors[0].error["status"] == "RESOURCE_EXHAUSTED"
    assert errors[0].error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert [r.status for r in fake.log if r.path.endswith(":batchUpdate")] == [429, 429, 200]
    assert [r.injected for r in fake.log if r.path.endswith(":batchUpdate")] == [True, True, False]
    assert [s.title for s in fake.spreadsheets[sh.id].sheets] == ["Sheet1", "Retry"]


def test_gspread_backoff_client_retries_429(fake: SheetsFake, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(gspread.http_client.time, "sleep", sleeps.append)
    client = gspread_client(fake, base=BackOffHTTPClient)
    try:
        sh = client.create("Backoff")
        fake.inject(method="GET", path=r"/values/", status=429, times=2)
        assert sh.sheet1.get("A1") == [[]]
        assert sleeps == [2, 4]
    finally:
        client.http_client.session.close()


def test_500_after_one_passes(fake: SheetsFake, sh, ws) -> None:
    injection = fake.inject(method="POST", path=r"values:batchUpdate", status=500, after=1, times=1)
    ws.batch_update([{"range": "A1", "values": [["first"]]}])
    with pytest.raises(APIError) as err:
        ws.batch_update([{"range": "A2", "values": [["second"]]}])
    assert err.value.code == 500 and err.value.error["status"] == "INTERNAL"
    ws.batch_update([{"range": "A3", "values": [["third"]]}])
    assert fake.grid(sh.id, "Plan!A1:A3") == [["first"], [], ["third"]]
    assert (injection.seen, injection.fired) == (2, 1)


def test_delay_injection_slows_and_times_out(fake: SheetsFake, gc: gspread.Client, sh, ws) -> None:
    fake.inject(method="GET", path=r"values:batchGet", delay=0.3, times=1)
    started = time.monotonic()
    ws.batch_get(["A1"])
    assert time.monotonic() - started >= 0.3

    fake.inject(method="GET", path=r"values:batchGet", delay=0.5, times=1)
    gc.set_timeout(0.1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        ws.batch_get(["A1"])
    gc.set_timeout(None)
    assert ws.batch_get(["A1"]) == [[]]


# ------------------------------------------------------------------------------------------- Drive


def test_share_list_and_remove_permissions(fake: SheetsFake, sh) -> None:
    sh.share("marketer@example.com", perm_type="user", role="writer", notify=True, email_message="Your plan")
    sh.share("finance@example.com", perm_type="user", role="reader", notify=False)
    sh.share("example.com", perm_type="domain", role="reader")

    roles = {p.get("emailAddress", p.get("domain")): p["role"] for p in fake.permissions(sh.id)}
    assert roles == {
        fake.client_email: "owner",
        "marketer@example.com": "writer",
        "finance@example.com": "reader",
        "example.com": "reader",
    }
    assert fake.notifications == [
        {"fileId": sh.id, "emailAddress": "marketer@example.com", "role": "writer", "emailMessage": "Your plan"}
    ]
    assert {p["role"] for p in sh.list_permissions()} == {"owner", "writer", "reader"}

    sh.remove_permissions("marketer@example.com")
    assert "marketer@example.com" not in [p.get("emailAddress") for p in fake.permissions(sh.id)]
    with pytest.raises(APIError, match="transferOwnership"):
        sh.share("boss@example.com", perm_type="user", role="owner")


def test_drive_list_open_by_title_and_delete(fake: SheetsFake, gc: gspread.Client) -> None:
    first = gc.create("Plan A")
    gc.create("Plan B")
    assert sorted(s.title for s in gc.openall()) == ["Plan A", "Plan B"]
    assert gc.open("Plan A").id == first.id
    assert [f["name"] for f in gc.list_spreadsheet_files("Plan B")] == ["Plan B"]
    gc.del_spreadsheet(first.id)
    assert first.id not in fake.spreadsheets
    with pytest.raises(SpreadsheetNotFound):
        gc.open_by_key(first.id)


def test_copy_export_and_import_csv(fake: SheetsFake, gc: gspread.Client, sh) -> None:
    sh.sheet1.update([["a1", "B2"]], "A1")
    copied = gc.copy(sh.id)
    assert copied.title == "Copy of Plan 2025"
    assert fake.grid(copied.id, "Sheet1") == [["a1", "B2"]]
    assert gc.export(sh.id, gspread.utils.ExportFormat.CSV) == b"a1,B2"
    gc.import_csv(sh.id, "x,1\ny,2\n")
    assert fake.grid(sh.id, "'Plan 2025'") == [["x", 1], ["y", 2]]


def test_a_spreadsheet_not_shared_with_the_service_account_is_forbidden(fake: SheetsFake, gc: gspread.Client) -> None:
    private = fake.add_spreadsheet("Private plan", owner="alice@example.com", shared=False)
    shared = fake.add_spreadsheet("Shared plan", sheet_titles=("Plan", "Lists"), owner="alice@example.com")
    with pytest.raises(PermissionError) as err:  # gspread's translation of the 403
        gc.open_by_key(private.id)
    assert isinstance(err.value.__cause__, APIError) and err.value.__cause__.code == 403
    assert [w.title for w in gc.open_by_key(shared.id).worksheets()] == ["Plan", "Lists"]


# ------------------------------------------------------------------------------------------- server and helpers


def test_concurrent_clients(fake: SheetsFake, sh, ws) -> None:
    errors: list[BaseException] = []

    def writer(column: str) -> None:
        client = gspread_client(fake)
        try:
            sheet = client.open_by_key(sh.id).worksheet("Plan")
            for row in range(1, 6):
                sheet.update([[f"{column}{row}"]], f"{column}{row}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            client.http_client.session.close()

    threads = [threading.Thread(target=writer, args=(c,)) for c in "ABCD"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fake.grid(sh.id, "Plan!A1:D5") == [[f"{c}{r}" for c in "ABCD"] for r in range(1, 6)]


def test_server_stops_and_frees_its_port() -> None:
    with SheetsFake.serve() as fake:
        base = fake.base_url
        assert fake.service_account_info()["token_uri"] == f"{base}/token"
        with requests.Session() as session:
            assert session.get(f"{base}/nowhere").status_code == 404
    with pytest.raises(requests.exceptions.ConnectionError), requests.Session() as session:
        session.get(f"{base}/nowhere", timeout=2)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ("A1", (0, 1, 0, 1)),
        ("b2:a1", (0, 2, 0, 2)),
        ("$C$3", (2, 3, 2, 3)),
        ("A:C", (0, None, 0, 3)),
        ("2:5", (1, 5, 0, None)),
        ("A5:C", (4, None, 0, 3)),
        ("A1:1", (0, 1, 0, None)),
    ],
)
def test_a1_parsing(cells: str, expected: tuple[int, int | None, int, int | None]) -> None:
    b = parse_cells(cells)
    assert (b.r0, b.r1, b.c0, b.c1) == expected


@pytest.mark.parametrize("bad", ["", "A", "5", "A1:B2:C3", "A0", "1A"])
def test_a1_parsing_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_cells(bad)


def test_user_entered_parsing_and_general_format() -> None:
    assert parse_user_entered("12%") == ({"numberValue": 0.12}, {"type": "PERCENT", "pattern": "0%"})
    assert parse_user_entered("$1,200.00")[0] == {"numberValue": 1200.0}
    assert parse_user_entered("1/2/2024")[0] == {"numberValue": 45293.0}
    assert parse_user_entered("true") == ({"boolValue": True}, None)
    assert parse_user_entered("12 apples") == ({"stringValue": "12 apples"}, None)
    assert [format_general(x) for x in (2.0, 1 / 3, 1e16, -0.5)] == ["2", "0.3333333333", "1.00E+16", "-0.5"]


def test_field_mask_parsing() -> None:
    assert parse_field_mask("sheets(properties(title,sheetId),protectedRanges)") == {
        "sheets": {"properties": {"title": None, "sheetId": None}, "protectedRanges": None}
    }
    assert parse_field_mask("sheets/data/rowData/values/note") == {
        "sheets": {"data": {"rowData": {"values": {"note": None}}}}
    }
    assert parse_field_mask("*") is None
