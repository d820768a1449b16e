"""Budget transfers and the budget baseline through the API, on SQLite and PostgreSQL.

Every expected amount is worked out here from what the test set (the allocations it put, the
lines it sent), never read back from the service's own answer.
"""

from __future__ import annotations

import signal
import threading
import urllib.error
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.storage import AllocationRevision, AuditEvent, Baseline, Transfer, TransferDecision
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.live_server import call, init, service_env, start, stop, token
from tests.sync_service.service_helpers import SCHEMA, Service, line, make_service, submit

RATES = SCHEMA.config.plan_rates
CELLS = [  # EMEA by channel for Q1 and Q2, with an all-channels cell; NA for all channels only
    ("EMEA", "Q1", "*", "500000"),
    ("EMEA", "Q1", "Events", "200000"),
    ("EMEA", "Q1", "Webinars", "100000"),
    ("EMEA", "Q2", "*", "400000"),
    ("EMEA", "Q2", "Events", "150000"),
    ("NA", "Q1", "*", "800000"),
    ("NA", "Q2", "*", "900000"),
]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url, TRANSFER_FINANCE_LIMIT="10000")
    response = s.client.put(
        "/api/v1/allocations",
        headers=auth(s.tokens["finance"]),
        json={"allocations": [{"region": r, "quarter": q, "channel": c, "amount": a} for r, q, c, a in CELLS]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    yield s
    s.store.dispose()


def cells_in_force(s: Service) -> dict[tuple[str, str, str], Decimal]:
    """The allocation cells of the newest revision, as the API lists them."""
    body = s.client.get("/api/v1/allocations", headers=auth(s.tokens["finance"])).get_json()
    return {
        (c["region"], c["quarter"], c["channel"]): Decimal(c["amount"].replace(",", "")) for c in body["allocations"]
    }


def initial() -> dict[tuple[str, str, str], Decimal]:
    return {(r, q, c): Decimal(a) for r, q, c, a in CELLS}


def counts(s: Service) -> tuple[int, int, int, int]:
    with s.store.reading() as session:
        return (
            session.scalar(select(func.count()).select_from(Transfer)),
            session.scalar(select(func.count()).select_from(TransferDecision)),
            session.scalar(select(func.max(AllocationRevision.id))),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )


def ask(s: Service, who: str, source: tuple[str, str, str], target: tuple[str, str, str], amount: str) -> Any:
    body = {
        "from": dict(zip(("region", "quarter", "channel"), source, strict=True)),
        "to": dict(zip(("region", "quarter", "channel"), target, strict=True)),
        "amount": amount,
        "reason": "the Q1 event moved to Q2",
    }
    return s.client.post("/api/v1/transfers", headers=auth(s.tokens[who]), json=body)


def decide(s: Service, who: str, transfer: int, action: str, comment: str = "") -> Any:
    return s.client.post(
        f"/api/v1/transfers/{transfer}/{action}", headers=auth(s.tokens[who]), json={"comment": comment}
    )


def test_finance_moves_budget_within_its_limit_at_once_and_a_quarter_moves_its_whole(service: Service) -> None:
    before = counts(service)
    answer = ask(service, "finance", ("EMEA", "Q1", "Events"), ("EMEA", "Q2", "Events"), "7500.50")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["status"] == "approved" and body["steps"] == ["finance"] and body["asked_by"] == "fiona"
    assert body["allocation_revision"] == before[2] + 1
    expected = initial()
    move = Decimal("7500.50")
    for key, delta in (
        (("EMEA", "Q1", "Events"), -move),
        (("EMEA", "Q2", "Events"), move),
        (("EMEA", "Q1", "*"), -move),  # the quarter's all-channels budget goes with it
        (("EMEA", "Q2", "*"), move),
    ):
        expected[key] += delta
    assert cells_in_force(service) == expected
    listed = service.client.get("/api/v1/transfers", headers=auth(service.tokens["finance"])).get_json()
    assert [t["id"] for t in listed["transfers"]] == [body["id"]]
    assert listed["transfers"][0]["decisions"][0] | {"at": None} == {
        "step": "finance",
        "action": "approved",
        "by": "fiona",
        "at": None,
        "comment": "asked for it",
        "allocation_revision": before[2] + 1,
    }


def test_above_the_limit_the_giving_side_and_finance_approve_and_nobody_twice(service: Service) -> None:
    # NA's marketer asks EMEA for budget: EMEA's marketing and finance must agree.
    answer = ask(service, "na", ("EMEA", "Q2", "*"), ("NA", "Q2", "*"), "25000")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    transfer = answer.get_json()
    assert transfer["status"] == "requested" and transfer["waiting_for"] == ["giving", "finance"]
    assert cells_in_force(service) == initial()
    tid = transfer["id"]
    problem(decide(service, "admin", tid, "approve"), 403)  # admins manage users, not money
    problem(decide(service, "emea2", 999999, "approve"), 404)
    problem(decide(service, "na", tid, "approve"), 403)  # the asker never approves
    after_finance = decide(service, "finance", tid, "approve")
    assert after_finance.status_code == 200 and after_finance.get_json()["waiting_for"] == ["giving"]
    problem(decide(service, "finance2", tid, "approve"), 409)  # finance's step is taken
    assert cells_in_force(service) == initial()  # not moved until every step approves
    done = decide(service, "emea", tid, "approve", "we can spare it")
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "approved"
    expected = initial()
    expected["EMEA", "Q2", "*"] -= 25000
    expected["NA", "Q2", "*"] += 25000
    assert cells_in_force(service) == expected
    problem(decide(service, "emea2", tid, "approve"), 409)  # already approved


def test_a_giving_marketer_asking_consents_and_a_rejection_ends_it_with_its_comment(service: Service) -> None:
    answer = ask(service, "emea", ("EMEA", "Q1", "Webinars"), ("EMEA", "Q1", "Events"), "20000").get_json()
    assert answer["waiting_for"] == ["finance"] and answer["decisions"][0]["step"] == "giving"
    problem(decide(service, "finance", answer["id"], "reject"), 400)  # a rejection says why
    rejected = decide(service, "finance", answer["id"], "reject", "keep the webinar series")
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["decisions"][-1]["comment"] == "keep the webinar series"
    problem(decide(service, "finance2", answer["id"], "approve"), 409)
    assert cells_in_force(service) == initial()


def test_refused_requests_change_nothing_and_name_the_field(service: Service) -> None:
    before = counts(service)
    bad = ask(service, "finance", ("MARS", "Q9", "Billboards"), ("EMEA", "Q1", "Events"), "-5")
    issues = {i["at"] for i in problem(bad, 422)["issues"]}
    assert issues == {"from.region", "from.quarter", "from.channel", "amount"}
    same = ask(service, "finance", ("EMEA", "Q1", "Events"), ("EMEA", "Q1", "Events"), "5")
    assert problem(same, 422)["issues"][0]["at"] == "to"
    # More than the giving cell holds now: refused when asked, whoever asks.
    greedy = problem(ask(service, "finance", ("EMEA", "Q1", "Events"), ("NA", "Q1", "*"), "210000"), 409)
    assert "EMEA Q1 Events has 200,000.00 allocated" in greedy["detail"]
    # A channel the region allocates only as a whole: ask from channel *.
    whole = problem(ask(service, "finance", ("NA", "Q1", "Events"), ("NA", "Q2", "*"), "10"), 409)
    assert "ask from channel *" in whole["detail"]
    problem(ask(service, "na", ("EMEA", "Q1", "*"), ("EMEA", "Q2", "*"), "10"), 403)  # not a region of sam's
    problem(ask(service, "admin", ("EMEA", "Q1", "*"), ("EMEA", "Q2", "*"), "10"), 403)
    assert counts(service)[:3] == before[:3]


def test_a_transfer_leaving_a_region_over_its_allocation_is_flagged_or_refused(service: Service) -> None:
    plan = [line("EMEA-0001", m01="66000", m02="66000", m03="66000")]  # 198,000 of Events in Q1 (USD)
    sid = submit(service.client, service.tokens["emea"], plan).get_json()["id"]
    approved = service.client.post(
        f"/api/v1/submissions/{sid}/approve", headers=auth(service.tokens["finance"]), json={}
    )
    assert approved.status_code == 200, approved.get_data(as_text=True)
    refusing = create_app({"DATABASE_URL": service.url, "TESTING": True, "OVER_ALLOCATION": "refuse"})
    try:
        client = refusing.test_client()
        before = counts(service)
        body = {
            "from": {"region": "EMEA", "quarter": "Q1", "channel": "Events"},
            "to": {"region": "EMEA", "quarter": "Q2", "channel": "Events"},
            "amount": "5000",
            "reason": "try",
        }
        refused = problem(client.post("/api/v1/transfers", headers=auth(service.tokens["finance"]), json=body), 409)
        assert "over its allocation" in refused["detail"]
        assert any("EMEA Q1 FY2027 Events" in i["message"] for i in refused["issues"])
        assert counts(service)[:3] == before[:3]
    finally:
        refusing.extensions[STORE].dispose()
    flagged = ask(service, "finance", ("EMEA", "Q1", "Events"), ("EMEA", "Q2", "Events"), "5000")
    assert flagged.status_code == 201 and flagged.get_json()["status"] == "approved"
    assert flagged.get_json()["over_allocation"] == [
        "EMEA Q1 FY2027 Events: planned USD\u00a0198,000.00 is over the allocation of USD\u00a0195,000.00 "
        "by USD\u00a03,000.00"
    ]
    with service.store.reading() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "transfer.approved").order_by(AuditEvent.id.desc())
        ).first()
    assert any("EMEA Q1 FY2027 Events" in m for m in event.detail["over_allocation"])


