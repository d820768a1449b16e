"""Live functions over HTTP: a recalculation of 1,000 PS_LIVE_VARIANCE cells, batched as Excel sends them.

Measured in the same run, against a real `plansheet serve` process on 127.0.0.1 with a master
of 12 approved team plans:
- in-process: the 1,000 calls evaluated by the service's own code, no HTTP (the baseline);
- batched: one `POST /api/v1/functions:batch` with the 1,000 calls (what the Office.js shim sends);
- one by one: 1,000 `POST /api/v1/functions/PS_LIVE_VARIANCE` requests, one after another.

Target: the batched recalculation within 5x of the in-process evaluation.

    python benchmarks/functions_http.py [--cells 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sheet_templates import build_schema, load_config  # noqa: E402
from sheet_templates.samples import sample_lines  # noqa: E402
from sync_service import functions_api  # noqa: E402
from sync_service.auth import create_token  # noqa: E402
from sync_service.migrate import upgrade  # noqa: E402
from sync_service.storage import Store, User  # noqa: E402
from sync_service.workflow import sync_teams  # noqa: E402

SCHEMA = build_schema(load_config())
CLI = [sys.executable, "-m", "sync_service.cli"]


def post(base: str, token: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def cells(n: int) -> list[dict[str, Any]]:
    """A sheet's worth of different PS_LIVE_VARIANCE cells: scopes x channels x dates."""
    scopes = [*SCHEMA.config.regions, *(f"{r}-ENTERPRISE" for r in SCHEMA.config.regions)]
    channels = ["", *SCHEMA["channel"].choices]
    out = []
    for i in range(n):
        day = dt.date(2026, 2, 1) + dt.timedelta(days=(i * 7) % 360)
        args = [[[scopes[i % len(scopes)]]], [[day.isoformat()]], [[channels[i % len(channels)]]]]
        out.append({"name": "PS_LIVE_VARIANCE", "args": args})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    folder = Path(tempfile.mkdtemp(prefix="plansheet-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    store = Store(url)
    with store.transaction() as session:
        teams = [t.id for t in sync_teams(session, SCHEMA)]
        finance = create_token(session, "finance", "finance")
        marketers = {t: create_token(session, f"m-{t}", "marketer", [t]) for t in teams}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PLANSHEET_DATABASE_URL": url}
    env.pop("PLANSHEET_CONFIG", None)
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for n, team in enumerate(teams):
            lines = [
                {
                    k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
                    for k, v in x.items()
                }
                for x in sample_lines(SCHEMA, team.split("-")[0], 200, seed=n, id_prefix=team[:10])
            ]
            sid = post(base, marketers[team], "/api/v1/submissions", {"team": team, "lines": lines})["id"]
            post(base, finance, f"/api/v1/submissions/{sid}/approve", {})
        calls = cells(args.cells)
        with store.reading() as session:
            user = session.query(User).filter(User.name == "finance").one()
            user.teams  # noqa: B018
        schema = SCHEMA
        functions_api.evaluate(store, schema, user, calls[:1])  # load the master once, as the server does

        def in_process() -> list[Any]:
            return functions_api.evaluate(store, schema, user, calls)

        def batched() -> list[Any]:
            return post(base, finance, "/api/v1/functions:batch", {"calls": calls})["results"]

        def one_by_one() -> list[Any]:
            return [post(base, finance, "/api/v1/functions/PS_LIVE_VARIANCE", {"args": c["args"]}) for c in calls]

        assert in_process() == batched() == one_by_one()  # the same answers every way
        timings = {}
        for name, run in (("in-process", in_process), ("batched", batched), ("one by one", one_by_one)):
            samples = []
            for _ in range(args.repeat if name != "one by one" else max(1, args.repeat // 2)):
                started = time.perf_counter()
                run()
                samples.append(time.perf_counter() - started)
            timings[name] = statistics.median(samples)
        print(f"\n{args.cells:,} PS_LIVE_VARIANCE cells over a master of {len(teams)} plans (median of runs)")
        print(f"{'how':<12} {'seconds':>9} {'ms/cell':>9} {'ratio':>8}")
        for name, seconds in timings.items():
            ratio = seconds / timings["in-process"]
            print(f"{name:<12} {seconds:>9.3f} {seconds / args.cells * 1000:>9.3f} {ratio:>7.1f}x")
        verdict = "met" if timings["batched"] <= 5 * timings["in-process"] else "NOT met"
        print(f"\nTarget: batched within 5x of in-process: {verdict}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
