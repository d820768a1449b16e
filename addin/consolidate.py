"""Offline consolidation: read many filled templates in parallel and write the master workbook.

Each worker reads, validates and renders one plan (its lines as a deflated segment of the
master's Lines sheet), so the main process only sums small tables and stitches bytes.
A plan with any error is left out whole, never merged in part.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from addin import reporting as grain
from addin.forecast import closed_months
from addin.issues import Issue, Rule, Severity, UnreadableWorkbook
from addin.reader import read_plan
from addin.rollup import period_amounts
from sheet_templates.cells import MAX_ROWS as EXCEL_MAX_ROWS
from sheet_templates.config import QUARTERS
from sheet_templates.errors import PlansheetError
from sheet_templates.master_workbook import MasterContent, lines_segment, write_master
from sheet_templates.schema import PlanSchema
from sheet_templates.xlsx_stream import Segment

PLAN_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xls", ".xlsb", ".csv")
ACCEPTED, REJECTED, UNREADABLE = "accepted", "rejected", "unreadable"


@dataclass
class FileOutcome:
    """What became of one plan file."""

    file: str
    status: str
    issues: list[Issue]
    lines: int = 0
    table: pd.DataFrame | None = None
    segment: Segment | None = None
    id_cell: str = "A"  # the column letter of Line ID in this file

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    def summary(self) -> dict[str, object]:
        errors = sum(i.severity is Severity.ERROR for i in self.issues)
        return {
            "file": self.file,
            "status": self.status,
            "lines": self.lines,
            "errors": errors,
            "warnings": len(self.issues) - errors,
        }


@dataclass
class Consolidation:
    """The result: every file's outcome, the accepted lines and the master workbook's path."""

    files: list[FileOutcome]
    table: pd.DataFrame
    out: Path
    rollup: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rejected(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status != ACCEPTED]


def find_plan_files(paths: Iterable[str | os.PathLike[str]], exclude: Path | None = None) -> list[tuple[Path, str]]:
    """Expand folders into the plan files below them: (path, name to show), sorted.

    Office lock files (~$...) and `exclude` (the master being written) are left out.
    """
    found: list[tuple[Path, str]] = []
    skip = exclude.resolve() if exclude is not None else None
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if (
                    child.is_file()
                    and child.suffix.lower() in PLAN_SUFFIXES
                    and not child.name.startswith("~$")
                    and child.resolve() != skip
                ):
                    found.append((child, child.relative_to(path).as_posix()))
        elif path.exists():
            found.append((path, path.name))
        else:
            raise PlansheetError(f"{given} does not exist")
    return found


def process_file(path: Path, name: str, schema: PlanSchema) -> FileOutcome:
    """Read, validate and render one plan (runs in a worker process); one bad file never stops the others."""
    try:
        read = read_plan(path, schema, display_name=name)
    except UnreadableWorkbook as exc:
        return FileOutcome(name, UNREADABLE, [exc.as_issue()])
    except Exception as exc:  # a file that trips a bug is reported as unreadable, alone
        message = f"{name} could not be read (internal error: {type(exc).__name__}: {exc}); please report it"
        return FileOutcome(name, UNREADABLE, [Issue(Rule.CORRUPT, Severity.ERROR, message, file=name)])
    if not read.ok:
        return FileOutcome(name, REJECTED, read.issues, len(read.table))
    table = with_totals(read.table, schema)
    table.insert(0, "source", name)
    outcome = FileOutcome(name, ACCEPTED, read.issues, len(table), table, lines_segment(table, schema))
    outcome.id_cell = read.letters.get("line_id", "A")
    return outcome


def with_totals(table: pd.DataFrame, schema: PlanSchema) -> pd.DataFrame:
    """Add `planned_total` (line currency) and `q1_reporting`..`q4_reporting` (reporting currency) in cents."""
    table = table.copy()
    _, months = period_amounts(table, schema, "month")
    table["planned_total"] = months.sum(axis=1)
    quarters = grain.quarter_cents(grain.month_cents(table, schema))
    for j, q in enumerate(QUARTERS):
        table[f"{q.lower()}_reporting"] = quarters[:, j]
    return table


_WORKER_SCHEMA: PlanSchema | None = None


def _init_worker(schema: PlanSchema) -> None:
    global _WORKER_SCHEMA
    _WORKER_SCHEMA = schema


def _work(path: Path, name: str) -> FileOutcome:
    assert _WORKER_SCHEMA is not None
    return process_file(path, name, _WORKER_SCHEMA)


def _context() -> multiprocessing.context.BaseContext:
    """How to start the workers: fork when it is safe, else a fork server, else spawn (Windows).

    Forking copies the parent, imports done, in milliseconds; but forking a process that runs
    other threads can copy a lock some thread holds, so only a single-threaded process on Linux
    (the command line) forks. Elsewhere a fork server imports this module once and forks the
    workers from it; where there is none (Windows), each worker starts afresh.
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["addin.consolidate"])
        return ctx
    return multiprocessing.get_context("spawn")


