"""Benchmark `plansheet consolidate` against a finance analyst's pandas loop and a bare calamine parse.

Generates N filled templates of L lines (cached under build/bench) and a copy of each saved
again by openpyxl, then, for each kind, in the same run:
  1. parse: python-calamine reading every Plan sheet, nothing else (the floor);
  2. plansheet consolidate --jobs 1 and with all cores (the real command, as a subprocess);
  3. baseline: pandas.read_excel(engine="openpyxl") per file, concat, groupby.
Prints the figures and the ratios the issues set as targets (10x the baseline, 1.3x the parse).

    python benchmarks/consolidate.py [--files 40] [--lines 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make(args: tuple[int, int, str]) -> str:
    from sheet_templates import build_schema, load_config
    from sheet_templates.excel_template import build_template
    from sheet_templates.samples import sample_lines

    index, lines, folder = args
    schema = build_schema(load_config())
    region = schema.config.regions[index % len(schema.config.regions)]
    path = Path(folder) / f"plan-{index:03d}-{region}.xlsx"
    data = sample_lines(schema, region, lines, seed=index, id_prefix=f"{region}{index:03d}")
    build_template(schema, region, path, lines=data, spare_rows=20)
    return str(path)


def _resave(args: tuple[str, str]) -> None:
    import openpyxl

    source, target = args
    openpyxl.load_workbook(source).save(target)


def resaved(folder: Path) -> Path:
    """The same plans opened and saved again by openpyxl, as a script or another tool rewrites them.

    openpyxl writes shared strings, no cached formula results and its own styles, so the files
    differ from the builder's in the parts a reader spends its time on.
    """
    target = folder.with_name(folder.name + "-openpyxl")
    done = target / ".complete"
    if done.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        list(pool.map(_resave, [(str(p), str(target / p.name)) for p in sorted(folder.glob("*.xlsx"))]))
    done.write_text("ok")
    print(f"saved {target.name} again with openpyxl in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def generate(files: int, lines: int) -> Path:
    folder = ROOT / "build" / "bench" / f"plans-{files}x{lines}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        list(pool.map(_make, [(i, lines, str(folder)) for i in range(files)]))
    done.write_text("ok")
    print(f"generated {files} files x {lines} lines in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def _parse(path: str) -> int:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(path)
    rows = wb.get_sheet_by_name("Plan").to_python(skip_empty_area=False)
    wb.close()
    return sum(len(r) for r in rows)


def parse_only(folder: Path, jobs: int = 1) -> float:
    """Only parse the Plan sheets with python-calamine: serially, or in `jobs` processes like consolidate."""
    paths = [str(p) for p in sorted(folder.glob("*.xlsx"))]
    started = time.perf_counter()
    if jobs == 1:
        for path in paths:
            _parse(path)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_parse, paths))
    return time.perf_counter() - started


def consolidate_cli(folder: Path, jobs: int) -> float:
    exe = Path(sys.executable).with_name("plansheet")
    out = ROOT / "build" / "bench" / "master.xlsx"
    started = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "consolidate", str(folder), "--out", str(out), "--jobs", str(jobs)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"consolidate failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def naive_baseline(folder: Path) -> float:
    import pandas as pd

    started = time.perf_counter()
    frames = [pd.read_excel(path, sheet_name="Plan", engine="openpyxl") for path in sorted(folder.glob("*.xlsx"))]
    lines = pd.concat(frames, ignore_index=True)
    months = [
        c
        for c in lines.columns
        if c[:3] in {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    ]
    lines = lines.dropna(subset=["Channel"])
    lines.groupby(["Region", "Channel"])[months].sum()
    return time.perf_counter() - started


def measure(folder: Path, label: str, args: argparse.Namespace, cores: int) -> None:
    """Every figure for one folder of plans, baselines first, and the targets' verdicts."""
    best = lambda f: min(f() for _ in range(args.repeat))  # noqa: E731
    parse = best(lambda: parse_only(folder))
    parse_parallel = best(lambda: parse_only(folder, cores))
    one = best(lambda: consolidate_cli(folder, 1))
    many = best(lambda: consolidate_cli(folder, cores))
    baseline = None if args.skip_baseline else naive_baseline(folder)
    print(f"\n{label}: {args.files} plans x {args.lines:,} lines ({args.files * args.lines:,} lines), load {load()}")
    print(f"calamine parse only, 1 process         {parse:8.2f} s")
    print(f"calamine parse only, {cores} processes       {parse_parallel:8.2f} s")
    print(f"plansheet consolidate --jobs 1         {one:8.2f} s   {one / parse:5.2f}x the 1-process parse")
    print(
        f"plansheet consolidate --jobs {cores:<2}        {many:8.2f} s   {many / parse:5.2f}x the 1-process parse, "
        f"{many / parse_parallel:5.2f}x the {cores}-process parse"
    )
    verdict = "met" if many <= 1.3 * parse else "NOT met"
    print(f"target: within 1.3x of the 1-process parse: {verdict} ({many / parse:.2f}x)")
    if baseline is not None:
        print(
            f"naive pandas+openpyxl loop (baseline)  {baseline:8.2f} s   "
            f"{baseline / many:5.1f}x slower than consolidate --jobs {cores}, {baseline / one:5.1f}x than --jobs 1"
        )
        print(f"target: >= 10x faster than the baseline: {'met' if baseline >= 10 * many else 'NOT met'}")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--lines", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3, help="runs of the fast measurements (best is kept)")
    p.add_argument("--skip-baseline", action="store_true", help="skip the slow pandas/openpyxl loop")
    args = p.parse_args()
    folder = generate(args.files, args.lines)
    cores = os.cpu_count() or 1
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, {platform.system()}")
    measure(folder, "the template builder's files", args, cores)
    measure(resaved(folder), "the same plans saved again by openpyxl", args, cores)


if __name__ == "__main__":
    main()
