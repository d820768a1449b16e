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


def init(env: dict[str, str]) -> None:
    """`plansheet init` on the environment's database (a new one starts as a copy of the migrated schema)."""
    if env.get("PLANSHEET_DATABASE_URL"):
        upgrade(env["PLANSHEET_DATABASE_URL"])
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)


def token(env: dict[str, str], name: str, role: str, *teams: str) -> str:
    """A new API token from `plansheet token create`."""
    args = [*CLI, "token", "create", "--name", name, "--role", role]
    for team in teams:
        args += ["--team", team]
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout.strip()


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
