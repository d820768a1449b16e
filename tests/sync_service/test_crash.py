"""A server killed (SIGKILL) in the middle of approvals: after a restart every approval happened whole or not at all."""

from __future__ import annotations

import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
TEAMS = ["EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE", "NA-SMB"]


@pytest.mark.slow
def test_approvals_survive_a_kill_whole_or_not_at_all(tmp_path: Path) -> None:
    database = tmp_path / "crash.db"
    env = service_env(f"sqlite:///{database}")
    init(env)
    marketer, finance = token(env, "m", "marketer", *TEAMS), token(env, "f", "finance")
    server, base = start(env)
    ids = []
    for n in range(60):
        team = TEAMS[n % len(TEAMS)]
        lines = [as_json(line) for line in sample_lines(SCHEMA, team.split("-")[0], 5, seed=n)]
        ids.append(call(base, marketer, "POST", "/api/v1/submissions", {"team": team, "lines": lines})[1]["id"])

    approved = threading.Semaphore(0)

    def approve_all() -> None:
        for sid in ids:
            try:
                call(base, finance, "POST", f"/api/v1/submissions/{sid}/approve", {"comment": "ok"})
            except (OSError, urllib.error.URLError):
                return  # the server is gone
            approved.release()

    approver = threading.Thread(target=approve_all)
    approver.start()
    for _ in range(20):  # a third of the approvals done, the next ones in flight
        assert approved.acquire(timeout=60)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    approver.join(timeout=60)

    server, base = start(env)  # restart on the same database
    try:
        engine = create_engine(f"sqlite:///{database}")
        with engine.connect() as connection:
            decided = {r[0] for r in connection.execute(text("SELECT submission_id FROM decisions"))}
            merged = {r[0] for r in connection.execute(text("SELECT submission_id FROM master_versions"))}
            audited = {
                int(r[0].split(":")[1])
                for r in connection.execute(text("SELECT target FROM audit_events WHERE action = 'submission.approve'"))
            }
        engine.dispose()
        assert 0 < len(decided) < len(ids), "the kill should land between the first and the last approval"
        assert decided == merged == audited  # each approval whole (decision, master row, audit) or not at all
        status, master = call(base, finance, "GET", "/api/v1/master")
        assert status == 200 and master["version"] == len(merged)
        # The approvals the kill interrupted can simply be made again.
        rest = [sid for sid in ids if sid not in decided]
        assert call(base, finance, "POST", f"/api/v1/submissions/{rest[0]}/approve", {"comment": "again"})[0] == 200
    finally:
        stop(server)