def consolidate(
    paths: Sequence[str | os.PathLike[str]],
    schema: PlanSchema,
    out: Path,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
    as_of: dt.date | None = None,
) -> Consolidation:
    """Consolidate the plans under `paths` into the master workbook `out`.

    `as_of` (default today) decides which fiscal months are closed: actual spend is compared
    with the spend planned for those months.
    """
    as_of = as_of or dt.date.today()
    files = find_plan_files(paths, exclude=out)
    if not files:
        raise PlansheetError("no plan files (.xlsx) found in " + ", ".join(str(p) for p in paths))
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    outcomes: list[FileOutcome | None] = [None] * len(files)
    if jobs == 1:
        for i, (path, name) in enumerate(files):
            outcomes[i] = process_file(path, name, schema)
            if progress:
                progress(i + 1, len(files), outcomes[i])
    else:
        with ProcessPoolExecutor(jobs, mp_context=_context(), initializer=_init_worker, initargs=(schema,)) as pool:
            futures = {pool.submit(_work, path, name): i for i, (path, name) in enumerate(files)}
            for done, future in enumerate(as_completed(futures), start=1):
                outcome = future.result()
                outcomes[futures[future]] = outcome
                if progress:
                    progress(done, len(files), outcome)
    results = [o for o in outcomes if o is not None]
    _reject_repeated_lines(results)
    accepted = [o for o in results if o.status == ACCEPTED]
    if sum(o.lines for o in accepted) > EXCEL_MAX_ROWS - 1:
        raise PlansheetError(
            f"the accepted plans hold {sum(o.lines for o in accepted):,} lines, more than an Excel sheet's "
            f"{EXCEL_MAX_ROWS - 1:,}; consolidate fewer plans at a time"
        )
    table = pd.concat([o.table for o in accepted], ignore_index=True) if accepted else _empty(schema)
    rollup = write_master_of(
        table,
        [o.segment for o in accepted if o.segment is not None],
        schema,
        out,
        as_of=as_of,
        files=[o.summary() for o in results],
        issues=[i.to_dict() for o in results for i in o.issues],
    )
    return Consolidation(results, table, out, rollup)


def write_master_of(
    table: pd.DataFrame,
    segments: Sequence[Segment],
    schema: PlanSchema,
    out: Path,
    *,
    as_of: dt.date,
    files: list[dict[str, object]],
    issues: list[dict[str, object]],
    allocations: Mapping[str, Mapping[str, int]] | None = None,
    extra: Sequence[Any] = (),
    version: int | None = None,
) -> pd.DataFrame:
    """Write the master workbook of `table` (lines already rendered as `segments`); return its rollup.

    `table` holds every line with `with_totals` applied; `files` and `issues` fill the
    Summary and Issues sheets (a file, or for the service a team's approved submission, each).
    """
    rollup = _sum_by(table, schema, ["region", "channel"], list(QUARTERS))
    closed = [m.name for m in schema.calendar.months[: closed_months(schema.calendar, as_of)]]
    # Already in reporting cents, at the one grain: the closed months' converted cents, summed.
    table["planned_to_date"] = grain.month_cents(table, schema)[:, : len(closed)].sum(axis=1).astype(np.int64)
    by_region = _sum_by(table, schema, ["region"], [*QUARTERS, "planned_to_date", "committed", "actual"])
    lines = table.groupby("region").size() if len(table) else pd.Series(dtype=np.int64)
    # Every configured region appears, so a region whose plan was rejected shows its allocation with no plan.
    by_region = by_region.set_index("region").reindex(schema.config.regions, fill_value=0).reset_index()
    by_region["lines"] = by_region["region"].map(lines).fillna(0).astype(np.int64)
    content = MasterContent(
        schema=schema,
        segments=segments,
        rollup=rollup,
        by_region=by_region,
        files=files,
        as_of=as_of,
        closed_months=len(closed),
        issues=issues,
        allocations=allocations,
        extra=tuple(extra),
        version=version,
    )
    write_master(out, content)
    return rollup


def _sum_by(table: pd.DataFrame, schema: PlanSchema, by: list[str], measures: list[str]) -> pd.DataFrame:
    """Reporting cents summed by `by`: a quarter QN sums `qN_reporting`; other money is converted per line."""
    frame = table[by].copy()
    for m in measures:
        if m in QUARTERS:
            frame[m] = table[f"{m.lower()}_reporting"].to_numpy(dtype=np.int64)
        elif m == "planned_to_date":  # reporting cents already
            frame[m] = table[m].to_numpy(dtype=np.int64)
        else:
            frame[m] = grain.line_cents(table, schema, m)
    return frame.groupby(by, sort=True)[measures].sum().reset_index()


def _reject_repeated_lines(results: list[FileOutcome]) -> None:
    """Reject, whole, a plan whose line IDs an earlier accepted plan already has: usually the same plan sent twice.

    Counting both would double the money; the first file (in name order) is kept.
    """
    seen: dict[tuple[str, str], str] = {}
    for outcome in results:
        if outcome.status != ACCEPTED or outcome.table is None:
            continue
        keys = list(zip(outcome.table["region"].tolist(), outcome.table["line_id"].tolist(), strict=True))
        repeated = [(i, seen[k]) for i, k in enumerate(keys) if k in seen]
        if not repeated:
            seen.update(dict.fromkeys(keys, outcome.file))
            continue
        rows = outcome.table["_row"].tolist()
        for i, other in repeated:
            line_id = keys[i][1]
            outcome.issues.append(
                Issue(
                    Rule.DUPLICATE_ID,
                    Severity.ERROR,
                    f"Line ID {line_id} is also in {other}; the same plan seems to be in two files, so this one "
                    "was left out (remove the copy, or give the lines their own IDs)",
                    outcome.file,
                    "Plan",
                    f"{outcome.id_cell}{rows[i]}",
                    "line_id",
                    int(rows[i]),
                )
            )
        outcome.status, outcome.table, outcome.segment = REJECTED, None, None


def _empty(schema: PlanSchema) -> pd.DataFrame:
    text = ["source", "region", "channel", "currency", "line_id"]
    numbers = ["_row", "committed", "actual", *(m.name for m in schema.month_columns)]
    numbers += [f"{q.lower()}_reporting" for q in QUARTERS]
    return pd.DataFrame(
        {**{c: pd.Series(dtype=object) for c in text}, **{c: pd.Series(dtype=np.int64) for c in numbers}}
    )
