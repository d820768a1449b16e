"""Make the fixture of an earlier release's database: its demo's SQLite file and what its API answered.

Run from the repository root with the project's virtualenv:

    python tests/sync_service/upgrades/make_fixture.py 73e3aa0 release-2026-12-03

It exports that commit's tree to a temporary folder, runs its `plansheet demo --no-serve`, serves
the database with that release's own `plansheet serve`, records its answers to the reads listed in
READS (as finance, with the demo's tokens), and writes `<name>.sqlite` and `<name>.json` here. The
upgrade tests then upgrade a copy of the file with this release and compare its answers.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
READS = (
    "/api/v1/master",
    "/api/v1/rollup?by=region,channel&period=quarter",
    "/api/v1/variance?by=region",
    "/api/v1/allocations",
    "/api/v1/submissions",
    "/api/v1/master/versions",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(commit: str, name: str) -> None:
    root = Path(__file__).resolve().parents[3]
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "release"
        tree.mkdir()
        archive = subprocess.run(["git", "archive", commit], cwd=root, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as release:
            release.extractall(tree, filter="data")
        env = {**os.environ, "PYTHONPATH": str(tree)}
        out = Path(folder) / "demo"
        cli = [sys.executable, "-m", "sync_service.cli"]
        subprocess.run([*cli, "demo", "--out", str(out), "--no-serve"], cwd=tree, env=env, check=True)
        database = out / "service.db"
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tokens = json.loads((out / "tokens.json").read_text())
        port = _free_port()
        serve_env = {**env, "PLANSHEET_DATABASE_URL": f"sqlite:///{database}"}
        server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tree, env=serve_env)
        try:
            answers = {}
            for path in READS:
                for _ in range(100):
                    try:
                        request = urllib.request.Request(
                            f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {tokens['finance']}"}
                        )
                        with urllib.request.urlopen(request, timeout=30) as response:
                            answers[path] = json.loads(response.read())
                        break
                    except OSError:
                        time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(30)
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        shutil.copy(database, HERE / f"{name}.sqlite")
        record = {"commit": commit, "revision": revision, "tokens": tokens, "password": "plansheet-demo"}
        (HERE / f"{name}.json").write_text(json.dumps({**record, "answers": answers}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
