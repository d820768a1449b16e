"""Google Sheets benchmark, against the local Sheets API fake: API requests and bytes, and time.

- push a master of 1,000 / 10,000 / 100,000 lines (Master, Rollup and Variance sheets);
- pull a 5,000-line team plan sheet;
- against, in the same run, the naive gspread loop: one `update` per row to push, one
  `row_values` per row to pull (run on the first 1,000 rows and scaled: it is linear by
  construction, one request per row, and 100,000 real requests would take hours at Google's
  quota of 60 per minute).

Target: a constant number of requests (<= 5) whatever the size.

    python benchmarks/gsheets.py [--sizes 1000,10000,100000] [--pull 5000] [--naive 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sheet_templates import build_schema, load_config
from sheet_templates.cells import column_letter
from sheet_templates.samples import sample_lines
from sync_service.integrations.google import client as gsheets
from tests.gsheets.fake import SheetsFake

SCHEMA = build_schema(load_config())


def master_lines(n: int) -> list[dict[str, Any]]:
    """`n` master lines as the service stores them (cents, ISO dates), from sample plans."""
    base = sample_lines(SCHEMA, "EMEA", 1000, seed=11)
    out = []
    for i in range(n):
        line = dict(base[i % len(base)])
        line["line_id"] = f"L{i:07d}"
        stored = {"team_id": f"TEAM-{i // 1000:03d}"}
        for col in SCHEMA.input_columns:
            value = line.get(col.name)
            if col.type.value == "money":
                stored[col.name] = round(float(value or 0) * 100)
            elif col.type.value == "date":
                stored[col.name] = value.isoformat() if value else None
            else:
                stored[col.name] = value
        out.append(stored)
    return out


def sent(fake: SheetsFake) -> tuple[int, int]:
    calls = [r for r in fake.log if r.path != "/token"]
    return len(calls), sum(r.body_bytes for r in calls)


def bench_push(fake: SheetsFake, settings: gsheets.GoogleSettings, n: int) -> dict[str, Any]:
    gc = gsheets.client(settings)
    target = gc.create(f"master {n}")
    lines = master_lines(n)
    views = {"rows": [], "by": []}
    sheets = gsheets.master_sheets(SCHEMA, lines, views, views)
    fake.clear_log()
    started = time.perf_counter()
    gsheets.push_master(gc, target.id, sheets, settings)
    seconds = time.perf_counter() - started
    requests, body = sent(fake)
    return {"lines": n, "requests": requests, "bytes": body, "seconds": seconds}


def bench_naive_push(fake: SheetsFake, settings: gsheets.GoogleSettings, n: int) -> dict[str, Any]:
    """One `worksheet.update` per row, as a first script would do it."""
    gc = gsheets.client(settings)
    target = gc.create(f"naive {n}")
    sheets = gsheets.master_sheets(SCHEMA, master_lines(n), {"rows": [], "by": []}, {"rows": [], "by": []})
    master = sheets[0]
    ws = target.add_worksheet("Master", rows=n + 1, cols=len(master.header))
    fake.clear_log()
    started = time.perf_counter()
    last = column_letter(len(master.header))
    for i, row in enumerate([master.header, *master.rows], start=1):
        ws.update(values=[row], range_name=f"A{i}:{last}{i}", value_input_option="RAW")
    seconds = time.perf_counter() - started
    requests, body = sent(fake)
    return {"lines": n, "requests": requests, "bytes": body, "seconds": seconds}


def bench_pull(fake: SheetsFake, settings: gsheets.GoogleSettings, n: int, naive: int) -> dict[str, Any]:
    gc = gsheets.client(settings)
    created = gsheets.create_team_sheet(gc, SCHEMA, "EMEA", "EMEA-ENTERPRISE", settings, rows=n)
    rows = []
    for line in master_lines(n):
        rows.append(["" if line.get(c.name) is None else line.get(c.name) for c in SCHEMA.input_columns])
    ws = gc.open_by_key(created.spreadsheet_id).worksheet("Plan")
    ws.update(values=rows, range_name=f"A2:{column_letter(len(SCHEMA.input_columns))}{n + 1}", value_input_option="RAW")
    fake.clear_log()
    started = time.perf_counter()
    pulled = gsheets.pull_team_sheet(gc, SCHEMA, created.spreadsheet_id)
    seconds = time.perf_counter() - started
    requests, body = sent(fake)
    assert len([r for r in pulled.grid[1:] if any(v != "" for v in r)]) == n
    fake.clear_log()
    started = time.perf_counter()
    for i in range(1, naive + 2):
        ws.row_values(i, value_render_option="UNFORMATTED_VALUE")
    naive_seconds = time.perf_counter() - started
    naive_requests, _ = sent(fake)
    return {
        "lines": n,
        "requests": requests,
        "bytes": body,
        "seconds": seconds,
        "naive_requests_measured": naive_requests,
        "naive_seconds_measured": naive_seconds,
        "naive_rows": naive,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--pull", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=1000, help="rows the naive loops really send")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    with SheetsFake.serve() as fake:
        settings = gsheets.GoogleSettings(
            credentials_info=fake.service_account_info(), api_base=fake.base_url, timeout=1800.0
        )
        naive = bench_naive_push(fake, settings, args.naive)
        per_row_requests = naive["requests"] / (args.naive + 1)
        per_row_seconds = naive["seconds"] / (args.naive + 1)
        print(
            f"\nPush the master (naive loop measured on {args.naive:,} rows: {naive['requests']:,} requests, "
            f"{naive['seconds']:.1f} s)"
        )
        print(
            f"{'lines':>9} {'requests':>9} {'MB sent':>9} {'seconds':>9} "
            f"{'naive requests':>15} {'naive s (scaled)':>17}"
        )
        for n in sizes:
            result = bench_push(fake, settings, n)
            print(
                f"{n:>9,} {result['requests']:>9} {result['bytes'] / 2**20:>9.1f} {result['seconds']:>9.2f} "
                f"{round(per_row_requests * (n + 1)):>15,} {per_row_seconds * (n + 1):>17.1f}"
            )
        pull = bench_pull(fake, settings, args.pull, args.naive)
        scaled = pull["naive_seconds_measured"] / (args.naive + 1) * (args.pull + 1)
        print(f"\nPull a {args.pull:,}-line team sheet")
        print(
            f"  batched: {pull['requests']} request, {pull['seconds']:.2f} s; naive loop: "
            f"{args.pull + 1:,} requests, {scaled:.1f} s (scaled from {args.naive:,} measured rows); "
            f"ratio {scaled / pull['seconds']:.0f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
