"""A server killed (SIGKILL) in the middle of approvals: after a restart every approval happened whole or not at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines

SCHEMA = build_schema(load_config())
TEAMS = ["EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE", "NA-SMB"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def start(exe: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [*exe, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).close()
            return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_approvals_survive_a_kill_whole_or_not_at_all(tmp_path: Path) -> None:
    database = tmp_path / "crash.db"
    env = {**os.environ, "PLANSHEET_DATABASE_URL": f"sqlite:///{database}"}
    env.pop("PLANSHEET_CONFIG", None)
    exe = [sys.executable, "-m", "sync_service.cli"]
    subprocess.run([*exe, "init"], env=env, check=True, capture_output=True)

    def token(name: str, role: str, *teams: str) -> str:
        args = [*exe, "token", "create", "--name", name, "--role", role]
        for team in teams:
            args += ["--team", team]
        return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout.strip()

    marketer, finance = token("m", "marketer", *TEAMS), token("f", "finance")
    server, base = start(exe, env)
    ids = []
    for n in range(60):
        team = TEAMS[n % len(TEAMS)]
        lines = [
            {
                k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
                for k, v in line.items()
            }
            for line in sample_lines(SCHEMA, team.split("-")[0], 5, seed=n)
        ]
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

    server, base = start(exe, env)  # restart on the same database
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
        server.terminate()
        server.wait(timeout=10)
