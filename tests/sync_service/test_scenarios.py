"""What-if scenarios through the API and an xlsx round trip, on SQLite and PostgreSQL.

Every expected amount is worked out here from the lines the test sent and the changes it asked
for (plan rates from the organisation file, rounded half away from zero), never read back from
the service's own answer.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sheet_templates import load_config
from sheet_templates.config import default_config_path
from sync_service.access.auth import create_token
from tests.sync_service.approval_chains import CHAINS
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import SCHEMA, Service, line, make_service, submit

RATES = SCHEMA.config.plan_rates
MONTHS = [c.name for c in SCHEMA.month_columns]
QUARTER_OF = {m: f"Q{k // 3 + 1}" for k, m in enumerate(MONTHS)}
EMEA = [
    line("EMEA-0001", m01="1000", m04="2000", m05="1500", m06="500"),
    line("EMEA-0002", currency="EUR", m04="333.33", m05="100.01", m10="75.25"),
    line("EMEA-0003", channel="Webinars", m02="800", m04="600"),
]
NA = [line("NA-0001", team="NA-ENTERPRISE", m04="5000", m07="250"), line("NA-0002", team="NA-ENTERPRISE", m03="10")]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    for team, lines in (("EMEA-ENTERPRISE", EMEA), ("NA-ENTERPRISE", NA)):
        sid = submit(s.client, s.tokens["finance2"], lines, team=team).get_json()["id"]
        approved = s.client.post(f"/api/v1/submissions/{sid}/approve", headers=auth(s.tokens["finance"]), json={})
        assert approved.status_code == 200, approved.get_data(as_text=True)
    yield s
    s.store.dispose()


def cents(amount: Any) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def reporting(line_cents: int, currency: str) -> int:
    return int((Decimal(line_cents) * RATES[currency]).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def as_cents(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The test's lines by ID, months in the line's cents."""
    return {x["line_id"]: {**x, **{m: cents(x.get(m, "0")) for m in MONTHS}} for x in lines}


