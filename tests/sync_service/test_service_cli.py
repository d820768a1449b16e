"""`plansheet init`, `token create` and `serve`: the service as an administrator sets it up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sync_service.cli import main


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_a_real_server_on_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "PLANSHEET_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    env.pop("PLANSHEET_CONFIG", None)
    exe = [sys.executable, "-m", "sync_service.cli"]
    subprocess.run([*exe, "init"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*exe, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert json.load(response) == {"status": "ok", "database": "ok"}
                    assert "waitress" in response.headers.get("Server", "")
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
