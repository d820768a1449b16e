"""Shared fixtures, and the rule for tests that need a program installed on the machine.

A test marked with a system dependency (`@pytest.mark.libreoffice`, ...) skips with a hint
saying what to install when the program is missing, except under CI (`CI` is 1, true or
yes), where a missing dependency fails the test: a green CI must mean the tests ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sheet_templates import OrgConfig, PlanSchema, build_schema, load_config
from sheet_templates.config import CONFIG_ENV
from sheet_templates.excel_template import build_template, template_filename

SETUP_HINT = "or run: bash .ci/system-deps.sh"
# marker -> (program that must be on PATH, how to install it). Later: browser, postgres, redis.
SYSTEM_DEPENDENCIES: dict[str, tuple[str, str]] = {
    "libreoffice": ("soffice", f"sudo apt-get install --no-install-recommends libreoffice-calc-nogui ({SETUP_HINT})"),
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
