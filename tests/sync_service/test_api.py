"""The sync service's API through Flask's test client, on a real SQLite file migrated by Alembic."""

from __future__ import annotations

import io
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from addin.reader import read_plan
from sheet_templates.errors import ConfigError
from sheet_templates.excel_template import build_template
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.storage import Base, Submission
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth, decide, problem, upload
from tests.sync_service.service_helpers import SCHEMA, approved_plan, make_service, settled_jobs
from tests.sync_service.spend_helpers import MONTHS, NAMES, PLAN, imported, line_figures


@pytest.fixture
def service(database_url: str):
    url = database_url
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "MAX_CONTENT_LENGTH": 2 * 2**20})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "emea": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
            "admin": create_token(session, "ada", "admin"),
        }
    yield app, tokens, store
    store.dispose()  # close the pool's connections before the database is dropped


def plan_bytes(tmp_path: Path, region: str = "EMEA", n: int = 15, mistakes: bool = False) -> bytes:
    path = build_template(
        SCHEMA, region, tmp_path / f"plan-{region}.xlsx", lines=sample_lines(SCHEMA, region, n, seed=3)
    )
    if mistakes:
        book = openpyxl.load_workbook(path)
        book["Plan"][f"{SCHEMA['channel'].letter}4"] = "Billboards"
        book["Plan"][f"{SCHEMA['m02'].letter}5"] = -10
        book.save(path)
    return path.read_bytes()


def test_the_migrations_create_exactly_the_models(service) -> None:
    _, _, store = service
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_health(service) -> None:
    app, _, _ = service
    response = app.test_client().get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "database": "ok"}


def test_every_answer_says_the_service_time_it_took(service, tmp_path) -> None:
    """Server-Timing carries the service's own milliseconds, refusals included: clients tell it from the network."""
    app, tokens, _ = service
    client = app.test_client()
    for response in (
        client.get("/health"),
        upload(client, tokens["emea"], plan_bytes(tmp_path, n=40)),
        client.get("/api/v1/master", headers=auth("ps_nope_nope")),
    ):
        name, _, duration = response.headers["Server-Timing"].partition(";dur=")
        assert name == "app" and float(duration) > 0
    assert response.status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer ps_nope_nope", "Bearer garbage"])
def test_without_a_valid_token_the_answer_is_401(service, header) -> None:
    app, _, _ = service
    headers = {"Authorization": header} if header else {}
    response = app.test_client().get("/api/v1/submissions", headers=headers)
    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_plan_is_stored_and_visible_to_its_team_and_finance_only(service, tmp_path: Path) -> None:
    app, tokens, store = service
    client = app.test_client()
    response = upload(client, tokens["emea"], plan_bytes(tmp_path))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["team"] == "EMEA-ENTERPRISE" and body["status"] == "submitted" and body["lines"] == 15
    assert body["submitted_by"] == "maria" and body["report"]["errors"] == 0

    detail = client.get(f"/api/v1/submissions/{body['id']}", headers=auth(tokens["finance"]))
    assert detail.status_code == 200 and detail.get_json()["id"] == body["id"]
    problem(client.get(f"/api/v1/submissions/{body['id']}", headers=auth(tokens["na"])), 403)
    assert client.get("/api/v1/submissions", headers=auth(tokens["na"])).get_json() == {"submissions": [], "next": None}
    listed = client.get("/api/v1/submissions", headers=auth(tokens["emea"])).get_json()["submissions"]
    assert [s["id"] for s in listed] == [body["id"]]

    with store.reading() as session:
        stored = session.get(Submission, body["id"])
        assert len(stored.lines) == 15 and stored.raw[:2] == b"PK"
        assert stored.lines[0].values["line_id"] == "EMEA-0001"
        assert isinstance(stored.lines[0].values["m01"], int)  # cents


