"""Who may call what: every API route x every kind of caller -> the exact HTTP status.

Read `MATRIX` as a table. Its columns are the callers:

- anon:    no Authorization header
- badtok:  a well-formed token with finance's real token id and a wrong secret
- mine:    a marketer of EMEA-ENTERPRISE, the team the rows are about unless they say otherwise
- other:   a marketer of NA-ENTERPRISE (another region)
- finance: finance
- admin:   an admin

401 always comes with `WWW-Authenticate: Bearer`, every error is RFC 9457 problem details without a
traceback, a refused or failed request changes nothing (counted before and after), an allowed write
changes exactly what it should, and the lists a marketer may call show its own teams only
(EMEA-SMB, in the same region as EMEA-ENTERPRISE, has its own plan, so region-level filtering is
not enough to pass). A test checks the matrix has a row for every route the app serves.

One service per database (SQLite, then PostgreSQL) is set up once and shared by all the cases:
each case prepares what it needs (a fresh pending submission to approve, a locked month to unlock)
and leaves the seeded plans in place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform import profiles
from sync_service.platform.context import STORE
from sync_service.platform.storage import (
    AccrualClose,
    ActualImport,
    AllocationRevision,
    AuditEvent,
    Baseline,
    Cycle,
    CycleClose,
    Decision,
    ImportProfile,
    Invoice,
    MasterVersion,
    OutcomeImport,
    PeriodLock,
    PurchaseOrder,
    Role,
    Scenario,
    ScenarioEnd,
    ScenarioRevision,
    SpendImport,
    Store,
    Submission,
    Transfer,
    TransferDecision,
    User,
)
from tests.databases import upgrade
from tests.sync_service.live_server import as_json
from tests.sync_service.service_helpers import settled_jobs
from tests.system_deps import scratch_postgres

SCHEMA = build_schema(load_config())
ROLES = ("anon", "badtok", "mine", "other", "finance", "admin")
MINE, SIBLING, OTHER = "EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE"
ALL_TEAMS = {MINE, SIBLING, OTHER}
ALL_REGIONS = set(SCHEMA.config.regions)
# What each caller may see of the seeded teams and of the regions (finance reads everything; admins no plans).
SEES_TEAMS = {"mine": {MINE}, "other": {OTHER}, "finance": ALL_TEAMS}
SEES_REGIONS = {"mine": {"EMEA"}, "other": {"NA"}, "finance": ALL_REGIONS}
MISSING = 999_999  # no submission, no master version has this number


# --- the service, seeded once per database -------------------------------------------------------------------------


def owner_of(team: str) -> str:
    """Every line of a team's plan has this owner, so a rollup by owner shows whose lines are in it."""
    return f"{team.lower()}@example.com"


def plan_lines(team: str) -> list[dict[str, Any]]:
    """The team's plan as JSON lines; always the same, so a resubmission changes no locked month."""
    region = team.split("-")[0]
    lines = sample_lines(SCHEMA, region, 3, seed=7, id_prefix=team.replace("-", ""), fill=0.2)
    return [{**as_json(line), "owner": owner_of(team)} for line in lines]