def by_region_quarter(lines: dict[str, dict[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for x in lines.values():
        for m in MONTHS:
            out[x["region"], QUARTER_OF[m]] += reporting(x[m], x["currency"])
    return dict(out)


def post(s: Service, path: str, body: Any = None, who: str = "finance") -> Any:
    return s.client.post(path, headers=auth(s.tokens[who]), json=body if body is not None else {})


def master_key(s: Service) -> dict[str, Any]:
    return s.client.get("/api/v1/master/version", headers=auth(s.tokens["finance"])).get_json()


def test_a_scenario_is_changed_and_compared_without_touching_the_master(service: Service) -> None:
    problem(post(service, "/api/v1/scenarios", {"name": "x"}, who="emea"), 403)
    made = post(service, "/api/v1/scenarios", {"name": "Events down a fifth in Q2", "from": "master"})
    assert made.status_code == 201, made.get_data(as_text=True)
    scenario = made.get_json()
    assert (scenario["revision"], scenario["lines"], scenario["status"]) == (1, 5, "open")
    problem(post(service, "/api/v1/scenarios", {"name": "Events down a fifth in Q2"}), 409)
    before = master_key(service)
    path = f"/api/v1/scenarios/{scenario['id']}"
    changes = [
        {"op": "scale", "channel": "Events", "period": "Q2", "region": "EMEA", "factor": "0.8"},
        {"op": "move", "line_id": "NA-0001", "from": "m04", "to": "m05", "amount": "1250.50"},
        {"op": "drop", "line_ids": ["NA-0002"]},
    ]
    # A bad change refuses them all, naming it; nothing changes.
    bad = [*changes, {"op": "move", "line_id": "NA-0001", "from": "m04", "to": "m05", "amount": "99999"}]
    refused = problem(post(service, f"{path}/changes", {"changes": bad}), 422)
    assert [i["at"] for i in refused["issues"]] == ["changes[3].amount"]
    problem(post(service, f"{path}/changes", {"changes": [{"op": "scale", "factor": "-1"}]}), 422)
    problem(post(service, f"{path}/changes", {"changes": changes, "revision": 7}), 409)
    assert service.client.get(path, headers=auth(service.tokens["finance"])).get_json()["revision"] == 1
    done = post(service, f"{path}/changes", {"changes": changes, "revision": 1})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["revision"] == 2
    assert master_key(service) == before  # the master never moves for a scenario
    # The expected scenario, worked out here.
    origin = as_cents(EMEA + NA)
    expected = {k: dict(v) for k, v in origin.items()}
    for x in expected.values():
        if x["region"] == "EMEA" and x["channel"] == "Events":
            for m in ("m04", "m05", "m06"):
                x[m] = int((Decimal(x[m]) * Decimal("0.8")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    expected["NA-0001"]["m04"] -= 125050
    expected["NA-0001"]["m05"] += 125050
    del expected["NA-0002"]
    compared = service.client.get(f"{path}/compare?by=region&period=quarter", headers=auth(service.tokens["finance"]))
    body = compared.get_json()
    got = {(r["region"], r["period"]): r["cents"] for r in body["rows"]}
    want_before, want_after = by_region_quarter(origin), by_region_quarter(expected)
    for key in set(want_before) | set(want_after):
        assert got[key] == {"origin": want_before.get(key, 0), "scenario": want_after.get(key, 0)}, key
    assert body["lines"]["dropped"] == [{"team": "NA-ENTERPRISE", "line_id": "NA-0002"}]
    changed = {c["line_id"]: c["fields"] for c in body["lines"]["changed"]}
    assert set(changed) == {"EMEA-0001", "EMEA-0002", "NA-0001"}
    assert changed["NA-0001"]["m05"] == {"origin": "0.00", "scenario": "1250.50"}
    assert Decimal(body["total"]["change"]) * 100 == sum(want_after.values()) - sum(want_before.values())


def test_the_xlsx_round_trip_is_checked_like_a_plan_and_never_overwrites_a_newer_revision(service: Service) -> None:
    scenario = post(service, "/api/v1/scenarios", {"name": "Edited in Excel"}).get_json()
    path = f"/api/v1/scenarios/{scenario['id']}"
    finance = auth(service.tokens["finance"])
    got = service.client.get(f"{path}.xlsx", headers=finance)
    assert got.status_code == 200 and got.data[:2] == b"PK"
    book = openpyxl.load_workbook(io.BytesIO(got.data))
    sheet = book["Scenario"]
    header = [c.value for c in sheet[1]]
    ids = {sheet.cell(r, 1).value: r for r in range(2, sheet.max_row + 1)}
    assert set(ids) == {"EMEA-0001", "EMEA-0002", "EMEA-0003", "NA-0001", "NA-0002"}
    m06 = header.index(SCHEMA["m06"].label) + 1
    channel = header.index(SCHEMA["channel"].label) + 1
    sheet.cell(ids["EMEA-0003"], m06, 4321.99)
    bad = io.BytesIO()
    sheet.cell(ids["NA-0001"], channel, "Billboards")
    book.save(bad)
    refused = problem(upload(service, path, bad.getvalue()), 422)
    assert any(
        i.get("cell") == f"{openpyxl.utils.get_column_letter(channel)}{ids['NA-0001']}" for i in refused["issues"]
    )
    sheet.cell(ids["NA-0001"], channel, "Events")
    good = io.BytesIO()
    book.save(good)
    answer = upload(service, path, good.getvalue())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["revision"] == 2
    problem(upload(service, path, good.getvalue()), 409)  # the workbook is of revision 1; the scenario moved on
    compared = service.client.get(f"{path}/compare?by=channel&period=quarter", headers=finance).get_json()
    assert [c["line_id"] for c in compared["lines"]["changed"]] == ["EMEA-0003"]
    webinars_q2 = next(r for r in compared["rows"] if (r["channel"], r["period"]) == ("Webinars", "Q2"))
    assert webinars_q2["cents"] == {"origin": 60000, "scenario": 60000 + 432199}


def upload(s: Service, path: str, data: bytes) -> Any:
    return s.client.put(
        f"{path}/lines?filename=scenario.xlsx",
        headers=auth(s.tokens["finance"]),
        data=data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def master_lines(s: Service) -> dict[str, dict[str, Any]]:
    lines = s.client.get("/api/v1/master", headers=auth(s.tokens["finance"])).get_json()["lines"]
    return {x["line_id"]: x for x in lines}


def submission(s: Service, sid: int) -> dict[str, Any]:
    return s.client.get(f"/api/v1/submissions/{sid}", headers=auth(s.tokens["finance"])).get_json()


def test_promoting_to_the_master_submits_each_changed_team_and_the_master_changes_when_approved(
    service: Service,
) -> None:
    scenario = post(service, "/api/v1/scenarios", {"name": "Cut NA"}).get_json()
    path = f"/api/v1/scenarios/{scenario['id']}"
    changes = [{"op": "scale", "team": "NA-ENTERPRISE", "factor": "0.5"}]
    assert post(service, f"{path}/changes", {"changes": changes}).status_code == 200
    before, lines_before = master_key(service), master_lines(service)
    # The maker of the lines may promote them: the team's approval chain holds the four eyes.
    promoted = post(service, f"{path}/promote", {"as": "master", "comment": "the board's cut"})
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    answer = promoted.get_json()
    assert answer["status"] == "promoted" and answer["ended"]["as"] == "master"
    assert set(answer["ended"]["submissions"]) == {"NA-ENTERPRISE"}  # EMEA is left alone: nothing to submit
    assert "master_version" not in answer["ended"]
    sid = answer["ended"]["submissions"]["NA-ENTERPRISE"]
    waiting = submission(service, sid)
    assert (waiting["status"], waiting["source"], waiting["submitted_by"]) == ("submitted", "scenario", "fiona")
    assert [(x["step"], x["status"]) for x in waiting["approval"]["steps"]] == [("finance", "waiting")]
    assert master_key(service) == before and master_lines(service) == lines_before  # not until it is approved
    # The promoter submitted it: another finance user approves it, as any plan.
    refused = problem(post(service, f"/api/v1/submissions/{sid}/approve", {"comment": "ok"}), 403)
    assert "another approver" in refused["detail"] and master_key(service) == before
    approved = post(service, f"/api/v1/submissions/{sid}/approve", {"comment": "ok"}, who="finance2")
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert master_key(service)["master_version"] == before["master_version"] + 1  # one team changed: one version
    by_id = master_lines(service)
    for x in NA:
        for m in MONTHS:
            half = int((Decimal(cents(x.get(m, "0"))) / 2).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            assert (by_id[x["line_id"]][m] or 0) == half, (x["line_id"], m)
    for x in EMEA:
        assert (by_id[x["line_id"]]["m04"] or 0) == cents(x.get("m04", "0"))
    problem(post(service, f"{path}/promote", {"as": "master"}, who="finance2"), 409)  # promoted: it changes no more
    problem(post(service, f"{path}/changes", {"changes": changes}), 409)
    audit = service.client.get("/api/v1/audit", headers=auth(service.tokens["finance"])).get_json()["events"]
    ended = next(e for e in audit if e["action"] == "scenario.promoted")
    assert ended["detail"]["as"] == "master" and ended["detail"]["submissions"] == {"NA-ENTERPRISE": sid}
    created = next(e for e in audit if e["action"] == "submission.create" and e["target"] == f"submission:{sid}")
    assert created["detail"]["scenario"] == scenario["id"] and created["detail"]["scenario_name"] == "Cut NA"
    approvals = [e["user"] for e in audit if e["action"] == "submission.approve" and e["target"] == f"submission:{sid}"]
    assert approvals == ["frank"]


def test_a_scenario_whose_team_changed_since_is_not_promoted_and_one_discarded_ends(service: Service) -> None:
    stale = post(service, "/api/v1/scenarios", {"name": "Old"}).get_json()
    path = f"/api/v1/scenarios/{stale['id']}"
    assert post(service, f"{path}/changes", {"changes": [{"op": "drop", "line_ids": ["NA-0002"]}]}).status_code == 200
    current = submit(service.client, service.tokens["finance2"], [dict(NA[0], m04="1"), NA[1]], team="NA-ENTERPRISE",
                     based_on={"master_version": master_key(service)["master_version"]})  # fmt: skip
    assert post(service, f"/api/v1/submissions/{current.get_json()['id']}/approve").status_code == 200
    before = master_key(service)
    conflict = problem(post(service, f"{path}/promote", {"as": "master"}, who="finance2"), 409)
    assert "NA-ENTERPRISE" in conflict["detail"] and master_key(service) == before
    assert post(service, f"{path}/discard", {"comment": "overtaken"}).get_json()["status"] == "discarded"
    problem(post(service, f"{path}/promote", {"as": "master"}, who="finance2"), 409)
    problem(post(service, "/api/v1/scenarios/999999/discard"), 404)


def test_promoting_to_the_allocations_sets_them_to_the_scenarios_planned_spend(service: Service) -> None:
    scenario = post(service, "/api/v1/scenarios", {"name": "Budget as planned"}).get_json()
    path = f"/api/v1/scenarios/{scenario['id']}"
    assert post(service, f"{path}/changes", {"changes": [{"op": "drop", "region": "NA"}]}).status_code == 200
    promoted = post(service, f"{path}/promote", {"as": "allocations"}, who="finance2")
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    cells = service.client.get("/api/v1/allocations", headers=auth(service.tokens["finance"])).get_json()
    got = {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in cells["allocations"]}
    want: dict[tuple[str, str, str], int] = defaultdict(int)
    for x in as_cents(EMEA).values():
        for m in MONTHS:
            want["EMEA", QUARTER_OF[m], x["channel"]] += reporting(x[m], x["currency"])
            want["EMEA", QUARTER_OF[m], "*"] += reporting(x[m], x["currency"])
    assert {k: v for k, v in got.items() if k[0] == "EMEA"} == dict(want)
    org = SCHEMA.config.allocations["NA"]  # NA has no line in the scenario: it keeps the allocation in force
    assert {k: v for k, v in got.items() if k[0] == "NA"} == {("NA", q, "*"): int(org[q] * 100) for q in org}


def allocations_now(s: Service) -> dict[str, Any]:
    return s.client.get("/api/v1/allocations", headers=auth(s.tokens["finance"])).get_json()


def test_whoever_made_the_newest_revision_does_not_promote_it_to_the_allocations(service: Service) -> None:
    scenario = post(service, "/api/v1/scenarios", {"name": "Frank's cut"}).get_json()  # made by fiona
    path = f"/api/v1/scenarios/{scenario['id']}"
    changes = {"changes": [{"op": "scale", "region": "EMEA", "factor": "0.5"}]}
    assert post(service, f"{path}/changes", changes, who="finance2").status_code == 200  # revision 2: frank's
    before = allocations_now(service)
    refused = problem(post(service, f"{path}/promote", {"as": "allocations"}, who="finance2"), 403)
    assert "revision 2" in refused["detail"] and "another finance user" in refused["detail"]
    assert allocations_now(service) == before
    assert service.client.get(path, headers=auth(service.tokens["finance"])).get_json()["status"] == "open"
    promoted = post(service, f"{path}/promote", {"as": "allocations"})  # fiona made the origin, not these lines
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    revision = promoted.get_json()["ended"]["allocation_revision"]
    assert allocations_now(service)["revision"] == revision != before["revision"]


def test_a_scenario_of_the_estimate_shows_what_was_booked_and_promotes_the_plan_of_the_closed_months(
    service: Service,
) -> None:
    export = b"Line ID,Month,Amount,Currency\nEMEA-0001,m01,900,USD\n"
    imported = service.client.post(
        "/api/v1/actuals?filename=gl.csv", headers=auth(service.tokens["finance"]), data=export, content_type="text/csv"
    )
    assert imported.status_code == 201, imported.get_data(as_text=True)
    assert post(service, "/api/v1/periods/lock", {"months": ["m01"]}).status_code == 200
    scenario = post(service, "/api/v1/scenarios", {"name": "From the estimate", "from": "estimate"}).get_json()
    path = f"/api/v1/scenarios/{scenario['id']}"
    assert post(service, f"{path}/changes", {"changes": [{"op": "scale", "team": "EMEA-ENTERPRISE", "period": "Q2",
                                                         "factor": "2"}]}).status_code == 200  # fmt: skip
    compared = service.client.get(f"{path}/compare?by=region&period=quarter", headers=auth(service.tokens["finance"]))
    q1 = next(r for r in compared.get_json()["rows"] if (r["region"], r["period"]) == ("EMEA", "Q1"))
    assert q1["cents"]["origin"] == 90000 + cents("800")  # booked m01 (900, not the plan's 1000), then m02's plan
    before = master_lines(service)
    promoted = post(service, f"{path}/promote", {"as": "master"}, who="finance2")
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    sid = promoted.get_json()["ended"]["submissions"]["EMEA-ENTERPRISE"]
    assert master_lines(service) == before  # submitted, waiting for its approval
    assert post(service, f"/api/v1/submissions/{sid}/approve", {"comment": "ok"}).status_code == 200
    first = master_lines(service)["EMEA-0001"]
    assert first["m01"] == cents("1000")  # the closed month keeps the approved plan
    assert first["m04"] == 2 * cents("2000")


@pytest.fixture
def chained(database_url: str, tmp_path: Path) -> Iterator[Service]:
    """The service with approval chains, the EMEA and NA plans approved through them.

    EMEA plans pass the region's marketing lead (lena), then finance; NA plans finance alone; a plan
    changing the approved one by more than 50,000 also needs the controller (carla, a finance user).
    """
    org = tmp_path / "org.toml"
    org.write_text(default_config_path().read_text(encoding="utf-8") + CHAINS, encoding="utf-8")
    config = load_config(org)
    s = make_service(database_url, ORG_CONFIG=str(org))
    with s.store.transaction() as session:
        s.tokens["lena"] = create_token(
            session, "lena", "marketer", ["EMEA-SMB"], approves=[{"step": "region_lead", "region": "EMEA"}],
            config=config,
        )  # fmt: skip
        s.tokens["carla"] = create_token(
            session, "carla", "finance", approves=[{"step": "controller", "region": "*"}], config=config
        )
    emea = submit(s.client, s.tokens["emea"], EMEA).get_json()["id"]
    na = submit(s.client, s.tokens["na"], NA, team="NA-ENTERPRISE").get_json()["id"]
    for sid, approvers in ((emea, ("lena", "finance")), (na, ("finance",))):
        for who in approvers:
            assert post(s, f"/api/v1/submissions/{sid}/approve", {"comment": "ok"}, who=who).status_code == 200
    yield s
    s.store.dispose()


def test_a_promoted_plan_waits_for_each_step_of_its_regions_chain_before_the_master_changes(chained: Service) -> None:
    scenario = post(chained, "/api/v1/scenarios", {"name": "EMEA tenfold, NA halved"}).get_json()
    path = f"/api/v1/scenarios/{scenario['id']}"
    changes = [{"op": "scale", "team": "EMEA-ENTERPRISE", "factor": "10"},
               {"op": "scale", "team": "NA-ENTERPRISE", "factor": "0.5"}]  # fmt: skip
    assert post(chained, f"{path}/changes", {"changes": changes}).status_code == 200
    before, lines_before = master_key(chained), master_lines(chained)
    promoted = post(chained, f"{path}/promote", {"as": "master"})
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    made = promoted.get_json()["ended"]["submissions"]
    emea, na = made["EMEA-ENTERPRISE"], made["NA-ENTERPRISE"]
    # EMEA's plan grows by nine times its approved spend, far over the controller's 50,000.
    grown = 9 * sum(by_region_quarter(as_cents(EMEA)).values())
    chain = submission(chained, emea)["approval"]
    assert [(x["step"], x["status"]) for x in chain["steps"]] == [
        ("region_lead", "waiting"),
        ("finance", "not reached"),
        ("controller", "not reached"),
    ]
    assert cents(chain["change"]) > 5_000_000 and abs(cents(chain["change"]) - grown) <= 100
    assert [x["step"] for x in submission(chained, na)["approval"]["steps"]] == ["finance"]

    def take(who: str, sid: int) -> dict[str, Any]:
        answer = post(chained, f"/api/v1/submissions/{sid}/approve", {"comment": f"{who} agrees"}, who=who)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    early = problem(post(chained, f"/api/v1/submissions/{emea}/approve", {"comment": "ok"}, who="finance2"), 403)
    assert "Region marketing lead" in early["detail"]
    assert take("lena", emea)["master_version"] is None
    assert master_key(chained) == before and master_lines(chained) == lines_before
    problem(post(chained, f"/api/v1/submissions/{emea}/approve", {"comment": "ok"}), 403)  # fiona submitted it
    assert take("finance2", emea)["master_version"] is None
    assert master_key(chained) == before and master_lines(chained) == lines_before  # still the controller's turn
    assert submission(chained, emea)["approval"]["waiting_for"] == "controller"
    last = take("carla", emea)
    assert last["status"] == "approved" and last["master_version"] == before["master_version"] + 1
    by_id = master_lines(chained)
    for x in EMEA:
        for m in MONTHS:
            assert (by_id[x["line_id"]][m] or 0) == 10 * cents(x.get(m, "0")), (x["line_id"], m)
    for x in NA:  # NA's plan waits for its own chain's one step
        assert (by_id[x["line_id"]]["m04"] or 0) == cents(x.get("m04", "0"))
    assert take("finance2", na)["status"] == "approved"
    assert master_lines(chained)["NA-0001"]["m04"] == cents("2500")
