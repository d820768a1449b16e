"""The live functions' client side: where desktop Excel finds the service, and what a cell shows without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from addin.hostvalues import ExcelError
from addin.live import LIVE, call_service, service_settings


def test_the_service_address_and_token_come_from_the_environment_or_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "plansheet.toml"
    config.write_text('[service]\nurl = "https://plansheet.example.com"\ntoken = "ps_abc_def"\n')
    monkeypatch.setenv("PLANSHEET_CLIENT_CONFIG", str(config))
    monkeypatch.delenv("PLANSHEET_SERVICE_URL", raising=False)
    monkeypatch.delenv("PLANSHEET_TOKEN", raising=False)
    assert service_settings() == ("https://plansheet.example.com", "ps_abc_def")
    monkeypatch.setenv("PLANSHEET_SERVICE_URL", "http://127.0.0.1:8050")
    assert service_settings() == ("http://127.0.0.1:8050", "ps_abc_def")  # the environment wins, key by key


def test_without_a_service_a_live_cell_says_how_to_set_it_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANSHEET_CLIENT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("PLANSHEET_SERVICE_URL", raising=False)
    monkeypatch.delenv("PLANSHEET_TOKEN", raising=False)
    result = LIVE["PS_PLANNED"].call("EMEA")
    assert isinstance(result, ExcelError) and result.code == "#N/A" and "PLANSHEET_SERVICE_URL" in result.message


def test_an_unreachable_service_is_an_na_with_its_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANSHEET_SERVICE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("PLANSHEET_TOKEN", "ps_x_y")
    [result] = call_service([{"name": "PS_PLANNED", "args": [[["EMEA"]]]}], timeout=2)
    assert isinstance(result, ExcelError) and result.code == "#N/A" and "127.0.0.1:9" in result.message
