"""Loose types are refused: no boolean is an amount or an id, and `Prefer: wait` takes a finite number only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, make_service


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    yield s
    s.store.dispose()


def _transfers(s: Service) -> list:
    return s.client.get("/api/v1/transfers", headers=auth(s.tokens["finance"])).get_json()["transfers"]


@pytest.mark.parametrize("amount", [True, False])
def test_a_boolean_is_not_an_amount(service: Service, amount: bool) -> None:
    body = {"from": {"region": "NA", "quarter": "Q3"}, "to": {"region": "EMEA", "quarter": "Q3"}, "amount": amount}
    finance = auth(service.tokens["finance"])
    answer = service.client.post("/api/v1/transfers", headers=finance, json={**body, "reason": "x"})
    issues = problem(answer, 400)["issues"]
    assert [i["at"] for i in issues] == ["body.amount"]
    assert "true and false are not a number" in issues[0]["message"]
    assert _transfers(service) == []  # nothing moved
    allocations = {"allocations": [{"region": "NA", "quarter": "Q1", "amount": True}]}
    answer = service.client.put("/api/v1/allocations", headers=finance, json=allocations)
    assert problem(answer, 400)["issues"][0]["at"] == "body.allocations[0].amount"


def test_a_boolean_is_not_an_id(service: Service) -> None:
    body = {"team": "EMEA-ENTERPRISE", "lines": [], "based_on": {"submission": True}}
    answer = service.client.post("/api/v1/submissions", headers=auth(service.tokens["finance"]), json=body)
    assert [i["at"] for i in problem(answer, 400)["issues"]] == ["body.based_on.submission"]


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "1e999", "soon"])
def test_prefer_wait_takes_a_finite_number_only(service: Service, wait: str) -> None:
    started = time.monotonic()
    answer = service.client.get(
        "/api/v1/jobs/0123456789abcdef0123456789abcdef",
        headers={**auth(service.tokens["finance"]), "Prefer": f"wait={wait}"},
    )
    body = problem(answer, 400)
    assert "is not a number of seconds" in body["detail"]
    assert time.monotonic() - started < 5  # refused at once, never a thread held
