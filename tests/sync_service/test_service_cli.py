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


def test_a_token_for_an_approver_of_a_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`--approves STEP[:REGION]` grants a step the organisation file's chains name; any other is refused."""
    from sheet_templates.config import default_config_path
    from sync_service.platform.storage import ApproverGrant, Store, User

    org = tmp_path / "org.toml"
    org.write_text(
        default_config_path().read_text(encoding="utf-8") + '\n[approvals]\nsteps = ["region_lead", "finance"]\n',
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    monkeypatch.setenv("PLANSHEET_DATABASE_URL", url)
    monkeypatch.setenv("PLANSHEET_CONFIG", str(org))
    assert main(["init"]) == 0
    args = ["token", "create", "--name", "lena", "--role", "marketer", "--approves", "region_lead:EMEA"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["token", "create", "--name", "x", "--role", "marketer", "--approves", "cmo"]) == 2
    assert "'cmo' is not a step" in capsys.readouterr().err
    store = Store(url)
    try:
        with store.reading() as session:
            lena = session.query(User).filter_by(name="lena").one()
            assert [(g.step, g.region) for g in session.query(ApproverGrant).filter_by(user_id=lena.id)] == [
                ("region_lead", "EMEA")
            ]
            assert session.query(User).filter_by(name="x").count() == 0  # refused: nothing written
    finally:
        store.dispose()


def test_remind_says_the_deadline_in_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`plansheet remind`, run daily, says when plans are due as the organisation writes dates (LOCALE)."""
    monkeypatch.setenv("PLANSHEET_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PLANSHEET_CHAT_WEBHOOK_URL", "http://127.0.0.1:9/hook")  # somewhere to remind; none is due
    monkeypatch.setenv("PLANSHEET_PLAN_DEADLINE", "2026-03-10")
    monkeypatch.setenv("PLANSHEET_LOCALE", "en_GB")
    assert main(["init"]) == 0
    assert main(["token", "create", "--name", "fiona", "--role", "finance"]) == 0
    capsys.readouterr()
    assert main(["remind", "--as", "fiona", "--today", "2026-01-29"]) == 0
    assert capsys.readouterr().out.strip() == "plans are due on 10 Mar 2026 (40 day(s) left): no team to remind today"
    monkeypatch.setenv("PLANSHEET_LOCALE", "en_US")
    assert main(["remind", "--as", "fiona", "--today", "2026-02-08"]) == 0
    assert capsys.readouterr().out.strip() == "plans are due on Mar 10, 2026 (30 day(s) left): no team to remind today"
