"""Benchmark the sync service as a real server process: concurrent submissions and the cost of a merge.

For each database (a SQLite file, and a scratch PostgreSQL database on 127.0.0.1:5432, dropped
afterwards), `plansheet init`, `plansheet token create` and `plansheet serve --threads 8` are run
as they are in production, with an organisation file whose business units give up to 500 teams.
Then, in the same run:
  1. throughput: C clients (default 8) each send P plans of L lines (default 1,000) as JSON to
     POST /api/v1/submissions at once; submissions per second and p50/p99 latency (nearest rank).
     Baseline: one client alone, measured just before.
  2. merge: the master is grown to 10, 50, 100, 250 and 500 teams over HTTP (each new team: a small
     plan submitted and approved); at each size one team's L-line plan is submitted and its approval
     (the merge into a new master version) is timed, median of R. Baseline: the same approval at the
     smallest master. Merging must cost in proportion to the changed team, so the ratio should be ~1.

    python benchmarks/service.py [--lines 1000] [--clients 8] [--per-client 10]
        [--teams 10,50,100,250,500] [--repeat 3] [--database sqlite] [--database postgres] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "sync_service.cli"]
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# --- the organisation and its plans ------------------------------------------------------------------


def write_org_config(folder: Path, teams: int) -> tuple[Path, list[str]]:
    """The bundled organisation file with enough business units for `teams` teams; (path, team ids in growth order).

    Teams are REGION-BU; the growth order takes every region's next business unit in turn, so the
    regions (which approvals lock, and whose allocation each approval checks) grow evenly.
    """
    from sheet_templates.config import default_config_path, load_config
    from sync_service.access.teams import team_id

    text = default_config_path().read_text(encoding="utf-8")
    regions = load_config(default_config_path()).regions
    units = [f"BU{n:03d}" for n in range(1, math.ceil(teams / len(regions)) + 1)]
    text, count = re.subn(
        r"^business_units = \[.*\]$", f"business_units = {json.dumps(units)}", text, count=1, flags=re.M
    )
    if count != 1:
        raise SystemExit("the bundled organisation file has no 'business_units = [...]' line to enlarge")
    path = folder / "org.toml"
    path.write_text(text, encoding="utf-8")
    load_config(path)  # refuse a broken file here rather than in the server
    order = [team_id(region, unit) for unit in units for region in regions]
    return path, order[:teams]


def as_json(line: dict[str, Any]) -> dict[str, Any]:
    """A sample plan line as a JSON client sends it: amounts as numbers, dates as ISO text."""
    return {
        k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in line.items()
    }


class Plans:
    """JSON plans for a team, generated with the project's sample lines (deterministic per seed)."""

    def __init__(self, config: Path) -> None:
        from sheet_templates import build_schema, load_config

        self.schema = build_schema(load_config(config))

    def lines(self, team: str, n: int, seed: int) -> list[dict[str, Any]]:
        from sheet_templates.samples import sample_lines

        region = team.split("-")[0]
        prefix = team.replace("-", "")[:12]
        return [as_json(x) for x in sample_lines(self.schema, region, n, seed=seed, id_prefix=prefix)]

    def body(self, team: str, n: int, seed: int, based_on: int | None = None) -> bytes:
        plan: dict[str, Any] = {"team": team, "lines": self.lines(team, n, seed)}
        if based_on is not None:
            plan["based_on"] = {"submission": based_on}
        return json.dumps(plan).encode()


# --- the service as a real process -------------------------------------------------------------------


