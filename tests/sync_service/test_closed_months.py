"""`closed_months` means closed: m01 up to the first open month; a month locked after an open one is locked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, line, make_service

MONTHS = [c.name for c in SCHEMA.month_columns]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, [line("EMEA-0001", **{m: "1000" for m in MONTHS})])
    yield s
    s.store.dispose()


def test_a_month_locked_after_an_open_one_is_locked_not_closed(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    locked = service.client.post("/api/v1/periods/lock", headers=finance, json={"months": ["m01", "m02", "m05"]})
    assert locked.status_code == 200, locked.get_data(as_text=True)
    assert service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY budget"}).status_code == 201
    budget = service.client.get("/api/v1/budget", headers=finance).get_json()
    assert budget["closed_months"] == ["m01", "m02"]  # what the estimate books as actual, and the template locks
    assert budget["locked_months"] == ["m01", "m02", "m05"]
    periods = service.client.get("/api/v1/periods", headers=finance).get_json()
    assert [p["month"] for p in periods["periods"] if p["locked"]] == ["m01", "m02", "m05"]
