"""A plan sent again as the team's approved plan is answered `unchanged`: nothing stored, nobody asked to approve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth
from tests.sync_service.service_helpers import Service, approved_plan, line, make_service, submit

PLAN = [line("EMEA-0001", m01="1000", m02="2000"), line("EMEA-0002", channel="Webinars", m03="500")]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    yield s
    s.store.dispose()


def _submissions(s: Service) -> list[dict]:
    return s.client.get("/api/v1/submissions", headers=auth(s.tokens["finance"])).get_json()["submissions"]


def test_the_approved_plan_sent_again_is_unchanged_and_stores_nothing(service: Service) -> None:
    approved = approved_plan(service, PLAN)
    before = _submissions(service)
    again = submit(service.client, service.tokens["emea"], PLAN, "EMEA-ENTERPRISE")
    assert again.status_code == 200, again.get_data(as_text=True)
    body = again.get_json()
    assert (body["unchanged"], body["id"], body["status"]) == (True, approved, "approved")
    assert _submissions(service) == before  # no new submission
    queue = service.client.get("/api/v1/approvals", headers=auth(service.tokens["finance"])).get_json()
    assert queue["submissions"] == [] and queue["in_review"] == []  # nobody waits on it


def test_a_changed_plan_is_a_new_submission(service: Service) -> None:
    approved = approved_plan(service, PLAN)
    changed = [PLAN[0], line("EMEA-0002", channel="Webinars", m03="600")]
    answer = submit(service.client, service.tokens["emea"], changed, "EMEA-ENTERPRISE", {"submission": approved})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert "unchanged" not in answer.get_json() and answer.get_json()["status"] == "submitted"
