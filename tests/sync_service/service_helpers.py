"""The service in process for the API tests: its Service wrapper and fixtures, plan lines, plans submitted and approved.

Shared by the service's, the dashboard's and the Google Sheets tests. Every expected number the
tests work out from these lines uses the plan rates of the organisation file (`RATES`), each
line's amount converted and rounded half away from zero on its own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import func, select

from addin.reader import plan_from_rows
from sheet_templates import build_schema, load_config
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.budget.allocations import plan_totals
from sync_service.planning.submissions import current_submission
from sync_service.planning.workflow import stored_lines as workflow_lines
from sync_service.platform.context import STORE
from sync_service.platform.jobs import TERMINAL
from sync_service.platform.storage import (
    Job,
    JobEvent,
    MasterVersion,
    Store,
    Submission,
    SubmissionLine,
    SubmissionTotal,
    User,
)
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth, decide

SCHEMA = build_schema(load_config())
RATES = SCHEMA.config.plan_rates


@dataclass
class Service:
    app: Flask
    client: Any
    tokens: dict[str, str]
    store: Store
    url: str


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    upgrade(database_url)
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "emea": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
            "finance2": create_token(session, "frank", "finance"),  # a plan is approved by someone else
        }
    yield Service(app, app.test_client(), tokens, store, database_url)
    store.dispose()


def make_service(database_url: str, **config: Any) -> Service:
    """A service on `database_url` with the bundled organisation and a token per role.

    A close does not build its month's management pack here unless the test asks (`PACK_ON_CLOSE=True`):
    the pack's own tests build it, and a test that only closes leaves no PDF running in the background
    after its database is gone.
    """
    upgrade(database_url)
    config.setdefault("PACK_ON_CLOSE", False)
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, **config})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "emea": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "emea2": create_token(session, "erik", "marketer", ["EMEA-SMB"]),
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
            "finance2": create_token(session, "frank", "finance"),
            "admin": create_token(session, "ada", "admin"),
        }
    return Service(app, app.test_client(), tokens, store, database_url)


BUSINESS_UNIT = {"ENTERPRISE": "Enterprise", "SMB": "SMB"}


def line(
    line_id: str,
    *,
    team: str = "EMEA-ENTERPRISE",
    channel: str = "Events",
    currency: str = "USD",
    code: str | None = None,
    crm: str | None = None,
    actual: str | None = None,
    committed: str | None = None,
    **months: str,
) -> dict[str, Any]:
    """A valid plan line; amounts as decimal text in the line's currency (each line its own campaign)."""
    region, unit = team.split("-")
    values: dict[str, Any] = {
        "line_id": line_id,
        "region": region,
        "business_unit": BUSINESS_UNIT[unit],
        "team": "Demand Gen",
        "campaign": f"Campaign {line_id}",
        "campaign_code": code or f"CC-{line_id}",
        **({"crm_campaign_id": crm} if crm else {}),
        "channel": channel,
        "activity": "Booth",
        "owner": "owner@example.com",
        "currency": currency,
        "status": "Planned",
        **{m: Decimal(v) for m, v in months.items()},
    }
    if actual is not None:
        values["actual"] = Decimal(actual)
    if committed is not None:
        values["committed"] = Decimal(committed)
    return values


