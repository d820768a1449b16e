"""The spreadsheet functions over HTTP: the same answers as in the cell, live ones from the current master.

Every expected figure is computed here from the lines sent (all in the reporting currency, so
no conversion), never read back from the service's own views.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from addin.live import LIVE
from addin.sheet_functions import REGISTRY
from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from tests.databases import upgrade

SCHEMA = build_schema(load_config())
MONTHS = [c.name for c in SCHEMA.month_columns]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'f.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "emea": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "smb": create_token(session, "sue", "marketer", ["EMEA-SMB"]),
            "finance": create_token(session, "fiona", "finance"),
            "admin": create_token(session, "ada", "admin"),
        }
    yield app.test_client(), tokens
    store.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def usd_lines(prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Sample lines in USD (the reporting currency), as a JSON client sends them."""
    out = []
    for line in sample_lines(SCHEMA, "EMEA", n, seed=seed, id_prefix=prefix):
        line = {**line, "currency": "USD"}
        out.append(
            {
                k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
                for k, v in line.items()
            }
        )
    return out


def approve(client: Any, tokens: dict[str, str], team: str, token: str, lines: list[dict[str, Any]], base=None) -> int:
    body = {"team": team, "lines": lines, **({"based_on": {"submission": base}} if base else {})}
    sid = client.post("/api/v1/submissions", headers=auth(token), json=body).get_json()["id"]
    assert (
        client.post(f"/api/v1/submissions/{sid}/approve", headers=auth(tokens["finance"]), json={}).status_code == 200
    )
    return sid


def cents(lines: list[dict[str, Any]], months: list[str], where=lambda line: True) -> int:
    return sum(round((line.get(m) or 0) * 100) for line in lines if where(line) for m in months)


