"""Background jobs: Google pushes and workbook builds off the request, on a real queue, losing nothing.

The service and `plansheet worker` run as real processes on a real PostgreSQL database and a real
Redis server, pushing to the Sheets API stand-in over HTTP; workers are killed with SIGKILL in the
middle of their work. On the embedded default (SQLite, no Redis) the same jobs run on threads of
the service, with the same answers.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sheets_standin import SheetsFake

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.integrations.google import client as gsheets
from sync_service.platform import jobs
from sync_service.platform.context import STORE
from sync_service.platform.storage import Job
from tests.databases import upgrade
from tests.sync_service.live_server import CLI, as_json, call, init, service_env, start, stop, token
from tests.system_deps import private_redis

SCHEMA = build_schema(load_config())
TEAMS = ["EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE", "NA-SMB", "APAC-ENTERPRISE", "LATAM-SMB"]


def plan(team: str, seed: int, n: int = 4) -> list[dict[str, Any]]:
    region = team.split("-")[0]
    return [as_json(x) for x in sample_lines(SCHEMA, region, n, seed=seed, id_prefix=f"{team[:4]}{team[-3:]}{seed}")]


def google_env(fake: SheetsFake, master_id: str) -> dict[str, str]:
    return {
        "PLANSHEET_GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
        "PLANSHEET_GOOGLE_API_BASE": fake.base_url,
        "PLANSHEET_GOOGLE_BACKOFF": "0.05",
        "PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID": master_id,
        "PLANSHEET_JOB_BACKOFF": "0.2",
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`plansheet worker`, looking for dead workers' jobs every half second; returns once it listens."""
    import redis
    from rq import Worker

    process = subprocess.Popen(
        [*CLI, "worker", "--recover-every", "0.5"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    connection = redis.Redis.from_url(env["PLANSHEET_REDIS_URL"])
    deadline = time.monotonic() + 30
    while not any(w.pid == process.pid for w in Worker.all(connection=connection)):
        assert process.poll() is None, "plansheet worker exited"
        assert time.monotonic() < deadline, "plansheet worker did not start"
        time.sleep(0.1)
    return process


def swaps(fake: SheetsFake) -> int:
    """Pushes that Google took: each ends with the one batchUpdate that swaps the staged sheets in."""
    return sum(
        1
        for r in fake.log
        if r.method == "POST"
        and r.path.endswith(":batchUpdate")
        and r.status == 200
        and b"updateSheetProperties" in r.body
    )


def sheet_line_ids(fake: SheetsFake, master_id: str) -> list[str]:
    return sorted(row[1] for row in fake.grid(master_id, "Master!A1:B2000")[1:])


def wait_for(base: str, finance: str, job: str, seconds: float = 180) -> dict[str, Any]:
    """The job once finished (asking the service to wait, again and again, up to `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        status, answer = call(base, finance, "GET", f"/api/v1/jobs/{job}", wait=30)
        assert status == 200, answer
        if answer["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return answer


@pytest.fixture
def queue_world(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """PostgreSQL, a private Redis, the Sheets stand-in with a master spreadsheet, and the service's environment."""
    with SheetsFake.serve() as fake, private_redis(tmp_path / "redis") as redis_url:
        gc = gsheets.client(
            gsheets.GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01)
        )
        master_id = gc.create("Marketing master budget").id
        env = {**service_env(postgres_url), "PLANSHEET_REDIS_URL": redis_url, **google_env(fake, master_id)}
        init(env)
        yield {"env": env, "fake": fake, "master_id": master_id, "redis_url": redis_url}


@pytest.mark.postgres
@pytest.mark.redis
def test_a_push_whose_worker_is_killed_mid_push_is_finished_once_by_the_next_worker(queue_world) -> None:
    env, fake, master_id = queue_world["env"], queue_world["fake"], queue_world["master_id"]
    process, base = start(env, 4)
    worker = start_worker(env)
    try:
        sam, fiona = token(env, "sam", "finance"), token(env, "fiona", "finance")
        status, sub = call(base, sam, "POST", "/api/v1/submissions", {"team": TEAMS[0], "lines": plan(TEAMS[0], 1)})
        assert status == 201, sub
        assert call(base, fiona, "POST", f"/api/v1/submissions/{sub['id']}/approve", {})[0] == 200

        fake.clear_log()
        fake.inject(method="POST", path=r"values:batchUpdate$", delay=4.0, times=1)  # the values: slow
        status, job = call(base, fiona, "POST", "/api/v1/gsheets/master/push", {})
        assert status == 202 and job["status"] == "queued", job
        deadline = time.monotonic() + 20
        while not any(r.path.endswith("values:batchUpdate") for r in fake.log) and not any(
            r.path.endswith(":batchUpdate") and b"addSheet" in r.body for r in list(fake.log)
        ):
            assert time.monotonic() < deadline, "the push never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the worker is now waiting for Google to take the values
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert call(base, fiona, "GET", f"/api/v1/jobs/{job['id']}")[1]["status"] == "started"
        assert swaps(fake) == 0  # the master sheet still shows what it showed

        worker = start_worker(env)  # a new worker finds the job nobody is running and runs it again
        done = wait_for(base, fiona, job["id"])
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert [h["state"] for h in done["history"]] == ["queued", "started", "started", "succeeded"]
        assert swaps(fake) == 1
        _, master = call(base, fiona, "GET", "/api/v1/master")
        assert sheet_line_ids(fake, master_id) == sorted(line["line_id"] for line in master["lines"])
        _, audit = call(base, fiona, "GET", "/api/v1/audit?limit=50")
        pushes = [e for e in audit["events"] if e["action"] == "gsheets.push"]
        assert len(pushes) == 1 and pushes[0]["detail"]["job"] == job["id"]
    finally:
        stop(worker)
        stop(process)


@pytest.mark.postgres
@pytest.mark.redis
def test_many_users_lose_nothing_when_a_web_worker_and_the_job_worker_are_killed(queue_world) -> None:
    """Plans submitted and approved from many threads with every approval pushing, through two web
    workers and a job worker; one web worker and the job worker are killed with SIGKILL midway."""
    env = {**queue_world["env"], "PLANSHEET_GOOGLE_PUSH_ON_APPROVAL": "true"}
    fake, master_id = queue_world["fake"], queue_world["master_id"]
    fake.inject(method="POST", path=r"values:batchUpdate$", delay=0.15, times=None)  # pushes take a while
    process, base = start(env, 4, "--workers", "2", ready="/ready", timeout=60)
    worker = start_worker(env)
    sam, fiona = token(env, "sam", "finance"), token(env, "fiona", "finance")
    acknowledged: dict[str, list[int]] = {team: [] for team in TEAMS}
    pushes: list[str] = []
    failures: list[str] = []

    def retried(who: str, method: str, path: str, body: Any) -> tuple[int, Any]:
        """A client that sends again, with the same Idempotency-Key, when its connection is cut."""
        import urllib.error
        import urllib.request

        key = uuid.uuid4().hex
        for _ in range(150):
            request = urllib.request.Request(
                f"{base}{path}",
                data=json.dumps(body).encode(),
                method=method,
                headers={"Authorization": f"Bearer {who}", "Content-Type": "application/json", "Idempotency-Key": key},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, json.load(error)
            except (OSError, ConnectionError):  # the worker that had it died: send it again
                time.sleep(0.2)
        raise AssertionError(f"{path} never answered")

    def team_work(team: str) -> None:
        try:
            based_on = 0
            for seed in (1, 2, 3):
                status, sub = retried(
                    sam,
                    "POST",
                    "/api/v1/submissions",
                    {"team": team, "lines": plan(team, seed), "based_on": {"submission": based_on}},
                )
                assert status == 201, (team, status, sub)
                status, decided = retried(fiona, "POST", f"/api/v1/submissions/{sub['id']}/approve", {})
                assert status == 200, (team, status, decided)
                acknowledged[team].append(sub["id"])
                if "master_sheet" in decided:  # a replayed answer is the first one, without it
                    pushes.append(decided["master_sheet"]["job"])
                based_on = sub["id"]
        except Exception as exc:  # reported by the main thread
            failures.append(repr(exc))

    threads = [threading.Thread(target=team_work, args=(team,)) for team in TEAMS]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(len(v) for v in acknowledged.values()) < 4:
            assert time.monotonic() < deadline and not failures, failures
            time.sleep(0.05)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGKILL)  # a web worker, with requests in hand
        worker.send_signal(signal.SIGKILL)  # the job worker, most likely mid-push
        worker.wait()
        time.sleep(1.0)
        worker = start_worker(env)
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures
        assert all(len(ids) == 3 for ids in acknowledged.values()), acknowledged

        # Every approval the clients were told of is in the master: each team's third plan.
        _, master = call(base, fiona, "GET", "/api/v1/master")
        held = {p["team"]: p["submission"] for p in master["teams"]}
        assert held == {team: ids[-1] for team, ids in acknowledged.items()}
        # Every push job written by an approval finishes, none failed, and the sheet shows the final master.
        _, listing = call(base, fiona, "GET", "/api/v1/jobs?limit=500")
        push_jobs = [j for j in listing["jobs"] if j["kind"] == "gsheets.push"]
        assert len(push_jobs) == len(TEAMS) * 3  # one per approval, replayed answers included
        assert set(pushes) <= {j["id"] for j in push_jobs}
        for j in push_jobs:
            assert wait_for(base, fiona, j["id"])["status"] == "succeeded"
        assert sheet_line_ids(fake, master_id) == sorted(line["line_id"] for line in master["lines"])
        _, audit = call(base, fiona, "GET", "/api/v1/audit?limit=5000")
        audited = [e["detail"]["job"] for e in audit["events"] if e["action"] == "gsheets.push"]
        assert len(audited) == len(set(audited)) == len(push_jobs)  # each push recorded once
    finally:
        for t in threads:
            t.join(timeout=1)
        stop(worker)
        stop(process, timeout=60)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.redis
def test_an_import_whose_worker_is_killed_mid_import_is_imported_once_by_the_next_worker(queue_world) -> None:
    import urllib.request

    env = queue_world["env"]
    process, base = start(env, 2)
    worker = start_worker(env)
    try:
        sam, fiona = token(env, "sam", "finance"), token(env, "fiona", "finance")
        lines = [{**line, "currency": "USD"} for line in plan(TEAMS[0], 4, n=5)]  # the export's currency
        status, sub = call(base, sam, "POST", "/api/v1/submissions", {"team": TEAMS[0], "lines": lines})
        assert status == 201, sub
        assert call(base, fiona, "POST", f"/api/v1/submissions/{sub['id']}/approve", {})[0] == 200
        # A year of postings: big enough that parsing it takes the worker a while.
        rows = 120_000
        export = "Line ID,Amount,Posting date\n" + "".join(
            f"{lines[i % 5]['line_id']},{1 + i % 97}.{i % 100:02d},2026-03-31\n" for i in range(rows)
        )
        cents = sum((1 + i % 97) * 100 + i % 100 for i in range(rows))
        request = urllib.request.Request(
            f"{base}/api/v1/actuals?filename=year.csv",
            data=export.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {fiona}", "Content-Type": "text/csv", "Prefer": "respond-async"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 202
            job = json.load(response)
        deadline = time.monotonic() + 30
        while call(base, fiona, "GET", f"/api/v1/jobs/{job['id']}")[1]["status"] != "started":
            assert time.monotonic() < deadline, "the import never started"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # in the middle of reading the file
        worker.wait()
        assert call(base, fiona, "GET", "/api/v1/master/version")[1]["actuals_import"] == 0  # nothing half-done

        worker = start_worker(env)
        done = wait_for(base, fiona, job["id"])
        assert done["status"] == "succeeded", done
        assert [h["state"] for h in done["history"]] == ["queued", "started", "started", "succeeded"]
        assert done["result"]["rows"] == rows and done["result"]["matched"] == rows
        _, version = call(base, fiona, "GET", "/api/v1/master/version")
        assert version["actuals_import"] == done["result"]["id"]
        _, audit = call(base, fiona, "GET", "/api/v1/audit?limit=50")
        assert len([e for e in audit["events"] if e["action"] == "actuals.import"]) == 1  # imported once
        _, master = call(base, fiona, "GET", "/api/v1/master")
        booked = sum(line["actual"] for line in master["lines"])  # stored cents
        assert done["result"]["lines"] == 5 and booked == cents  # every posting, once
    finally:
        stop(worker)
        stop(process)


def test_a_job_written_but_never_queued_is_queued_by_recovery(tmp_path: Path) -> None:
    """The hand-over to Redis is lost (the process died, Redis restarted empty): the job is not."""
    with private_redis(tmp_path / "redis") as redis_url:
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        upgrade(url)
        app = create_app({"DATABASE_URL": url, "TESTING": True, "REDIS_URL": redis_url})
        with app.extensions[STORE].transaction() as session:
            sync_teams(session, SCHEMA)
            create_token(session, "fiona", "finance")
            from sync_service.platform.storage import User

            fiona = session.query(User).filter_by(name="fiona").one()
            job = jobs.create(session, "master.workbook", {"as_of": "2026-06-30"}, fiona).id
        assert jobs.recover(app, grace=0.0) == 1
        assert jobs.recover(app, grace=0.0) == 0  # queued now: not queued twice
        env = {**service_env(url), "PLANSHEET_REDIS_URL": redis_url}
        subprocess.run([*CLI, "worker", "--burst"], env=env, check=True, capture_output=True, timeout=120)
        with app.extensions[STORE].reading() as session:
            assert jobs.view(session, session.get(Job, job))["status"] == "succeeded"
        app.extensions[STORE].dispose()


def test_a_push_that_landed_is_not_sent_again() -> None:
    with SheetsFake.serve() as fake:
        settings = gsheets.GoogleSettings(
            credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01
        )
        gc = gsheets.client(settings)
        target = gc.create("Master").id
        sheets = gsheets.master_sheets(SCHEMA, [], {"rows": []}, {"rows": []})
        first = gsheets.push_master(gc, target, sheets, settings, mark="job-1")
        assert not first.already_pushed
        fake.clear_log()
        again = gsheets.push_master(gc, target, sheets, settings, mark="job-1")
        assert again.already_pushed and again.requests == 1  # only the look at the sheet's marks
        assert swaps(fake) == 0
        other = gsheets.push_master(gc, target, sheets, settings, mark="job-2")
        assert not other.already_pushed and swaps(fake) == 1


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], SheetsFake, str]]:
    """The embedded default: SQLite, no Redis; jobs run on the service's own threads."""
    with SheetsFake.serve() as fake:
        gc = gsheets.client(
            gsheets.GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01)
        )
        master_id = gc.create("Marketing master budget").id
        url = f"sqlite:///{tmp_path / 'inline.db'}"
        upgrade(url)
        config = {k.removeprefix("PLANSHEET_"): v for k, v in google_env(fake, master_id).items()}
        app = create_app({"DATABASE_URL": url, "TESTING": True, "GOOGLE_RETRIES": 0, **config})
        with app.extensions[STORE].transaction() as session:
            sync_teams(session, SCHEMA)
            tokens = {
                "maria": create_token(session, "maria", "marketer", [TEAMS[0]]),
                "nick": create_token(session, "nick", "marketer", [TEAMS[2]]),
                "sam": create_token(session, "sam", "finance"),
                "fiona": create_token(session, "fiona", "finance"),
            }
        yield app, tokens, fake, master_id
        app.extensions[STORE].dispose()


