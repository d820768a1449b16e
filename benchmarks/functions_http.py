"""Live functions over HTTP: a recalculation of 1,000 live cells, batched as Excel sends them.

Against a real `plansheet serve` process on 127.0.0.1 with a master of 12 approved team plans,
in the same run:
- baseline: the 1,000 cells answered the way the service did before the index, by filtering the
  master's lines with pandas masks for every cell (here, in-process, over the same read model);
- the service's own code in-process, no HTTP, with the index built;
- batched: one `POST /api/v1/functions:batch` of 1,000 calls (what the Office.js shim sends):
  the first after an approval (master loaded, index built), new cells on a warm index, and the
  same batch again (answered from the answer cache);
- one by one: 1,000 `POST /api/v1/functions/PS_LIVE_VARIANCE` requests, one after another.
Each HTTP figure is the wall time and the service's own time (its Server-Timing header).

Targets: the batch within 5x of in-process; 1,000 cells in at most 50 ms of server time.

    python benchmarks/functions_http.py [--cells 1000] [--lines 200] [--repeat 5]
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

import pandas as pd

from addin.forecast import closed_months
from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.master import functions as functions_api
from sync_service.master import model as master
from sync_service.platform.migrate import upgrade
from sync_service.platform.storage import Store, User

SCHEMA = build_schema(load_config())
CLI = [sys.executable, "-m", "sync_service.cli"]


def post(base: str, token: str, path: str, body: Any) -> tuple[Any, float]:
    """(the JSON answer, the service's own milliseconds from Server-Timing)."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        server = float(response.headers["Server-Timing"].partition("dur=")[2])
        return json.load(response), server


def filtered(data: dict[str, Any], call: dict[str, Any], closed: int) -> float:
    """One PS_LIVE_VARIANCE cell by masks over every line: how the service answered before the index."""
    lines = data["lines"]
    scope, channel = call["args"][0][0][0].casefold(), call["args"][2][0][0].casefold()
    if scope in data["teams"]:
        mask = (lines["team_id"].str.casefold() == scope).to_numpy()
    else:
        mask = (lines["region"].str.casefold() == scope).to_numpy()
    if channel:
        mask = mask & (lines["channel"] == channel).to_numpy()
    planned = int(data["months"][mask][:, :closed].sum())
    return (planned - int(data["actual"][mask].sum())) / 100


def cells(n: int, shift: int = 0) -> list[dict[str, Any]]:
    """A sheet's worth of different PS_LIVE_VARIANCE cells: scopes x channels x dates (moved by `shift` days)."""
    scopes = [*SCHEMA.config.regions, *(f"{r}-ENTERPRISE" for r in SCHEMA.config.regions)]
    channels = ["", *SCHEMA["channel"].choices]
    out = []
    for i in range(n):
        day = dt.date(2026, 2, 1) + dt.timedelta(days=(i * 7 + shift) % 360)
        args = [[[scopes[i % len(scopes)]]], [[day.isoformat()]], [[channels[i % len(channels)]]]]
        out.append({"name": "PS_LIVE_VARIANCE", "args": args})
    return out


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=200, help="lines of each of the 12 team plans")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
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

        held: dict[str, int] = {}

        def approve(n: int, team: str) -> None:
            lines = [
                {
                    k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
                    for k, v in x.items()
                }
                for x in sample_lines(SCHEMA, team.split("-")[0], args.lines, seed=n, id_prefix=f"{team[:10]}{n}")
            ]
            body: dict[str, Any] = {"team": team, "lines": lines}
            if team in held:
                body["based_on"] = {"submission": held[team]}
            sid = post(base, marketers[team], "/api/v1/submissions", body)[0]["id"]
            post(base, finance, f"/api/v1/submissions/{sid}/approve", {})
            held[team] = sid

        for n, team in enumerate(teams):
            approve(n, team)
        with store.reading() as session:
            user = session.query(User).filter(User.name == "finance").one()
            user.teams  # noqa: B018
        view = master.load(store, SCHEMA)
        data = {
            "lines": pd.DataFrame(
                {
                    "team_id": view.table["team_id"],
                    "region": view.table["region"],
                    "channel": view.table["channel"].astype(str).str.casefold(),
                }
            ),
            "teams": {t.casefold() for t in teams},
            "months": view.months,
            "actual": view.actual,
        }
        calls = cells(args.cells)

        def baseline() -> list[Any]:
            out = []
            for call in calls:
                day = dt.date.fromisoformat(call["args"][1][0][0])
                out.append(filtered(data, call, closed_months(SCHEMA.calendar, day)))
            return out

        def in_process() -> list[Any]:
            return functions_api.evaluate(store, SCHEMA, user, calls, fingerprint=os.urandom(8))

        def batched(batch: list[dict[str, Any]]) -> tuple[list[Any], float]:
            answer, server_ms = post(base, finance, "/api/v1/functions:batch", {"calls": batch})
            return answer["results"], server_ms

        # The first batch after an approval: the server loads the new master and builds the index.
        cold: list[tuple[float, float]] = []
        for r in range(max(1, args.repeat // 2)):
            approve(100 + r, teams[r % len(teams)])
            started = time.perf_counter()
            _, server_ms = batched(cells(args.cells, shift=1000 + r))
            cold.append((time.perf_counter() - started, server_ms))
        view = master.load(store, SCHEMA)
        data.update(
            lines=pd.DataFrame(
                {
                    "team_id": view.table["team_id"],
                    "region": view.table["region"],
                    "channel": view.table["channel"].astype(str).str.casefold(),
                }
            ),
            months=view.months,
            actual=view.actual,
        )
        expected = [{"result": [[v]]} for v in baseline()]
        assert in_process() == batched(calls)[0] == expected  # the same answers every way, to the cent
        one = [post(base, finance, "/api/v1/functions/PS_LIVE_VARIANCE", {"args": c["args"]}) for c in calls[:50]]
        assert [a for a, _ in one] == expected[:50]

        def timed(run: Any) -> tuple[float, float]:
            started = time.perf_counter()
            server_ms = run()
            return time.perf_counter() - started, server_ms

        rows: dict[str, list[tuple[float, float]]] = {"first batch after an approval": cold}
        rows["baseline: masks per cell, in-process"] = [timed(lambda: (baseline(), 0.0)[1]) for _ in range(3)]
        rows["in-process, index built"] = [timed(lambda: (in_process(), 0.0)[1]) for _ in range(args.repeat)]
        rows["batched, new cells, warm index"] = [
            timed(lambda r=r: batched(cells(args.cells, shift=2000 + r))[1]) for r in range(args.repeat)
        ]
        rows["batched, the same batch again"] = [timed(lambda: batched(calls)[1]) for _ in range(args.repeat)]

        def one_by_one() -> float:
            return sum(post(base, finance, "/api/v1/functions/PS_LIVE_VARIANCE", {"args": c["args"]})[1] for c in calls)

        rows["one by one"] = [timed(one_by_one)]
        print(
            f"\n{args.cells:,} PS_LIVE_VARIANCE cells over a master of {len(view.lines):,} lines in {len(teams)} plans"
        )
        print("(median of runs; server: the service's own time from Server-Timing)")
        print(f"{'how':<40} {'wall ms':>9} {'server ms':>10} {'vs in-process':>14}")
        inproc = median([w for w, _ in rows["in-process, index built"]])
        for name, samples in rows.items():
            wall, srv = median([w for w, _ in samples]) * 1000, median([s for _, s in samples])
            print(f"{name:<40} {wall:>9.1f} {srv or float('nan'):>10.1f} {wall / 1000 / inproc:>13.1f}x")
        warm = median([s for _, s in rows["batched, new cells, warm index"]])
        first = median([s for _, s in cold])
        batch_wall = median([w for w, _ in rows["batched, new cells, warm index"]])
        print(f"\nTarget: batched within 5x of in-process: {'met' if batch_wall <= 5 * inproc else 'NOT met'}")
        print(
            f"Target: the cells in <= 50 ms of server time: warm index {warm:.1f} ms, after an approval {first:.1f} ms"
        )
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
