"""A server killed (SIGKILL) in the middle of approvals: after a restart every approval happened whole or not at all."""

from __future__ import annotations

import signal
import threading
import urllib.error
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
TEAMS = ["EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE", "NA-SMB"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_approvals_survive_a_kill_whole_or_not_at_all(database_url: str) -> None:
    env = service_env(database_url)
    init(env)
    marketer, finance = token(env, "m", "marketer", *TEAMS), token(env, "f", "finance")
    server, base = start(env)
    submitted: list[int] = []
    approved = threading.Semaphore(0)

    def submit_and_approve() -> None:
        """Each team's plans one after another, each edited from the team's plan approved just before."""
        current: dict[str, int | None] = dict.fromkeys(TEAMS)
        for n in range(200):
            team = TEAMS[n % len(TEAMS)]
            lines = [as_json(line) for line in sample_lines(SCHEMA, team.split("-")[0], 5, seed=n, id_prefix=team)]
            body = {"team": team, "lines": lines, "based_on": {"submission": current[team]}}
            try:
                status, answer = call(base, marketer, "POST", "/api/v1/submissions", body)
                assert status == 201, answer
                submitted.append(answer["id"])
                status, answer = call(base, finance, "POST", f"/api/v1/submissions/{answer['id']}/approve", {})
                assert status == 200, answer
            except (OSError, urllib.error.URLError):
                return  # the server is gone
            current[team] = answer["id"]
            approved.release()

    worker = threading.Thread(target=submit_and_approve)
    worker.start()
    for _ in range(25):  # some approvals done, the next one in flight
        assert approved.acquire(timeout=60)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    worker.join(timeout=60)

    server, base = start(env)  # restart on the same database
    try:
        engine = create_engine(database_url)
        with engine.connect() as connection:
            stored = {r[0] for r in connection.execute(text("SELECT id FROM submissions"))}
            decided = {r[0] for r in connection.execute(text("SELECT submission_id FROM decisions"))}
            merged = {r[0] for r in connection.execute(text("SELECT submission_id FROM master_versions"))}
            audited = {
                int(r[0].split(":")[1])
                for r in connection.execute(text("SELECT target FROM audit_events WHERE action = 'submission.approve'"))
            }
        engine.dispose()
        assert 25 <= len(decided) < 200, "the kill should land between the first and the last approval"
        assert decided == merged == audited  # each approval whole (decision, master row, audit) or not at all
        assert set(submitted) <= stored  # every submission the client saw accepted is there
        status, master = call(base, finance, "GET", "/api/v1/master")
        assert status == 200 and master["version"] == len(merged)
        # An approval the kill interrupted can simply be made again.
        for sid in sorted(stored - decided):
            assert call(base, finance, "POST", f"/api/v1/submissions/{sid}/approve", {"comment": "again"})[0] == 200
    finally:
        stop(server)
