"""Cycle guard rails: no deadline in the past; a month an ended cycle closed reopens only when finance says why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, make_service

SOON = (dt.date.today() + dt.timedelta(days=14)).isoformat()


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    yield s
    s.store.dispose()


def _cycles(s: Service) -> list:
    return s.client.get("/api/v1/cycles", headers=auth(s.tokens["finance"])).get_json()["cycles"]


def test_a_cycle_with_a_deadline_already_past_is_refused(service: Service) -> None:
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    body = {"name": "Q1 reforecast", "through": "m03", "deadline": past}
    answer = service.client.post("/api/v1/cycles", headers=auth(service.tokens["finance"]), json=body)
    assert problem(answer, 400)["detail"].startswith(f"deadline: {past} has passed")
    assert _cycles(service) == []
    today = {**body, "deadline": dt.date.today().isoformat()}
    assert service.client.post("/api/v1/cycles", headers=auth(service.tokens["finance"]), json=today).status_code == 201


def test_a_month_of_an_ended_cycle_reopens_only_with_a_reason_audited(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    opened = service.client.post(
        "/api/v1/cycles", headers=finance, json={"name": "Q1 reforecast", "through": "m02", "deadline": SOON}
    ).get_json()
    assert service.client.post(f"/api/v1/cycles/{opened['id']}/close", headers=finance).status_code == 200
    assert service.client.post("/api/v1/periods/lock", headers=finance, json={"months": ["m05"]}).status_code == 200

    refused = service.client.post("/api/v1/periods/unlock", headers=finance, json={"months": ["m01", "m05"]})
    body = problem(refused, 409)
    assert "m01 (Q1 reforecast)" in body["detail"] and '"reopen": true' in body["detail"]
    periods = service.client.get("/api/v1/periods", headers=finance).get_json()["periods"]
    assert [p["month"] for p in periods if p["locked"]] == ["m01", "m02", "m05"]  # nothing unlocked

    no_reason = {"months": ["m01"], "reopen": True}
    assert problem(service.client.post("/api/v1/periods/unlock", headers=finance, json=no_reason), 409)
    assert service.client.post("/api/v1/periods/unlock", headers=finance, json={"months": ["m05"]}).status_code == 200

    reopened = {"months": ["m01"], "reopen": True, "reason": "an invoice booked to the wrong month"}
    assert service.client.post("/api/v1/periods/unlock", headers=finance, json=reopened).status_code == 200
    audit = service.client.get("/api/v1/audit", headers=finance).get_json()["events"]
    event = next(e for e in audit if e["action"] == "periods.reopen")
    assert (
        event["detail"]["reopened"] == ["m01"] and event["detail"]["reason"] == "an invoice booked to the wrong month"
    )
    assert event["detail"]["cycles"] == ["Q1 reforecast"]