def batch(client: Any, token: str, *calls: tuple[str, list[Any]]) -> list[dict[str, Any]]:
    response = client.post(
        "/api/v1/functions:batch", headers=auth(token), json={"calls": [{"name": n, "args": a} for n, a in calls]}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def value(result: dict[str, Any]) -> Any:
    assert "result" in result, result
    [[v]] = result["result"]
    return v


def test_live_functions_answer_from_the_approved_master_and_an_approval_shows_at_once(service) -> None:
    client, tokens = service
    ent, smb = usd_lines("ENT", 12, seed=1), usd_lines("SMB", 8, seed=2)
    first = approve(client, tokens, "EMEA-ENTERPRISE", tokens["emea"], ent)
    approve(client, tokens, "EMEA-SMB", tokens["smb"], smb)
    q1, q3 = MONTHS[0:3], MONTHS[6:9]
    events = [line for line in ent + smb if line["channel"] == "Events"]
    results = batch(
        client,
        tokens["finance"],
        ("PS_PLANNED", [[["EMEA"]], [["Q1"]]]),
        ("PS_PLANNED", [[["emea-enterprise"]], [["FY"]]]),
        ("PS_PLANNED", [[["EMEA"]], [["Q3"]], [["Events"]]]),
        ("PS_PLANNED", [[["EMEA"]], [["m02"]]]),
        ("PS_ACTUAL", [[["EMEA"]]]),
        ("PS_BUDGET", [[["EMEA"]], [["Q2"]]]),
        ("PS_BUDGET", [[["EMEA"]]]),
        ("PS_LIVE_VARIANCE", [[["EMEA"]], [["2026-06-15"]]]),
        ("PS_REMAINING_LIVE", [[["EMEA"]]]),
    )
    allocation = {q: int(v * 100) for q, v in SCHEMA.config.allocations["EMEA"].items()}
    actual = sum(round((line.get("actual") or 0) * 100) for line in ent + smb)
    committed = sum(round((line.get("committed") or 0) * 100) for line in ent + smb)
    expected = [
        cents(ent + smb, q1),
        cents(ent, MONTHS),
        cents(events, q3),
        cents(ent + smb, ["m02"]),
        actual,
        allocation["Q2"],
        sum(allocation.values()),
        cents(ent + smb, MONTHS[:4]) - actual,  # Feb..May closed by 15 June
        sum(allocation.values()) - committed - actual,
    ]
    assert [round(value(r) * 100) for r in results] == expected

    # A new plan for the team is approved: the very next evaluation answers from the new master version.
    smaller = usd_lines("ENT", 3, seed=9)
    approve(client, tokens, "EMEA-ENTERPRISE", tokens["emea"], smaller, base=first)
    [after] = batch(client, tokens["finance"], ("PS_PLANNED", [[["EMEA-ENTERPRISE"]]]))
    assert round(value(after) * 100) == cents(smaller, MONTHS)


def test_a_marketer_gets_its_own_teams_only_and_errors_are_excel_errors(service) -> None:
    client, tokens = service
    ent, smb = usd_lines("ENT", 5, seed=1), usd_lines("SMB", 5, seed=2)
    approve(client, tokens, "EMEA-ENTERPRISE", tokens["emea"], ent)
    approve(client, tokens, "EMEA-SMB", tokens["smb"], smb)
    region, other, bad_period, unknown, too_many, pure = batch(
        client,
        tokens["emea"],
        ("PS_PLANNED", [[["EMEA"]]]),
        ("PS_PLANNED", [[["EMEA-SMB"]]]),
        ("PS_PLANNED", [[["EMEA"]], [["Q7"]]]),
        ("PS_NOPE", []),
        ("PS_ACTUAL", [[["EMEA"]], [[""]], [[""]], [["x"]]]),
        ("PS_VARIANCE", [[[100], [50]], [[90], [60]]]),
    )
    assert round(value(region) * 100) == cents(ent, MONTHS)  # the region, as far as Maria may see it
    assert other["error"]["code"] == "#N/A" and "EMEA-SMB" in other["error"]["message"]
    assert bad_period["error"]["code"] == "#VALUE!" and "Q7" in bad_period["error"]["message"]
    assert unknown["error"]["code"] == "#NAME?"
    assert too_many["error"]["code"] == "#VALUE!"
    assert pure["result"] == [[10.0], [-10.0]]  # plan minus actual, as PS_VARIANCE answers in the cell
    one = client.post("/api/v1/functions/PS_PLANNED", headers=auth(tokens["emea"]), json={"args": [[["EMEA"]]]})
    assert one.get_json() == region
    assert client.post("/api/v1/functions:batch", json={"calls": []}).status_code == 401
    assert client.post("/api/v1/functions:batch", headers=auth(tokens["admin"]), json={"calls": []}).status_code == 403
    assert client.post("/api/v1/functions:batch", headers=auth(tokens["emea"]), json={"calls": "x"}).status_code == 400


def test_every_pure_function_answers_over_http_as_in_the_cell(service) -> None:
    client, tokens = service
    plan = [[c.label for c in SCHEMA.input_columns]]
    for line in sample_lines(SCHEMA, "EMEA", 6, seed=4):
        plan.append(
            [
                float(v)
                if isinstance(v, Decimal)
                else v.isoformat()
                if isinstance(v, dt.date)
                else ("" if v is None else v)
                for v in (line.get(c.name) for c in SCHEMA.input_columns)
            ]
        )
    for function in REGISTRY:
        args = [plan if a.name == "plan" else [[a.default if a.default is not None else ""]] for a in function.args]
        args = [a for a, spec in zip(args, function.args, strict=True) if not spec.optional]
        [answer] = batch(client, tokens["finance"], (function.name, args))
        direct = function.call(
            *[a if spec.shape == "matrix" else a[0][0] for a, spec in zip(args, function.args, strict=False)]
        )
        if hasattr(direct, "code"):
            assert answer == {"error": {"code": direct.code, "message": direct.message}}, function.name
        else:
            assert answer["result"] == [[None if v != v else v for v in row] for row in direct], function.name


def test_the_catalogue_is_served_as_office_metadata(service) -> None:
    client, tokens = service
    metadata = client.get("/api/v1/functions", headers=auth(tokens["emea"])).get_json()
    names = [f["id"] for f in metadata["functions"]]
    assert names == [f.name for f in REGISTRY] + [f.name for f in LIVE]
    # Live functions stream (an approval reaches open cells); Excel does not allow volatile with stream.
    assert all(f["options"] == {"stream": True} for f in metadata["functions"] if f["id"] in {g.name for g in LIVE})