@dataclass
class World:
    """The running service on one database, with a token per caller and the seeded submissions."""

    app: Flask
    store: Store
    headers: dict[str, dict[str, str]]  # role -> request headers
    approved: dict[str, int] = field(default_factory=dict)  # team -> the submission seeded and approved
    scenario_book: bytes = b""  # the workbook of the scenario a row prepared

    def call(self, method: str, path: str, role: str, **kwargs: Any) -> Any:
        return self.app.test_client().open(path, method=method, headers=self.headers[role], **kwargs)

    def current(self, team: str) -> int | None:
        with self.store.reading() as session:
            return session.scalar(
                select(MasterVersion.submission_id)
                .where(MasterVersion.team_id == team)
                .order_by(MasterVersion.id.desc())
                .limit(1)
            )

    def submit(self, team: str, role: str = "finance") -> int:
        response = self.call("POST", "/api/v1/submissions", role, json=submission_body(self, team))
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["id"]

    def approve(self, submission: int) -> None:
        response = self.call("POST", f"/api/v1/submissions/{submission}/approve", "finance", json={"comment": "ok"})
        assert response.status_code == 200, response.get_data(as_text=True)

    def periods(self, action: str, months: list[str]) -> None:
        response = self.call("POST", f"/api/v1/periods/{action}", "finance", json={"months": months})
        assert response.status_code == 200, response.get_data(as_text=True)

    def state(self) -> dict[str, Any]:
        """What a write can change, so a test can say which of it changed."""
        with self.store.reading() as session:
            return {
                "submissions": session.scalar(select(func.count()).select_from(Submission)),
                "decisions": session.scalar(select(func.count()).select_from(Decision)),
                "master": session.scalar(select(func.max(MasterVersion.id))),
                "allocations": session.scalar(select(func.max(AllocationRevision.id))),
                "actuals": session.scalar(select(func.count()).select_from(ActualImport)),
                "outcomes": session.scalar(select(func.count()).select_from(OutcomeImport)),
                "locks": sorted(session.scalars(select(PeriodLock.month))),
                "baselines": session.scalar(select(func.count()).select_from(Baseline)),
                "transfers": session.scalar(select(func.count()).select_from(Transfer)),
                "transfer_decisions": session.scalar(select(func.count()).select_from(TransferDecision)),
                "cycles": session.scalar(select(func.count()).select_from(Cycle)),
                "cycle_closes": session.scalar(select(func.count()).select_from(CycleClose)),
                "scenarios": session.scalar(select(func.count()).select_from(Scenario)),
                "scenario_revisions": session.scalar(select(func.count()).select_from(ScenarioRevision)),
                "scenario_ends": session.scalar(select(func.count()).select_from(ScenarioEnd)),
                "spend_imports": session.scalar(select(func.count()).select_from(SpendImport)),
                "purchase_orders": session.scalar(select(func.count()).select_from(PurchaseOrder)),
                "invoices": session.scalar(select(func.count()).select_from(Invoice)),
                "accrual_closes": session.scalar(select(func.count()).select_from(AccrualClose)),
                "import_profiles": session.scalar(select(func.count()).select_from(ImportProfile)),
                "audit": session.scalar(select(func.count()).select_from(AuditEvent)),
            }


def profile_of(kind: str) -> Callable[[World], dict[str, Any]]:
    """A `prepare`: finance's profile "matrix" of `kind` in force (saved again when a row retired it)."""

    def prepare(world: World) -> dict[str, Any]:
        with world.store.reading() as session:
            held = profiles.listing(session, kind)
        if not any(p["name"] == "matrix" for p in held):
            with world.store.reading() as session:
                finance = session.scalars(select(User).where(User.role == Role.FINANCE)).first()
            profiles.save(world.store, finance, kind, "matrix", {"fields": {"currency": "Ccy"}}, new=True)
        return {}

    return prepare


def submission_body(world: World, team: str) -> dict[str, Any]:
    """A valid JSON plan for `team`, based on the team's current approved plan (0: it has none).

    Its first line's notes differ each time: the team's approved plan sent unchanged is answered
    `unchanged` (200) and stores nothing, which is not what these rows try.
    """
    lines = plan_lines(team)
    lines[0] = {**lines[0], "notes": f"resubmitted {uuid.uuid4().hex[:8]}"}
    return {"team": team, "lines": lines, "based_on": {"submission": world.current(team) or 0}}


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """Like the `postgres_url` fixture, but one database for the whole module."""
    with scratch_postgres() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The service with three teams' approved plans: mine, its same-region sibling, and another region's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'plansheet.db'}"
    else:
        url = request.getfixturevalue("module_postgres_url")
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "mine": create_token(session, "maria", "marketer", [MINE]),
            "sibling": create_token(session, "sid", "marketer", [SIBLING]),
            "other": create_token(session, "sam", "marketer", [OTHER]),
            "finance": create_token(session, "fiona", "finance"),
            "finance2": create_token(session, "frank", "finance"),  # changes the scenarios finance promotes
            "admin": create_token(session, "ada", "admin"),
        }
    finance_token_id = tokens["finance"].split("_")[1]
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
    headers["anon"] = {}
    headers["badtok"] = {"Authorization": f"Bearer ps_{finance_token_id}_{'x' * 43}"}
    world = World(app, store, headers)
    for team, role in ((MINE, "mine"), (SIBLING, "sibling"), (OTHER, "other")):
        world.approved[team] = world.submit(team, role)
        world.approve(world.approved[team])
    try:
        yield world
    finally:
        settled_jobs(store)  # the jobs some rows queue (a workbook, a month's pack) finish before the database goes
        store.dispose()  # close the pool's connections before the database is dropped


# --- what the lists show -------------------------------------------------------------------------------------------


def teams_of_submissions(body: dict[str, Any]) -> set[str]:
    return {s["team"] for s in body["submissions"]}


def teams_of_master(body: dict[str, Any]) -> set[str]:
    return {t["team"] for t in body["teams"]} | {line["team_id"] for line in body["lines"]}


def teams_of_versions(body: dict[str, Any]) -> set[str]:
    return {v["team"] for v in body["versions"]}


def teams_of_diff(body: dict[str, Any]) -> set[str]:
    return {t["team"] for t in body["teams"]}


