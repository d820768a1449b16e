"""What the tests need from the machine: programs on PATH, a scratch PostgreSQL database, a private Redis server.

A test needing a program calls `require_binary` (tests/conftest.py does it for the tests marked
with a system dependency, `@pytest.mark.libreoffice`, ...): it skips with a hint saying what to
install when the program is missing, except under CI (`CI` is 1, true or yes), where a missing
dependency fails the test: a green CI must mean the tests ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SETUP_HINT = "or run: bash .ci/system-deps.sh"
# marker -> (program that must be on PATH, how to install it).
SYSTEM_DEPENDENCIES: dict[str, tuple[str, str]] = {
    "redis": ("redis-server", f"sudo apt-get install --no-install-recommends redis-server ({SETUP_HINT})"),
    "libreoffice": ("soffice", f"sudo apt-get install --no-install-recommends libreoffice-calc-nogui ({SETUP_HINT})"),
    "node": ("node", f"sudo apt-get install --no-install-recommends nodejs ({SETUP_HINT})"),
    "chromium": ("chromium", f"sudo apt-get install --no-install-recommends chromium ({SETUP_HINT})"),
}


def in_ci() -> bool:
    """True when running under CI, where skipping for a missing dependency would hide untested code."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str, install_hint: str) -> str:
    """Return the path of program `name`; if it is missing, skip the test (locally) or fail it (under CI)."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed; install it with: {install_hint}"
    if in_ci():
        pytest.fail(f"{message} (CI is set, so a missing system dependency fails instead of skipping)", pytrace=False)
    pytest.skip(message)


POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POSTGRES_HINT = "sudo apt-get install postgresql and start it, or set PLANSHEET_TEST_POSTGRES to an admin URL"


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database on a real server, dropped afterwards (skips or fails when there is none)."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("PLANSHEET_TEST_POSTGRES", POSTGRES_ADMIN)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # no server, refused, bad credentials: say which
        admin.dispose()
        where = make_url(admin_url).render_as_string(hide_password=True)
        message = f"no PostgreSQL server at {where} ({exc.__class__.__name__}); {POSTGRES_HINT}"
        if in_ci():
            pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
        pytest.skip(message)
    name = f"plansheet_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A real Redis server of this test's own on a free loopback port (nothing kept on disk), stopped afterwards.

    Its own server, not the machine's on 6379, so tests running at once never share queues or
    keys, and a test may kill it or flush it freely.
    """
    import subprocess
    import time

    import redis

    from tests.sync_service.live_server import free_port, stop

    program = require_binary(*SYSTEM_DEPENDENCIES["redis"])
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        stop(process)


def npm_ci(npm: str, folder: Path) -> None:
    """`npm ci` in `folder` when its node_modules is missing or older than its lock file.

    Every pytest-xdist worker runs the session fixtures that ask for it, so the check and the
    install hold an exclusive lock on a file beside the lock file: one worker installs, the
    others wait and then find the packages current.
    """
    import fcntl
    import subprocess

    lock = folder / "package-lock.json"
    marker = folder / "node_modules" / ".package-lock.json"  # npm writes it on every install
    with open(folder / ".npm-ci.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=folder, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"npm ci in {folder} failed:\n{done.stdout}\n{done.stderr}"
