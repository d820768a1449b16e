"""The live functions' index of the master answers every cell as a filter over the lines sent would.

The master holds plans whose campaigns make matching hard: a code equal to its own name, blank
codes, names that differ only in case, and a code that is another line's campaign name. Every
expected figure is computed here from the lines sent (in the reporting currency, so no
conversion) by filtering them, never read from the service. Then the batch answer cache: a
repeated batch is a look-up, an approval makes new answers, and a scope never sees another's.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

SCHEMA = build_schema(load_config())
MONTHS = [c.name for c in SCHEMA.month_columns]
TEAMS = {"EMEA-ENTERPRISE": "EMEA", "EMEA-SMB": "EMEA", "NA-ENTERPRISE": "NA"}
PERIODS = {"FY": MONTHS, "": MONTHS, "q2": MONTHS[3:6], "Q4": MONTHS[9:12], "m01": MONTHS[:1], "M07": MONTHS[6:7]}


def awkward_lines(team: str, region: str, seed: int) -> list[dict[str, Any]]:
    """Sample lines in USD with campaigns chosen to trip a careless index."""
    rng = random.Random(seed)
    lines = [as_json({**x, "currency": "USD"}) for x in sample_lines(SCHEMA, region, 40, seed=seed, id_prefix=team)]
    names = ["Spring Launch", "spring launch", "EM27-1000", "Partner Push", "Retail Focus"]
    for i, line in enumerate(lines):
        line["campaign"] = rng.choice(names)
        kind = i % 4
        if kind == 0:
            line["campaign_code"] = line["campaign"]  # a code equal to its name: counted once
        elif kind == 1:
            line["campaign_code"] = ""
        elif kind == 2:
            line["campaign_code"] = "EM27-1000"  # another line's campaign name
    return lines


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("index")
    url = f"sqlite:///{folder / 'index.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {"finance": create_token(session, "fiona", "finance")}
        tokens["maria"] = create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"])
        tokens["planner"] = create_token(session, "pat", "marketer", list(TEAMS))
    client = app.test_client()
    sent: dict[str, list[dict[str, Any]]] = {}
    for n, (team, region) in enumerate(TEAMS.items()):
        sent[team] = awkward_lines(team, region, seed=n)
        sid = client.post(
            "/api/v1/submissions", headers=auth(tokens["planner"]), json={"team": team, "lines": sent[team]}
        )
        assert sid.status_code == 201, sid.get_json()
        approved = client.post(f"/api/v1/submissions/{sid.get_json()['id']}/approve", headers=auth(tokens["finance"]))
        assert approved.status_code == 200
    yield {"client": client, "tokens": tokens, "sent": sent, "store": store}
    store.dispose()
    master.CACHE.clear()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cents(value: Any) -> int:
    return round((value or 0) * 100)


def expected(sent: dict[str, list[dict[str, Any]]], teams: set[str], call: tuple[str, list[str]]) -> Any:
    """The answer by filtering the lines sent: a number of cents, or the error code."""
    name, (scope, *rest) = call
    lines = []
    for team, team_lines in sent.items():
        if team in teams and scope.casefold() in (team.casefold(), TEAMS[team].casefold()):
            lines += team_lines
    scope_is_team = scope.casefold() in {t.casefold() for t in TEAMS}
    if scope_is_team and not any(scope.casefold() == t.casefold() for t in teams):
        return "#N/A"  # not one of the caller's teams
    if not scope_is_team and not {TEAMS[t] for t in teams} & {scope.upper()}:
        return "#N/A"  # not one of the caller's regions
    if name == "PS_PLANNED":
        period, channel, campaign = rest
        months = PERIODS[period]
    else:
        as_of, channel, campaign = rest
        day = dt.date.fromisoformat(as_of)
        months = [m.name for m in SCHEMA.calendar.months if m.last_day < day]
    chosen = [
        x
        for x in lines
        if (not channel or x["channel"].casefold() == channel.casefold())
        and (not campaign or campaign.casefold() in (x["campaign"].casefold(), x["campaign_code"].casefold()))
    ]
    planned = sum(cents(x.get(m)) for x in chosen for m in months)
    if name == "PS_PLANNED":
        return planned
    return planned - sum(cents(x.get("actual")) for x in chosen)


SCOPES = st.sampled_from(["EMEA", "emea", "NA", "EMEA-ENTERPRISE", "emea-smb", "NA-ENTERPRISE"])
CHANNELS = st.sampled_from(["", "Events", "paid search", "Webinars", "Billboards"])
CAMPAIGNS = st.sampled_from(["", "Spring Launch", "SPRING LAUNCH", "EM27-1000", "partner push", "Nothing Such"])
DAYS = st.dates(dt.date(2026, 1, 1), dt.date(2027, 3, 31)).map(dt.date.isoformat)
CALLS = st.one_of(
    st.tuples(st.just("PS_PLANNED"), st.tuples(SCOPES, st.sampled_from(sorted(PERIODS)), CHANNELS, CAMPAIGNS)),
    st.tuples(st.just("PS_LIVE_VARIANCE"), st.tuples(SCOPES, DAYS, CHANNELS, CAMPAIGNS)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(CALLS, min_size=1, max_size=25), who=st.sampled_from(["finance", "maria"]))
def test_every_live_cell_equals_a_filter_over_the_lines_sent(world, calls, who) -> None:
    body = {"calls": [{"name": name, "args": [[[a]] for a in args]} for name, args in calls]}
    response = world["client"].post("/api/v1/functions:batch", headers=auth(world["tokens"][who]), json=body)
    assert response.status_code == 200, response.get_json()
    teams = set(TEAMS) if who == "finance" else {"EMEA-ENTERPRISE"}
    for (name, args), answer in zip(calls, response.get_json()["results"], strict=True):
        want = expected(world["sent"], teams, (name, list(args)))
        got = answer["error"]["code"] if "error" in answer else cents(answer["result"][0][0])
        assert got == want, (name, args, answer)


def test_a_repeated_batch_is_a_look_up_an_approval_makes_new_answers_and_scopes_stay_apart(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[int] = []
    real = functions_api._evaluate
    monkeypatch.setattr(
        functions_api, "_evaluate", lambda calls, data: evaluated.append(len(calls)) or real(calls, data)
    )
    client, tokens = world["client"], world["tokens"]
    body = {
        "calls": [{"name": "PS_PLANNED", "args": [[["NA-ENTERPRISE"]]]}, {"name": "PS_PLANNED", "args": [[["NA"]]]}]
    }

    def ask(token: str) -> list[dict[str, Any]]:
        response = client.post("/api/v1/functions:batch", headers=auth(token), json=body)
        assert response.status_code == 200
        return response.get_json()["results"]

    first = ask(tokens["finance"])
    assert ask(tokens["finance"]) == first and len(evaluated) == 1  # the second time nothing was evaluated
    # Another scope with the very same calls is answered for its own scope, not from finance's answers.
    assert [a["error"]["code"] for a in ask(tokens["maria"])] == ["#N/A", "#N/A"] and len(evaluated) == 2
    # A new plan for NA is approved: the same batch is evaluated again, against the new master.
    smaller = [as_json({**x, "currency": "USD"}) for x in sample_lines(SCHEMA, "NA", 3, seed=7, id_prefix="NEW")]
    held = master.load(world["store"], SCHEMA).held_by("NA-ENTERPRISE")
    sid = client.post(
        "/api/v1/submissions",
        headers=auth(tokens["planner"]),
        json={"team": "NA-ENTERPRISE", "lines": smaller, "based_on": {"submission": held}},
    ).get_json()["id"]
    assert client.post(f"/api/v1/submissions/{sid}/approve", headers=auth(tokens["finance"])).status_code == 200
    after = ask(tokens["finance"])
    assert len(evaluated) == 3
    assert [cents(a["result"][0][0]) for a in after] == [sum(cents(x.get(m)) for x in smaller for m in MONTHS)] * 2
    world["sent"]["NA-ENTERPRISE"] = smaller  # the property test, if it runs after, sees the new master
