"""Load on a real server process: 8 marketers submitting concurrently while finance approves.

Each marketer edits from the team's plan as the master holds it when it starts the edit; finance
approves pending plans in random order, so some plans are overtaken by another approval of
their team and must be refused as stale (409), never merged over it. Afterwards no submission
is lost, and the master equals, for each team, the lines of its latest approved submission.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.excel_template import build_template
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token, upload

SCHEMA = build_schema(load_config())
CLIENTS, SUBMISSIONS, LINES = 8, 50, 6
XLSX_EVERY = 5  # every fifth plan is an xlsx upload
TEAMS = [
    "NA-ENTERPRISE",
    "NA-SMB",
    "EMEA-ENTERPRISE",
    "EMEA-SMB",
    "APAC-ENTERPRISE",
    "APAC-SMB",
    "LATAM-ENTERPRISE",
    "LATAM-SMB",
]


@pytest.fixture(scope="module")
def xlsx_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], bytes]:
    """The plans sent as workbooks: the same lines as the JSON plans of the same team and number."""
    folder = tmp_path_factory.mktemp("plans")
    out = {}
    for team in TEAMS:
        region = team.split("-")[0]
        for n in range(0, SUBMISSIONS, XLSX_EVERY):
            lines = sample_lines(SCHEMA, region, LINES, seed=n, id_prefix=team[:8])
            path = build_template(SCHEMA, region, folder / f"{team}-{n}.xlsx", lines=lines)
            out[(team, n)] = path.read_bytes()
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """One server process on a SQLite file, or two processes sharing one real PostgreSQL database."""
    if request.param == "sqlite":
        url, processes = f"sqlite:///{tmp_path / 'load.db'}", 1
    else:
        url, processes = request.getfixturevalue("postgres_url"), 2
    env = service_env(url)
    init(env)
    tokens = {team: token(env, f"marketer-{team}", "marketer", team) for team in TEAMS}
    tokens["finance"] = token(env, "finance", "finance")
    servers = []
    try:
        for _ in range(processes):
            servers.append(start(env))
        yield [base for _, base in servers], tokens
    finally:
        for process, _ in servers:
            stop(process)


@pytest.mark.slow
def test_concurrent_submissions_and_approvals_lose_nothing(
    server: tuple[list[str], dict[str, str]], xlsx_plans: dict[tuple[str, int], bytes]
) -> None:
    bases, tokens = server
    base = bases[0]  # reads and the final checks; requests under load alternate between the servers
    sent: dict[int, list[dict[str, Any]]] = {}  # submission id -> the lines sent
    done = threading.Event()
    approvals: list[tuple[int, int, str]] = []  # (master version, submission, team)
    refused: list[int] = []  # approvals refused because the team's plan had moved on

    def marketer(team: str) -> int:
        region = team.split("-")[0]
        accepted = 0
        for n in range(SUBMISSIONS):
            lines = [as_json(x) for x in sample_lines(SCHEMA, region, LINES, seed=n, id_prefix=team[:8])]
            target = bases[n % len(bases)]
            status, master = call(target, tokens[team], "GET", "/api/v1/master")
            assert status == 200, master
            held = {t["team"]: t["submission"] for t in master["teams"]}
            if n % XLSX_EVERY == 0:  # some plans arrive as workbooks, the way marketers upload them
                workbook = xlsx_plans[(team, n)]
                fields = {"team": team, "based_on_version": str(master["version"])}
                status, body = upload(target, tokens[team], "/api/v1/submissions", workbook, **fields)
            else:
                body = {"team": team, "lines": lines, "based_on": {"master_version": master["version"]}}
                status, body = call(target, tokens[team], "POST", "/api/v1/submissions", body)
            if status == 409:  # approved meanwhile: edit from the plan the master holds now
                assert body["current_submission"] != held.get(team), body
                continue
            assert status == 201, body
            sent[body["id"]] = lines
            accepted += 1
        return accepted

    def finance() -> None:
        rng = random.Random(1)
        while True:
            finished = done.is_set()
            status, body = call(base, tokens["finance"], "GET", "/api/v1/submissions")
            assert status == 200
            pending = [s for s in body["submissions"] if s["status"] in ("submitted", "stale")]
            for submission in rng.sample(pending, k=len(pending) // 2 if not finished else len(pending)):
                status, body = call(
                    base,
                    tokens["finance"],
                    "POST",
                    f"/api/v1/submissions/{submission['id']}/approve",
                    {"comment": "ok"},
                )
                if status == 409:  # overtaken by another approval of its team: refused, with what changed
                    assert body["current_status"] == "stale" and "changes" in body, body
                    refused.append(submission["id"])
                    continue
                assert status == 200, body
                approvals.append((body["master_version"], body["id"], body["team"]))
            if finished:
                return

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        approver = pool.submit(finance)
        counts = list(pool.map(marketer, TEAMS))
        done.set()
        approver.result()

    assert sum(counts) == len(sent) > CLIENTS * SUBMISSIONS // 2
    status, body = call(base, tokens["finance"], "GET", "/api/v1/submissions")
    assert status == 200
    stored = body["submissions"]
    assert sorted(s["id"] for s in stored) == sorted(sent)  # not one lost, none extra
    assert sum(s["source"] == "xlsx" for s in stored) >= CLIENTS * SUBMISSIONS // XLSX_EVERY // 2
    status_of = {s["id"]: s["status"] for s in stored}
    assert all(status_of[sid] == "stale" for sid in refused)
    assert all(s["status"] in ("approved", "superseded", "stale") for s in stored)
    assert {team for _, _, team in approvals} == set(TEAMS)

    latest: dict[str, int] = {}
    for _version, submission, team in sorted(approvals):
        latest[team] = submission
    _, master = call(base, tokens["finance"], "GET", "/api/v1/master")
    assert master["version"] == len(approvals)
    assert {t["team"]: t["submission"] for t in master["teams"]} == latest
    expected = sorted(
        (team, line["line_id"], round(line.get("m01") or 0, 2)) for team, sid in latest.items() for line in sent[sid]
    )
    actual = sorted((line["team_id"], line["line_id"], line["m01"] / 100) for line in master["lines"])
    assert actual == expected
