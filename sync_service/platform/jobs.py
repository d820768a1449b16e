"""Background jobs: Google pushes, master workbook builds and large imports, off the request that asked.

The database is the record and Redis only the transport. A job is a `Job` row written in the
transaction of whatever asked for it (an approval writes its push job with the new master
version), and everything that happens to it is appended as a `JobEvent`: queued, started
(attempt n), retrying, succeeded or failed. The queue then only carries job ids:

- with `REDIS_URL`, an RQ queue on Redis, served by `plansheet worker` processes (RQ rather than
  Celery: it needs nothing but Redis, a job is a plain function call, and its `SimpleWorker` runs
  a job inside the worker process, so the worker's database engine and app are made once);
- without it (the embedded default), a small pool of threads inside the service, with the same
  interface, the same records and the same retries.

A job runs while holding a database lock named for it, so one job runs once at a time across
every process; a job that has succeeded or failed is never run again; and a job whose worker
died (SIGKILL, a lost machine) is found by `recover`, which every job worker runs every few
seconds: its lock is free but its newest event says it is queued or started, so it is queued
again. Each kind makes its effect idempotent: a Google push marks the sheets it swaps in with the
job's id, so a push that landed before its worker died is not pushed twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask, has_request_context
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from sheet_templates.errors import ConfigError
from sheet_templates.schema import PlanSchema
from sync_service.platform import context, errors
from sync_service.platform.errors import NotFound, ServiceError
from sync_service.platform.storage import Job, JobEvent, JobFile, JobInput, Role, Store, User, utcnow
from sync_service.platform.storage import User as UserRow

log = logging.getLogger(__name__)

EXTENSION = "plansheet.jobs"
QUEUE = "plansheet"
TERMINAL = frozenset({"succeeded", "failed"})
WAIT_LIMIT = 30.0  # the longest a request may wait for a job (Prefer: wait=N)
YEAR_ARG = "fiscal_year"  # the job's argument naming the fiscal year it works in


@dataclass(frozen=True)
class Kind:
    """One kind of job: what it is called, and the function that does it."""

    name: str
    title: str
    run: Callable[[Run], dict[str, Any]]


@dataclass
class Run:
    """One attempt at a job, as its kind's function sees it."""

    app: Flask
    job: Job
    user: User
    attempt: int
    finished: bool = False

    @property
    def store(self) -> Store:
        return context.store(self.app)

    @property
    def schema(self) -> PlanSchema:
        """The schema of the fiscal year the job was asked for (the request's `?year=`, recorded with it)."""
        base = context.schema(self.app)
        year = (self.job.args or {}).get(YEAR_ARG)
        return base.for_year(int(year)) if year is not None else base

    def given(self) -> tuple[bytes, str | None]:
        """The file written with the job (an import's export) and its name."""
        with self.store.reading() as session:
            found = session.get(JobInput, self.job.id)
            return found.data, found.filename

    def succeed(self, session: Session, result: dict[str, Any], file: tuple[str, str, bytes] | None = None) -> None:
        """Record success in `session`, the transaction that makes the job's effect: both land, or neither."""
        if file is not None:
            name, media_type, data = file
            session.add(JobFile(job_id=self.job.id, filename=name, media_type=media_type, data=data))
        session.add(JobEvent(job_id=self.job.id, state="succeeded", attempt=self.attempt, detail={"result": result}))
        self.finished = True


KINDS: dict[str, Kind] = {}  # every kind of job, registered by the domain that owns it (`kind`)


def kind(name: str, title: str) -> Callable[[Callable[[Run], dict[str, Any]]], Callable[[Run], dict[str, Any]]]:
    """Register the decorated function as the job kind `name` (the domain module that does the work declares it)."""

    def register(run: Callable[[Run], dict[str, Any]]) -> Callable[[Run], dict[str, Any]]:
        if name in KINDS and KINDS[name].run is not run:
            raise ValueError(f"job kind {name!r} is registered twice")
        KINDS[name] = Kind(name, title, run)
        return run

    return register


def _kinds() -> dict[str, Kind]:
    return KINDS


# ---------------------------------------------------------------------------------------------
# Asking for a job


def create(
    session: Session, kind: str, args: Mapping[str, Any], user: User, given: tuple[bytes, str | None] | None = None
) -> Job:
    """Write a job in the caller's transaction; `dispatch` it once that has committed.

    `given` is the (data, filename) it works on (an export to import), written in the same transaction.
    """
    if kind not in _kinds():
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(id=secrets.token_hex(16), kind=kind, args=dict(args), user_id=user.id)
    session.add(job)
    session.flush()  # the job's row before its input's and events' (their foreign keys)
    if given is not None:
        session.add(JobInput(job_id=job.id, data=given[0], filename=given[1]))
    session.add(JobEvent(job_id=job.id, state="queued", attempt=0))
    return job


