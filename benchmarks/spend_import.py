"""Benchmark large PO imports through the route: seconds and peak memory, refusals, and the spend view after.

A SQLite file gets the bundled organisation's 12 teams, each with an approved plan of L sample
lines (default 1,000: 12,000 lines; `build_master` of `benchmarks/actuals_import.py`). PO exports
of N rows (default 100,000 and 200,000; `purchase_orders_csv` of `benchmarks/spend.py`, cycling
over the master's lines) are posted to `POST /api/v1/purchase-orders` as finance, on the app's
test client, each measurement in a fresh child process (spawned) with its own copy of the database:
  a. the valid export (201): seconds of the request, and the child's peak memory over its RSS just
     before the request (its peak resident size, VmHWM, started again just before, minus that
     RSS; with --tracemalloc also tracemalloc's peak, which slows Python down several times);
  b. the same export with one bad last row (refused, 422): the same figures;
  c. an export exactly at the body limit (MAX_CONTENT_LENGTH, 20 MiB: valid rows, the last row
     bad, padded to the byte): the same figures;
  d. after the first (100,000-PO) import, `GET /api/v1/spend` as a marketer of one team: the first
     answer (it loads the master with the POs) and the median of --repeat warm answers;
  e. baselines in the same run, each in its own child: reading the CSV alone with
     `pandas.read_csv(dtype=str)` (the floor of any CSV reading); `parse_purchase_orders` (the
     stream) and `purchase_orders_by_row` (the rules one row at a time, what every CSV went
     through before) on their own; and, unless --no-baseline, a. to c. again with the route's
     parse replaced by `purchase_orders_by_row` (the import as it was).
Peak memory is of the whole process, so it includes the request body, the answer and the import
after the parse (matching, the write); the parse rows show the parse's part.

    python benchmarks/spend_import.py [--lines 1000] [--rows 100000 200000] [--repeat 9] [--no-baseline] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from benchmarks.actuals_import import build_master
from benchmarks.spend import PO_HEADER, purchase_orders_csv
from sync_service.access.auth import create_token
from sync_service.platform.settings import SETTINGS
from sync_service.platform.storage import Team

LIMIT = next(s.default for s in SETTINGS if s.name == "MAX_CONTENT_LENGTH")
BAD_ROW = "PO-BAD-LAST,Vendor,not an amount,USD,2026-03-01,2026-03-31,NO-LINE,,Open,\n"
MiB = 2**20


def rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM), in bytes.

    Not ru_maxrss: Linux carries the parent's peak over a fork and exec into the child's
    ru_maxrss, so a child spawned by a large parent would report the parent's size.
    """
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib * 1024


def reset_peak() -> bool:
    """Start the peak (VmHWM) again from the RSS now (Linux 4.0+); False when it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def measured(run: Any, trace: bool) -> dict[str, Any]:
    """Seconds of `run()`, this process's peak memory over its RSS just before, and tracemalloc's peak if `trace`."""
    gc.collect()
    fresh = reset_peak()
    before, peak_before = rss(), peak_rss()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    peak = peak_rss()
    return {
        "seconds": seconds,
        "peak": peak - before,
        "peak_unseen": not fresh and peak <= peak_before,  # at most: it never passed the child's earlier peak
        "traced": traced,
        "result": result,
    }


def route_child(job: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: post the export to the route as finance; then, if asked, the spend view as a marketer."""
    from sync_service.app import create_app
    from sync_service.spend import orders

    if job["by_row"]:
        orders.parse_purchase_orders = orders.purchase_orders_by_row  # the import as it was: the rules row by row
    app = create_app({"DATABASE_URL": f"sqlite:///{job['db']}", "TESTING": True})
    client = app.test_client()
    finance = {"Authorization": f"Bearer {job['finance']}"}
    path = "/api/v1/purchase-orders?filename=purchase-orders.csv"
    warm = client.post(path, headers=finance, data=(PO_HEADER + BAD_ROW).encode(), content_type="text/csv")
    assert warm.status_code == 422, warm.get_data(as_text=True)[:500]
    raw = Path(job["csv"]).read_bytes()

    def post() -> tuple[int, dict[str, Any]]:
        response = client.post(path, headers=finance, data=raw, content_type="text/csv")
        return response.status_code, response.get_json()

    out = measured(post, job["trace"])
    status, answer = out.pop("result")
    out.update(status=status, bytes=len(raw), rows=answer.get("rows"), issues=len(answer.get("issues") or ()))
    if status >= 400 and not answer.get("issues"):
        out["detail"] = answer.get("detail")
    if job["spend"]:
        marketer = {"Authorization": f"Bearer {job['marketer']}"}
        times = []
        for _ in range(job["repeat"] + 1):
            started = time.perf_counter()
            response = client.get("/api/v1/spend", headers=marketer)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
        out.update(spend_cold=times[0], spend_warm=statistics.median(times[1:]))
    return out