def teams_of_owner_rows(body: dict[str, Any]) -> set[str]:
    by_owner = {owner_of(team): team for team in ALL_TEAMS}
    return {by_owner[row["owner"]] for row in body["rows"]}


def regions_of_allocations(body: dict[str, Any]) -> set[str]:
    return {cell["region"] for cell in body["allocations"]}


# --- the matrix ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request and the status each caller gets; see the module docstring for the columns."""

    method: str
    path: str  # {team}, {sibling}, {mine_submission}, {sibling_submission}, {latest} and {pending} are filled in
    statuses: tuple[int, int, int, int, int, int]  # in ROLES order
    json: Callable[[World], Any] | None = None  # the JSON body, made when the case runs
    data: tuple[bytes, str] | None = None  # or a raw body and its content type
    raw: Callable[[World], tuple[bytes, str]] | None = None  # or one made after `prepare`
    prepare: Callable[[World], dict[str, Any]] | None = None  # runs before the state is counted
    writes: frozenset[str] = frozenset()  # the parts of World.state() a successful call changes
    shows: Callable[[Any], set[str]] | None = None  # which teams (or regions) a 200 answer shows
    scope: str = "teams"  # what `shows` returns: "teams" or "regions"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def row(method: str, path: str, *statuses: int, writes: tuple[str, ...] = (), **details: Any) -> Row:
    assert len(statuses) == len(ROLES), path
    return Row(method, path, statuses, writes=frozenset(writes), **details)


def pending(world: World) -> dict[str, Any]:
    """A fresh submission of my team, waiting for a decision."""
    return {"pending": world.submit(MINE, "mine")}


def locked_m12(world: World) -> dict[str, Any]:
    world.periods("lock", ["m12"])
    return {}


def unlocked_m12(world: World) -> dict[str, Any]:
    world.periods("unlock", ["m12"])
    return {}


def allocations(_: World) -> dict[str, Any]:
    cells = [
        {"region": region, "quarter": quarter, "channel": "*", "amount": str(amount)}
        for region, quarters in SCHEMA.config.allocations.items()
        for quarter, amount in quarters.items()
    ]
    return {"allocations": cells, "comment": "same as the organisation file"}