def bearer(token_: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_}", **extra}


def test_a_failing_push_is_retried_with_backoff_and_its_history_kept(inline) -> None:
    app, tokens, fake, _master_id = inline
    api = app.test_client()
    fake.inject(method="POST", path=r":batchUpdate$", status=503, times=2)  # Google down for two attempts
    queued = api.post("/api/v1/gsheets/master/push", headers=bearer(tokens["fiona"]), json={})
    assert queued.status_code == 202 and queued.headers["Location"] == f"/api/v1/jobs/{queued.get_json()['id']}"
    done = api.get(queued.headers["Location"], headers=bearer(tokens["fiona"], Prefer="wait=20")).get_json()
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 3
    states = [h["state"] for h in done["history"]]
    assert states == ["queued", "started", "retrying", "started", "retrying", "started", "succeeded"]
    assert swaps(fake) == 1
    # The waits doubled: 0.2 s, then 0.4 s.
    at = [h["at"] for h in done["history"] if h["state"] == "started"]
    import datetime as dt

    gaps = [
        (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds() for a, b in itertools.pairwise(at)
    ]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps
    # Others see only their own jobs.
    hidden = api.get(queued.headers["Location"], headers=bearer(tokens["maria"]))
    assert hidden.status_code == 404
    assert api.get("/api/v1/jobs", headers=bearer(tokens["maria"])).get_json()["jobs"] == []


def test_a_push_refused_for_configuration_is_refused_at_once_and_queues_nothing(inline) -> None:
    app, tokens, _, _ = inline
    app.config["GOOGLE_MASTER_SPREADSHEET_ID"] = None
    api = app.test_client()
    answer = api.post("/api/v1/gsheets/master/push", headers=bearer(tokens["fiona"]), json={})
    assert answer.status_code == 503 and "GOOGLE_MASTER_SPREADSHEET_ID" in answer.get_json()["detail"]
    assert api.get("/api/v1/jobs", headers=bearer(tokens["fiona"])).get_json()["jobs"] == []
    assert api.post("/api/v1/gsheets/master/push", headers=bearer(tokens["maria"]), json={}).status_code == 403


def test_the_master_workbook_is_built_as_a_job_of_what_its_owner_may_see(inline) -> None:
    app, tokens, _, _ = inline
    api = app.test_client()
    for team, seed in ((TEAMS[0], 1), (TEAMS[2], 2)):
        sub = api.post(
            "/api/v1/submissions", headers=bearer(tokens["sam"]), json={"team": team, "lines": plan(team, seed)}
        )
        assert sub.status_code == 201, sub.get_json()
        assert api.post(f"/api/v1/submissions/{sub.get_json()['id']}/approve", headers=bearer(tokens["fiona"]), json={})
    answer = api.post(
        "/api/v1/master/workbook", headers=bearer(tokens["maria"], Prefer="wait=30"), json={"as_of": "2026-06-30"}
    )
    assert answer.status_code == 200, answer.get_json()
    job = answer.get_json()
    assert job["status"] == "succeeded" and job["file"] == f"/api/v1/jobs/{job['id']}/file"
    download = api.get(job["file"], headers=bearer(tokens["maria"]))
    assert download.status_code == 200 and download.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(download.data), read_only=True)
    ids = {row[2] for row in book["Lines"].iter_rows(min_row=2, values_only=True) if row[2]}
    mine = {line["line_id"] for line in plan(TEAMS[0], 1)}
    assert mine <= ids and not ids & {line["line_id"] for line in plan(TEAMS[2], 2)}  # only her team's lines
    assert api.get(job["file"], headers=bearer(tokens["nick"])).status_code == 404  # not his job


