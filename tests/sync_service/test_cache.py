"""The shared cache on Redis: a master loaded by one worker is read by the others, never stale, never forged.

Two apps on one real PostgreSQL database and one real Redis server stand for two workers (two
processes hold nothing in common but those two).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.master import functions as functions_api
from sync_service.master import model as master
from sync_service.platform.context import STORE
from tests.databases import upgrade
from tests.sync_service.live_server import as_json
from tests.system_deps import private_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SCHEMA = build_schema(load_config())
TEAM = "EMEA-ENTERPRISE"


def statements(app: Any) -> list[str]:
    """Every SQL statement `app` sends from now on."""
    seen: list[str] = []
    event.listen(app.extensions[STORE].engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


@pytest.fixture
def two_workers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    with private_redis(tmp_path / "redis") as redis_url:
        upgrade(postgres_url)
        config = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "TESTING": True}
        one, two = create_app(config), create_app(config)
        with one.extensions[STORE].transaction() as session:
            sync_teams(session, SCHEMA)
            tokens = {
                "sam": create_token(session, "sam", "finance"),
                "fiona": create_token(session, "fiona", "finance"),
            }
        yield one, two, tokens
        for app in (one, two):
            app.extensions[STORE].dispose()
        master.CACHE.clear()


def approve(app: Any, tokens: dict[str, str], seed: int, based_on: int = 0) -> int:
    api = app.test_client()
    lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 5, seed=seed, id_prefix=f"C{seed}")]
    sub = api.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {tokens['sam']}"},
        json={"team": TEAM, "lines": lines, "based_on": {"submission": based_on}},
    )
    assert sub.status_code == 201, sub.get_json()
    sid = sub.get_json()["id"]
    done = api.post(
        f"/api/v1/submissions/{sid}/approve", headers={"Authorization": f"Bearer {tokens['fiona']}"}, json={}
    )
    assert done.status_code == 200
    return sid


def test_a_master_one_worker_loaded_is_read_by_another_without_the_database(two_workers) -> None:
    one, two, tokens = two_workers
    first = approve(one, tokens, seed=1)
    master.CACHE.clear()  # as if each were its own process: nothing in memory
    loaded = master.load(one.extensions[STORE], SCHEMA)
    master.CACHE.clear()
    sent = statements(two)
    again = master.load(two.extensions[STORE], SCHEMA)
    assert not any("submission_lines" in s for s in sent), sent  # the lines came from Redis
    assert again.version == loaded.version and again.lines == loaded.lines
    assert (again.months == loaded.months).all()
    assert two.extensions[STORE].shared.hits == 1

    # A new approval is a new version: the next read is the new master, whichever worker asks.
    approve(one, tokens, seed=2, based_on=first)
    master.CACHE.clear()
    newer = master.load(two.extensions[STORE], SCHEMA)
    assert newer.version == loaded.version + 1
    assert {line["line_id"] for line in newer.lines} == {
        line["line_id"] for line in (as_json(x) for x in sample_lines(SCHEMA, "EMEA", 5, seed=2, id_prefix="C2"))
    }
    answer = one.test_client().get("/api/v1/master", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    assert answer.get_json()["version"] == newer.version


def test_an_entry_not_signed_with_the_database_key_is_ignored(two_workers) -> None:
    one, two, tokens = two_workers
    approve(one, tokens, seed=3)
    master.CACHE.clear()
    good = master.load(one.extensions[STORE], SCHEMA)
    shared = two.extensions[STORE].shared
    keys = shared.redis.keys("plansheet:cache:*")
    assert len(keys) == 1
    import pickle

    forged = pickle.dumps({"not": "a master"})
    shared.redis.set(keys[0], b"\0" * 32 + forged)
    master.CACHE.clear()
    sent = statements(two)
    again = master.load(two.extensions[STORE], SCHEMA)
    assert again.lines == good.lines  # loaded from the database instead
    assert any("submission_lines" in s for s in sent)


def test_without_redis_the_service_answers_from_the_database(two_workers) -> None:
    one, _, tokens = two_workers
    approve(one, tokens, seed=4)
    one.extensions[STORE].shared.redis.connection_pool.connection_kwargs["port"] = 1  # Redis unreachable
    one.extensions[STORE].shared.redis.connection_pool.reset()
    master.CACHE.clear()
    answer = one.test_client().get("/api/v1/master", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    assert answer.status_code == 200 and len(answer.get_json()["lines"]) == 5


def test_live_answers_one_worker_computed_are_served_by_another_until_the_master_changes(
    two_workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two, tokens = two_workers
    first = approve(one, tokens, seed=5)
    evaluated: list[int] = []
    real = functions_api._evaluate
    monkeypatch.setattr(
        functions_api, "_evaluate", lambda calls, data: evaluated.append(len(calls)) or real(calls, data)
    )
    body = {"calls": [{"name": "PS_PLANNED", "args": [[["EMEA"]], [[q]]]} for q in ("Q1", "Q2", "Q3", "Q4", "FY")]}
    finance = {"Authorization": f"Bearer {tokens['fiona']}"}

    def ask(app: Any) -> list[dict[str, Any]]:
        response = app.test_client().post("/api/v1/functions:batch", headers=finance, json=body)
        assert response.status_code == 200
        return response.get_json()["results"]

    answers = ask(one)
    master.CACHE.clear()  # the other worker holds nothing in memory
    sent = statements(two)
    assert ask(two) == answers and evaluated == [5]  # computed once, by the first worker
    assert not any("submission_lines" in s for s in sent), sent
    assert sum(a["result"][0][0] for a in answers[:4]) == pytest.approx(answers[4]["result"][0][0])

    approve(one, tokens, seed=6, based_on=first)  # a new master version: new answers on every worker
    newer = ask(two)
    assert evaluated == [5, 5] and newer != answers
    year = master.load(two.extensions[STORE], SCHEMA).months.sum()  # the new master's year, every line
    assert round(newer[4]["result"][0][0] * 100) == int(year)