def enqueue(
    app: Flask, kind: str, args: Mapping[str, Any], user: User, given: tuple[bytes, str | None] | None = None
) -> str:
    """Write a job (with the file it works on, if any) and queue it; its id.

    The fiscal year the request is about goes with it, so the job works in that year, as the route would.
    """
    year = (context.schema() if has_request_context() else context.schema(app)).calendar.year
    args = {**args, YEAR_ARG: year}
    with _store(app).transaction() as session:
        job_id = create(session, kind, args, user, given).id
    dispatch(app, job_id)
    return job_id


def dispatch(app: Flask, job_id: str, delay: float = 0.0) -> None:
    """Hand a written job to the queue (after `delay` s); a lost hand-over loses nothing: `recover` finds it."""
    app = _real(app)
    try:
        backend(app).dispatch(app, job_id, delay)
    except Exception:  # Redis unreachable: the job stays queued in the database for recover
        log.exception("job %s could not be queued; a job worker's recovery will queue it", job_id)


# ---------------------------------------------------------------------------------------------
# Running a job


def run(app: Flask, job_id: str, worker: str = "") -> None:
    """One attempt at a job, unless it is finished or running elsewhere (then nothing happens)."""
    with app.app_context():
        _run(app, job_id, worker)


def _run(app: Flask, job_id: str, worker: str) -> None:
    store = _store(app)
    kinds = _kinds()
    with store.exclusive_or_skip(f"job:{job_id}") as mine:
        if not mine:
            return
        with store.transaction() as session:
            job = session.get(Job, job_id)
            if job is None or _newest(session, job_id).state in TERMINAL:
                return
            attempt = _attempts(session, job_id) + 1
            session.add(JobEvent(job_id=job_id, state="started", attempt=attempt, worker=worker[:120]))
            user = session.get(User, job.user_id)
            user.teams  # noqa: B018 - loaded for the job's scoping while the session is open
        attempt_ = Run(app, job, user, attempt)
        try:
            result = kinds[job.kind].run(attempt_)
        except (errors.UpstreamFailed, errors.Busy, OperationalError) as exc:
            message = exc.detail if isinstance(exc, ServiceError) else f"the database failed ({type(exc).__name__})"
            _retry_or_fail(app, job_id, attempt, message)
            return
        except ServiceError as exc:  # a refusal (not configured, forbidden, invalid): trying again would not help
            detail: dict[str, Any] = {"error": exc.detail, "status": _status(exc)}
            if exc.issues:
                detail["issues"] = exc.issues[:200]  # what a refused file got wrong, cell by cell
            _record(store, job_id, "failed", attempt, detail)
            return
        except Exception:
            log.exception("job %s (%s) failed", job_id, job.kind)
            _record(store, job_id, "failed", attempt, {"error": f"{kinds[job.kind].title} failed; it has been logged"})
            return
        if not attempt_.finished:
            _record(store, job_id, "succeeded", attempt, {"result": result})


def _retry_or_fail(app: Flask, job_id: str, attempt: int, message: str) -> None:
    attempts = int(app.config.get("JOB_ATTEMPTS", 4))
    if attempt >= attempts:
        _record(_store(app), job_id, "failed", attempt, {"error": f"{message} (gave up after {attempt} attempts)"})
        return
    delay = float(app.config.get("JOB_BACKOFF", 10.0)) * 2 ** (attempt - 1)
    next_at = utcnow() + dt.timedelta(seconds=delay)
    _record(_store(app), job_id, "retrying", attempt, {"error": message, "next_attempt_at": next_at.isoformat()})
    dispatch(app, job_id, delay)


def _record(store: Store, job_id: str, state: str, attempt: int, detail: dict[str, Any]) -> None:
    with store.transaction() as session:
        session.add(JobEvent(job_id=job_id, state=state, attempt=attempt, detail=detail))


def _status(exc: ServiceError) -> int:
    return exc.status


def _newest(session: Session, job_id: str) -> JobEvent:
    return session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(1)
    ).one()


def _attempts(session: Session, job_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(JobEvent).where(JobEvent.job_id == job_id, JobEvent.state == "started")
    )


