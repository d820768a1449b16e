"""`make demo` as a reader of the README runs it: it prints the README's sample output, then serves the dashboard
with the logins it prints, and those logins work."""

from __future__ import annotations

import difflib
import http.cookiejar
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from tests.sync_service.live_server import free_port

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
OUT = "build/demo"  # where `make demo` writes, relative to where it runs, as the README's sample shows it
SAMPLE = re.compile(r"<!-- sample output:[^\n]*-->\n```text\n(.*?)\n```", re.S)
ELIDED = "..."  # a sample line of its own saying that printed lines are left out there


@dataclass
class Demo:
    printed: str
    port: int
    out: Path


def readme_samples() -> list[list[str]]:
    """The README's fenced blocks marked as sample output, each as its lines."""
    return [block.splitlines() for block in SAMPLE.findall(README.read_text(encoding="utf-8"))]


def sample_day() -> str:
    """The day the README's sample story is told on, as the README says to tell it again."""
    found = re.search(r"plansheet demo --as-of (\d{4}-\d{2}-\d{2})", README.read_text(encoding="utf-8"))
    assert found, "the README says which day its sample output was told on (plansheet demo --as-of YYYY-MM-DD)"
    return found.group(1)


def normalised(lines: list[str]) -> list[str]:
    """The lines with what differs from run to run made constant: loopback ports, timings, the Google sheet's id,
    the reforecast's deadline (ten days after the later of the story's day and today) and where `plansheet` is."""
    out = []
    for line in lines:
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
        line = re.sub(r"\b\d[\d,]*\.\d s\b", "N s", line)
        line = re.sub(r"plan sheet \S+ in", "plan sheet ID in", line)
        line = re.sub(r"due [A-Z][a-z]{2} \d{1,2}, \d{4}", "due DATE", line)
        line = re.sub(r"\S*/plansheet serve\b", "plansheet serve", line)
        out.append(line.rstrip())
    return out


def not_printed(sample: list[str], printed: list[str]) -> str | None:
    """Where `sample` (runs of consecutive printed lines, with '...' lines between them) departs from `printed`."""
    runs: list[list[str]] = [[]]
    for line in sample:
        if line.strip() == ELIDED:
            runs.append([])
        else:
            runs[-1].append(line)
    at = 0
    for run in filter(None, runs):
        found = next((i for i in range(at, len(printed) - len(run) + 1) if printed[i : i + len(run)] == run), None)
        if found is None:
            missing = next((line for line in run if line not in printed[at:]), None)
            if missing is None:
                return f"the README's lines\n  {run!r}\nare printed, but not one after another in this order"
            close = difflib.get_close_matches(missing, printed[at:], n=1, cutoff=0.5)
            return f"the README shows\n  {missing!r}\nwhere the demo printed\n  {close[0] if close else None!r}"
        at = found + len(run)
    return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`plansheet demo` told on the README's day, run as `make demo` runs it, until it serves the dashboard."""
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "PLANSHEET_PORT": str(port)}
    env.pop("PLANSHEET_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "sync_service.cli", "demo", "--out", OUT, "--as-of", sample_day()],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed: list[str] = []
        deadline = time.monotonic() + 600
        while not any("Ctrl+C stops it" in line for line in printed):
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(printed)
            printed.append(line)
            assert time.monotonic() < deadline, "".join(printed)
        yield Demo("".join(printed), port, folder / OUT)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def test_the_readme_sample_output_is_what_the_demo_prints(demo: Demo) -> None:
    samples = readme_samples()
    assert len(samples) >= 3, "the README's samples of the demo's output are marked <!-- sample output: ... -->"
    printed = normalised(demo.printed.splitlines())
    for sample in samples:
        if sample[0].startswith("$ plansheet "):  # a command run on the demo's files, printed whole
            argv = shlex.split(sample[0].removeprefix("$ plansheet "))
            ran = subprocess.run(
                [sys.executable, "-m", "sync_service.cli", *argv],
                cwd=demo.out / "plans",
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert normalised(ran.stdout.splitlines()) == normalised(sample[1:]), ran.stdout + ran.stderr
        else:
            assert not_printed(normalised(sample), printed) is None, not_printed(normalised(sample), printed)


def test_the_readme_sample_check_fails_when_they_drift(demo: Demo) -> None:
    """The check above can fail: a changed figure, two lines swapped or a line the demo never prints is caught."""
    printed = normalised(demo.printed.splitlines())
    sample = next(s for s in readme_samples() if not s[0].startswith("$ "))
    assert not_printed(normalised(sample), printed) is None
    assert any(re.search(r"\d,\d{3}", line) for line in sample), "the sample shows amounts"
    drifted = [re.sub(r"\d(?=,\d{3})", lambda m: str((int(m.group()) + 1) % 10), line, count=1) for line in sample]
    assert "where the demo printed" in (not_printed(normalised(drifted), printed) or "")
    n = next(n for n in range(len(sample) - 1) if ELIDED not in (sample[n].strip(), sample[n + 1].strip()))
    swapped = [*sample[:n], sample[n + 1], sample[n], *sample[n + 2 :]]
    assert "not one after another" in (not_printed(normalised(swapped), printed) or "")
    assert not_printed(normalised([*sample, "  a line the demo never prints"]), printed) is not None


def test_the_demo_serves_the_dashboard_with_its_printed_logins(demo: Demo) -> None:
    assert f"http://127.0.0.1:{demo.port}/" in demo.printed
    name, password = re.search(r"finance login:\s+(\S+) / (\S+)", demo.printed).groups()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    for _ in range(100):  # the server is starting
        try:
            opener.open(f"http://127.0.0.1:{demo.port}/login", timeout=2).close()
            break
        except OSError:
            time.sleep(0.2)
    with opener.open(f"http://127.0.0.1:{demo.port}/login", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"name": name, "password": password, "csrf_token": token}).encode()
    with opener.open(f"http://127.0.0.1:{demo.port}/login", data=form, timeout=10) as page:
        body = page.read().decode()
    assert "Plan status" in body and "approved" in body  # logged in, and the demo's plans are there


@pytest.mark.libreoffice
def test_the_demos_closed_month_has_its_management_pack_as_workbook_and_pdf(demo: Demo, soffice: str) -> None:
    said = re.search(r"(\w{3} \d{4})'s management pack built itself: (\S+\.xlsx) and (\S+\.pdf)", demo.printed)
    assert said, demo.printed
    ran_in = demo.out.parent.parent  # the demo prints its files relative to where it runs
    workbook, pdf = ran_in / said.group(2), ran_in / said.group(3)
    book = openpyxl.load_workbook(workbook, data_only=True)
    assert {"Overview", "Budget", "Spend control", "Performance"} <= set(book.sheetnames)
    assert said.group(1) in str(book["Overview"]["A1"].value)  # "Management pack: Feb 2026"
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 10_000