def parse_child(job: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: read the export with one reader alone (pandas' floor, the stream, or row by row)."""
    import pandas as pd

    from sheet_templates import build_schema, load_config
    from sync_service.spend import orders

    schema = build_schema(load_config())
    raw = Path(job["csv"]).read_bytes()
    readers = {
        "pandas.read_csv(dtype=str)": lambda: len(pd.read_csv(io.BytesIO(raw), dtype=str, header=None)),
        "parse_purchase_orders": lambda: len(orders.parse_purchase_orders(raw, "po.csv", schema)),
        "purchase_orders_by_row": lambda: len(orders.purchase_orders_by_row(raw, "po.csv", schema)),
    }
    out = measured(readers[job["reader"]], job["trace"])
    out["rows"] = out.pop("result")
    return out


def in_child(function: Any, job: dict[str, Any]) -> dict[str, Any]:
    """`function(job)` in a newly spawned process of its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, job).result()


def copy_database(source: Path, target: Path) -> Path:
    """A consistent copy of the SQLite file (its WAL included), for one child to write to."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def limit_export(lines: list[dict[str, Any]], limit: int) -> bytes:
    """Valid PO rows up to the body limit, and a bad last row padded so that the file is exactly `limit` bytes."""
    raw, _ = purchase_orders_csv(lines, limit // 60)
    bad = BAD_ROW.encode()
    body = raw[: raw.rindex(b"\n", 0, limit - len(bad) - 16) + 1]
    padding = limit - len(body) - len(bad)
    return body + bad.replace(b"not an amount", b"not an amount" + b"x" * padding)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000, help="lines per team plan (12 teams)")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 200_000], help="PO rows per export")
    parser.add_argument("--repeat", type=int, default=9, help="warm spend-view answers (the median is shown)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the route with the row-by-row parse")
    parser.add_argument("--tracemalloc", action="store_true", help="also report tracemalloc's peak (slow)")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="plansheet-spend-import-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        store, _, lines = build_master(folder, args.lines)
        with store.transaction() as session:
            team = session.scalars(select(Team.id).order_by(Team.id)).first()
            finance = create_token(session, "fiona", "finance")
            marketer = create_token(session, "maria", "marketer", [team])
        store.dispose()
        master_db = folder / "plansheet.db"
        print(f"master: {len(lines):,} lines in 12 approved plans ({time.perf_counter() - started:.1f} s to build)")

        files: dict[str, Path] = {}
        for n in args.rows:
            raw, _ = purchase_orders_csv(lines, n)
            files[f"{n:,} POs"] = folder / f"po-{n}.csv"
            files[f"{n:,} POs, bad last row"] = folder / f"po-{n}-bad.csv"
            files[f"{n:,} POs"].write_bytes(raw)
            files[f"{n:,} POs, bad last row"].write_bytes(raw + BAD_ROW.encode())
        at_limit = limit_export(lines, LIMIT)
        limit_rows = at_limit.count(b"\n") - 1
        files[f"at the limit ({limit_rows:,} POs), bad last row"] = folder / "po-limit-bad.csv"
        files[f"at the limit ({limit_rows:,} POs), bad last row"].write_bytes(at_limit)
        del raw, at_limit
        for name, path in files.items():
            print(f"export {name}: {path.stat().st_size / MiB:.1f} MiB")

        table: list[tuple[str, str, dict[str, Any]]] = []
        largest = files[f"{max(args.rows):,} POs"]
        for reader in ("pandas.read_csv(dtype=str)", "parse_purchase_orders", "purchase_orders_by_row"):
            for n in args.rows:
                job = {"csv": str(files[f"{n:,} POs"]), "reader": reader, "trace": args.tracemalloc}
                table.append((f"parse only: {reader}", f"{n:,} POs", in_child(parse_child, job)))
                print(f"  {table[-1][0]}, {table[-1][1]}: {table[-1][2]['seconds']:.2f} s")
        spend: dict[str, Any] = {}
        for by_row in (False,) if args.no_baseline else (False, True):
            label = "route, by row (before)" if by_row else "route, stream"
            for k, (name, path) in enumerate(files.items()):
                job = {
                    "db": str(copy_database(master_db, folder / f"child-{by_row}-{k}.db")),
                    "csv": str(path),
                    "finance": finance,
                    "marketer": marketer,
                    "by_row": by_row,
                    "spend": k == 0,
                    "repeat": args.repeat,
                    "trace": args.tracemalloc,
                }
                out = in_child(route_child, job)
                table.append((label, name, out))
                print(
                    f"  {label}, {name}: {out['status']} in {out['seconds']:.2f} s, peak +{out['peak'] / MiB:.0f} MiB"
                )
                expected = (422, 1) if name.endswith("bad last row") else (201, 0)
                if (out["status"], out["issues"]) != expected:
                    print(f"expected {expected[0]} with {expected[1]} issue(s): {out.get('detail')}")
                    return 1
                if k == 0:
                    spend[label] = out
                Path(job["db"]).unlink()

        print(f"\n{'what':<32} {'export':<40} {'status':>6} {'seconds':>8} {'peak MiB':>9}" + (
            f" {'traced MiB':>10}" if args.tracemalloc else ""))  # fmt: skip
        for what, name, out in table:
            status = str(out.get("status", ""))
            peak = f"{'<=' if out['peak_unseen'] else ''}{out['peak'] / MiB:.0f}"
            line = f"{what:<32} {name:<40} {status:>6} {out['seconds']:>8.2f} {peak:>9}"
            if args.tracemalloc:
                line += f" {out['traced'] / MiB:>10.0f}"
            print(line + (f"  ({out['issues']} issue(s))" if out.get("issues") else ""))
        floor = next(o for w, n, o in table if w.endswith("read_csv(dtype=str)") and n == f"{max(args.rows):,} POs")
        size = largest.stat().st_size / MiB
        print(f"\npandas alone reads {size:.1f} MiB in {floor['seconds']:.2f} s: the floor of any CSV reading")
        for label, out in spend.items():
            print(
                f"GET /api/v1/spend as a marketer after the {args.rows[0]:,}-PO import ({label}): "
                f"first {out['spend_cold'] * 1000:.0f} ms, warm median {out['spend_warm'] * 1000:.0f} ms"
            )
        stream = {name: out for what, name, out in table if what == "route, stream"}
        refusal = next(out for name, out in stream.items() if name.startswith("at the limit"))
        print("\nTargets (issue: nothing lost, nothing inflated):")
        print(f"  a refused file at the body limit answers in under 2 s: {refusal['seconds']:.2f} s, "
              f"{'met' if refusal['seconds'] < 2 else 'NOT met'}")  # fmt: skip
        if "route, stream" in spend:
            cold = spend["route, stream"]["spend_cold"]
            print(f"  the spend view after a {args.rows[0]:,}-PO import in under 300 ms: first answer "
                  f"{cold * 1000:.0f} ms, {'met' if cold < 0.3 else 'NOT met'}")  # fmt: skip
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
