"""Large actuals imports through the API: the figures of 200,000 rows, writers during an import, long CSV fields.

Expected figures are worked out here from the rows the test wrote (each row converted at the
plan rates and rounded half away from zero on its own), never read back from the service. The
lock tests use a real SQLite file and a real PostgreSQL server, with the writers in threads.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url

from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.storage import ActualImport
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth, decide, problem
from tests.sync_service.service_helpers import (
    SCHEMA,
    Service,
    actuals_by_line,
    approved_plan,
    csv_bytes,
    fmt,
    line,
    post_actuals,
    reporting,
    submit,
)

RATES = SCHEMA.config.plan_rates
BUSY_SENTENCE = "the database is busy with another change; try again in a few seconds"


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
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
            "finance2": create_token(session, "frank", "finance"),
        }
    yield Service(app, app.test_client(), tokens, store, database_url)
    store.dispose()


def half_away(value: Fraction) -> int:
    """`value` rounded to a whole number, half away from zero."""
    whole = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)
    return whole if value >= 0 else -whole


def amount_text(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


# --- a master of 502 lines and an export of 200,000 rows against it ---------------------------------------------

PLAN = [
    *(line(f"U{n:03d}", code=f"CODE-U{n:03d}", m01="100") for n in range(400)),
    *(line(f"E{n:03d}", code=f"CODE-E{n:03d}", currency="EUR", m01="100") for n in range(100)),
    line("S1", code="SHARED", m01="100"),  # one campaign code, two lines: split 100 : 300
    line("S2", code="SHARED", m01="300"),
]
CURRENCY = {x["line_id"]: x["currency"] for x in PLAN}
SINGLE = [x["line_id"] for x in PLAN if x["campaign_code"] != "SHARED"]


def large_export(rows: int, seed: int = 12) -> tuple[bytes, dict[str, int], dict[str, int]]:
    """(CSV, expected cents per line in its own currency, counts) for `rows` rows of every kind."""
    rng = random.Random(seed)
    expected = dict.fromkeys(CURRENCY, 0)
    counts = {"unmatched": 0, "spread": 0, "shared": 0}
    table: list[list[Any]] = [["Posting date", "Line ID", "Campaign code", "Amount", "Currency", "Text"]]
    for n in range(rows):
        cents = rng.randint(-10_000, 5_000_000)
        currency = rng.choice(("USD", "USD", "EUR"))
        kind = rng.random()
        if kind < 0.10:
            table.append(["2026-05-31", f"NOPE-{n}", "", amount_text(cents), currency, f"posting {n}"])
            counts["unmatched"] += 1
            continue
        if kind < 0.15:  # the shared code, in USD: only the sum over its two lines is pinned exactly
            table.append(["2026-05-31", "", "SHARED", amount_text(cents), "USD", f"posting {n}"])
            counts["spread"] += 1
            counts["shared"] += cents
            continue
        target = rng.choice(SINGLE)
        by_code = kind < 0.30
        key = ["", f"CODE-{target}"] if by_code else [target.lower() if n % 7 == 0 else target, ""]
        table.append(["2026-05-31", *key, amount_text(cents), currency, f"posting {n}"])
        rate = Fraction(RATES[currency]) / Fraction(RATES[CURRENCY[target]])
        expected[target] += half_away(cents * rate)
    return csv_bytes(table), expected, counts


def test_a_large_import_equals_the_sum_of_its_rows(service: Service) -> None:
    approved_plan(service, PLAN)
    data, expected, counts = large_export(200_000)
    started = time.perf_counter()
    response = post_actuals(service, data, "ledger-200k.csv")
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    report = response.get_json()
    assert report["rows"] == 200_000 and len(report["unmatched"]) == counts["unmatched"]
    assert report["matched"] == 200_000 - counts["unmatched"] and report["ambiguous"] == []
    assert len(report["spread"]) == counts["spread"] and report["lines"] == len(PLAN)
    assert all(u["line_id"].startswith("NOPE-") for u in report["unmatched"])

    _, actual = actuals_by_line(service)  # each line's actual, in reporting cents
    for line_id in SINGLE:
        assert actual[line_id] == reporting(expected[line_id], CURRENCY[line_id]), line_id
    assert actual["S1"] + actual["S2"] == counts["shared"]  # the split adds up to the rows exactly...
    assert abs(actual["S1"] - Fraction(counts["shared"], 4)) < counts["spread"]  # ...each row within a cent
    total = sum(reporting(expected[i], CURRENCY[i]) for i in SINGLE) + counts["shared"]
    assert report["total"] == fmt(total)
    with service.store.reading() as session:
        stored = session.get(ActualImport, report["id"])
        assert stored.raw == data and stored.filename == "ledger-200k.csv"
    assert elapsed < 120, f"200,000 rows took {elapsed:.0f} s"


# --- writers while an import runs ----------------------------------------------------------------------------------


def assert_busy_or(response: Any, ok: int) -> str:
    """`ok`, or 503 problem+json with Retry-After and the sentence; never anything else (a 500 least of all)."""
    if response.status_code == ok:
        return "ok"
    body = problem(response, 503)
    assert body["title"] == "Busy" and body["detail"] == BUSY_SENTENCE
    assert int(response.headers["Retry-After"]) > 0
    return "busy"


def test_writers_during_a_large_import_succeed_or_get_503_never_500(service: Service) -> None:
    approved_plan(service, PLAN)
    data, _, _ = large_export(200_000, seed=5)
    outcome: dict[str, Any] = {}
    importing = threading.Event()

    def run_import() -> None:
        client = service.app.test_client()
        importing.set()
        try:
            outcome["import"] = client.post(
                "/api/v1/actuals?filename=big.csv", headers=auth(service.tokens["finance"]), data=data
            )
        finally:
            importing.clear()
            outcome["import_done"] = time.perf_counter()

    writes: list[tuple[float, float, Any]] = []

    def run_writer() -> None:
        client = service.app.test_client()
        importing.wait(30)
        n = 0
        while importing.is_set():
            plan = [line(f"NA{n}", team="NA-ENTERPRISE", m01="10")]
            started = time.perf_counter()
            response = submit(client, service.tokens["na"], plan, team="NA-ENTERPRISE")
            writes.append((started, time.perf_counter(), response))
            n += 1

    threads = [threading.Thread(target=run_import), threading.Thread(target=run_writer)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert outcome["import"].status_code == 201, outcome["import"].get_data(as_text=True)[:2000]
    assert writes, "no write ran during the import"
    during = [w for w in writes if started <= w[0] and w[1] <= outcome["import_done"]]
    assert during, "no write finished while the import ran"
    results = [assert_busy_or(response, 201) for _, _, response in writes]
    assert results.count("ok") >= 1  # the import holds the write lock for a moment, not for its whole run


def sqlite_path(service: Service) -> str:
    return make_url(service.url).database or ""


def short_busy_wait(service: Service, seconds: float) -> None:
    """Make the service's SQLite connections wait `seconds` for the write lock (instead of 30 s), from now on."""

    @event.listens_for(service.store.engine, "connect")
    def _short(connection: Any, _record: Any) -> None:
        connection.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")

    service.store.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_that_waits_past_the_busy_timeout_gets_503_with_retry_after(service: Service) -> None:
    approved_plan(service, [line("U1", m01="10")])
    short_busy_wait(service, 0.2)
    holder = sqlite3.connect(sqlite_path(service), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        plan = [line("NA1", team="NA-ENTERPRISE", m01="10")]
        assert assert_busy_or(submit(service.client, service.tokens["na"], plan, team="NA-ENTERPRISE"), 201) == "busy"
        busy = post_actuals(service, csv_bytes([["Line ID", "Amount"], ["U1", "1.00"]]))
        assert assert_busy_or(busy, 201) == "busy"
        reading = service.client.get("/api/v1/master", headers=auth(service.tokens["finance"]))
        assert reading.status_code == 200  # readers are not held up by a writer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    again = post_actuals(service, csv_bytes([["Line ID", "Amount"], ["U1", "1.00"]]))
    assert again.status_code == 201, again.get_data(as_text=True)
    with service.store.reading() as session:
        assert len(session.scalars(select(ActualImport)).all()) == 1  # the refused attempt stored nothing


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgresql_a_write_past_the_lock_timeout_gets_503_with_retry_after(service: Service) -> None:
    sid = submit(service.client, service.tokens["finance2"], [line("U1", m01="10")]).get_json()["id"]
    name = make_url(service.url).database
    admin = create_engine(service.url, isolation_level="AUTOCOMMIT")
    holder = create_engine(service.url)
    try:
        with admin.connect() as connection:  # the server's own setting, for the service's new connections
            connection.execute(text(f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'"))
        service.store.engine.dispose()
        with holder.connect() as held:
            held.execute(text("SELECT id FROM teams WHERE region = 'EMEA' FOR UPDATE"))  # another approval in EMEA
            busy = decide(service.client, service.tokens["finance"], sid, "approve", "ok")
            assert assert_busy_or(busy, 200) == "busy"
            held.rollback()
        approved = decide(service.client, service.tokens["finance"], sid, "approve", "ok")
        assert approved.status_code == 200, approved.get_data(as_text=True)
    finally:
        holder.dispose()
        admin.dispose()


# --- long CSV fields -----------------------------------------------------------------------------------------------


def test_a_200_kb_field_imports_where_it_is_a_memo_and_is_a_422_where_it_is_a_line_id(service: Service) -> None:
    approved_plan(service, [line("U1", m01="10"), line("U2", m01="10")])
    memo = "x" * 200_000
    header = ["Line ID", "Amount", "Text"]
    response = post_actuals(service, csv_bytes([header, ["U1", "12.34", memo], ["U2", "1.00", "short"]]))
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    assert response.get_json()["matched"] == 2 and response.get_json()["total"] == "13.34"

    body = problem(post_actuals(service, csv_bytes([header, ["U1", "1.00", ""], [memo, "2.00", ""]])), 422)
    assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("A3", "actuals.too_long")]
    assert "200,000 characters" in body["issues"][0]["message"] and "nothing was imported" in body["detail"]

    # A quote left open in the line ID column runs the rest of the file into one cell: named, not a 500.
    broken = b'Line ID,Amount\nU1,1.00\n"U2,2.00\n' + b"U1,1.00\n" * 30_000
    body = problem(post_actuals(service, broken), 422)
    assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("A3", "actuals.too_long")]
    _, actual = actuals_by_line(service)
    assert actual == {"U1": 1234, "U2": 100}  # the first import is still the one in force
