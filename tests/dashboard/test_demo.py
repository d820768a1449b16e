"""`make demo` ends by serving the dashboard with the logins it prints, and those logins work."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.sync_service.live_server import free_port


@pytest.mark.slow
def test_the_demo_serves_the_dashboard_with_its_printed_logins(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PLANSHEET_PORT": str(port)}
    env.pop("PLANSHEET_CONFIG", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "sync_service.cli", "demo", "--out", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = []
        deadline = time.monotonic() + 120
        while not any("Ctrl+C stops it" in line for line in printed):
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "".join(printed)
            printed.append(line)
            assert time.monotonic() < deadline, "".join(printed)
        text = "".join(printed)
        assert f"http://127.0.0.1:{port}/" in text
        name, password = re.search(r"finance login:\s+(\S+) / (\S+)", text).groups()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        for _ in range(100):  # the server is starting
            try:
                opener.open(f"http://127.0.0.1:{port}/login", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        with opener.open(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
        form = urllib.parse.urlencode({"name": name, "password": password, "csrf_token": token}).encode()
        with opener.open(f"http://127.0.0.1:{port}/login", data=form, timeout=10) as page:
            body = page.read().decode()
        assert "Plan status" in body and "approved" in body  # logged in, and the demo's plans are there
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        demo.stdout.close()
