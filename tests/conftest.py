"""Shared fixtures, and the rule for tests that need a program installed on the machine.

A test marked with a system dependency (`@pytest.mark.libreoffice`, ...) skips with a hint
saying what to install when the program is missing, except under CI (`CI` is 1, true or
yes), where a missing dependency fails the test: a green CI must mean the tests ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sheet_templates import OrgConfig, PlanSchema, build_schema, load_config
from sheet_templates.config import CONFIG_ENV
from sheet_templates.excel_template import build_template, template_filename
from tests.system_deps import SYSTEM_DEPENDENCIES, private_redis, require_binary, scratch_postgres


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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one test."""
    with scratch_postgres() as url:
        yield url


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a private, real Redis server for one test (skips, or fails under CI, without redis-server)."""
    with private_redis(tmp_path / "redis") as url:
        yield url
