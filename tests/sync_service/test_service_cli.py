"""`plansheet init`, `token create` and `serve`: the service as an administrator sets it up."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from sync_service.cli import main
from tests.sync_service.live_server import init, service_env, start, stop


def test_init_then_a_token_for_a_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PLANSHEET_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    assert main(["init"]) == 0
    assert "EMEA-ENTERPRISE" in capsys.readouterr().out
    assert main(["init"]) == 0  # again: nothing changes, nothing fails
    capsys.readouterr()
    assert main(["token", "create", "--name", "maria", "--role", "marketer", "--team", "EMEA-ENTERPRISE"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("ps_") and len(token) > 40
    assert main(["token", "create", "--name", "x", "--role", "marketer", "--team", "MARS-SMB"]) == 2
    assert "unknown team 'MARS-SMB'" in capsys.readouterr().err


def test_serve_runs_a_real_server_on_loopback(tmp_path: Path) -> None:
    env = service_env(f"sqlite:///{tmp_path / 'p.db'}")
    init(env)
    server, base = start(env)
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert json.load(response) == {"status": "ok", "database": "ok"}
            assert "waitress" in response.headers.get("Server", "")
    finally:
        stop(server)
