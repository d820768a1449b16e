"""The master workbook: every sheet a projection of the one read model, as its reader may see it.

Summary, Lines, Rollup, Variance and Chart come from the master; Performance, the Budget sheet
(once a baseline is locked), Year over year (when the organisation file describes the year before)
and the Spend sheet (once POs are imported) from the views built on the same master. The API's
download, the dashboard's and the background job all build it here.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from addin.consolidate import with_totals, write_master_of
from sheet_templates.master_workbook import lines_segment
from sheet_templates.schema import PlanSchema
from sync_service.budget import baselines
from sync_service.master import model as master_model
from sync_service.master import performance
from sync_service.master.model import Master, typed_lines
from sync_service.master.reports import region_allocations, year_over_year_sheet
from sync_service.platform import jobs
from sync_service.platform.storage import Store, User
from sync_service.spend import report as spend_report

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def master_workbook(m: Master, out: Path, as_of: dt.date, more: Sequence[Any] = ()) -> Path:
    """The master workbook (Summary, Lines, Rollup, Variance, Chart) of the master, allocations in force.

    `more`: further sheets of values (the Budget sheet, `baselines.sheets`), after Performance; the Spend sheet
    (`spend_report.sheets`, once POs are imported) comes last, from the same view.
    """
    schema = m.schema
    held = {h.team: h.submission for h in m.held}
    tables, segments, files = [], [], []
    for team, part in m.table.groupby("team_id", sort=True) if len(m.table) else ():
        part = with_totals(part.drop(columns=["team_id"]).reset_index(drop=True), schema)
        part.insert(0, "source", f"{team} #{held[team]}")
        tables.append(part)
        segments.append(lines_segment(part, schema))
        files.append(
            {"file": f"{team} #{held[team]}", "status": "approved", "lines": len(part), "errors": 0, "warnings": 0}
        )
    whole = (
        pd.concat(tables, ignore_index=True)
        if tables
        else with_totals(typed_lines([], schema), schema).assign(source=pd.Series(dtype=object))
    )
    regions = m.allocation_regions
    allocations = {r: q for r, q in region_allocations(m).items() if r in regions}
    extra = [performance.sheet(m, performance.lines(m)), *more, *spend_report.sheets(m)]
    write_master_of(
        whole,
        segments,
        schema,
        out,
        as_of=as_of,
        files=files,
        issues=[],
        allocations=allocations,
        extra=extra,
        version=m.version,
    )
    return out


@jobs.kind("master.workbook", "Build the master workbook")
def workbook_job(run: Any) -> dict[str, Any]:
    """The job `master.workbook`: the master workbook as the job's owner may see it, kept with the job."""
    schema = run.schema
    as_of = dt.date.fromisoformat(run.job.args["as_of"])
    version, data = master_workbook_bytes(run.store, schema, run.user, as_of)
    result = {"master_version": version, "as_of": run.job.args["as_of"], "bytes": len(data)}
    with run.store.transaction() as session:
        run.succeed(session, result, (f"master-v{version}.xlsx", XLSX_TYPE, data))
    return result


def master_workbook_bytes(store: Store, schema: PlanSchema, user: User, as_of: dt.date) -> tuple[int, bytes]:
    """(master version, the workbook's bytes) of the master as `user` may see it, closed up to `as_of`."""
    view = master_model.load(store, schema, user)
    more = baselines.sheets(store, schema, user)
    earlier = schema.year_before()
    if earlier is not None:  # described by the organisation file: the year against it
        more = [*more, year_over_year_sheet(view, master_model.load(store, earlier, user))]
    with tempfile.TemporaryDirectory() as folder:
        path = master_workbook(view, Path(folder) / "master.xlsx", as_of, more)
        return view.version, path.read_bytes()
