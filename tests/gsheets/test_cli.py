"""`plansheet gsheets create|pull|push`: the Google Sheets work from the command line, configured by environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sheets_standin import SheetsFake

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.cli import main
from sync_service.integrations.google.client import GoogleSettings, client
from tests.gsheets.sheet_helpers import fill

SCHEMA = build_schema(load_config())
TEAM = "APAC-SMB"


def test_create_pull_and_push_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SheetsFake.serve() as fake:
        gc = client(GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url))
        master = gc.create("master")
        monkeypatch.setenv("PLANSHEET_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        monkeypatch.setenv("PLANSHEET_GOOGLE_CREDENTIALS_JSON", json.dumps(fake.service_account_info()))
        monkeypatch.setenv("PLANSHEET_GOOGLE_API_BASE", fake.base_url)
        monkeypatch.setenv("PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID", master.id)
        monkeypatch.delenv("PLANSHEET_CONFIG", raising=False)
        assert main(["init"]) == 0
        capsys.readouterr()

        assert main(["gsheets", "create", "--team", TEAM, "--editor", "li@example.com"]) == 0
        created = json.loads(capsys.readouterr().out)
        assert created["team"] == TEAM and created["requests"] == 3

        lines = sample_lines(SCHEMA, "APAC", 6, seed=7)
        lines[2] = {**lines[2], "currency": "XYZ"}  # sheet row 4
        fill(gc, created["spreadsheet_id"], lines)
        assert main(["gsheets", "pull", "--team", TEAM]) == 1
        err = capsys.readouterr().err
        assert f"Plan!{SCHEMA['currency'].letter}4" in err and "Traceback" not in err

        fill(gc, created["spreadsheet_id"], sample_lines(SCHEMA, "APAC", 6, seed=7))
        assert main(["gsheets", "pull", "--team", TEAM]) == 0
        submission = json.loads(capsys.readouterr().out)
        assert submission["lines"] == 6 and submission["source"] == "gsheets"

        # The command line acts as a finance user (who may not approve what it submitted): push the empty master.
        assert main(["gsheets", "push"]) == 0
        pushed = json.loads(capsys.readouterr().out)
        assert pushed["sheets"]["Master"] == 0 and pushed["requests"] <= 5
        assert fake.grid(master.id, "Master!A1:B1")[0][:2] == ["Team", SCHEMA["line_id"].label]
