"""Two fiscal years side by side: next year is planned, approved, locked and budgeted while this one runs.

The year is part of the data: every plan, master version, allocation, lock and list belongs to one
year, and a request names its year with `?year=` (default: the year the organisation file runs).
Nothing one year does shows in the other; a year the organisation file does not describe is refused
naming the fix.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from sync_service.platform.storage import MasterVersion, Submission
from tests.libreoffice import sheet_values
from tests.sync_service.http_helpers import auth, decide, problem
from tests.sync_service.service_helpers import (
    SCHEMA,
    Service,
    as_json,
    cents,
    csv_bytes,
    line,
    make_service,
    settled_jobs,
)
from tests.sync_service.spend_helpers import PO_HEADER, post

THIS, NEXT = SCHEMA.calendar.year, SCHEMA.calendar.year + 1
PLAN = [line("EMEA-0001", m01="1000", m02="2000"), line("EMEA-0002", channel="Webinars", m03="500")]
MONTHS = [c.name for c in SCHEMA.month_columns]
NEXT_PLAN = [line("EMEA-0001", m01="1500", m12="700"), line("EMEA-0100", channel="ABM", m06="900")]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)  # a year's twelve closes, not their packs (make_service: PACK_ON_CLOSE off)
    yield s
    settled_jobs(s.store)
    s.store.dispose()


def _approved(s: Service, lines: list[dict[str, Any]], year: int | None = None) -> int:
    suffix = f"?year={year}" if year else ""
    body = {"team": "EMEA-ENTERPRISE", "lines": [as_json(x) for x in lines]}
    sent = s.client.post(f"/api/v1/submissions{suffix}", headers=auth(s.tokens["finance2"]), json=body)
    assert sent.status_code == 201, sent.get_data(as_text=True)
    sid = sent.get_json()["id"]
    approval = decide(s.client, s.tokens["finance"], sid, "approve", "ok")
    assert approval.status_code == 200, approval.get_data(as_text=True)
    return sid


def _get(s: Service, path: str, year: int | None = None) -> Any:
    joiner = "&" if "?" in path else "?"
    answer = s.client.get(path + (f"{joiner}year={year}" if year else ""), headers=auth(s.tokens["finance"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def _by_id(master: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["line_id"]: x for x in master["lines"]}


def test_next_years_plan_is_approved_into_its_own_master_and_this_years_is_untouched(service: Service) -> None:
    this_plan = _approved(service, PLAN)
    before = _get(service, "/api/v1/master")
    next_plan = _approved(service, NEXT_PLAN, NEXT)
    # A team's plan of next year is its first there: no base, and it never replaces this year's.
    assert _get(service, "/api/v1/master")["lines"] == before["lines"]
    nxt = _by_id(_get(service, "/api/v1/master", NEXT))
    assert set(nxt) == {"EMEA-0001", "EMEA-0100"}
    assert (nxt["EMEA-0001"]["m01"], nxt["EMEA-0001"]["m12"]) == (cents("1500"), cents("700"))
    assert _by_id(before)["EMEA-0001"]["m01"] == cents("1000")
    with service.store.reading() as session:
        years = dict(session.execute(select(Submission.id, Submission.fiscal_year)).all())
        held = dict(session.execute(select(MasterVersion.submission_id, MasterVersion.fiscal_year)).all())
    assert years == {this_plan: THIS, next_plan: NEXT} and held == years
    # Each year lists its own submissions and versions.
    assert [x["id"] for x in _get(service, "/api/v1/submissions", NEXT)["submissions"]] == [next_plan]
    assert [x["id"] for x in _get(service, "/api/v1/submissions")["submissions"]] == [this_plan]
    assert [v["submission"] for v in _get(service, "/api/v1/master/versions", NEXT)["versions"]] == [next_plan]


def test_a_line_id_names_one_line_in_its_own_year(service: Service) -> None:
    _approved(service, PLAN)
    other = [line("EMEA-0002", team="EMEA-SMB", m01="10")]  # EMEA-Enterprise's ID this year, free next year
    body = {"team": "EMEA-SMB", "lines": [as_json(x) for x in other]}
    finance2 = auth(service.tokens["finance2"])
    refused = service.client.post("/api/v1/submissions", headers=finance2, json=body)
    assert problem(refused, 422)["issues"][0]["rule"] == "line.id_of_another_team"
    taken = service.client.post(f"/api/v1/submissions?year={NEXT}", headers=finance2, json=body)
    assert taken.status_code == 201, taken.get_data(as_text=True)


def test_locks_allocations_and_the_live_key_are_each_years_own(service: Service) -> None:
    finance = auth(service.tokens["finance"])
    locked = service.client.post(f"/api/v1/periods/lock?year={NEXT}", headers=finance, json={"months": ["m01"]})
    assert locked.status_code == 200, locked.get_data(as_text=True)
    assert next(p for p in _get(service, "/api/v1/periods", NEXT)["periods"] if p["month"] == "m01")["locked"]
    assert not next(p for p in _get(service, "/api/v1/periods")["periods"] if p["month"] == "m01")["locked"]

    def cells(year: int | None = None) -> dict[tuple[str, str, str], int]:
        found = _get(service, "/api/v1/allocations", year)["allocations"]
        return {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in found}

    this_year, next_year = cells(), cells(NEXT)
    assert next_year[("NA", "Q1", "*")] == int(SCHEMA.config.for_year(NEXT).allocation("NA", "Q1") * 100)
    assert this_year[("NA", "Q1", "*")] == int(SCHEMA.config.allocation("NA", "Q1") * 100) != next_year["NA", "Q1", "*"]
    change = {"allocations": [{"region": "LATAM", "quarter": "Q4", "amount": "1"}]}
    assert service.client.patch(f"/api/v1/allocations?year={NEXT}", headers=finance, json=change).status_code == 200
    assert cells()[("LATAM", "Q4", "*")] == this_year[("LATAM", "Q4", "*")]
    assert cells(NEXT)[("LATAM", "Q4", "*")] == 100
    key_this, key_next = _get(service, "/api/v1/master/version"), _get(service, "/api/v1/master/version", NEXT)
    assert key_next["allocation_revision"] > 0 and key_this["allocation_revision"] == 0


@pytest.mark.parametrize(
    ("year", "status", "says"),
    [("2031", 404, "[years.2031]"), ("twenty", 400, "is not a fiscal year"), ("FY1", 400, "is not a fiscal year")],
)
def test_a_year_the_organisation_does_not_describe_is_refused_naming_the_fix(
    service: Service, year: str, status: int, says: str
) -> None:
    answer = service.client.get(f"/api/v1/master?year={year}", headers=auth(service.tokens["finance"]))
    assert says in problem(answer, status)["detail"]


def test_fy_prefixed_year_is_the_same_year(service: Service) -> None:
    _approved(service, NEXT_PLAN, NEXT)
    assert _get(service, f"/api/v1/master?year=FY{NEXT}")["lines"] == _get(service, "/api/v1/master", NEXT)["lines"]


def test_next_years_template_is_sent_as_next_years_plan_and_refused_as_this_years(service: Service) -> None:
    marketer = auth(service.tokens["emea"])
    template = service.client.get(f"/api/v1/templates/EMEA-ENTERPRISE.xlsx?year={NEXT}", headers=marketer)
    assert template.status_code == 200, template.get_data(as_text=True)
    raw = template.get_data()

    def send(year: int | None) -> Any:
        return service.client.post(
            "/api/v1/submissions" + (f"?year={year}" if year else ""),
            headers=marketer,
            data={"team": "EMEA-ENTERPRISE", "file": (io.BytesIO(raw), "plan.xlsx")},
        )

    refused = problem(send(None), 422)
    message = next(i["message"] for i in refused["issues"] if i["rule"] == "template.fiscal_year")
    assert f"this template is for FY{NEXT}" in message and f"year={NEXT}" in message
    accepted = send(NEXT)  # the same file as next year's plan: its year is right, whatever else it says
    assert "template.fiscal_year" not in accepted.get_data(as_text=True)


def test_next_years_plan_against_this_years_plan_actual_and_estimate(service: Service) -> None:
    _approved(service, PLAN)
    finance = auth(service.tokens["finance"])
    export = b"Line ID,Month,Amount,Currency\nEMEA-0001,m01,900,USD\n"
    imported = service.client.post("/api/v1/actuals?filename=gl.csv", headers=finance, data=export,
                                    content_type="text/csv")  # fmt: skip
    assert imported.status_code == 201, imported.get_data(as_text=True)
    assert service.client.post("/api/v1/periods/lock", headers=finance, json={"months": ["m01"]}).status_code == 200
    _approved(service, NEXT_PLAN, NEXT)
    answer = _get(service, "/api/v1/year-over-year?by=region,channel&period=quarter", NEXT)
    assert (answer["year"], answer["against"], answer["against_closed_months"]) == (f"FY{NEXT}", f"FY{THIS}", ["m01"])
    rows = {(r["region"], r["channel"], r["period"]): r["cents"] for r in answer["rows"]}
    # This year: Events m01 1,000 (900 booked) and m02 2,000; Webinars m03 500. Next year: Events m01 1,500
    # and m12 700; ABM m06 900. The estimate books the closed month's actual, and the plan after it.
    assert rows[("EMEA", "Events", "Q1")] == {
        "plan": cents("1500"), "last_plan": cents("3000"), "last_actual": cents("900"), "last_estimate": cents("2900")
    }  # fmt: skip
    assert rows[("EMEA", "Webinars", "Q1")] == {
        "plan": 0, "last_plan": cents("500"), "last_actual": 0, "last_estimate": cents("500")
    }  # fmt: skip
    assert rows[("EMEA", "ABM", "Q2")] == {"plan": cents("900"), "last_plan": 0, "last_actual": 0, "last_estimate": 0}
    assert rows[("EMEA", "Events", "Q4")]["plan"] == cents("700")
    events_q1 = next(r for r in answer["rows"] if (r["channel"], r["period"]) == ("Events", "Q1"))
    assert (events_q1["plan_vs_last_estimate"], events_q1["plan_vs_last_estimate_pct"]) == ("-1400.00", -0.482759)
    # This year has no described year before it: the comparison says which table to add.
    refused = service.client.get("/api/v1/year-over-year", headers=finance)
    assert f"[years.{THIS - 1}]" in problem(refused, 404)["detail"]


def test_a_po_across_the_year_end_accrues_in_each_years_months_and_the_last_reversal_lands_next_year(
    service: Service,
) -> None:
    _approved(service, PLAN)
    _approved(service, NEXT_PLAN, NEXT)
    export = csv_bytes([PO_HEADER, ["PO-YE", "Stagehand", "12000", "USD", "2026-12-01", "2027-03-31", "EMEA-0001", "",
                                    "Open", ""]])  # fmt: skip
    assert post(service, "/api/v1/purchase-orders", export).status_code == 201
    days = 121  # 1 Dec 2026 to 31 Mar 2027, both days in
    delivered = {THIS: (1_200_000 * 62 * 2 + days) // (2 * days), NEXT: (1_200_000 * 90 * 2 + days) // (2 * days)}
    last = _get(service, "/api/v1/accruals/m12")  # January 2027: the last month of this year
    assert {e["po_number"]: e["accrued"] for e in last["entries"]} == {"PO-YE": f"{delivered[THIS] / 100:.2f}"}
    first = _get(service, "/api/v1/accruals/m01", NEXT)  # February 2027: the first month of next year
    assert {e["po_number"]: e["accrued"] for e in first["entries"]} == {"PO-YE": f"{delivered[NEXT] / 100:.2f}"}
    finance = auth(service.tokens["finance"])
    journal = service.client.get("/api/v1/accruals/m12/journal.csv?entries=reversal", headers=finance)
    assert journal.status_code == 200, journal.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(journal.get_data(as_text=True))))
    assert {(r["Date"], r["Period"]) for r in rows} == {("2027-02-01", f"Feb 2027 (FY{NEXT})")}


def test_a_year_closes_once_its_months_are_and_is_then_read_only_and_still_readable(service: Service) -> None:
    _approved(service, PLAN)
    finance, marketer = auth(service.tokens["finance"]), auth(service.tokens["emea"])
    early = problem(service.client.post(f"/api/v1/years/{THIS}/close", headers=finance), 409)
    assert "lock m01, m02" in early["detail"] and "close the accruals of m01" in early["detail"]
    assert early["months_unlocked"] == MONTHS and early["accruals_open"] == MONTHS
    assert service.client.post("/api/v1/periods/lock", headers=finance, json={"through": "m12"}).status_code == 200
    for month in MONTHS:
        closed = service.client.post(f"/api/v1/accruals/{month}/close", headers=finance)
        assert closed.status_code == 200, closed.get_data(as_text=True)
    problem(service.client.post(f"/api/v1/years/{THIS}/close", headers=marketer), 403)
    before = _get(service, "/api/v1/master")
    done = service.client.post(f"/api/v1/years/{THIS}/close", headers=finance, json={"comment": "books closed"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["closed"]["by"] == "fiona" and done.get_json()["closed"]["comment"] == "books closed"
    listed = {y["year"]: y for y in _get(service, "/api/v1/years")["years"]}
    assert listed[THIS]["closed"] is not None and listed[NEXT]["closed"] is None and listed[THIS]["current"]
    # Read-only: every change to the year is refused, naming it, and changes nothing.
    body = {"team": "EMEA-ENTERPRISE", "lines": [as_json(x) for x in PLAN[:1]]}
    refusals = [
        service.client.post("/api/v1/submissions", headers=auth(service.tokens["finance2"]), json=body),
        service.client.patch("/api/v1/allocations", headers=finance,
                             json={"allocations": [{"region": "NA", "quarter": "Q1", "amount": "1"}]}),
        service.client.post("/api/v1/periods/unlock", headers=finance, json={"months": ["m12"]}),
        service.client.post("/api/v1/baselines", headers=finance, json={"name": "late"}),
        service.client.post("/api/v1/scenarios", headers=finance, json={"name": "late"}),
        service.client.post("/api/v1/actuals?filename=gl.csv", headers=finance, data=b"Line ID,Amount\nEMEA-0001,1\n",
                            content_type="text/csv"),
        service.client.post(f"/api/v1/years/{THIS}/close", headers=finance),
    ]  # fmt: skip
    for refused in refusals:
        assert f"FY{THIS} is closed" in problem(refused, 409)["detail"], refused.get_data(as_text=True)
    assert _get(service, "/api/v1/master") == before  # still readable, as it was
    assert _get(service, "/api/v1/accruals/m12")["entries"] == []
    # Next year goes on.
    _approved(service, NEXT_PLAN, NEXT)
    problem(service.client.post("/api/v1/years/2031/close", headers=finance), 404)


def test_next_years_master_workbook_carries_the_year_over_year_figures_as_values(service: Service, tmp_path) -> None:
    _approved(service, PLAN)
    _approved(service, NEXT_PLAN, NEXT)
    finance = auth(service.tokens["finance"])
    workbook = service.client.get(f"/api/v1/master?format=xlsx&year={NEXT}", headers=finance)
    assert workbook.status_code == 200, workbook.get_data(as_text=True)[:300]
    path = tmp_path / "master.xlsx"
    path.write_bytes(workbook.get_data())
    values = sheet_values(path, "Year over year")  # the cached values, as any reader shows them
    answer = _get(service, "/api/v1/year-over-year?by=region&period=year", NEXT)
    header = next(k for k, row in enumerate(values) if row and row[0] == "Region")
    assert values[header][1:5] == [f"FY{NEXT} plan", f"FY{THIS} plan", f"FY{THIS} actual", f"FY{THIS} estimate"]
    shown = {row[0]: row[1:5] for row in values[header + 1 :] if row and row[0] in ("EMEA", "NA", "APAC", "LATAM")}
    want = {
        r["region"]: [r["cents"][k] / 100 for k in ("plan", "last_plan", "last_actual", "last_estimate")]
        for r in answer["rows"]
    }
    assert shown == want
    this_year = service.client.get("/api/v1/master?format=xlsx", headers=finance)
    (tmp_path / "this.xlsx").write_bytes(this_year.get_data())
    assert "Year over year" not in CalamineWorkbook.from_path(str(tmp_path / "this.xlsx")).sheet_names  # none before


def test_a_background_import_works_in_the_year_its_request_named(service: Service) -> None:
    _approved(service, PLAN)
    _approved(service, NEXT_PLAN, NEXT)
    finance = auth(service.tokens["finance"])
    queued = service.client.post(
        f"/api/v1/actuals?filename=gl.csv&year={NEXT}",
        headers={**finance, "Prefer": "respond-async"},
        data=b"Line ID,Amount,Currency\nEMEA-0001,123.45,USD\n",
        content_type="text/csv",
    )
    assert queued.status_code == 202, queued.get_data(as_text=True)
    done = service.client.get(queued.headers["Location"], headers={**finance, "Prefer": "wait=20"}).get_json()
    assert done["status"] == "succeeded", done
    assert _by_id(_get(service, "/api/v1/master", NEXT))["EMEA-0001"]["actual"] == cents("123.45")
    assert _get(service, "/api/v1/master")["actuals_import"] is None  # this year has no import


def _cells(s: Service, calls: list[tuple[str, list[Any]]], year: int | None = None) -> list[Any]:
    body = {"calls": [{"name": name, "args": [[[a]] for a in args]} for name, args in calls]}
    suffix = f"?year={year}" if year else ""
    answer = s.client.post(f"/api/v1/functions:batch{suffix}", headers=auth(s.tokens["finance"]), json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [r["result"][0][0] if "result" in r else r["error"] for r in answer.get_json()["results"]]


def test_the_live_functions_read_the_year_they_name_else_the_requests(service: Service) -> None:
    _approved(service, PLAN)
    _approved(service, NEXT_PLAN, NEXT)
    planned = ("PS_PLANNED", ["EMEA", "FY", "", ""])
    budget = ("PS_BUDGET", ["NA", "Q1", ""])

    got = _cells(service, [planned, (planned[0], [*planned[1], NEXT]), (planned[0], [*planned[1], f"FY{NEXT}"])])
    master_this = sum(sum(x[m] for m in MONTHS) for x in _get(service, "/api/v1/master")["lines"])
    master_next = sum(sum(x[m] for m in MONTHS) for x in _get(service, "/api/v1/master", NEXT)["lines"])

    assert got[0] == pytest.approx(master_this / 100) and got[1] == got[2] == pytest.approx(master_next / 100)
    assert got[0] != got[1]
    # A request of next year (the add-ins send the workbook's template year) is the default; a named year wins.
    assert _cells(service, [planned, (planned[0], [*planned[1], float(THIS)])], NEXT) == [got[1], got[0]]
    # Each year's own allocations, as the allocations answer has them.
    allocations = {year: _get(service, "/api/v1/allocations", year)["allocations"] for year in (None, NEXT)}
    want = [
        next(c["cents"] for c in cells if (c["region"], c["quarter"], c["channel"]) == ("NA", "Q1", "*")) / 100
        for cells in allocations.values()
    ]
    assert _cells(service, [budget, (budget[0], [*budget[1], NEXT])]) == want
    # A year not described, and what is not a year, are the cell's own errors; the other cells still answer.
    unknown, bad, fine = _cells(
        service, [(planned[0], [*planned[1], 2041]), (planned[0], [*planned[1], "soon"]), planned]
    )
    assert unknown["code"] == "#N/A" and "[years.2041]" in unknown["message"]
    assert bad["code"] == "#VALUE!" and "2028 or FY2028" in bad["message"]
    assert fine == got[0]


def _close_this_year(s: Service) -> None:
    finance = auth(s.tokens["finance"])
    assert s.client.post("/api/v1/periods/lock", headers=finance, json={"through": "m12"}).status_code == 200
    for month in MONTHS:
        assert s.client.post(f"/api/v1/accruals/{month}/close", headers=finance).status_code == 200
    closed = s.client.post(f"/api/v1/years/{THIS}/close", headers=finance)
    assert closed.status_code == 200, closed.get_data(as_text=True)


def test_a_closed_years_unspent_budget_moves_to_the_next_year_only_through_an_approved_transfer(
    service: Service,
) -> None:
    _approved(service, PLAN)
    finance, marketer = auth(service.tokens["finance"]), auth(service.tokens["emea"])
    export = b"Line ID,Month,Amount,Currency\nEMEA-0001,m01,900,USD\nEMEA-0002,m03,250,USD\n"
    imported = service.client.post("/api/v1/actuals?filename=gl.csv", headers=finance, data=export,
                                    content_type="text/csv")  # fmt: skip
    assert imported.status_code == 201, imported.get_data(as_text=True)

    def cells(year: int | None = None) -> dict[tuple[str, str, str], int]:
        found = _get(service, "/api/v1/allocations", year)["allocations"]
        return {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in found}

    def carry(amount: str, year: Any = THIS, to_year: int = NEXT) -> Any:
        side = {"region": "EMEA", "quarter": "Q1", "channel": "*"}
        body = {"from": side | {"year": year}, "to": side, "amount": amount, "reason": "FY carry"}
        return service.client.post(f"/api/v1/transfers?year={to_year}", headers=finance, json=body)

    # Unspent is known once the year closes: until then nothing is carried.
    early = problem(carry("10"), 409)
    assert f"FY{THIS} is not closed" in early["detail"] and early["issues"][0]["at"] == "from.year"
    _close_this_year(service)
    this_before, next_before = cells(), cells(NEXT)
    unspent = this_before[("EMEA", "Q1", "*")] - cents("1150")  # the allocation less Q1's actual spend
    # More than is unspent is refused naming what is; a year that is not the one before is refused at its field.
    too_much = problem(carry(str((unspent + 1) / 100)), 409)
    assert "unspent and not yet carried forward" in too_much["detail"] and too_much["issues"][0]["at"] == "amount"
    assert problem(carry("10", year=THIS - 1), 422)["issues"][0]["at"] == "from.year"
    assert cells(NEXT) == next_before
    # Asked for by finance and approved like any transfer: the giving region's marketer takes their step.
    asked = carry(str(unspent / 100 - 100))
    assert asked.status_code == 201, asked.get_data(as_text=True)
    transfer = asked.get_json()
    assert transfer["status"] == "requested" and transfer["from"]["year"] == THIS and transfer["year"] == NEXT
    assert cells(NEXT) == next_before  # nothing moves before the last approval
    approved = service.client.post(f"/api/v1/transfers/{transfer['id']}/approve?year={NEXT}", headers=marketer,
                                   json={"comment": "yes"})  # fmt: skip
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "approved"
    after = cells(NEXT)
    assert after[("EMEA", "Q1", "*")] == next_before[("EMEA", "Q1", "*")] + unspent - cents("100")
    assert cells() == this_before  # the closed year is as it was
    # What is left to carry is what the first carry did not take.
    assert "has 100.00 of" in problem(carry("100.01"), 409)["detail"]
    # Each year lists the carry: the receiving year, and the year it came out of.
    assert [t["id"] for t in _get(service, "/api/v1/transfers")["transfers"]] == [transfer["id"]]
    assert [t["id"] for t in _get(service, "/api/v1/transfers", NEXT)["transfers"]] == [transfer["id"]]
