"""What one plan may not do to everyone else's: break a download, or take another team's line IDs.

Plans from before the text rule are stored straight in the database (as they were stored then);
every download must still open. Line IDs are unique across the master, so the actuals import
never has to drop a row as ambiguous for new plans.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from sheet_templates.excel_template import build_template
from sheet_templates.text import printable
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.integrations.google import client as gsheets
from sync_service.master import model as master
from sync_service.platform.context import STORE
from sync_service.platform.storage import Submission
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth, decide, problem
from tests.sync_service.service_helpers import (
    SCHEMA,
    Service,
    approved_plan,
    csv_bytes,
    line,
    post_actuals,
    stored_plan,
    submit,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plansheet.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    upgrade(database_url)
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "emea": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
            "finance2": create_token(session, "frank", "finance"),
        }
    yield Service(app, app.test_client(), tokens, store, database_url)
    store.dispose()


def bad(line_values: dict[str, Any], **text: str) -> dict[str, Any]:
    return {**line_values, **text}


BAD_TEXT = {"campaign": "Data\x07Week", "activity": "Booth\ud83d", "notes": "Row\x0bbreak \ud800 end"}


def submissions(service: Service) -> int:
    with service.store.reading() as session:
        return session.scalar(select(func.count(Submission.id)))


def opens(data: bytes, tmp_path: Path, name: str) -> tuple[openpyxl.Workbook, CalamineWorkbook]:
    path = tmp_path / name
    path.write_bytes(data)
    return openpyxl.load_workbook(path), CalamineWorkbook.from_path(path)


# --- text ----------------------------------------------------------------------------------------------------------


def test_control_characters_in_a_json_plan_are_refused_at_their_cells(service: Service) -> None:
    lines = [line("E1"), bad(line("E2"), campaign="Data\x07Week"), bad(line("E3"), owner="jo\x85@example.com")]
    body = problem(submit(service.client, service.tokens["emea"], lines), 422)
    found = [(i["rule"], i["location"]) for i in body["issues"] if i["rule"] == "cell.control_character"]
    assert found == [
        ("cell.control_character", f"lines!{SCHEMA['campaign'].letter}3"),
        ("cell.control_character", f"lines!{SCHEMA['owner'].letter}4"),
    ]
    messages = [i["message"] for i in body["issues"] if i["rule"] == "cell.control_character"]
    assert "U+0007" in messages[0] and "U+0085" in messages[1] and "retype" in messages[0]
    assert submissions(service) == 0


def test_a_stored_plan_with_such_text_still_downloads_everywhere(service: Service, tmp_path: Path) -> None:
    stored_plan(service, [bad(line("E1", m01="100"), **BAD_TEXT), line("E2", m02="50")])
    finance = auth(service.tokens["finance"])

    template = service.client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=finance)
    assert template.status_code == 200, template.get_data(as_text=True)
    book, calamine = opens(template.data, tmp_path, "team.xlsx")
    plan = book["Plan"]
    column = SCHEMA["campaign"].index
    assert plan.cell(2, column).value == "Data\ufffdWeek"
    assert plan.cell(2, SCHEMA["activity"].index).value == "Booth\ufffd"
    assert calamine.get_sheet_by_name("Plan").to_python()[1][column - 1] == "Data\ufffdWeek"

    workbook = service.client.get("/api/v1/master?format=xlsx", headers=finance)
    assert workbook.status_code == 200, workbook.get_data(as_text=True)
    book, calamine = opens(workbook.data, tmp_path, "master.xlsx")
    rows = list(book["Lines"].values)
    header = rows[0]
    activity = header.index(SCHEMA["activity"].label)
    assert [r[activity] for r in rows[1:]] == ["Booth\ufffd", "Booth"]
    streamed = calamine.get_sheet_by_name("Lines").to_python()
    assert streamed[1][header.index(SCHEMA["campaign"].label)] == "Data\x07Week"  # kept as Excel's _x0007_ escape
    assert "\ufffd" in streamed[1][header.index(SCHEMA["notes"].label)]

    # The Google push: every value serialises as UTF-8 JSON.
    with service.store.reading() as session:
        view_lines = master.master_lines(session, master.current_submissions(session, SCHEMA.calendar.year))
    sheets = gsheets.master_sheets(SCHEMA, view_lines, {"rows": []}, {"rows": []})
    json.dumps([s.rows for s in sheets]).encode("utf-8")
    text = json.dumps([s.rows for s in sheets], ensure_ascii=False)
    text.encode("utf-8")
    assert "Booth\ufffd" in text
    cells = gsheets.line_cells(SCHEMA, view_lines)
    json.dumps(cells, ensure_ascii=False).encode("utf-8")


def test_printable_replaces_only_what_xml_cannot_hold() -> None:
    assert (
        printable("Plain text, tab\tnewline\ncr\r, é and \U0001f600")
        == "Plain text, tab\tnewline\ncr\r, é and \U0001f600"
    )
    assert printable("a\x00b\x1fc\ud83dd\udfffe\ufffef") == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf"


# --- line IDs ------------------------------------------------------------------------------------------------------


def test_another_teams_approved_line_id_is_refused_at_submission(service: Service) -> None:
    approved_plan(service, [line("SHARED-1", m01="10"), line("E2", m01="10")])
    before = submissions(service)
    plan = [line("NA-1", team="NA-ENTERPRISE"), line("shared-1", team="NA-ENTERPRISE")]  # another case, the same ID

    body = problem(submit(service.client, service.tokens["na"], plan, team="NA-ENTERPRISE"), 422)
    assert [(i["rule"], i["location"], i["team"], i["line_id"]) for i in body["issues"]] == [
        ("line.id_of_another_team", "lines!A3", "EMEA-ENTERPRISE", "shared-1")
    ]
    assert "already used by team EMEA-ENTERPRISE's approved plan" in body["issues"][0]["message"]
    assert "nothing was stored" in body["detail"]
    assert submissions(service) == before
    # The team's own line IDs are its own: a new version of its plan keeps them.
    response = submit(
        service.client, service.tokens["finance2"], [line("SHARED-1", m01="20")], based_on={"submission": 1}
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_pending_plans_line_id_is_refused_and_a_workbook_names_its_cell(service: Service, tmp_path: Path) -> None:
    waiting = submit(service.client, service.tokens["emea"], [line("EMEA-0001", m01="10")])
    assert waiting.status_code == 201
    # The NA team's template numbers rows NA-..., but a planner typed EMEA-0001 into row 3.
    path = build_template(SCHEMA, "EMEA", tmp_path / "plan.xlsx", lines=[line("EMEA-0099"), line("EMEA-0001")])
    book = openpyxl.load_workbook(path)
    book.save(path)
    form = {"team": "EMEA-SMB", "file": (io.BytesIO(path.read_bytes()), "plan.xlsx")}
    token = service.tokens["finance2"]
    response = service.client.post(
        "/api/v1/submissions", headers=auth(token), data=form, content_type="multipart/form-data"
    )
    body = problem(response, 422)
    taken = [i for i in body["issues"] if i["rule"] == "line.id_of_another_team"]
    assert [(i["location"], i["team"]) for i in taken] == [("Plan!A3", "EMEA-ENTERPRISE")]
    assert "plan waiting for approval" in taken[0]["message"]
    # Once that plan is rejected, its IDs are free again.
    assert (
        decide(service.client, service.tokens["finance"], waiting.get_json()["id"], "reject", "no").status_code == 200
    )
    form["file"] = (io.BytesIO(path.read_bytes()), "plan.xlsx")
    response = service.client.post(
        "/api/v1/submissions", headers=auth(token), data=form, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_an_id_another_team_got_approved_meanwhile_is_refused_at_approval(service: Service) -> None:
    smb = submit(service.client, service.tokens["finance2"], [line("RACE-1", team="EMEA-SMB")], team="EMEA-SMB")
    assert smb.status_code == 201
    # EMEA-ENTERPRISE's plan with the same ID was checked at the same moment (stored here past the check), and approved.
    enterprise = stored_plan(service, [line("RACE-1", m01="5")], approve=False)
    assert decide(service.client, service.tokens["finance"], enterprise, "approve", "ok").status_code == 200

    body = problem(decide(service.client, service.tokens["finance"], smb.get_json()["id"], "approve", "ok"), 409)
    assert [(i["rule"], i["location"], i["team"]) for i in body["issues"]] == [
        ("line.id_of_another_team", "lines!A2", "EMEA-ENTERPRISE")
    ]
    master_now = service.client.get("/api/v1/master", headers=auth(service.tokens["finance"])).get_json()
    assert [t["team"] for t in master_now["teams"]] == ["EMEA-ENTERPRISE"]


def test_the_team_template_numbers_new_rows_with_the_team(service: Service, tmp_path: Path) -> None:
    approved_plan(service, [line("EMEA-ENTERPRISE-0001", m01="10")])
    response = service.client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(service.tokens["emea"]))
    book, _ = opens(response.data, tmp_path, "team.xlsx")
    ids = [book["Plan"].cell(r, 1).value for r in (2, 3, 4)]
    assert ids == ["EMEA-ENTERPRISE-0001", "EMEA-ENTERPRISE-0002", "EMEA-ENTERPRISE-0003"]
    empty = service.client.get("/api/v1/templates/EMEA-SMB.xlsx", headers=auth(service.tokens["finance"]))
    assert opens(empty.data, tmp_path, "smb.xlsx")[0]["Plan"].cell(2, 1).value == "EMEA-SMB-0001"
    # The offline template (no team) keeps the region's numbering.
    offline = openpyxl.load_workbook(build_template(SCHEMA, "EMEA", tmp_path / "offline.xlsx"))
    assert offline["Plan"].cell(2, 1).value == "EMEA-0001"


# --- actuals -------------------------------------------------------------------------------------------------------


def test_every_actuals_row_is_matched_unmatched_or_ambiguous_exactly_once(service: Service) -> None:
    approved_plan(service, [line("E1", code="C-1", m01="10"), line("OLD-1", code="C-OLD-A", m01="10")])
    stored_plan(service, [line("OLD-1", team="EMEA-SMB", code="C-OLD-B", m01="10")], team="EMEA-SMB")  # a legacy twin
    export: list[list[Any]] = [
        ["Line ID", "Campaign code", "Amount"],
        ["E1", "", "1.00"],  # matched by ID
        ["", "C-1", "2.00"],  # matched by code
        ["OLD-1", "", "3.00"],  # two teams' line: ambiguous
        ["OLD-1", "NO-SUCH-CODE", "4.00"],  # two teams' line, and a code that says nothing: ambiguous, not unknown
        ["OLD-1", "C-OLD-B", "5.00"],  # the code says which: matched
        ["NOPE", "", "6.00"],  # unmatched
    ]
    response = post_actuals(service, csv_bytes(export))
    assert response.status_code == 201, response.get_data(as_text=True)
    report = response.get_json()
    ambiguous = [a["row"] for a in report["ambiguous"]]
    unmatched = [u["row"] for u in report["unmatched"]]
    assert ambiguous == [4, 5] and unmatched == [7] and report["matched"] == 3
    assert report["rows"] == report["matched"] + len(ambiguous) + len(unmatched) == len(export) - 1
    assert not set(ambiguous) & set(unmatched)
    assert report["ambiguous"][1]["teams"] == ["EMEA-ENTERPRISE", "EMEA-SMB"]
