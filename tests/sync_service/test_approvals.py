"""Approval chains through the API: steps in order, thresholds that add a step, queues, and two approvers at once.

On SQLite and PostgreSQL, with an organisation file whose EMEA plans pass the region's marketing
lead and then finance, whose NA plans pass finance alone, and where a plan changing the approved
one by more than 50,000 (or a transfer of more than 100,000) also needs a controller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path, parse_config
from sheet_templates.errors import ConfigError
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.storage import ApprovalStep, MasterVersion
from tests.databases import upgrade
from tests.sync_service.approval_chains import CHAINS, LARGE, SMALL
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, line, submit


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    org = tmp_path / "org.toml"
    org.write_text(default_config_path().read_text(encoding="utf-8") + CHAINS, encoding="utf-8")
    config = load_config(org)
    upgrade(database_url)
    app = create_app(
        {"DATABASE_URL": database_url, "TESTING": True, "ORG_CONFIG": str(org), "TRANSFER_FINANCE_LIMIT": "1000000"}
    )
    store = app.extensions["plansheet.store"]
    lead = [{"step": "region_lead", "region": "EMEA"}]
    with store.transaction() as session:
        sync_teams(session, build_schema(config))
        tokens = {
            "maria": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "lena": create_token(session, "lena", "marketer", ["EMEA-SMB"], approves=lead, config=config),
            "leo": create_token(session, "leo", "marketer", [], approves=lead, config=config),
            "sam": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "fiona": create_token(session, "fiona", "finance"),
            "frank": create_token(session, "frank", "finance"),
            "carla": create_token(
                session, "carla", "finance", approves=[{"step": "controller", "region": "*"}], config=config
            ),
            "ada": create_token(session, "ada", "admin"),
        }
    yield Service(app, app.test_client(), tokens, store, database_url)
    store.dispose()


def act(s: Service, who: str, sid: int, action: str = "approve", comment: str = "ok", **body: Any) -> Any:
    return s.client.post(
        f"/api/v1/submissions/{sid}/{action}", headers=auth(s.tokens[who]), json={"comment": comment, **body}
    )


def submitted(s: Service, lines: list[dict[str, Any]], who: str = "maria", team: str = "EMEA-ENTERPRISE") -> int:
    answer = submit(s.client, s.tokens[who], lines, team)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def chain(s: Service, sid: int) -> dict[str, Any]:
    return s.client.get(f"/api/v1/submissions/{sid}", headers=auth(s.tokens["fiona"])).get_json()["approval"]


def held(s: Service, team: str) -> int | None:
    with s.store.reading() as session:
        return session.scalar(
            select(MasterVersion.submission_id).where(MasterVersion.team_id == team).order_by(MasterVersion.id.desc())
        )


def queue(s: Service, who: str) -> list[int]:
    return [x["id"] for x in s.client.get("/api/v1/approvals", headers=auth(s.tokens[who])).get_json()["submissions"]]


def test_a_plan_passes_its_regions_chain_in_order_and_only_the_last_step_merges_it(service: Service) -> None:
    sid = submitted(service, SMALL)
    state = chain(service, sid)
    assert [(x["step"], x["status"]) for x in state["steps"]] == [
        ("region_lead", "waiting"),
        ("finance", "not reached"),
    ]
    assert state["steps"][0]["label"] == "Region marketing lead"
    assert queue(service, "lena") == [sid] and queue(service, "leo") == [sid] and queue(service, "fiona") == []

    early = problem(act(service, "fiona", sid), 403)
    assert "Region marketing lead" in early["detail"]
    assert problem(act(service, "sam", sid), 403)  # no step of this chain is theirs
    first = act(service, "lena", sid, comment="fits the EMEA plan")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json()["master_version"] is None and first.get_json()["status"] == "submitted"
    assert held(service, "EMEA-ENTERPRISE") is None  # not in the master until the last step
    state = chain(service, sid)
    assert [(x["step"], x["status"], x["by"]) for x in state["steps"]] == [
        ("region_lead", "approved", "lena"),
        ("finance", "waiting", None),
    ]
    assert state["steps"][0]["comment"] == "fits the EMEA plan" and state["steps"][0]["at"]
    assert queue(service, "lena") == [] and queue(service, "fiona") == [sid]
    assert problem(act(service, "leo", sid), 409)["waiting_for"] == "finance"  # the lead's step was taken

    last = act(service, "fiona", sid, comment="within budget")
    assert last.status_code == 200 and last.get_json()["status"] == "approved"
    assert last.get_json()["master_version"] and held(service, "EMEA-ENTERPRISE") == sid
    assert [x["by"] for x in chain(service, sid)["steps"]] == ["lena", "fiona"]


def test_a_large_change_adds_the_controller_and_nobody_takes_two_steps(service: Service) -> None:
    sid = submitted(service, LARGE)
    state = chain(service, sid)
    assert [x["step"] for x in state["steps"]] == ["region_lead", "finance", "controller"]
    assert state["change"] == "60000.00"
    assert act(service, "leo", sid).status_code == 200
    assert act(service, "carla", sid).status_code == 200  # carla is finance: the finance step
    took_two = problem(act(service, "carla", sid), 403)
    assert "you took the finance step" in took_two["detail"]
    assert held(service, "EMEA-ENTERPRISE") is None
    assert [x["step"] for x in chain(service, sid)["steps"] if x["status"] == "waiting"] == ["controller"]

    # Against an approved plan, the change is what moves: a small one needs no controller, a large one does.
    base = submitted(service, SMALL)
    assert act(service, "lena", base).status_code == 200 and act(service, "frank", base).status_code == 200
    small = submit(service.client, service.tokens["maria"], [line("EMEA-0001", m01="1000", m02="12000")],
                   based_on={"submission": base})  # fmt: skip
    small_chain = chain(service, small.get_json()["id"])
    assert [x["step"] for x in small_chain["steps"]] == ["region_lead", "finance"]
    assert small_chain["change"] == "10000.00"
    moved = submit(service.client, service.tokens["maria"], [line("EMEA-0001", m01="1000", m02="2000", m09="60000")],
                   based_on={"submission": base})  # fmt: skip
    assert [x["step"] for x in chain(service, moved.get_json()["id"])["steps"]][-1] == "controller"


def test_a_rejection_at_any_step_ends_the_chain_with_its_comment(service: Service) -> None:
    sid = submitted(service, SMALL)
    assert problem(act(service, "lena", sid, "reject", comment=""), 400)
    rejected = act(service, "lena", sid, "reject", comment="the events budget is already spent")
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    state = chain(service, sid)
    assert [(x["status"], x["comment"]) for x in state["steps"]] == [
        ("rejected", "the events budget is already spent"),
        ("not reached", None),
    ]
    assert state["waiting_for"] is None
    assert problem(act(service, "fiona", sid), 409)
    assert held(service, "EMEA-ENTERPRISE") is None and queue(service, "fiona") == []


def test_nobody_approves_their_own_submission_at_any_step(service: Service) -> None:
    sid = submitted(service, [line("EMEA-0101", team="EMEA-SMB", m01="500")], who="lena", team="EMEA-SMB")
    assert "you submitted" in problem(act(service, "lena", sid), 403)["detail"]
    assert queue(service, "lena") == [] and queue(service, "leo") == [sid]
    assert act(service, "leo", sid).status_code == 200
    # Finance submitting for a team: another finance user takes the finance step.
    na = submitted(service, [line("NA-0001", team="NA-ENTERPRISE", m01="500")], who="fiona", team="NA-ENTERPRISE")
    assert [x["step"] for x in chain(service, na)["steps"]] == ["finance"]  # NA: finance alone
    assert "you submitted" in problem(act(service, "fiona", na), 403)["detail"]
    assert act(service, "frank", na).get_json()["status"] == "approved"


def test_two_approvers_of_one_step_at_once_one_wins_one_gets_409(service: Service) -> None:
    for _ in range(3):  # a few rounds: which of the two wins is the database's to decide
        sid = submitted(service, SMALL)
        start = threading.Barrier(2)
        answers: dict[str, Any] = {}

        def take(who: str, sid: int = sid, start: threading.Barrier = start, answers: dict = answers) -> None:
            client = service.app.test_client()
            start.wait()
            answers[who] = client.post(
                f"/api/v1/submissions/{sid}/approve",
                headers=auth(service.tokens[who]),
                json={"comment": who, "step": "region_lead"},
            )

        threads = [threading.Thread(target=take, args=(who,)) for who in ("lena", "leo")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(a.status_code for a in answers.values())
        assert codes == [200, 409], {w: a.get_data(as_text=True) for w, a in answers.items()}
        loser = next(a for a in answers.values() if a.status_code == 409)
        assert loser.mimetype == "application/problem+json" and "region_lead" in loser.get_json()["detail"]
        with service.store.reading() as session:
            steps = session.scalars(select(ApprovalStep).where(ApprovalStep.submission_id == sid)).all()
        assert len(steps) == 1
        winner = next(w for w, a in answers.items() if a.status_code == 200)
        assert chain(service, sid)["steps"][0]["by"] == winner
        assert act(service, "fiona", sid, "reject", comment="next round").status_code == 200


def test_a_transfer_over_its_threshold_needs_the_controller(service: Service) -> None:
    body = {
        "from": {"region": "EMEA", "quarter": "Q3", "channel": "*"},
        "to": {"region": "EMEA", "quarter": "Q4", "channel": "*"},
        "amount": "150000",
        "reason": "the Q4 launch",
    }
    asked = service.client.post("/api/v1/transfers", headers=auth(service.tokens["fiona"]), json=body)
    assert asked.status_code == 201, asked.get_data(as_text=True)
    transfer = asked.get_json()
    assert transfer["steps"] == ["finance", "controller"] and transfer["waiting_for"] == ["controller"]
    waiting = service.client.get("/api/v1/approvals", headers=auth(service.tokens["carla"])).get_json()
    assert [t["id"] for t in waiting["transfers"]] == [transfer["id"]]
    assert problem(
        service.client.post(f"/api/v1/transfers/{transfer['id']}/approve", headers=auth(service.tokens["frank"]),
                            json={}), 409)  # fmt: skip
    done = service.client.post(
        f"/api/v1/transfers/{transfer['id']}/approve", headers=auth(service.tokens["carla"]), json={"comment": "ok"}
    )
    assert done.status_code == 200 and done.get_json()["status"] == "approved"
    small = {**body, "amount": "1000"}
    assert (
        service.client.post("/api/v1/transfers", headers=auth(service.tokens["fiona"]), json=small).get_json()["status"]
        == "approved"
    )


def test_grants_name_steps_and_regions_the_organisation_file_knows(service: Service) -> None:
    admin = auth(service.tokens["ada"])
    bad = service.client.post(
        "/api/v1/tokens",
        headers=admin,
        json={"name": "x@example.com", "role": "marketer", "approves": [{"step": "cmo"}]},
    )
    assert "cmo" in problem(bad, 422)["detail"]
    region = service.client.post(
        "/api/v1/tokens",
        headers=admin,
        json={"name": "y@example.com", "role": "marketer", "approves": [{"step": "region_lead", "region": "MARS"}]},
    )
    assert "MARS" in problem(region, 422)["detail"]
    good = service.client.post(
        "/api/v1/tokens",
        headers=admin,
        json={"name": "z@example.com", "role": "marketer", "approves": [{"step": "region_lead", "region": "NA"}]},
    )
    assert good.status_code == 201 and good.get_json()["approves"] == [{"step": "region_lead", "region": "NA"}]


def test_the_approvals_section_is_checked_whole() -> None:
    import tomllib

    raw = tomllib.loads(default_config_path().read_text(encoding="utf-8"))
    raw["approvals"] = {
        "steps": ["region_lead", "Region Lead", "finance", "finance"],
        "regions": {"MARS": ["finance"]},
        "thresholds": [{"step": "controller", "plan_change_over": "-5"}, {"step": "cmo"}],
        "extra": 1,
    }
    with pytest.raises(ConfigError) as found:
        parse_config(raw)
    text = "\n".join(found.value.details)
    for expected in ("'Region Lead' is not a step name", "names a step twice", "approvals.regions.MARS",
                     "plan_change_over must be an amount", "needs plan_change_over or transfer_over",
                     "approvals.extra"):  # fmt: skip
        assert expected in text, text


def test_whoever_asks_for_a_transfer_never_takes_its_thresholds_step(service: Service) -> None:
    body = {
        "from": {"region": "EMEA", "quarter": "Q3", "channel": "*"},
        "to": {"region": "EMEA", "quarter": "Q4", "channel": "*"},
        "amount": "150000",
        "reason": "the Q4 launch",
    }
    asked = service.client.post("/api/v1/transfers", headers=auth(service.tokens["carla"]), json=body).get_json()
    assert asked["status"] == "requested" and asked["waiting_for"] == ["controller"]  # carla is finance and controller
    assert problem(
        service.client.post(f"/api/v1/transfers/{asked['id']}/approve", headers=auth(service.tokens["carla"]),
                            json={}), 403)  # fmt: skip
