"""The notices' outbox: a notice is written as a job in the action's own transaction, sent after it.

A domain stages a notice (`stage`) where it acts; the notice job is part of that transaction, so it
is never lost once the action has committed and never exists when it did not. It is handed to the
job queue when the request or command ends (`dispatch_pending`, an app-context teardown). What a
notice says, to whom, and how it is sent is `sync_service.notifications`' work, in the job.

Nothing is staged when neither SMTP_HOST nor CHAT_WEBHOOK_URL is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, g, has_app_context
from sqlalchemy.orm import Session

from sync_service.platform import jobs
from sync_service.platform.storage import User

PENDING = "plansheet_notices"  # flask.g: the notice jobs staged during this request or command
NOTICE_JOB = "notify"  # the job kind that sends a notice (registered by sync_service.notifications)


def configured(config: Mapping[str, Any]) -> bool:
    """Whether any notice can be sent: an SMTP server or a chat webhook is set."""
    return bool(config.get("SMTP_HOST") or config.get("CHAT_WEBHOOK_URL"))


def stage(session: Session, event: str, actor: User, **ref: Any) -> None:
    """Write the notice of `event` as a job in `session` (the action's transaction); queued when the context ends."""
    if not has_app_context() or not configured(current_app.config):
        return
    job = jobs.create(session, NOTICE_JOB, {"event": event, **ref}, actor)
    g.setdefault(PENDING, []).append(job.id)


def dispatch_pending(_: BaseException | None = None) -> None:
    """Hand the staged notices to the queue (an app-context teardown: after the action's transaction ended)."""
    for job_id in g.pop(PENDING, []):
        try:
            jobs.dispatch(current_app, job_id)
        except Exception:  # a lost hand-over is found again by the jobs' recovery; never the action's failure
            current_app.logger.exception("notice %s was not queued", job_id)
