"""Offline consolidation: read many filled templates in parallel and write the master workbook.

Each worker reads, validates and renders one plan (its lines as a deflated segment of the
master's Lines sheet), so the main process only sums small tables and stitches bytes.
A plan with any error is left out whole, never merged in part.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from addin.fx import convert_cents
from addin.issues import Issue, Rule, Severity, UnreadableWorkbook
from addin.reader import read_plan
from addin.rollup import period_amounts
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


def find_plan_files(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, str]]:
    """Expand folders into the plan files below them: (path, name to show), sorted, without Office lock files."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in PLAN_SUFFIXES and not child.name.startswith("~$"):
                    found.append((child, child.relative_to(path).as_posix()))
        elif path.exists():
            found.append((path, path.name))
        else:
            raise PlansheetError(f"{given} does not exist")
    return found


def process_file(path: Path, name: str, schema: PlanSchema) -> FileOutcome:
    """Read, validate and render one plan (runs in a worker process)."""
    try:
        read = read_plan(path, schema, display_name=name)
    except UnreadableWorkbook as exc:
        return FileOutcome(name, UNREADABLE, [exc.as_issue()])
    if not read.ok:
        return FileOutcome(name, REJECTED, read.issues, len(read.table))
    table = with_totals(read.table, schema)
    table.insert(0, "source", name)
    return FileOutcome(name, ACCEPTED, read.issues, len(table), table, lines_segment(table, schema))


def with_totals(table: pd.DataFrame, schema: PlanSchema) -> pd.DataFrame:
    """Add `planned_total` (line currency) and `q1_reporting`..`q4_reporting` (reporting currency) in cents."""
    table = table.copy()
    _, months = period_amounts(table, schema, "month")
    table["planned_total"] = months.sum(axis=1)
    _, quarters = period_amounts(table, schema, "quarter")
    currencies = table["currency"].to_numpy(dtype=object)
    for j, q in enumerate(QUARTERS):
        table[f"{q.lower()}_reporting"] = convert_cents(quarters[:, j], currencies, schema.config.plan_rates)
    return table


_WORKER_SCHEMA: PlanSchema | None = None


def _init_worker(schema: PlanSchema) -> None:
    global _WORKER_SCHEMA
    _WORKER_SCHEMA = schema


def _work(path: Path, name: str) -> FileOutcome:
    assert _WORKER_SCHEMA is not None
    return process_file(path, name, _WORKER_SCHEMA)


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
    files = find_plan_files(paths)
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
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["addin.consolidate"])
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(schema,)) as pool:
            futures = {pool.submit(_work, path, name): i for i, (path, name) in enumerate(files)}
            for done, future in enumerate(as_completed(futures), start=1):
                outcome = future.result()
                outcomes[futures[future]] = outcome
                if progress:
                    progress(done, len(files), outcome)
    results = [o for o in outcomes if o is not None]
    accepted = [o for o in results if o.status == ACCEPTED]
    table = pd.concat([o.table for o in accepted], ignore_index=True) if accepted else _empty(schema)
    _cross_file_duplicates(results, table)
    rollup = _sum_by(table, schema, ["region", "channel"], list(QUARTERS))
    closed = [m.name for m in schema.calendar.months if m.last_day <= as_of]
    table["planned_to_date"] = (
        table[closed].to_numpy(dtype=np.int64).sum(axis=1) if closed else np.zeros(len(table), dtype=np.int64)
    )
    by_region = _sum_by(table, schema, ["region"], [*QUARTERS, "planned_to_date", "committed", "actual"])
    content = MasterContent(
        schema=schema,
        segments=[o.segment for o in accepted if o.segment is not None],
        rollup=rollup,
        by_region=by_region,
        files=[o.summary() for o in results],
        as_of=as_of,
        closed_months=len(closed),
        issues=[i.to_dict() for o in results for i in o.issues],
    )
    write_master(out, content)
    return Consolidation(results, table, out, rollup)


def _sum_by(table: pd.DataFrame, schema: PlanSchema, by: list[str], measures: list[str]) -> pd.DataFrame:
    """Sum reporting-currency cents by `by`; a quarter QN sums the `qN_reporting` column."""
    frame = table[by].copy()
    currencies = table["currency"].to_numpy(dtype=object)
    for m in measures:
        if m in QUARTERS:
            frame[m] = table[f"{m.lower()}_reporting"].to_numpy(dtype=np.int64)
        else:
            frame[m] = convert_cents(table[m].to_numpy(dtype=np.int64), currencies, schema.config.plan_rates)
    return frame.groupby(by, sort=True)[measures].sum().reset_index()


def _cross_file_duplicates(results: list[FileOutcome], table: pd.DataFrame) -> None:
    """Warn when the same line ID is in two accepted files: usually one plan sent twice."""
    if table.empty:
        return
    dup = table.duplicated(["region", "line_id"], keep="first").to_numpy()
    if not dup.any():
        return
    first = table.loc[~dup].set_index(["region", "line_id"])["source"]
    by_file = {o.file: o for o in results}
    for source, region, line_id, row in table.loc[dup, ["source", "region", "line_id", "_row"]].itertuples(index=False):
        other = first[(region, line_id)]
        by_file[source].issues.append(
            Issue(
                Rule.DUPLICATE_ID,
                Severity.WARNING,
                f"Line ID {line_id} is also in {other}; is this plan in two files?",
                source,
                "Plan",
                f"A{row}",
                "line_id",
                int(row),
            )
        )


def _empty(schema: PlanSchema) -> pd.DataFrame:
    text = ["source", "region", "channel", "currency", "line_id"]
    numbers = ["_row", "committed", "actual", *(m.name for m in schema.month_columns)]
    numbers += [f"{q.lower()}_reporting" for q in QUARTERS]
    return pd.DataFrame(
        {**{c: pd.Series(dtype=object) for c in text}, **{c: pd.Series(dtype=np.int64) for c in numbers}}
    )