def recover(app: Flask, grace: float = 2.0) -> int:
    """Queue again every unfinished job nobody is running and the queue does not hold; how many.

    A job whose worker was killed keeps "started" as its newest event, and its lock is free; a
    job whose hand-over to Redis was lost (or whose Redis lost it) keeps "queued". A retry due
    and not yet queued is queued too. Several workers may recover at once: a job queued twice
    still runs once.
    """
    store = _store(app)
    now = utcnow()
    with store.exclusive_or_skip("jobs:recover") as mine:
        if not mine:
            return 0
        with store.reading() as session:
            newest = select(func.max(JobEvent.id)).group_by(JobEvent.job_id).scalar_subquery()
            open_ = session.scalars(
                select(JobEvent).where(JobEvent.id.in_(newest), JobEvent.state.not_in(TERMINAL)).order_by(JobEvent.id)
            ).all()
        queue = backend(app)
        again = 0
        for event in open_:
            if (now - _aware(event.at)).total_seconds() < grace:
                continue  # just written: its own dispatch is on its way
            if event.state == "retrying" and _aware(dt.datetime.fromisoformat(event.detail["next_attempt_at"])) > now:
                continue
            if event.state in ("queued", "retrying") and queue.holds(event.job_id):
                continue
            with store.exclusive_or_skip(f"job:{event.job_id}") as free:
                if not free:
                    continue  # a live worker is running it
            log.warning("job %s was %s with no worker on it; queuing it again", event.job_id, event.state)
            queue.dispatch(app, event.job_id, 0.0)
            again += 1
        return again


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------
# Reading jobs


def view(session: Session, job: Job) -> dict[str, Any]:
    """A job as its owner sees it: state, attempts, result or error, and its file if it made one."""
    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)).all()
    last = events[-1]
    owner = session.get(UserRow, job.user_id)
    kind = _kinds().get(job.kind)
    has_file = session.scalar(select(func.count()).select_from(JobFile).where(JobFile.job_id == job.id)) > 0
    return {
        "id": job.id,
        "kind": job.kind,
        "title": kind.title if kind else job.kind,
        "status": last.state,
        "attempts": max((e.attempt for e in events), default=0),
        "requested_by": owner.name if owner else None,
        "created_at": _aware(job.created_at).isoformat(),
        "updated_at": _aware(last.at).isoformat(),
        "result": last.detail.get("result") if last.state == "succeeded" else None,
        "error": last.detail.get("error") if last.state in ("failed", "retrying") else None,
        "next_attempt_at": last.detail.get("next_attempt_at") if last.state == "retrying" else None,
        "issues": last.detail.get("issues") if last.state == "failed" else None,
        "file": f"/api/v1/jobs/{job.id}/file" if has_file else None,
        "history": [
            {"state": e.state, "attempt": e.attempt, "at": _aware(e.at).isoformat(), "worker": e.worker or None}
            for e in events
        ],
    }


def visible(session: Session, user: User, job_id: str) -> Job:
    """The job `job_id` if `user` may see it (finance: every job; others: their own); 404 otherwise."""
    job = session.get(Job, job_id) if len(job_id) <= 32 else None
    if job is None or (user.role != Role.FINANCE and job.user_id != user.id):
        raise NotFound(f"there is no job {job_id!r}")
    return job


def get(store: Store, user: User, job_id: str) -> dict[str, Any]:
    with store.reading() as session:
        return view(session, visible(session, user, job_id))


def listing(
    store: Store, user: User, limit: int = 50, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """(a page of the jobs `user` may see, newest first, after the job `after` names; the next page's cursor)."""
    with store.reading() as session:
        query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit + 1)
        if user.role != Role.FINANCE:
            query = query.where(Job.user_id == user.id)
        if after is not None:
            seen = session.get(Job, after) if len(after) <= 64 else None
            if seen is None:
                raise ServiceError(f"after: {after!r} names no job; start again without it")
            query = query.where(
                (Job.created_at < seen.created_at) | ((Job.created_at == seen.created_at) & (Job.id > seen.id))
            )
        found = list(session.scalars(query))
        following = found[limit - 1].id if len(found) > limit else None
        return [view(session, job) for job in found[:limit]], following


def wait(store: Store, user: User, job_id: str, seconds: float) -> dict[str, Any]:
    """The job once it has finished, or as it is after `seconds` (at most WAIT_LIMIT)."""
    deadline = time.monotonic() + min(max(seconds, 0.0), WAIT_LIMIT)
    pause = 0.02
    while True:
        answer = get(store, user, job_id)
        if answer["status"] in TERMINAL or time.monotonic() >= deadline:
            return answer
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, 0.25)


def file_of(store: Store, user: User, job_id: str) -> JobFile:
    with store.reading() as session:
        visible(session, user, job_id)
        row = session.get(JobFile, job_id)
        if row is None:
            raise NotFound(f"job {job_id} has made no file (yet)")
        return row


# ---------------------------------------------------------------------------------------------
# Where jobs run


