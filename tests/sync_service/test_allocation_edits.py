"""Allocations: PATCH changes the cells sent; PUT replaces the whole table only when it says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, line, make_service

QUARTERS = ("Q1", "Q2", "Q3", "Q4")


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, [line("EMEA-0001", m01="1000", m02="2000")])  # EMEA plans spend in Q1
    yield s
    s.store.dispose()


def _cells(s: Service) -> dict[tuple[str, str, str], str]:
    body = s.client.get("/api/v1/allocations", headers=auth(s.tokens["finance"])).get_json()
    return {(c["region"], c["quarter"], c.get("channel") or "*"): c["amount"] for c in body["allocations"]}


def test_patch_changes_the_cells_sent_and_keeps_the_others(service: Service) -> None:
    before = _cells(service)
    assert len(before) == len(SCHEMA.config.regions) * 4
    finance = auth(service.tokens["finance"])
    sent = {"allocations": [{"region": "EMEA", "quarter": "Q2", "amount": "123456.78"},
                            {"region": "NA", "quarter": "Q4", "amount": None}]}  # fmt: skip
    answer = service.client.patch("/api/v1/allocations", headers=finance, json=sent)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    after = _cells(service)
    assert after[("EMEA", "Q2", "*")] == "123456.78"
    assert ("NA", "Q4", "*") not in after
    assert {k: v for k, v in after.items() if k != ("EMEA", "Q2", "*")} == {
        k: v for k, v in before.items() if k not in (("EMEA", "Q2", "*"), ("NA", "Q4", "*"))
    }


def test_put_that_would_drop_cells_with_plans_under_them_is_refused_naming_them(service: Service) -> None:
    before = _cells(service)
    finance = auth(service.tokens["finance"])
    one = {"allocations": [{"region": "NA", "quarter": "Q1", "amount": "1000"}]}
    body = problem(service.client.put("/api/v1/allocations", headers=finance, json=one), 409)
    assert [(i["region"], i["quarter"]) for i in body["issues"]] == [("EMEA", "Q1")]  # the only cell with plans
    issue = body["issues"][0]
    assert issue["rule"] == "allocations.drops_planned_cell" and issue["field"] == "allocations[EMEA, Q1, *]"
    assert "PATCH only the cells you mean to change" in issue["message"]
    assert "replace" in body["detail"] and "PATCH" in body["detail"]
    assert _cells(service) == before  # nothing changed
    replaced = service.client.put("/api/v1/allocations", headers=finance, json={**one, "replace": True})
    assert replaced.status_code == 200
    assert _cells(service) == {("NA", "Q1", "*"): "1000.00"}


def test_put_of_the_whole_table_still_replaces_it(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    table = [{"region": r, "quarter": q, "amount": "5000"} for r in SCHEMA.config.regions for q in QUARTERS]
    answer = service.client.put("/api/v1/allocations", headers=finance, json={"allocations": table})
    assert answer.status_code == 200
    assert set(_cells(service).values()) == {"5000.00"}


def test_a_change_made_on_an_older_revision_is_refused_whole(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    shown = service.client.get("/api/v1/allocations", headers=finance).get_json()["revision"]
    first = {"allocations": [{"region": "EMEA", "quarter": "Q2", "amount": "1000"}], "revision": shown}
    assert service.client.patch("/api/v1/allocations", headers=finance, json=first).status_code == 200
    before = _cells(service)
    # A second change made on the page as it was first shown: another revision was written since.
    late = {"allocations": [{"region": "NA", "quarter": "Q3", "amount": "2000"}], "revision": shown}
    refused = problem(service.client.patch("/api/v1/allocations", headers=finance, json=late), 409)
    assert f"not {shown}" in refused["detail"] and refused["revision"] > shown
    assert _cells(service) == before