def test_marketers_read_the_transfers_of_their_regions_only(service: Service) -> None:
    emea = ask(service, "emea", ("EMEA", "Q1", "Webinars"), ("EMEA", "Q2", "Events"), "100").get_json()
    na = ask(service, "finance", ("NA", "Q1", "*"), ("NA", "Q2", "*"), "100").get_json()
    seen = service.client.get("/api/v1/transfers", headers=auth(service.tokens["na"])).get_json()
    assert [t["id"] for t in seen["transfers"]] == [na["id"]]
    problem(service.client.get(f"/api/v1/transfers/{emea['id']}", headers=auth(service.tokens["na"])), 403)
    problem(service.client.get("/api/v1/transfers/999999", headers=auth(service.tokens["na"])), 404)


def test_two_finance_approvers_at_once_one_wins_the_other_gets_409(service: Service) -> None:
    tid = ask(service, "emea", ("EMEA", "Q2", "*"), ("NA", "Q2", "*"), "30000").get_json()["id"]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def approve(who: str) -> None:
        client = service.app.test_client()
        barrier.wait()
        statuses.append(
            client.post(f"/api/v1/transfers/{tid}/approve", headers=auth(service.tokens[who]), json={}).status_code
        )

    threads = [threading.Thread(target=approve, args=(who,)) for who in ("finance", "finance2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200, 409]
    expected = initial()
    expected["EMEA", "Q2", "*"] -= 30000
    expected["NA", "Q2", "*"] += 30000
    assert cells_in_force(service) == expected  # moved once
    with service.store.reading() as session:
        assert session.scalar(select(func.count()).select_from(TransferDecision)) == 2  # giving (asker), finance


def cents_of(values: dict[str, Any], months: list[str]) -> int:
    """Reporting cents of a USD/EUR line's months, each converted and rounded half away from zero on its own."""
    rate = RATES[values["currency"]]
    return sum(
        int((Decimal(values.get(m, "0")) * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for m in months
    )


def test_the_baseline_keeps_the_budget_while_the_plan_moves_on(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    problem(service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY2027 budget"}), 409)
    problem(service.client.get("/api/v1/budget", headers=finance), 404)
    first = [
        line("EMEA-0001", m01="1000.10", m04="2000"),
        line("EMEA-0002", channel="Webinars", currency="EUR", m02="333.33"),
    ]
    sid = submit(service.client, service.tokens["emea"], first).get_json()["id"]
    assert service.client.post(f"/api/v1/submissions/{sid}/approve", headers=finance, json={}).status_code == 200
    locked = service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY2027 budget"})
    assert locked.status_code == 201, locked.get_data(as_text=True)
    problem(service.client.post("/api/v1/baselines", headers=auth(service.tokens["emea"]), json={"name": "x"}), 403)
    problem(service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY2027 budget"}), 409)
    # The plan moves on: a new version of the team's plan, and budget moved between quarters.
    second = [line("EMEA-0001", m01="1000.10", m04="5000.55"), line("EMEA-0003", channel="Webinars", m07="10")]
    sid2 = submit(service.client, service.tokens["emea"], second, based_on={"submission": sid}).get_json()["id"]
    assert service.client.post(f"/api/v1/submissions/{sid2}/approve", headers=finance, json={}).status_code == 200
    assert ask(service, "finance", ("EMEA", "Q1", "Events"), ("EMEA", "Q2", "Events"), "1000").status_code == 201
    view = service.client.get("/api/v1/budget?by=region,channel&period=quarter", headers=finance).get_json()
    assert view["baseline"]["name"] == "FY2027 budget"
    rows = {(r["region"], r["channel"], r["period"]): r for r in view["rows"]}
    quarters = {"Q1": ["m01", "m02", "m03"], "Q2": ["m04", "m05", "m06"], "Q3": ["m07", "m08", "m09"]}
    for channel in ("Events", "Webinars"):
        for q, months in quarters.items():
            budget = sum(cents_of(x, months) for x in first if x["channel"] == channel)
            plan = sum(cents_of(x, months) for x in second if x["channel"] == channel)
            row = rows.get(("EMEA", channel, q))
            if not budget and not plan:
                assert row is None or (row["cents"]["budget"], row["cents"]["plan"]) == (0, 0)
                continue
            assert (row["cents"]["budget"], row["cents"]["plan"]) == (budget, plan), (channel, q)
    assert rows["EMEA", "Events", "Q1"]["budget_allocation"] == "200000.00"  # as it was when locked
    assert rows["EMEA", "Events", "Q1"]["allocation"] == "199000.00"  # after the transfer
    # A re-baseline is a new one, audited as such; the newest is the budget by default.
    again = service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY2027 budget, June"})
    assert again.status_code == 201
    latest = service.client.get("/api/v1/budget?by=region&period=year", headers=finance).get_json()
    plan_year = sum(cents_of(x, [f"m{i:02d}" for i in range(1, 13)]) for x in second)
    assert latest["baseline"]["name"] == "FY2027 budget, June"
    assert [(r["cents"]["budget"], r["cents"]["plan"]) for r in latest["rows"]] == [(plan_year, plan_year)]
    listed = service.client.get("/api/v1/baselines", headers=auth(service.tokens["na"])).get_json()["baselines"]
    assert [b["name"] for b in listed] == ["FY2027 budget, June", "FY2027 budget"]
    with service.store.reading() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("baseline.%"))))
        assert actions == ["baseline.locked", "baseline.rebaselined"]
        assert session.scalar(select(func.count()).select_from(Baseline)) == 2
    # A marketer sees their own teams' budget only.
    mine = service.client.get("/api/v1/budget?by=team", headers=auth(service.tokens["na"])).get_json()
    assert mine["rows"] == []


@pytest.mark.slow
def test_a_transfer_killed_during_its_approval_is_moved_whole_or_not_at_all(database_url: str) -> None:
    """SIGKILL while transfers are being approved; after a restart each moved whole or not at all, never half."""
    env = {**service_env(database_url), "PLANSHEET_TRANSFER_FINANCE_LIMIT": "0"}  # the giving side always approves
    init(env)
    giver, finance = token(env, "maria", "marketer", "EMEA-ENTERPRISE"), token(env, "fiona", "finance")
    server, base = start(env)
    start_cells = {(r, q, c): int(Decimal(a) * 100) for r, q, c, a in CELLS}
    body = {"allocations": [{"region": r, "quarter": q, "channel": c, "amount": a} for r, q, c, a in CELLS]}
    assert call(base, finance, "PUT", "/api/v1/allocations", body)[0] == 200
    routes = [  # channel cells across quarters (their wholes move too) and wholes across regions
        (("EMEA", "Q1", "Events"), ("EMEA", "Q2", "Events")),
        (("EMEA", "Q2", "Events"), ("EMEA", "Q1", "Webinars")),
        (("EMEA", "Q1", "*"), ("NA", "Q2", "*")),
    ]
    approved = threading.Semaphore(0)

    def ask_and_approve() -> None:
        for n in range(300):
            source, target = routes[n % len(routes)]
            request = {
                "from": dict(zip(("region", "quarter", "channel"), source, strict=True)),
                "to": dict(zip(("region", "quarter", "channel"), target, strict=True)),
                "amount": f"{n % 7 + 1}.{n % 100:02d}",
                "reason": f"move {n}",
            }
            try:
                status, answer = call(base, giver, "POST", "/api/v1/transfers", request)
                assert status == 201, answer
                status, answer = call(base, finance, "POST", f"/api/v1/transfers/{answer['id']}/approve", {})
                assert status == 200, answer
            except (OSError, urllib.error.URLError):
                return  # the server is gone
            approved.release()

    worker = threading.Thread(target=ask_and_approve)
    worker.start()
    for _ in range(25):
        assert approved.acquire(timeout=60)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    worker.join(timeout=60)

    server, base = start(env)
    try:
        engine = create_engine(database_url)
        with engine.connect() as connection:
            transfers = {
                r[0]: r[1:]
                for r in connection.execute(
                    text(
                        "SELECT id, from_region, from_quarter, from_channel, to_region, to_quarter, to_channel, cents "
                        "FROM transfers"
                    )
                )
            }
            finance_approvals = dict(
                connection.execute(
                    text("SELECT transfer_id, allocation_revision FROM transfer_decisions WHERE step = 'finance'")
                ).all()
            )
            revisions = dict(connection.execute(text("SELECT id, comment FROM allocation_revisions")).all())
            audited = {
                int(r[0].split(":")[1])
                for r in connection.execute(text("SELECT target FROM audit_events WHERE action = 'transfer.approved'"))
            }
            newest = max(revisions)
            cells = {
                (r, q, c): v
                for r, q, c, v in connection.execute(
                    text("SELECT region, quarter, channel, cents FROM allocation_cells WHERE revision_id = :n"),
                    {"n": newest},
                )
            }
        engine.dispose()
        assert 25 <= len(finance_approvals) < 300, "the kill should land between the first and the last approval"
        made = {int(c.split(":")[0].split()[1]): rid for rid, c in revisions.items() if c.startswith("transfer ")}
        assert made == finance_approvals  # each approval made exactly its revision, and each revision its approval
        assert audited == set(finance_approvals)
        expected = dict(start_cells)
        for tid in sorted(finance_approvals):
            fr, fq, fc, tr, tq, tc, cents = transfers[tid]
            expected[fr, fq, fc] -= cents
            expected[tr, tq, tc] += cents
            if (fr, fq) != (tr, tq):
                for (r, q, c), delta in (((fr, fq, fc), -cents), ((tr, tq, tc), cents)):
                    if c != "*" and (r, q, "*") in expected:
                        expected[r, q, "*"] += delta
        assert cells == expected  # the allocations in force are the start plus every approved move, to the cent
        # A transfer the kill interrupted is still asked for, and can be approved now.
        for tid in sorted(set(transfers) - set(finance_approvals)):
            assert call(base, finance, "POST", f"/api/v1/transfers/{tid}/approve", {})[0] == 200
    finally:
        stop(server)


def test_ids_beyond_the_databases_integers_name_nothing(service: Service) -> None:
    """On PostgreSQL ids are 32-bit: a larger one is 404 (or 400 in a body), never the database's error."""
    finance = auth(service.tokens["finance"])
    for path in ("/api/v1/transfers/2147483648", "/api/v1/submissions/2147483648", "/api/v1/transfers/99999999999"):
        problem(service.client.get(path, headers=finance), 404)
    problem(service.client.post("/api/v1/transfers/2147483648/approve", headers=finance, json={}), 404)
    problem(service.client.get("/api/v1/budget?baseline=2147483648", headers=finance), 400)
    body = {"team": "EMEA-ENTERPRISE", "lines": [], "based_on": {"submission": 2**31}}
    assert (
        "based_on.submission"
        in problem(service.client.post("/api/v1/submissions", headers=finance, json=body), 400)["detail"]
    )