def test_an_invalid_plan_gets_every_issue_and_nothing_is_stored(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    body = problem(upload(client, tokens["emea"], plan_bytes(tmp_path, mistakes=True)), 422)
    located = {(i["location"], i["rule"]) for i in body["issues"] if i["severity"] == "error"}
    assert located == {
        (f"Plan!{SCHEMA['channel'].letter}4", "cell.allowed_value"),
        (f"Plan!{SCHEMA['m02'].letter}5", "cell.negative"),
    }
    assert client.get("/api/v1/submissions", headers=auth(tokens["finance"])).get_json() == {
        "submissions": [],
        "next": None,
    }


def test_a_file_that_is_not_a_plan_is_refused_with_its_rule(service) -> None:
    app, tokens, _ = service
    body = problem(upload(app.test_client(), tokens["emea"], b"Line ID,Region\n1,EMEA\n", name="plan.xlsx"), 422)
    assert [i["rule"] for i in body["issues"]] == ["file.not_xlsx"]


def test_another_regions_template_is_refused(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    body = problem(upload(app.test_client(), tokens["emea"], plan_bytes(tmp_path, region="NA")), 422)
    assert "template.region" in {i["rule"] for i in body["issues"]}


def test_who_may_submit_for_which_team(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    data = plan_bytes(tmp_path)
    problem(upload(client, tokens["na"], data), 403)  # another region's marketer
    problem(upload(client, tokens["admin"], data), 403)  # admins manage users, not plans
    problem(upload(client, tokens["emea"], data, team="EMEA-NOWHERE"), 404)
    assert upload(client, tokens["finance"], data).status_code == 201  # finance may submit for a team


def test_a_plan_as_json_lines(service) -> None:
    app, tokens, _ = service
    client = app.test_client()
    lines = []
    for line in sample_lines(SCHEMA, "EMEA", 3, seed=5):
        lines.append(
            {
                k: (float(v) if hasattr(v, "as_tuple") else (v.isoformat() if hasattr(v, "isoformat") else v))
                for k, v in line.items()
            }
        )
    response = client.post(
        "/api/v1/submissions", headers=auth(tokens["emea"]), json={"team": "EMEA-ENTERPRISE", "lines": lines}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["lines"] == 3 and response.get_json()["source"] == "json"

    lines[1]["m03"] = "lots"
    body = problem(
        client.post(
            "/api/v1/submissions", headers=auth(tokens["emea"]), json={"team": "EMEA-ENTERPRISE", "lines": lines}
        ),
        422,
    )
    [issue] = [i for i in body["issues"] if i["severity"] == "error"]
    assert issue["rule"] == "cell.type" and issue["column"] == "m03" and issue["row"] == 3  # header is row 1

    problem(
        client.post(
            "/api/v1/submissions",
            headers=auth(tokens["emea"]),
            json={"team": "EMEA-ENTERPRISE", "lines": [{"colour": "red"}]},
        ),
        400,
    )
    problem(
        client.post(
            "/api/v1/submissions", headers=auth(tokens["emea"]), data="not json", content_type="application/json"
        ),
        400,
    )


def test_a_request_over_the_size_limit_is_413(service) -> None:
    app, tokens, _ = service
    response = app.test_client().post(
        "/api/v1/submissions",
        headers=auth(tokens["emea"]),
        data=b"PK" + bytes(3 * 2**20),
        content_type="application/octet-stream",
    )
    assert "2,097,152" in problem(response, 413)["detail"]


# --- approvals and the master budget -------------------------------------------------------------------------------


def test_finance_approves_and_the_master_holds_each_teams_latest_approved_plan(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    first = upload(client, tokens["emea"], plan_bytes(tmp_path, n=15)).get_json()["id"]
    problem(decide(client, tokens["emea"], first, "approve"), 403)  # marketers do not approve
    problem(decide(client, tokens["admin"], first, "approve"), 403)
    approved = decide(client, tokens["finance"], first, "approve", "looks right")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert approved.get_json()["master_version"] == 1
    assert problem(decide(client, tokens["finance"], first, "approve"), 409)["current_status"] == "approved"

    master = client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()
    assert master["version"] == 1 and [t["team"] for t in master["teams"]] == ["EMEA-ENTERPRISE"]
    assert len(master["lines"]) == 15

    smaller = build_template(SCHEMA, "EMEA", tmp_path / "v2.xlsx", lines=sample_lines(SCHEMA, "EMEA", 4, seed=9))
    blind = upload(client, tokens["emea"], smaller.read_bytes())  # not saying what it was edited from
    assert problem(blind, 409)["current_submission"] == first
    second = upload(client, tokens["emea"], smaller.read_bytes(), based_on=first).get_json()["id"]
    assert decide(client, tokens["finance"], second, "approve").get_json()["master_version"] == 2
    master = client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()
    assert master["version"] == 2 and len(master["lines"]) == 4  # replaced, not added
    statuses = {
        s["id"]: s["status"]
        for s in client.get("/api/v1/submissions", headers=auth(tokens["finance"])).get_json()["submissions"]
    }
    assert statuses == {first: "superseded", second: "approved"}
    # Another region's marketer sees none of it.
    assert client.get("/api/v1/master", headers=auth(tokens["na"])).get_json()["lines"] == []


def test_a_rejection_needs_a_reason_and_is_final(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    sid = upload(client, tokens["emea"], plan_bytes(tmp_path)).get_json()["id"]
    problem(decide(client, tokens["finance"], sid, "reject"), 400)
    rejected = decide(client, tokens["finance"], sid, "reject", "Events are over the Q2 allocation")
    assert rejected.get_json()["status"] == "rejected"
    problem(decide(client, tokens["finance"], sid, "approve"), 409)
    assert client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()["version"] == 0


def test_an_approval_that_fails_midway_leaves_nothing_behind(service, tmp_path: Path, monkeypatch) -> None:
    app, tokens, _ = service
    client = app.test_client()
    sid = upload(client, tokens["emea"], plan_bytes(tmp_path)).get_json()["id"]

    def broken(**_: Any) -> None:
        raise RuntimeError("disk full")

    from sync_service.planning import workflow

    monkeypatch.setattr(workflow, "AuditEvent", broken)  # fails after the decision and the master row were added
    assert problem(decide(client, tokens["finance"], sid, "approve"), 500)["detail"].startswith("something went")
    monkeypatch.undo()
    assert client.get(f"/api/v1/submissions/{sid}", headers=auth(tokens["finance"])).get_json()["status"] == "submitted"
    assert client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()["version"] == 0
    assert decide(client, tokens["finance"], sid, "approve").status_code == 200  # and it can be approved again


def test_a_retried_request_with_an_idempotency_key_creates_nothing_new(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    data = plan_bytes(tmp_path)

    def send(key: str, payload: bytes = data) -> Any:
        return client.post(
            "/api/v1/submissions",
            headers={**auth(tokens["emea"]), "Idempotency-Key": key},
            data={"team": "EMEA-ENTERPRISE", "file": (io.BytesIO(payload), "plan.xlsx")},
            content_type="multipart/form-data",
        )

    first, again = send("upload-7f3a"), send("upload-7f3a")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(client.get("/api/v1/submissions", headers=auth(tokens["emea"])).get_json()["submissions"]) == 1
    (tmp_path / "other").mkdir()
    other = plan_bytes(tmp_path / "other", n=5)  # a different plan sent with the same key
    assert "already used for a different request" in problem(send("upload-7f3a", other), 422)["detail"]

    sid = first.get_json()["id"]
    headers = {**auth(tokens["finance"]), "Idempotency-Key": "approve-1"}
    approved = client.post(f"/api/v1/submissions/{sid}/approve", headers=headers, json={"comment": "ok"})
    retried = client.post(f"/api/v1/submissions/{sid}/approve", headers=headers, json={"comment": "ok"})
    assert approved.status_code == retried.status_code == 200  # not 409: the retry is the same approval
    assert retried.get_json()["master_version"] == approved.get_json()["master_version"] == 1


def test_the_openapi_document_describes_every_route(service) -> None:
    app, _, _ = service
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("web."):
            continue
        # each path part as OpenAPI writes it (<int:year> is {year}); an any(...) part is one path per choice
        path = re.sub(r"<(?:(?:int|path|string):)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            choice = re.search(r"<any\(([^)]*)\):\w+>", path)
            if choice:
                for action in choice.group(1).split(", "):
                    served.add((path.replace(choice.group(0), action.strip("'")), method))
            if "<any" not in path:
                served.add((path, method))
    assert documented == served


def test_master_versions_their_diff_and_the_audit_log(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    first = upload(client, tokens["emea"], plan_bytes(tmp_path, n=6)).get_json()["id"]
    decide(client, tokens["finance"], first, "approve")
    lines = sample_lines(SCHEMA, "EMEA", 6, seed=3)
    lines[1] = {**lines[1], "m01": 999}  # one amount changed
    del lines[5]  # one line removed
    path = build_template(SCHEMA, "EMEA", tmp_path / "v2.xlsx", lines=lines)
    second = upload(client, tokens["emea"], path.read_bytes(), based_on=first).get_json()["id"]
    decide(client, tokens["finance"], second, "approve")

    versions = client.get("/api/v1/master/versions", headers=auth(tokens["finance"])).get_json()["versions"]
    assert [(v["version"], v["submission"]) for v in versions] == [(2, second), (1, first)]
    diff = client.get("/api/v1/master/versions/1/diff/2", headers=auth(tokens["finance"])).get_json()
    [team] = diff["teams"]
    assert team["team"] == "EMEA-ENTERPRISE" and team["added"] == []
    assert [line["line_id"] for line in team["removed"]] == ["EMEA-0006"]
    assert [(c["line_id"], c["fields"]["m01"]["to"]) for c in team["changed"]] == [("EMEA-0002", 99900)]
    assert client.get("/api/v1/master/versions/0/diff/1", headers=auth(tokens["finance"])).get_json()["teams"][0][
        "added"
    ]
    problem(client.get("/api/v1/master/versions/1/diff/9", headers=auth(tokens["finance"])), 404)
    assert client.get("/api/v1/master/versions", headers=auth(tokens["na"])).get_json()["versions"] == []

    events = client.get("/api/v1/audit", headers=auth(tokens["finance"])).get_json()["events"]
    assert [e["action"] for e in events[:4]] == [
        "submission.approve",
        "submission.create",
        "submission.approve",
        "submission.create",
    ]
    problem(client.get("/api/v1/audit", headers=auth(tokens["emea"])), 403)


def test_a_teams_template_comes_back_filled_with_its_approved_plan(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    sid = upload(client, tokens["emea"], plan_bytes(tmp_path, n=8)).get_json()["id"]
    decide(client, tokens["finance"], sid, "approve")

    response = client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(tokens["emea"]))
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    downloaded = tmp_path / "downloaded.xlsx"
    downloaded.write_bytes(response.data)
    read = read_plan(downloaded, SCHEMA, expected_region="EMEA")
    assert read.ok and len(read.table) == 8
    master = client.get("/api/v1/master", headers=auth(tokens["emea"])).get_json()["lines"]
    assert read.table["m01"].tolist() == [line["m01"] for line in master]  # the same cents, round trip
    assert read.table["line_id"].tolist() == [line["line_id"] for line in master]

    problem(client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(tokens["na"])), 403)
    problem(client.get("/api/v1/templates/MARS-SMB.xlsx", headers=auth(tokens["finance"])), 404)
    empty = client.get("/api/v1/templates/NA-SMB.xlsx", headers=auth(tokens["finance"]))  # nothing approved yet
    assert empty.status_code == 200


def test_the_master_downloads_as_the_master_workbook_to_the_cent(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    sid = upload(client, tokens["emea"], plan_bytes(tmp_path, n=15)).get_json()["id"]
    decide(client, tokens["finance"], sid, "approve")
    lines = client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()["lines"]
    response = client.get("/api/v1/master?format=xlsx&as_of=2026-11-01", headers=auth(tokens["finance"]))
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    assert book.sheetnames == ["Summary", "Lines", "Rollup", "Variance", "Chart", "Issues", "Performance"]
    rows = list(book["Lines"].values)
    header, body = rows[0], rows[1:]
    assert len(body) == 15 and {r[0] for r in body} == {f"EMEA-ENTERPRISE #{sid}"}
    for month in ("m01", "m07", "m12"):
        column = header.index(SCHEMA[month].label)
        assert round(sum(r[column] or 0 for r in body) * 100) == sum(line[month] or 0 for line in lines)
    # Another region's marketer gets a workbook without EMEA's lines; a bad format or date is refused.
    other = client.get("/api/v1/master?format=xlsx", headers=auth(tokens["na"]))
    assert len(list(openpyxl.load_workbook(io.BytesIO(other.data), read_only=True)["Lines"].values)) == 1
    problem(client.get("/api/v1/master?format=pdf", headers=auth(tokens["finance"])), 400)
    problem(client.get("/api/v1/master?format=xlsx&as_of=yesterday", headers=auth(tokens["finance"])), 400)


def test_the_master_workbook_spend_sheet_is_the_spend_per_region_and_team_to_the_cent(database_url: str) -> None:
    """Once POs and invoices are in, the Spend sheet shows each region's and team's figures at the month being closed.

    Every expected figure is the spend tests' own computation (spend_helpers) from the rows sent, never the
    service's answer.
    """
    s = make_service(database_url)
    try:
        approved_plan(s, PLAN)
        before = s.client.get("/api/v1/master?format=xlsx", headers=auth(s.tokens["finance"]))
        assert "Spend" not in openpyxl.load_workbook(io.BytesIO(before.data), read_only=True).sheetnames
        imported(s)
        closed = s.client.post(f"/api/v1/accruals/{NAMES[0]}/close", headers=auth(s.tokens["finance"]))
        assert closed.status_code == 200, closed.get_data(as_text=True)
        month = 1  # m01 is closed: m02 is the month being closed
        response = s.client.get("/api/v1/master?format=xlsx", headers=auth(s.tokens["finance"]))
        assert response.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
        assert book.sheetnames[-1] == "Spend"
        grid = [list(r) for r in book["Spend"].values]
        assert MONTHS[month].label in grid[0][0] and NAMES[month] in grid[0][0] and "USD" in grid[0][0]
        want = {"region": {}, "team": {}}
        for x in PLAN:
            for name, cents in line_figures(x["line_id"], month).items():
                for by, key in (("region", "EMEA"), ("team", "EMEA-ENTERPRISE")):
                    want[by].setdefault(
                        key, dict.fromkeys(("plan", "committed", "invoiced", "accrued", "remaining"), 0)
                    )
                    want[by][key][name] += cents
        labels = {
            "Planned": "plan",
            "Committed (open PO)": "committed",
            "Invoiced": "invoiced",
            f"Accrued (end of {MONTHS[month].label})": "accrued",
            "Remaining": "remaining",
        }
        for title, by, first in (("By region", "region", "Region"), ("By team", "team", "Team")):
            start = next(i for i, r in enumerate(grid) if r and r[0] == title) + 1
            header = grid[start]
            assert header[0] == first and set(header[1:6]) == set(labels)
            got = {}
            for row in grid[start + 1 :]:
                if not row or row[0] in ("", None):
                    break
                got[row[0]] = {
                    labels[h]: round(Decimal(str(v)) * 100) for h, v in zip(header[1:6], row[1:6], strict=True)
                }
            assert got == want[by], title
    finally:
        settled_jobs(s.store)  # the pack its close builds
        s.store.dispose()


def test_finance_cannot_approve_a_plan_it_submitted_itself(service, tmp_path: Path) -> None:
    app, tokens, store = service
    client = app.test_client()
    with store.transaction() as session:
        colleague = create_token(session, "frank", "finance")
    sid = upload(client, tokens["finance"], plan_bytes(tmp_path)).get_json()["id"]
    assert "another approver" in problem(decide(client, tokens["finance"], sid, "approve"), 403)["detail"]
    assert client.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()["version"] == 0
    assert decide(client, colleague, sid, "approve").status_code == 200


NO_MONTHS = {c.name: None for c in SCHEMA.month_columns}


def test_a_marketer_is_told_of_an_over_allocation_without_the_other_teams_figures(service, tmp_path: Path) -> None:
    app, tokens, store = service
    client = app.test_client()
    with store.transaction() as session:
        smb = create_token(session, "sue", "marketer", ["EMEA-SMB"])
    # EMEA-SMB's approved plan takes most of the region's Q1 allocation ...
    big = [
        dict(line, **{**NO_MONTHS, "m01": Decimal("800000")})
        for line in sample_lines(SCHEMA, "EMEA", 1, seed=1, id_prefix="SMB")
    ]
    path = build_template(SCHEMA, "EMEA", tmp_path / "smb.xlsx", lines=big)
    first = upload(client, smb, path.read_bytes(), team="EMEA-SMB").get_json()["id"]
    decide(client, tokens["finance"], first, "approve")
    # ... so Maria's plan for EMEA-ENTERPRISE puts EMEA over it: she is warned, but not told SMB's spend.
    small = [dict(line, **{**NO_MONTHS, "m01": Decimal("200000")}) for line in sample_lines(SCHEMA, "EMEA", 1, seed=2)]
    path = build_template(SCHEMA, "EMEA", tmp_path / "ent.xlsx", lines=small)
    body = upload(client, tokens["emea"], path.read_bytes()).get_json()
    [warning] = [i for i in body["report"]["issues"] if i["rule"] == "allocation.over" and i["quarter"] == "Q1"]
    assert "planned" not in warning and "over" not in warning and "800" not in warning["message"]
    assert warning["allocation"] == "900000.00"
    # Finance, approving it, sees the figures.
    approved = decide(client, tokens["finance"], body["id"], "approve").get_json()
    [finding] = [f for f in approved["over_allocation"] if f["quarter"] == "Q1" and f["channel"] == "*"]
    assert finding["planned"] == money_of(big, small) and finding["allocation"] == "900000.00"


def money_of(*plans: list[dict[str, Any]], month: str = "m01") -> str:
    """The planned amount of `month` over plans, in USD at plan rates, as the API writes money."""
    total = sum(
        (Decimal(line[month] or 0) * SCHEMA.config.plan_rates[line["currency"]]).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        for plan in plans
        for line in plan
    )
    return f"{total:.2f}"


def test_json_cells_that_are_not_values_and_a_mistyped_policy_are_refused_clearly(service, tmp_path: Path) -> None:
    app, tokens, _ = service
    client = app.test_client()
    line = {"line_id": {"x": 1}, "region": "EMEA"}
    answer = client.post(
        "/api/v1/submissions", headers=auth(tokens["emea"]), json={"team": "EMEA-ENTERPRISE", "lines": [line]}
    )
    assert "lines[0].line_id" in problem(answer, 400)["detail"]
    rows = {"team": "EMEA-ENTERPRISE", "rows": [["Line ID"], [["a"]]]}
    assert (
        "rows[1][0]"
        in problem(client.post("/api/v1/submissions", headers=auth(tokens["emea"]), json=rows), 400)["detail"]
    )
    with pytest.raises(ConfigError, match="OVER_ALLOCATION"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "OVER_ALLOCATION": "Refuse!"})


def test_an_admin_hands_out_and_revokes_tokens(service) -> None:
    app, tokens, _ = service
    client = app.test_client()
    body = {"name": "li@example.com", "role": "marketer", "teams": ["NA-SMB"]}
    problem(client.post("/api/v1/tokens", headers=auth(tokens["finance"]), json=body), 403)
    created = client.post("/api/v1/tokens", headers=auth(tokens["admin"]), json=body)
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert client.get("/api/v1/submissions", headers=auth(token)).status_code == 200
    users = client.get("/api/v1/users", headers=auth(tokens["admin"])).get_json()["users"]
    [li] = [u for u in users if u["name"] == "li@example.com"]
    assert li["role"] == "marketer" and li["teams"] == ["NA-SMB"] and "secret" not in str(li)
    revoked = client.post(f"/api/v1/tokens/{li['tokens'][0]['id']}/revoke", headers=auth(tokens["admin"]))
    assert revoked.status_code == 200
    problem(client.get("/api/v1/submissions", headers=auth(token)), 401)
    assert (
        "MARS-SMB"
        in problem(
            client.post("/api/v1/tokens", headers=auth(tokens["admin"]), json={**body, "teams": ["MARS-SMB"]}), 422
        )["detail"]
    )
    events = client.get("/api/v1/audit", headers=auth(tokens["admin"])).get_json()["events"]
    assert [e["action"] for e in events[:2]] == ["token.revoke", "token.create"] and events[0]["user"] == "ada"