def a_baseline(world: World) -> dict[str, Any]:
    """A budget baseline exists (the budget view needs one)."""
    with world.store.reading() as session:
        if session.scalar(select(func.count()).select_from(Baseline)):
            return {}
    response = world.call("POST", "/api/v1/baselines", "finance", json={"name": f"budget {uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return {}


TRANSFER = {  # above the finance limit (10,000 by default): the giving side (EMEA) and finance approve
    "from": {"region": "EMEA", "quarter": "Q1", "channel": "*"},
    "to": {"region": "EMEA", "quarter": "Q2", "channel": "*"},
    "amount": "20000",
    "reason": "the spring event moved",
}


def asked(world: World) -> dict[str, Any]:
    """A transfer my marketer asked for (and so consented to as the giving side): finance's approval is next."""
    response = world.call("POST", "/api/v1/transfers", "mine", json=TRANSFER)
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"transfer": response.get_json()["id"]}


def no_open_cycle(world: World) -> dict[str, Any]:
    """No reforecast cycle is open, and m01 (the one the row's cycle closes) is locked already."""
    world.periods("lock", ["m01"])
    with world.store.reading() as session:
        open_ids = [c.id for c in session.scalars(select(Cycle)) if session.get(CycleClose, c.id) is None]
    for cycle in open_ids:
        response = world.call("POST", f"/api/v1/cycles/{cycle}/close", "finance")
        assert response.status_code == 200, response.get_data(as_text=True)
    return {}


def an_open_cycle(world: World) -> dict[str, Any]:
    """A reforecast cycle is open: its id."""
    no_open_cycle(world)
    body = {"name": f"reforecast {uuid.uuid4().hex[:8]}", "through": "m01", "deadline": "2027-06-20"}
    response = world.call("POST", "/api/v1/cycles", "finance", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"cycle": response.get_json()["id"]}


def a_scenario(world: World) -> dict[str, Any]:
    """An open what-if scenario of today's master, and its workbook as downloaded."""
    response = world.call("POST", "/api/v1/scenarios", "finance", json={"name": f"what-if {uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    scenario = response.get_json()["id"]
    book = world.call("GET", f"/api/v1/scenarios/{scenario}.xlsx", "finance")
    assert book.status_code == 200
    world.scenario_book = book.data
    return {"scenario": scenario}


def a_changed_scenario(world: World) -> dict[str, Any]:
    """An open scenario that differs from the master: a team's planned spend halved over Q2 (open months only:
    m01 is locked here), by another finance user.

    Whoever made a scenario's newest revision does not promote it to the allocations.
    """
    found = a_scenario(world)
    changes = [{"op": "scale", "team": MINE, "period": "Q2", "factor": "0.5"}]
    response = world.call(
        "POST", f"/api/v1/scenarios/{found['scenario']}/changes", "finance2", json={"changes": changes}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return found


def a_scenario_of_my_teams_q2(world: World) -> dict[str, Any]:
    """An open scenario with my team's Q2 planned spend halved by finance (Q2 is never locked here)."""
    found = a_scenario(world)
    changes = [{"op": "scale", "team": MINE, "period": "Q2", "factor": "0.5"}]
    response = world.call(
        "POST", f"/api/v1/scenarios/{found['scenario']}/changes", "finance", json={"changes": changes}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return found


def po_csv(_: World) -> tuple[bytes, str]:
    """A new PO (its number never seen before) for one of my team's lines."""
    line_id = plan_lines(MINE)[0]["line_id"]
    number = f"PO-{uuid.uuid4().hex[:10]}"
    text = f"PO number,Amount,Service start,Service end,Line ID\n{number},100,2026-02-01,2026-04-30,{line_id}\n"
    return text.encode(), "text/csv"


def invoice_csv(_: World) -> tuple[bytes, str]:
    return (
        f"Invoice number,PO number,Amount,Invoice date\nINV-{uuid.uuid4().hex[:10]},PO-1,10,2026-03-01\n".encode(),
        "text/csv",
    )


def next_accrual_month(world: World) -> dict[str, Any]:
    """The month whose accrual closes next."""
    with world.store.reading() as session:
        closed = set(session.scalars(select(AccrualClose.month)))
    return {"month": next(m.name for m in SCHEMA.month_columns if m.name not in closed)}


SCENARIO_CHANGE = {"changes": [{"op": "scale", "team": MINE, "period": "Q2", "factor": "0.9"}]}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ACTUALS_CSV = (f"Line ID,Amount\n{plan_lines(MINE)[0]['line_id']},1250.00\n".encode(), "text/csv")
OUTCOMES_CSV = (f"Line ID,Month,Leads,Pipeline\n{plan_lines(MINE)[0]['line_id']},m01,12,5000\n".encode(), "text/csv")
V1 = "/api/v1"
NO_JOB = "0" * 32

# fmt: off
MATRIX = [
    #   method  path                                          anon badtok mine other finance admin
    row("GET",  "/health",                                    200, 200,   200, 200,  200,    200),
    row("GET",  "/ready",                                     200, 200,   200, 200,  200,    200),
    row("GET",  f"{V1}/openapi.json",                         200, 200,   200, 200,  200,    200),
    # Submitting: marketers for their own teams only; finance may too; admins never.
    row("POST", f"{V1}/submissions",                          401, 401,   201, 403,  201,    403,
        json=lambda w: submission_body(w, MINE), writes=("submissions", "audit")),
    row("POST", f"{V1}/submissions  (the sibling team)",      401, 401,   403, 403,  201,    403,
        json=lambda w: submission_body(w, SIBLING), writes=("submissions", "audit")),
    row("POST", f"{V1}/submissions  (no such team)",          401, 401,   404, 404,  404,    404,
        json=lambda _: {"team": "MARS-SMB", "lines": plan_lines(MINE)}),
    row("GET",  f"{V1}/submissions",                          401, 401,   200, 200,  200,    403,
        shows=teams_of_submissions),
    row("GET",  f"{V1}/submissions/{{mine_submission}}",      401, 401,   200, 403,  200,    403),
    row("GET",  f"{V1}/submissions/{{sibling_submission}}",   401, 401,   403, 403,  200,    403),
    row("GET",  f"{V1}/submissions/{MISSING}",                401, 401,   404, 404,  404,    403),
    # Deciding: finance only; the role is checked before the submission is looked up.
    row("POST", f"{V1}/submissions/{{pending}}/approve",      401, 401,   403, 403,  200,    403,
        json=lambda _: {"comment": "ok"}, prepare=pending, writes=("decisions", "master", "audit")),
    row("POST", f"{V1}/submissions/{{pending}}/reject",       401, 401,   403, 403,  200,    403,
        json=lambda _: {"comment": "over budget"}, prepare=pending, writes=("decisions", "audit")),
    row("POST", f"{V1}/submissions/{MISSING}/approve",        401, 401,   403, 403,  404,    403,
        json=lambda _: {"comment": "ok"}),
    row("POST", f"{V1}/submissions/{MISSING}/reject",         401, 401,   403, 403,  404,    403,
        json=lambda _: {"comment": "no"}),
    # The master budget and its views: marketers see their own teams' lines only.
    row("GET",  f"{V1}/master",                               401, 401,   200, 200,  200,    403,
        shows=teams_of_master),
    # The ids of what is current say when something changed, never what: any token may ask.
    row("GET",  f"{V1}/master/version",                       401, 401,   200, 200,  200,    200),
    row("GET",  f"{V1}/master/versions",                      401, 401,   200, 200,  200,    403,
        shows=teams_of_versions),
    row("GET",  f"{V1}/master/versions/0/diff/{{latest}}",    401, 401,   200, 200,  200,    403,
        shows=teams_of_diff),
    row("GET",  f"{V1}/master/versions/0/diff/{MISSING}",     401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/rollup?by=owner",                      401, 401,   200, 200,  200,    403,
        shows=teams_of_owner_rows),
    row("GET",  f"{V1}/variance?by=owner",                    401, 401,   200, 200,  200,    403,
        shows=teams_of_owner_rows),
    row("GET",  f"{V1}/allocations",                          401, 401,   200, 200,  200,    403,
        shows=regions_of_allocations, scope="regions"),
    # Fiscal years: next year against this one; the years described, and closing one (not before its months are).
    row("GET",  f"{V1}/year-over-year?year=2028&by=owner",    401, 401,   200, 200,  200,    403,
        shows=teams_of_owner_rows),
    row("GET",  f"{V1}/year-over-year",                       401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/years",                                401, 401,   200, 200,  200,    403),
    row("POST", f"{V1}/years/2027/close",                     401, 401,   403, 403,  409,    403),
    row("POST", f"{V1}/years/2031/close",                     401, 401,   403, 403,  404,    403),
    # Finance's controls.
    row("PUT",  f"{V1}/allocations",                          401, 401,   403, 403,  200,    403,
        json=allocations, writes=("allocations", "audit")),
    row("PATCH", f"{V1}/allocations",                         401, 401,   403, 403,  200,    403,
        json=allocations, writes=("allocations", "audit")),
    row("POST", f"{V1}/actuals",                              401, 401,   403, 403,  201,    403,
        data=ACTUALS_CSV, writes=("actuals", "audit")),
    # Results from the CRM: finance imports them; everyone who reads plans reads the performance of their teams.
    row("POST", f"{V1}/outcomes",                             401, 401,   403, 403,  201,    403,
        data=OUTCOMES_CSV, writes=("outcomes", "audit")),
    row("POST", f"{V1}/outcomes:push",                        401, 401,   403, 403,  201,    403,
        json=lambda _: {"source": "crm", "rows": [{"line_id": plan_lines(MINE)[0]["line_id"], "month": "m02",
                                                   "leads": 3}]},
        writes=("outcomes", "audit")),
    row("GET",  f"{V1}/outcomes",                             401, 401,   403, 403,  200,    403),
    row("GET",  f"{V1}/performance",                          401, 401,   200, 200,  200,    403),
    # Each caller's own notification settings: anyone with a token, for themselves alone.
    row("GET",  f"{V1}/me/notifications",                     401, 401,   200, 200,  200,    200),
    row("PUT",  f"{V1}/me/notifications",                     401, 401,   200, 200,  200,    200,
        json=lambda _: {"enabled": True}),
    # The budget baseline: finance locks it; everyone who plans reads it (their own teams' figures).
    row("POST", f"{V1}/baselines",                            401, 401,   403, 403,  201,    403,
        json=lambda _: {"name": f"budget {uuid.uuid4().hex[:8]}"}, writes=("baselines", "audit")),
    row("GET",  f"{V1}/baselines",                            401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/budget?by=team",                       401, 401,   200, 200,  200,    403,
        prepare=a_baseline),
    # Budget transfers: marketers ask for their regions and approve as the giving side; finance approves.
    row("POST", f"{V1}/transfers",                            401, 401,   201, 403,  201,    403,
        json=lambda _: TRANSFER, writes=("transfers", "transfer_decisions", "audit")),
    row("GET",  f"{V1}/transfers",                            401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/transfers/{{transfer}}",               401, 401,   200, 403,  200,    403,
        prepare=asked),
    row("GET",  f"{V1}/transfers/{MISSING}",                  401, 401,   404, 404,  404,    403),
    row("POST", f"{V1}/transfers/{{transfer}}/approve",       401, 401,   403, 403,  200,    403,
        json=lambda _: {}, prepare=asked, writes=("transfer_decisions", "allocations", "audit")),
    row("POST", f"{V1}/transfers/{{transfer}}/reject",        401, 401,   403, 403,  200,    403,
        json=lambda _: {"comment": "not this quarter"}, prepare=asked, writes=("transfer_decisions", "audit")),
    row("POST", f"{V1}/transfers/{MISSING}/approve",          401, 401,   404, 404,  404,    403,
        json=lambda _: {}),
    # Reforecast cycles: finance opens and closes them; everyone who plans reads them (their own teams' status).
    row("POST", f"{V1}/cycles",                               401, 401,   403, 403,  201,    403,
        json=lambda _: {"name": f"reforecast {uuid.uuid4().hex[:8]}", "through": "m01", "deadline": "2027-06-20"},
        prepare=no_open_cycle, writes=("cycles", "audit")),
    row("GET",  f"{V1}/cycles",                               401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/cycles/{{cycle}}",                     401, 401,   200, 200,  200,    403,
        prepare=an_open_cycle),
    row("GET",  f"{V1}/cycles/{MISSING}",                     401, 401,   404, 404,  404,    403),
    row("POST", f"{V1}/cycles/{{cycle}}/close",               401, 401,   403, 403,  200,    403,
        prepare=an_open_cycle, writes=("cycle_closes", "audit")),
    # What-if scenarios: finance's alone, and never the master until promoted.
    row("POST", f"{V1}/scenarios",                            401, 401,   403, 403,  201,    403,
        json=lambda _: {"name": f"what-if {uuid.uuid4().hex[:8]}"},
        writes=("scenarios", "scenario_revisions", "audit")),
    row("GET",  f"{V1}/scenarios",                            401, 401,   403, 403,  200,    403),
    row("GET",  f"{V1}/scenarios/{{scenario}}",               401, 401,   403, 403,  200,    403, prepare=a_scenario),
    row("GET",  f"{V1}/scenarios/{MISSING}",                  401, 401,   403, 403,  404,    403),
    row("POST", f"{V1}/scenarios/{{scenario}}/changes",       401, 401,   403, 403,  200,    403,
        json=lambda _: SCENARIO_CHANGE, prepare=a_scenario, writes=("scenario_revisions", "audit")),
    row("GET",  f"{V1}/scenarios/{{scenario}}.xlsx",          401, 401,   403, 403,  200,    403, prepare=a_scenario),
    row("PUT",  f"{V1}/scenarios/{{scenario}}/lines",         401, 401,   403, 403,  200,    403,
        raw=lambda w: (w.scenario_book, XLSX_TYPE), prepare=a_scenario,
        writes=("scenario_revisions", "audit")),
    row("GET",  f"{V1}/scenarios/{{scenario}}/compare",       401, 401,   403, 403,  200,    403, prepare=a_scenario),
    row("POST", f"{V1}/scenarios/{{scenario}}/promote",       401, 401,   403, 403,  200,    403,
        json=lambda _: {"as": "allocations"}, prepare=a_changed_scenario,
        writes=("scenario_ends", "allocations", "audit")),
    # To the master: the changed team's plan is submitted into its approval chain; no decision, the master unchanged.
    row("POST", f"{V1}/scenarios/{{scenario}}/promote  (to the master)", 401, 401, 403, 403, 200, 403,
        json=lambda _: {"as": "master"}, prepare=a_scenario_of_my_teams_q2,
        writes=("submissions", "scenario_ends", "audit")),
    row("POST", f"{V1}/scenarios/{{scenario}}/discard",       401, 401,   403, 403,  200,    403,
        json=lambda _: {}, prepare=a_scenario, writes=("scenario_ends", "audit")),
    # Spend control: finance imports POs and invoices and closes the accrual; planners read their teams' figures.
    row("POST", f"{V1}/purchase-orders",                      401, 401,   403, 403,  201,    403,
        raw=po_csv, writes=("spend_imports", "purchase_orders", "audit")),
    row("POST", f"{V1}/invoices",                             401, 401,   403, 403,  201,    403,
        raw=invoice_csv, writes=("spend_imports", "invoices", "audit")),
    row("GET",  f"{V1}/purchase-orders",                      401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/spend?by=line",                        401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/accruals",                             401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/accruals/m02",                         401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/accruals/m13",                         401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/accruals/m02/journal.csv",             401, 401,   403, 403,  200,    403),
    row("POST", f"{V1}/accruals/{{month}}/close",             401, 401,   403, 403,  200,    403,
        prepare=next_accrual_month, writes=("accrual_closes", "audit")),
    # Approval chains: each caller's queue and the plans in review they may read.
    row("GET",  f"{V1}/approvals",                            401, 401,   200, 200,  200,    403),
    row("GET",  f"{V1}/periods",                              401, 401,   200, 200,  200,    200),
    row("POST", f"{V1}/periods/lock",                         401, 401,   403, 403,  200,    403,
        json=lambda _: {"months": ["m12"]}, prepare=unlocked_m12, writes=("locks", "audit")),
    row("POST", f"{V1}/periods/unlock",                       401, 401,   403, 403,  200,    403,
        json=lambda _: {"months": ["m12"]}, prepare=locked_m12, writes=("locks", "audit")),
    # Templates: a team's own marketers and finance (admins manage users, not plans).
    row("GET",  f"{V1}/templates/{{team}}.xlsx",              401, 401,   200, 403,  200,    403),
    row("GET",  f"{V1}/templates/{{sibling}}.xlsx",           401, 401,   403, 403,  200,    403),
    row("GET",  f"{V1}/templates/MARS-SMB.xlsx",              401, 401,   404, 404,  404,    403),
    # Google Sheets (not configured in this service: finance gets 503 once allowed; no team has a sheet yet).
    row("GET",  f"{V1}/gsheets/teams",                        401, 401,   200, 200,  200,    403),
    row("POST", f"{V1}/gsheets/teams/{{team}}",               401, 401,   403, 403,  503,    403,
        json=lambda _: {"editors": ["maria@example.com"]}),
    row("POST", f"{V1}/gsheets/teams/{{team}}/pull",          401, 401,   404, 403,  404,    403),
    row("POST", f"{V1}/gsheets/master/push",                  401, 401,   403, 403,  503,    403),
    # Background jobs: anyone who may read plans may build the workbook; each sees their own jobs.
    row("POST", f"{V1}/master/workbook",                      401, 401,   202, 202,  202,    403,
        json=lambda _: {}),
    row("GET",  f"{V1}/jobs",                                 401, 401,   200, 200,  200,    200),
    # The monthly management pack: planners read the packs of what they may see; finance builds one on demand;
    # anyone who reads plans subscribes (this service sends no email: 409 naming the setting).
    row("GET",  f"{V1}/packs",                                401, 401,   200, 200,  200,    403),
    row("POST", f"{V1}/packs",                                401, 401,   403, 403,  202,    403,
        json=lambda _: {"month": "m01"}),
    row("GET",  f"{V1}/packs/{MISSING}",                      401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/packs/{MISSING}/workbook",             401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/packs/{MISSING}/pdf",                  401, 401,   404, 404,  404,    403),
    row("GET",  f"{V1}/me/pack-subscription",                 401, 401,   200, 200,  200,    403),
    row("PUT",  f"{V1}/me/pack-subscription",                 401, 401,   409, 409,  409,    403,
        json=lambda _: {"subscribed": True}),
    # How exports are read: the presets and finance's saved column mappings.
    row("GET",  f"{V1}/import-presets",                       401, 401,   403, 403,  200,    403),
    row("GET",  f"{V1}/import-profiles",                      401, 401,   403, 403,  200,    403),
    *(row("POST", f"{V1}/import-profiles/{kind}",             401, 401,   403, 403,  201,    403,
          json=lambda _: {"name": f"matrix {uuid.uuid4().hex[:8]}", "fields": {"currency": "Ccy"}},
          writes=("import_profiles", "audit")) for kind in ("purchase_orders", "invoices", "actuals", "results")),
    *(row(method, f"{V1}/import-profiles/{kind}/matrix",      401, 401,   403, 403,  200,    403,
          json=(lambda _: {"fields": {"currency": "Ccy"}}) if method == "PUT" else None, prepare=profile_of(kind),
          writes=("import_profiles", "audit")) for method in ("PUT", "DELETE")
      for kind in ("purchase_orders", "invoices", "actuals", "results")),
    row("PUT",  f"{V1}/import-profiles/actuals/{MISSING}",    401, 401,   403, 403,  404,    403,
        json=lambda _: {"fields": {"currency": "Ccy"}}),
    row("GET",  f"{V1}/jobs/{NO_JOB}",                        401, 401,   404, 404,  404,    404),
    row("GET",  f"{V1}/jobs/{NO_JOB}/file",                   401, 401,   404, 404,  404,    404),
    # Users and tokens: admins only.
    row("GET",  f"{V1}/users",                                401, 401,   403, 403,  403,    200),
    row("POST", f"{V1}/tokens",                               401, 401,   403, 403,  403,    201,
        json=lambda _: {"name": "new@example.com", "role": "marketer", "teams": [MINE]}, writes=("audit",)),
    row("POST", f"{V1}/tokens/nosuchtoken/revoke",            401, 401,   403, 403,  403,    404),
    # Spreadsheet functions: marketers (their teams' data) and finance; the add-in's files are public code.
    row("GET",  f"{V1}/functions",                            401, 401,   200, 200,  200,    200),
    row("POST", f"{V1}/functions:batch",                      401, 401,   200, 200,  200,    403,
        json=lambda _: {"calls": [{"name": "PS_PLANNED", "args": [[["EMEA"]]]}]}),
    row("POST", f"{V1}/functions/PS_PLANNED",                 401, 401,   200, 200,  200,    403,
        json=lambda _: {"args": [[["EMEA"]]]}),
    row("GET",  "/addin/functions.json",                      200, 200,   200, 200,  200,    200),
    row("GET",  "/addin/manifest.xml",                        200, 200,   200, 200,  200,    200),
    row("GET",  "/addin/officejs/functions.js",               200, 200,   200, 200,  200,    200),
    row("GET",  "/addin/apps-script/Code.gs",                 200, 200,   200, 200,  200,    200),
    # The audit log: finance and admins.
    row("GET",  f"{V1}/audit",                                401, 401,   403, 403,  200,    200),
]
# fmt: on


def url_of(row: Row, values: dict[str, Any]) -> str:
    """The row's path with its placeholders filled in, without the note in parentheses."""
    return row.path.split("  (")[0].format(**values)


def placeholders(world: World) -> dict[str, Any]:
    with world.store.reading() as session:
        latest = session.scalar(select(func.max(MasterVersion.id)))
    return {
        "team": MINE,
        "sibling": SIBLING,
        "mine_submission": world.approved[MINE],
        "sibling_submission": world.approved[SIBLING],
        "latest": latest,
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {key for key in before if before[key] != after[key]}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=[r.id for r in MATRIX])
def test_who_gets_what(world: World, row: Row, role: str) -> None:
    expected = row.statuses[ROLES.index(role)]
    values = placeholders(world)
    if row.prepare is not None:
        values |= row.prepare(world)
    kwargs: dict[str, Any] = {}
    if row.json is not None:
        kwargs["json"] = row.json(world)
    if row.data is not None:
        kwargs["data"], kwargs["content_type"] = row.data
    if row.raw is not None:
        kwargs["data"], kwargs["content_type"] = row.raw(world)
    before = world.state()

    response = world.call(row.method, url_of(row, values), role, **kwargs)

    after = world.state()
    text_body = response.get_data().decode(errors="replace")
    assert response.status_code == expected, f"{role}: {text_body}"
    assert "Traceback" not in text_body
    if expected >= 400:
        assert response.mimetype == "application/problem+json", response.mimetype
        body = response.get_json()
        assert {"type", "title", "status", "detail"} <= body.keys(), body
        assert body["status"] == expected and body["title"] and body["detail"], body
        if expected == 401:
            assert response.headers.get("WWW-Authenticate", "").startswith("Bearer "), response.headers
        assert after == before, f"a refused request changed {changed(before, after)}"
        return
    if row.path.endswith(".xlsx"):
        assert response.mimetype.endswith("spreadsheetml.sheet") and response.data[:2] == b"PK"
    elif row.path.endswith(".csv"):
        assert response.mimetype == "text/csv" and response.data, response.mimetype
    elif row.path.startswith("/addin/") and not row.path.endswith(".json"):  # the add-in's own files
        assert response.mimetype != "application/json" and response.data, response.mimetype
    else:
        assert response.mimetype == "application/json", response.mimetype
    assert changed(before, after) == set(row.writes), f"{role}: changed {changed(before, after)}"
    if row.shows is not None:
        visible = SEES_TEAMS if row.scope == "teams" else SEES_REGIONS
        assert row.shows(response.get_json()) == visible[role], f"{role} sees the wrong teams"


def test_the_matrix_has_a_row_for_every_route(tmp_path: Path) -> None:
    """A new route, or a new method or action of one, fails here until the matrix says who may call it."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'routes.db'}", "TESTING": True})
    try:
        served = set()
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static" or rule.endpoint.startswith("web."):  # the dashboard: tests/dashboard
                continue
            choices = re.search(r"<any\(([^)]*)\):\w+>", rule.rule)
            actions = [a.strip().strip("'\"") for a in choices.group(1).split(",")] if choices else [None]
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                served |= {(rule.rule, method, action) for action in actions}
        adapter = app.url_map.bind("localhost")
        dummy = {"team": MINE, "sibling": SIBLING, "mine_submission": 1, "sibling_submission": 2, "latest": 1}
        covered = set()
        for r in MATRIX:
            path = url_of(r, {**dummy, "pending": 3, "transfer": 4, "cycle": 5, "scenario": 6, "month": "m01"}).split(
                "?"
            )[0]
            rule, args = adapter.match(path, method=r.method, return_rule=True)
            choice = re.search(r"<any\([^)]*\):(\w+)>", rule.rule)  # the part of the path that picks the action
            covered.add((rule.rule, r.method, args.get(choice.group(1)) if choice else None))
        assert served - covered == set(), "routes without a row in MATRIX"
        assert covered <= served
    finally:
        app.extensions[STORE].dispose()