@dataclass
class Service:
    """`plansheet serve` processes started by this script; all of them are stopped by `stop_all`."""

    env: dict[str, str]
    log: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run([*CLI, *args], env=self.env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"plansheet {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout.strip()

    def token(self, name: str, role: str, *teams: str) -> str:
        args = ["token", "create", "--name", name, "--role", role]
        for team in teams:
            args += ["--team", team]
        return self.cli(*args)

    def start(self, threads: int = 8, workers: int = 1) -> str:
        """Start a server on a free loopback port; its base URL once /health answers."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [*CLI, "serve", "--port", str(port), "--threads", str(threads), "--workers", str(workers)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                return base
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise SystemExit(f"the server did not start (exit {process.poll()}):\n{tail}") from None
                time.sleep(0.2)

    def stop_all(self) -> None:
        while self.processes:
            process = self.processes.pop()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def call(base: str, token: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """One JSON request with a bearer token: (status, decoded answer), for error answers too."""
    request = urllib.request.Request(
        f"{base}{path}",
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def expect(status: int, answer: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise SystemExit(f"{what}: HTTP {status} instead of {wanted}: {json.dumps(answer)[:2000]}")
    return answer


# --- databases ---------------------------------------------------------------------------------------


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str | None]:
    """A new, empty database of `kind`: its SQLAlchemy URL (None when PostgreSQL cannot be reached)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("PLANSHEET_BENCH_POSTGRES", POSTGRES_ADMIN)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        where = make_url(admin_url).render_as_string(hide_password=True)
        print(f"postgres: skipped, no server at {where} ({exc.__class__.__name__})", file=sys.stderr)
        yield None
        return
    name = f"plansheet_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the measurements --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Throughput:
    clients: int
    submissions: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.submissions / self.seconds


def throughput(base: str, tokens: list[str], bodies: list[list[bytes]]) -> Throughput:
    """Every client sends its plans one after another, all clients at once; wall time and latencies."""

    def client(index: int) -> list[float]:
        times = []
        for body in bodies[index]:
            started = time.perf_counter()
            status, answer = call(base, tokens[index], "POST", "/api/v1/submissions", body)
            times.append(time.perf_counter() - started)
            expect(status, answer, 201, "submission")
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        latencies = [t for times in pool.map(client, range(len(bodies))) for t in times]
    return Throughput(len(bodies), len(latencies), time.perf_counter() - started, latencies)


@dataclass
class MergePoint:
    teams: int
    master_lines: int
    approve: float  # median seconds to approve the L-line plan
    approve_small: float  # median seconds to approve a small plan of the same team
    submit: float  # median seconds to submit the L-line plan


def timed(fn: Callable[[], tuple[int, Any]]) -> tuple[float, int, Any]:
    started = time.perf_counter()
    status, answer = fn()
    return time.perf_counter() - started, status, answer


def run_database(kind: str, url: str, folder: Path, args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    config, order = write_org_config(folder, max(args.teams))
    plans = Plans(config)
    env = {**os.environ, "PLANSHEET_DATABASE_URL": url, "PLANSHEET_CONFIG": str(config)}
    env.pop("DATABASE_URL", None)
    if args.redis:
        env["PLANSHEET_REDIS_URL"] = args.redis
    service = Service(env, folder / f"server-{kind}.log")
    try:
        service.cli("init")
        writers = order[: args.clients]
        marketer_tokens = [service.token(f"bench-marketer-{team}", "marketer", team) for team in writers]
        planner = service.token("bench-planner", "marketer", *order)
        finance = service.token("bench-finance", "finance")
        base = service.start(threads=args.threads, workers=args.workers)

        # 1. throughput: the same plans for one client alone, then for all clients at once
        log(f"{kind}: generating {args.clients * args.per_client} plans of {args.lines:,} lines")
        bodies = [
            [plans.body(team, args.lines, seed=1000 * c + k) for k in range(args.per_client)]
            for c, team in enumerate(writers)
        ]
        expect(*call(base, marketer_tokens[0], "POST", "/api/v1/submissions", bodies[0][0]), 201, "warm-up")
        log(f"{kind}: throughput, 1 client x {args.per_client} plans")
        single = throughput(base, marketer_tokens[:1], bodies[:1])
        log(f"{kind}: throughput, {args.clients} clients x {args.per_client} plans")
        many = throughput(base, marketer_tokens, bodies)

        # 2. merge: grow the master, and at each size time one team's L-line approval
        current: dict[str, int] = {}  # team -> its approved submission

        def approve(submission: int) -> tuple[float, dict[str, Any]]:
            path = f"/api/v1/submissions/{submission}/approve"
            seconds, status, answer = timed(lambda: call(base, finance, "POST", path, b'{"comment": "ok"}'))
            return seconds, expect(status, answer, 200, f"approval of {submission}")

        def submit(team: str, n: int, seed: int) -> tuple[float, int]:
            body = plans.body(team, n, seed, based_on=current.get(team))
            seconds, status, answer = timed(lambda: call(base, planner, "POST", "/api/v1/submissions", body))
            return seconds, expect(status, answer, 201, f"submission for {team}")["id"]

        points = []
        measured = order[0]
        seed = 10_000
        for size in sorted(args.teams):
            started = time.perf_counter()
            for team in order[len(current) : size]:
                seed += 1
                _, submission = submit(team, args.small, seed)
                approve(submission)
                current[team] = submission
            log(f"{kind}: master grown to {size} teams in {time.perf_counter() - started:.1f} s")
            big, small, sends = [], [], []
            for _ in range(args.repeat):
                seed += 1
                sent, submission = submit(measured, args.lines, seed)
                seconds, _ = approve(submission)
                current[measured] = submission
                sends.append(sent)
                big.append(seconds)
                seed += 1
                _, submission = submit(measured, args.small, seed)
                seconds, _ = approve(submission)
                current[measured] = submission
                small.append(seconds)
            master_lines = size * args.small  # the measured team's plan is a small one again
            status, answer = call(base, finance, "GET", "/api/v1/master")
            expect(status, answer, 200, "master")
            if len(answer["teams"]) != size or len(answer["lines"]) != master_lines:
                raise SystemExit(
                    f"the master holds {len(answer['teams'])} teams and {len(answer['lines'])} lines, "
                    f"not {size} and {master_lines}"
                )
            points.append(
                MergePoint(
                    size,
                    (size - 1) * args.small + args.lines,
                    statistics.median(big),
                    statistics.median(small),
                    statistics.median(sends),
                )
            )
        return {"single": single, "many": many, "merge": points}
    finally:
        service.stop_all()


# --- output ------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(kind: str, result: dict, args: argparse.Namespace) -> None:
    single, many = result["single"], result["many"]
    print(f"\n{kind}: submissions of {args.lines:,}-line JSON plans")
    for label, t in (("1 client (baseline)", single), (f"{many.clients} clients", many)):
        print(
            f"  {label:<20} {t.submissions:4d} plans in {t.seconds:7.2f} s   {t.rate:6.2f} plans/s   "
            f"p50 {percentile(t.latencies, 50) * 1000:7.0f} ms   p99 {percentile(t.latencies, 99) * 1000:7.0f} ms   "
            f"{t.rate / single.rate:5.2f}x the 1-client rate"
        )
    points = result["merge"]
    first = points[0]
    print(f"{kind}: approving one team's plan as the master grows (median of {args.repeat})")
    print(
        f"  {'teams':>5} {'master lines':>12}   {'approve ' + format(args.lines, ',') + ' lines':>20}   "
        f"{'ratio':>6}   {'approve ' + str(args.small) + ' lines':>17}   {'ratio':>6}   "
        f"{'submit ' + format(args.lines, ',') + ' lines':>19}"
    )
    for p in points:
        print(
            f"  {p.teams:5d} {p.master_lines:12,d}   {p.approve * 1000:17.1f} ms   {p.approve / first.approve:5.2f}x"
            f"   {p.approve_small * 1000:14.1f} ms   {p.approve_small / first.approve_small:5.2f}x"
            f"   {p.submit * 1000:16.1f} ms"
        )
    last = points[-1]
    print(
        f"  merge at {last.teams} teams vs {first.teams} teams: {last.approve / first.approve:.2f}x "
        f"(target ~1x: proportional to the changed team, not to the master)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1000, help="lines of a measured plan")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--per-client", type=int, default=10, help="plans each client submits")
    p.add_argument("--threads", type=int, default=8, help="the server's threads (plansheet serve --threads)")
    p.add_argument(
        "--teams",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 50, 100, 250, 500],
        help="master sizes, in teams, at which a merge is timed",
    )
    p.add_argument("--small", type=int, default=20, help="lines of the plans that grow the master")
    p.add_argument("--repeat", type=int, default=3, help="approvals timed at each master size (median kept)")
    p.add_argument(
        "--database",
        action="append",
        choices=["sqlite", "postgres"],
        help="sqlite and/or postgres (repeatable; default both)",
    )
    p.add_argument("--workers", type=int, default=1, help="server processes (more than 1: gunicorn, PostgreSQL only)")
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    args = p.parse_args()
    args.redis = None
    if args.quick:
        args.lines, args.per_client, args.teams, args.repeat, args.small = 100, 2, [4, 12], 1, 5
    if min(args.teams) < 1 or args.clients > max(args.teams):
        p.error("--teams must be positive and its largest at least --clients")
    kinds = args.database or (["sqlite", "postgres"] if args.workers == 1 else ["postgres"])
    if args.workers > 1 and "sqlite" in kinds:
        p.error("several workers need PostgreSQL (SQLite serves one process): use --database postgres")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on `kill` too
    started = time.perf_counter()
    load_before = os.getloadavg()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    results = {}
    redis_server = None
    if args.workers > 1:  # the workers share login limits, the queue and the cache: a Redis of this run's own
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            redis_port = sock.getsockname()[1]
        redis_server = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        args.redis = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.5)
    try:
        run_all(kinds, args, log, results)
    finally:
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait()

    cores = os.cpu_count() or 1
    print(
        f"machine: {cpu_model()}, {cores} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()}; load average {load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    server = "waitress, one process" if args.workers == 1 else f"gunicorn, {args.workers} workers, Redis"
    print(
        f"server: plansheet serve --threads {args.threads} --workers {args.workers} ({server}) on 127.0.0.1; "
        f"{args.clients} clients x {args.per_client} plans; run took {time.perf_counter() - started:.0f} s"
    )
    for kind, result in results.items():
        report(kind, result, args)


def run_all(kinds: list[str], args: argparse.Namespace, log: Callable[[str], None], results: dict) -> None:
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"plansheet-bench-{kind}-") as tmp, database(kind, Path(tmp)) as url:
            if url is None:
                continue
            results[kind] = run_database(kind, url, Path(tmp), args, log)


if __name__ == "__main__":
    main()
