"""Load on a real server process: 8 marketers submitting concurrently while finance approves.

Afterwards no submission is lost, and the master equals, for each team, the lines of its
latest approved submission, to the cent.
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
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
CLIENTS, SUBMISSIONS, LINES = 8, 50, 6
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
def test_concurrent_submissions_and_approvals_lose_nothing(server: tuple[list[str], dict[str, str]]) -> None:
    bases, tokens = server
    base = bases[0]  # reads and the final checks; requests under load alternate between the servers
    sent: dict[int, list[dict[str, Any]]] = {}  # submission id -> the lines sent
    done = threading.Event()
    approvals: list[tuple[int, int, str]] = []  # (master version, submission, team)

    def marketer(team: str) -> int:
        region = team.split("-")[0]
        for n in range(SUBMISSIONS):
            lines = [as_json(x) for x in sample_lines(SCHEMA, region, LINES, seed=n, id_prefix=team[:8])]
            target = bases[n % len(bases)]
            status, body = call(target, tokens[team], "POST", "/api/v1/submissions", {"team": team, "lines": lines})
            assert status == 201, body
            sent[body["id"]] = lines
        return SUBMISSIONS

    def finance() -> None:
        rng = random.Random(1)
        while True:
            finished = done.is_set()
            status, body = call(base, tokens["finance"], "GET", "/api/v1/submissions")
            assert status == 200
            pending = [s for s in body["submissions"] if s["status"] == "submitted"]
            for submission in rng.sample(pending, k=len(pending) // 2 if not finished else len(pending)):
                status, body = call(
                    base,
                    tokens["finance"],
                    "POST",
                    f"/api/v1/submissions/{submission['id']}/approve",
                    {"comment": "ok"},
                )
                assert status == 200, body
                approvals.append((body["master_version"], body["id"], body["team"]))
            if finished:
                return

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        approver = pool.submit(finance)
        counts = list(pool.map(marketer, TEAMS))
        done.set()
        approver.result()

    assert sum(counts) == CLIENTS * SUBMISSIONS
    status, body = call(base, tokens["finance"], "GET", "/api/v1/submissions")
    assert status == 200
    stored = body["submissions"]
    assert sorted(s["id"] for s in stored) == sorted(sent)  # not one lost, none extra
    assert all(s["status"] in ("approved", "superseded") for s in stored)

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
