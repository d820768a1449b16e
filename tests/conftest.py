"""Shared fixtures, and the rule for tests that need a program installed on the machine.

A test marked with a system dependency (`@pytest.mark.libreoffice`, ...) skips with a hint
saying what to install when the program is missing, except under CI (`CI` is 1, true or
yes), where a missing dependency fails the test: a green CI must mean the tests ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sheet_templates import OrgConfig, PlanSchema, build_schema, load_config
from sheet_templates.config import CONFIG_ENV
from sheet_templates.excel_template import build_template, template_filename

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


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, (program, hint) in SYSTEM_DEPENDENCIES.items():
        if item.get_closest_marker(marker) is not None:
            require_binary(program, hint)


@pytest.fixture(autouse=True)
def _bundled_config_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's own organisation file through $PLANSHEET_CONFIG."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)


@pytest.fixture
def soffice() -> str:
    """The LibreOffice program (skips or fails as described above when it is missing)."""
    program, hint = SYSTEM_DEPENDENCIES["libreoffice"]
    return require_binary(program, hint)


@pytest.fixture
def config() -> OrgConfig:
    """The bundled sample organisation (Acme, FY2027 starting in February, USD reporting)."""
    return load_config()


@pytest.fixture
def schema(config: OrgConfig) -> PlanSchema:
    return build_schema(config)


@pytest.fixture
def template_path(tmp_path: Path, schema: PlanSchema) -> Path:
    """A freshly built, empty EMEA template in `tmp_path`."""
    return build_template(schema, "EMEA", tmp_path / template_filename("EMEA"))


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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one test."""
    with scratch_postgres() as url:
        yield url


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


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a private, real Redis server for one test (skips, or fails under CI, without redis-server)."""
    with private_redis(tmp_path / "redis") as url:
        yield url