class InlineJobs:
    """The embedded default: jobs run on a few threads of the service process itself."""

    name = "in-process"

    def __init__(self, threads: int = 2) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plansheet-job")

    def dispatch(self, app: Flask, job_id: str, delay: float) -> None:
        worker = f"in-process:{socket.gethostname()}:{os.getpid()}"
        if delay > 0:
            timer = threading.Timer(delay, self.pool.submit, args=(_run_logged, app, job_id, worker))
            timer.daemon = True
            timer.start()
        else:
            self.pool.submit(_run_logged, app, job_id, worker)

    def holds(self, job_id: str) -> bool:
        return False  # the pool keeps no record: recover asks the job's lock


def _run_logged(app: Flask, job_id: str, worker: str) -> None:
    try:
        run(app, job_id, worker)
    except Exception:
        log.exception("job %s could not be run", job_id)


class RedisJobs:
    """Jobs on an RQ queue in Redis, run by `plansheet worker` processes."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis
        from rq import Queue

        self.redis = redis.Redis.from_url(url)
        self.queue = Queue(QUEUE, connection=self.redis)

    def dispatch(self, app: Flask, job_id: str, delay: float) -> None:
        if delay > 0:  # held in a sorted set that every worker's recovery loop drains (no RQ scheduler process)
            self.redis.zadd(f"{QUEUE}:later", {job_id: time.time() + delay})
            return
        self.queue.enqueue(
            "sync_service.platform.jobs.perform",
            job_id,
            job_id=f"{job_id}-{secrets.token_hex(4)}",
            job_timeout=int(app.config.get("JOB_TIMEOUT", 1800)),
            result_ttl=0,
            failure_ttl=24 * 3600,
            description=f"plansheet job {job_id}",
        )

    def holds(self, job_id: str) -> bool:
        """Whether Redis still holds the job, waiting in the queue or for its retry."""
        if self.redis.zscore(f"{QUEUE}:later", job_id) is not None:
            return True
        return any(job_id.encode() in entry for entry in self.redis.lrange(self.queue.key, 0, -1))

    def due(self, app: Flask) -> None:
        """Queue the retries whose wait is over."""
        for raw in self.redis.zrangebyscore(f"{QUEUE}:later", 0, time.time()):
            if self.redis.zrem(f"{QUEUE}:later", raw):  # one worker wins each
                self.dispatch(app, raw.decode(), 0.0)


def make_backend(config: Mapping[str, Any]) -> InlineJobs | RedisJobs:
    url = config.get("REDIS_URL")
    return RedisJobs(url) if url else InlineJobs(int(config.get("JOB_THREADS", 2)))


def backend(app: Flask) -> InlineJobs | RedisJobs:
    return app.extensions[EXTENSION]


def _real(app: Flask) -> Flask:
    """The app itself, not Flask's `current_app` proxy: a job's thread has no context to resolve it in."""
    get = getattr(app, "_get_current_object", None)
    return get() if get is not None else app


def _store(app: Flask) -> Store:
    return context.store(app)


# ---------------------------------------------------------------------------------------------
# The job worker process

_WORKER_APP: Flask | None = None


def perform(job_id: str) -> None:
    """What the RQ queue calls in a job worker: one attempt at the job, in the worker's app."""
    if _WORKER_APP is None:
        raise RuntimeError("perform runs in a plansheet worker process")
    from rq import get_current_job

    current = get_current_job()
    worker = f"{socket.gethostname()}:{os.getpid()}:{current.worker_name if current else ''}"
    run(_WORKER_APP, job_id, worker)


def require_queue(app: Flask) -> RedisJobs:
    """The Redis queue, or a configuration error naming the setting (without it the service runs its own jobs)."""
    queue = backend(app)
    if not isinstance(queue, RedisJobs):
        raise ConfigError("plansheet worker needs PLANSHEET_REDIS_URL; without it the service runs its jobs itself")
    return queue


def work(app: Flask, *, burst: bool = False, recover_every: float = 5.0) -> None:
    """Serve the queue until stopped (SIGTERM finishes the job in hand first); `burst`: until it is empty."""
    global _WORKER_APP
    queue = require_queue(app)
    from rq import SimpleWorker

    _WORKER_APP = app
    stop = threading.Event()

    def maintain() -> None:
        while not stop.is_set():
            try:
                queue.due(app)
                recover(app)
            except Exception:  # Redis or the database away for a moment: try again next round
                log.exception("job recovery failed; trying again in %s s", recover_every)
            stop.wait(recover_every)

    with _thread(maintain, stop):
        SimpleWorker([queue.queue], connection=queue.redis).work(burst=burst, logging_level="WARNING")


@contextmanager
def _thread(target: Callable[[], None], stop: threading.Event) -> Iterator[None]:
    thread = threading.Thread(target=target, name="plansheet-job-recovery", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