def as_json(values: dict[str, Any]) -> dict[str, Any]:
    """Amounts as JSON numbers, as a client sends them (the reader takes them to the cent)."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def submit(
    client: Any, token: str, lines: list[dict[str, Any]], team: str = "EMEA-ENTERPRISE", based_on: Any = None
) -> Any:
    body: dict[str, Any] = {"team": team, "lines": [as_json(x) for x in lines]}
    if based_on is not None:
        body["based_on"] = based_on
    return client.post("/api/v1/submissions", headers=auth(token), json=body)


def approved_plan(service: Service, lines: list[dict[str, Any]], team: str = "EMEA-ENTERPRISE", **kw: Any) -> int:
    """Submitted by one finance user, approved by the other."""
    response = submit(service.client, service.tokens["finance2"], lines, team, **kw)
    assert response.status_code == 201, response.get_data(as_text=True)
    sid = response.get_json()["id"]
    approval = decide(service.client, service.tokens["finance"], sid, "approve", "ok")
    assert approval.status_code == 200, approval.get_data(as_text=True)
    return sid


def stored_plan(
    service: Service, lines: list[dict[str, Any]], team: str = "EMEA-ENTERPRISE", *, approve: bool = True
) -> int:
    """Store a plan straight in the database, past every check, as plans from before a rule was added are stored."""
    grid = [
        [c.name for c in SCHEMA.input_columns],
        *([as_json(x).get(c.name) for c in SCHEMA.input_columns] for x in lines),
    ]
    read = plan_from_rows(grid, SCHEMA, sheet="lines", region=team.split("-")[0])
    with service.store.transaction() as session:
        user = session.scalar(select(User).where(User.name == "frank"))
        current = current_submission(session, team, SCHEMA.calendar.year)
        submission = Submission(
            fiscal_year=SCHEMA.calendar.year,
            team_id=team,
            user_id=user.id,
            source="json",
            raw=b"{}",
            raw_sha256=hashlib.sha256(b"{}").hexdigest(),
            valid=True,
            line_count=len(lines),
            report=[],
            based_on_submission=current,
            base={"submission": current},
            lines=[
                SubmissionLine(position=n, line_id=values["line_id"], row=n + 2, values=values)
                for n, values in enumerate(workflow_lines(read.table))
            ],
        )
        session.add(submission)
        session.flush()
        totals = plan_totals(read.table, SCHEMA)
        session.add_all(
            SubmissionTotal(submission_id=submission.id, quarter=q, channel=c, cents=v) for (q, c), v in totals.items()
        )
        if approve:
            session.add(
                MasterVersion(
                    fiscal_year=SCHEMA.calendar.year, user_id=user.id, team_id=team, submission_id=submission.id
                )
            )
        return submission.id


def cents(amount: Decimal | str) -> int:
    return int(Decimal(amount) * 100)


def reporting(amount_cents: int, currency: str) -> int:
    """Cents of `currency` in reporting cents at the plan rate, rounded half away from zero."""
    exact = Decimal(amount_cents) * RATES[currency]
    return int(exact.copy_abs().quantize(Decimal(1), rounding=ROUND_HALF_UP)) * (-1 if exact < 0 else 1)


def fmt(amount_cents: int) -> str:
    return f"{Decimal(amount_cents) / 100:.2f}"


def get(service: Service, path: str, who: str = "finance") -> dict[str, Any]:
    response = service.client.get(path, headers=auth(service.tokens[who]))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def post_actuals(service: Service, data: bytes, filename: str = "actuals.csv", *, multipart: bool = False, **h) -> Any:
    headers = {**auth(service.tokens["finance"]), **h}
    if multipart:
        form = {"file": (io.BytesIO(data), filename)}
        return service.client.post("/api/v1/actuals", headers=headers, data=form, content_type="multipart/form-data")
    return service.client.post(
        f"/api/v1/actuals?filename={filename}", headers=headers, data=data, content_type="application/octet-stream"
    )


def csv_bytes(rows: list[list[Any]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def xlsx_bytes(rows: list[list[Any]], sheet: str = "GL export") -> bytes:
    book = openpyxl.Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def actuals_by_line(service: Service, as_of: str = "2027-03-01") -> tuple[dict[str, Any], dict[str, int]]:
    """The variance view by campaign (one campaign per line here) and each line's actual in reporting cents."""
    body = get(service, f"/api/v1/variance?by=campaign&as_of={as_of}")
    return body, {r["campaign"].removeprefix("Campaign "): cents(r["actual"]) for r in body["rows"]}


def settled_jobs(store: Store, timeout: float = 180) -> dict[str, str]:
    """Wait until every background job has finished (or `timeout` s); {job id: its newest state}.

    A test whose calls queue jobs (a close builds its month's pack) waits here before its database goes.
    """
    deadline = time.monotonic() + timeout
    while True:
        with store.reading() as session:
            newest = select(func.max(JobEvent.id)).group_by(JobEvent.job_id)
            states = dict(session.execute(select(JobEvent.job_id, JobEvent.state).where(JobEvent.id.in_(newest))).all())
            states |= {j: "queued" for j in session.scalars(select(Job.id)) if j not in states}
        if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)