def test_a_worker_without_redis_says_what_to_set(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    env = service_env(url)
    env.pop("PLANSHEET_REDIS_URL", None)
    done = subprocess.run([*CLI, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "REDIS_URL" in done.stderr


def test_a_large_import_runs_as_a_job_with_the_answer_of_the_route_and_a_refused_file_imports_nothing(inline) -> None:
    app, tokens, _, _ = inline
    api = app.test_client()
    lines = plan(TEAMS[0], 3, n=6)
    sub = api.post("/api/v1/submissions", headers=bearer(tokens["sam"]), json={"team": TEAMS[0], "lines": lines})
    assert api.post(f"/api/v1/submissions/{sub.get_json()['id']}/approve", headers=bearer(tokens["fiona"]), json={})
    rows = [["Line ID", "Amount", "Posting date"]] + [
        [line["line_id"], f"{100 + 7.25 * i:.2f}", "2026-03-31"] for i, line in enumerate(lines)
    ]
    export = ("\n".join(",".join(r) for r in rows) + "\n").encode()

    def send(data: bytes, **headers: str) -> Any:
        return api.post(
            "/api/v1/actuals?filename=gl.csv",
            headers=bearer(tokens["fiona"], **headers),
            data=data,
            content_type="text/csv",
        )

    now = send(export)
    assert now.status_code == 201, now.get_json()
    queued = send(export, Prefer="respond-async")
    assert queued.status_code == 202 and queued.headers["Location"] == f"/api/v1/jobs/{queued.get_json()['id']}"
    done = api.get(queued.headers["Location"], headers=bearer(tokens["fiona"], Prefer="wait=20")).get_json()
    assert done["status"] == "succeeded" and done["kind"] == "actuals.import", done
    same = {k: v for k, v in now.get_json().items() if k not in ("id", "imported_at")}
    assert {k: v for k, v in done["result"].items() if k not in ("id", "imported_at")} == same
    assert done["result"]["id"] == now.get_json()["id"] + 1  # imported once, as a new import
    assert (
        api.get("/api/v1/master/version", headers=bearer(tokens["fiona"])).get_json()["actuals_import"]
        == (done["result"]["id"])
    )

    refused = send(b"Line ID,Cost\nX-1,5\n", Prefer="respond-async, wait=20")
    assert refused.status_code == 200 and refused.headers["Preference-Applied"] == "wait=20"
    failed = refused.get_json()
    assert failed["status"] == "failed" and failed["attempts"] == 1 and "amount column" in failed["error"], failed
    version = api.get("/api/v1/master/version", headers=bearer(tokens["fiona"])).get_json()
    assert version["actuals_import"] == done["result"]["id"]  # the refused file changed nothing
    assert send(export, Prefer="respond-async").status_code == 202
    assert (
        api.post("/api/v1/actuals", headers=bearer(tokens["maria"], Prefer="respond-async"), data=export).status_code
        == 403
    )
