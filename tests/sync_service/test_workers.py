"""`plansheet serve --workers N`: real gunicorn workers on a real PostgreSQL database and a real Redis.

What an operator relies on: the workers answer health and readiness, a login made on one worker
is valid on every other (no state of their own), a worker killed with SIGKILL is replaced, SIGHUP
replaces every worker without refusing a request, and a configuration that would give each
worker state of its own is refused before any starts, naming the setting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sheet_templates.errors import ConfigError
from sync_service.platform.migrate import newest_schema as ready_schema
from sync_service.platform.server import several_workers_allowed
from tests.sync_service.live_server import CLI, call, free_port, init, service_env, start, stop, token
from tests.system_deps import private_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _worker_pids(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


@pytest.fixture
def workers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    with private_redis(tmp_path / "redis") as redis_url:
        env = {**service_env(postgres_url), "PLANSHEET_REDIS_URL": redis_url}
        init(env)
        process, base = start(env, 2, "--workers", "2", ready="/ready", timeout=60)
        try:
            deadline = time.monotonic() + 60
            while len(_worker_pids(process.pid)) < 2:  # /ready answers once the first worker is up
                assert time.monotonic() < deadline, "gunicorn did not start both workers"
                time.sleep(0.1)
            yield process, base, env
        finally:
            stop(process, timeout=60)


def test_workers_share_everything_and_survive_kill_and_reload(
    workers: tuple[subprocess.Popen[bytes], str, dict[str, str]],
) -> None:
    process, base, env = workers
    status, ready = call(base, "", "GET", "/ready")
    assert status == 200 and ready["status"] == "ready" and ready["redis"] == "ok", ready
    assert ready["schema_revision"] == ready_schema()
    finance = token(env, "finance", "finance")
    # Many requests spread over both workers: every one authenticates with the token stored once.
    statuses = {call(base, finance, "GET", "/api/v1/submissions")[0] for _ in range(20)}
    assert statuses == {200}

    first = _worker_pids(process.pid)
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(_worker_pids(process.pid) - {victim}) < 2:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)
    assert {call(base, finance, "GET", "/api/v1/submissions")[0] for _ in range(10)} == {200}

    before = _worker_pids(process.pid)
    os.kill(process.pid, signal.SIGHUP)
    answers = []
    deadline = time.monotonic() + 30
    while _worker_pids(process.pid) & before:  # until every old worker has been replaced
        answers.append(call(base, finance, "GET", "/api/v1/submissions")[0])
        assert time.monotonic() < deadline, "SIGHUP did not replace the workers"
    answers += [call(base, finance, "GET", "/api/v1/submissions")[0] for _ in range(5)]
    assert set(answers) == {200}  # no request refused while the workers were replaced
    assert len(_worker_pids(process.pid)) == 2


def test_several_workers_refuse_what_would_give_each_its_own_state() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL=postgresql"):
        several_workers_allowed({"DATABASE_URL": "sqlite:///plansheet.db", "REDIS_URL": "redis://127.0.0.1/0"})
    with pytest.raises(ConfigError, match="PLANSHEET_REDIS_URL"):
        several_workers_allowed({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/x", "REDIS_URL": None})


def test_serve_with_workers_on_sqlite_exits_naming_the_setting(tmp_path: Path) -> None:
    env = service_env(f"sqlite:///{tmp_path / 'one.db'}")
    result = subprocess.run(
        [*CLI, "serve", "--port", str(free_port()), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PLANSHEET_DATABASE_URL" in result.stderr and "SQLite serves one process" in result.stderr
