"""The sync service as a real process on loopback, set up through its own command line, for tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from typing import Any

from tests.databases import upgrade

CLI = [sys.executable, "-m", "sync_service.cli"]


def service_env(database_url: str) -> dict[str, str]:
    """The environment of a service on `database_url` with the bundled organisation."""
    env = {**os.environ, "PLANSHEET_DATABASE_URL": database_url}
    env.pop("PLANSHEET_CONFIG", None)
    return env


def plansheet(env: dict[str, str], *args: str, given: str | None = None) -> str:
    """Run the `plansheet` command line in this process on the environment, as a shell would (without paying
    an interpreter's start and the imports each time); its output, or AssertionError saying what it said."""
    from unittest import mock

    from click.testing import CliRunner

    from sync_service import app as application
    from sync_service.cli import cli
    from sync_service.platform.context import STORE

    made: list[Any] = []
    real = application.create_app

    def create_app(*given_args: Any, **given_kw: Any) -> Any:
        made.append(real(*given_args, **given_kw))
        return made[-1]

    changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
    gone = [k for k in ("PLANSHEET_CONFIG",) if k in os.environ and k not in env]
    try:
        with mock.patch.object(application, "create_app", create_app):
            result = CliRunner().invoke(cli, list(args), input=given, env={**changed, **dict.fromkeys(gone)})
    finally:
        for app in made:  # its database connections closed, as the process's end would
            app.extensions[STORE].dispose()
    if result.exit_code != 0:
        said = f"{result.output}{result.exception!r}"
        raise AssertionError(f"plansheet {' '.join(args)} exited {result.exit_code}: {said}")
    return result.output


def init(env: dict[str, str]) -> None:
    """`plansheet init` on the environment's database (a new one starts as a copy of the migrated schema)."""
    if env.get("PLANSHEET_DATABASE_URL"):
        upgrade(env["PLANSHEET_DATABASE_URL"])
    plansheet(env, "init")


def token(env: dict[str, str], name: str, role: str, *teams: str) -> str:
    """A new API token from `plansheet token create`."""
    args = ["token", "create", "--name", name, "--role", role]
    for team in teams:
        args += ["--team", team]
    return plansheet(env, *args).strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    env: dict[str, str], threads: int = 8, *options: str, ready: str = "/health", timeout: float = 30
) -> tuple[subprocess.Popen[bytes], str]:
    """`plansheet serve` (with any further `options`) on a free port; returns once `ready` answers 200."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--threads", str(threads), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{base}{ready}", timeout=2).close()
            return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask `process` to stop; kill it when it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def call(base: str, token: str, method: str, path: str, body: Any = None, wait: float = 0) -> tuple[int, Any]:
    """A JSON request with a bearer token: (status, decoded body), for error answers too.

    `wait` asks the service to wait that many seconds for the job the request starts (Prefer: wait).
    """
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if wait:
        headers["Prefer"] = f"wait={wait:g}"
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def upload(base: str, token: str, path: str, file: bytes, **fields: str) -> tuple[int, Any]:
    """A multipart upload (field `file`, plus form fields), as a browser or curl -F sends it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="plan.xlsx"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + file
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{base}{path}",
        data=b"".join(parts),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def as_json(line: dict[str, Any]) -> dict[str, Any]:
    """A sample plan line as a JSON client sends it: amounts as numbers, dates as ISO text."""
    return {
        k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in line.items()
    }
