"""Notifications: email (SMTP with TLS) and a chat incoming webhook (Slack's or Teams' format), sent as jobs.

What is told, and to whom:

- a plan submitted: finance (but whoever submitted it);
- a plan approved or rejected: whoever submitted it, with the comment;
- a budget transfer asked for: finance, and while the giving side's approval is open, the giving
  region's marketers (never whoever asked);
- a transfer approved or rejected: whoever asked, with the comment;
- a reforecast cycle opened: every marketer;
- a reminder before the deadline (`plansheet remind`): the open reforecast cycle's, else
  PLAN_DEADLINE; the marketers of each team the cycle still waits for (nothing submitted in it,
  or its reforecast rejected), or without a plan submitted;
- a month's management pack built: each subscriber (`subscriptions`), with the pack of their view
  attached (the workbook, and its PDF when one was made).

A notice is written as a job in the same transaction as the action (`stage`), so it is never
lost once the action has committed and never exists when it did not; it is handed to the job
queue when the request or command ends. Sending happens in the job: a mail server that is down
is retried with the job's backoff and never blocks or undoes the action. Each person can turn
their email off (`PUT /api/v1/me/notifications`); the chat channel hears every notice. A
person's address is the one they set, else their user name when it is an address (single
sign-on names people by email).

Nothing is staged when neither SMTP_HOST nor CHAT_WEBHOOK_URL is set.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sheet_templates.errors import ConfigError
from sheet_templates.formatting import DEFAULT_LOCALE, Formats
from sheet_templates.schema import PlanSchema
from sync_service.access import approvals
from sync_service.access.auth import visible_teams
from sync_service.notifications.addresses import address_of
from sync_service.notifications.subscriptions import subscribers
from sync_service.planning.cycles import open_cycle_row, waiting_teams
from sync_service.platform import jobs, outbox
from sync_service.platform.errors import ServiceError, UpstreamFailed
from sync_service.platform.storage import (
    AuditEvent,
    Cycle,
    Decision,
    ManagementPack,
    Role,
    Submission,
    Team,
    Transfer,
    TransferDecision,
    User,
    UserTeam,
)

SECURITY = ("starttls", "ssl", "none")
CHAT_FORMATS = ("slack", "teams")
PACK_BUILT = "pack.built"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The line under each email saying how to stop it: the pack's own subscription, else the notification setting.
STOP = {PACK_BUILT: "Stop the monthly pack: the Management packs page, or PUT /api/v1/me/pack-subscription"}
STOP_NOTICES = "Turn these emails off: PUT /api/v1/me/notifications"


def _finance(session: Session, but: int | None = None) -> list[User]:
    query = select(User).where(User.role == Role.FINANCE)
    return [u for u in session.scalars(query.order_by(User.id)) if u.id != but]


def _marketers(session: Session, teams: list[str], but: int | None = None) -> list[User]:
    query = (
        select(User)
        .join(UserTeam, UserTeam.user_id == User.id)
        .where(UserTeam.team_id.in_(teams), User.role == Role.MARKETER)
        .distinct()
        .order_by(User.id)
    )
    return [u for u in session.scalars(query) if u.id != but]


def compose(
    session: Session, args: Mapping[str, Any], schema: PlanSchema, formats: Formats
) -> tuple[list[User], str, str]:
    """(recipients, subject, text) of one notice, from the stored records it names, its figures in `formats`."""
    event = args["event"]
    currency = schema.config.reporting_currency
    if event.startswith("submission."):
        submission = session.get(Submission, args["submission"])
        submitter = session.get(User, submission.user_id)
        if event == "submission.submitted":  # submitted, or through a step: the next step's approvers are told
            chain = approvals.state(session, submission.id)
            if chain["waiting_for"] is None:
                return [], "", ""
            region = session.get(Team, submission.team_id).region
            took = {s.user_id for s in approvals.taken(session, submission.id)}
            recipients = [
                u for u in approvals.holders(session, chain["waiting_for"], region) if u.id not in took | {submitter.id}
            ]
            step = chain["steps"][chain["position"] - 1]
            subject = f"{submission.team_id} submitted a plan for approval (submission {submission.id})"
            lines = f"{formats.count(submission.line_count)} line{'' if submission.line_count == 1 else 's'}"
            text = (
                f"{submitter.name} submitted {lines} for {submission.team_id}.\n"
                f"It waits for your approval as {step['label']} (step {formats.count(chain['position'])} of "
                f"{formats.count(len(chain['steps']))}).\n"
                f"Open submission {submission.id} on the dashboard to approve or reject it."
            )
            return recipients, subject, text
        decision = session.scalars(
            select(Decision).where(Decision.submission_id == submission.id).order_by(Decision.id.desc())
        ).first()
        verdict = "approved" if event == "submission.approved" else "rejected"
        subject = f"Your plan for {submission.team_id} was {verdict} (submission {submission.id})"
        by = session.get(User, decision.user_id) if decision else None
        text = f"{by.name if by else 'Finance'} {verdict} submission {submission.id} for {submission.team_id}."
        if decision and decision.comment:
            text += f"\n\nComment: {decision.comment}"
        return [submitter], subject, text
    if event.startswith("transfer."):
        transfer = session.get(Transfer, args["transfer"])
        asker = session.get(User, transfer.user_id)
        what = (
            f"{formats.money(transfer.cents, currency)} from {transfer.from_region} "
            f"{formats.quarter(transfer.from_quarter, transfer.giving_year)} {_channel(transfer.from_channel)} to "
            f"{transfer.to_region} {formats.quarter(transfer.to_quarter, transfer.fiscal_year)} "
            f"{_channel(transfer.to_channel)}"
        )
        if event == "transfer.requested":
            decided = set(
                session.scalars(select(TransferDecision.step).where(TransferDecision.transfer_id == transfer.id))
            )
            recipients = _finance(session, but=asker.id) if "finance" not in decided else []
            if "giving" in transfer.steps and "giving" not in decided:
                teams = list(session.scalars(select(Team.id).where(Team.region == transfer.from_region)))
                recipients += _marketers(session, teams, but=asker.id)

            for step in transfer.steps:  # a threshold's step: its approvers (a controller) are told too
                if step in ("finance", "giving") or step in decided:
                    continue
                for region in (transfer.from_region, transfer.to_region):
                    recipients += [
                        u for u in approvals.holders(session, step, region) if u.id != asker.id and u not in recipients
                    ]
            subject = f"Budget transfer {transfer.id} waits for your approval"
            return recipients, subject, f"{asker.name} asks to move {what}.\n\nWhy: {transfer.reason}"
        last = session.scalars(
            select(TransferDecision)
            .where(TransferDecision.transfer_id == transfer.id)
            .order_by(TransferDecision.id.desc())
        ).first()
        verdict = "approved" if event == "transfer.approved" else "rejected"
        by = session.get(User, last.user_id) if last else None
        text = f"{by.name if by else 'An approver'} {verdict} moving {what}."
        if last and last.comment:
            text += f"\n\nComment: {last.comment}"
        return [asker], f"Your budget transfer {transfer.id} was {verdict}", text
    if event == "cycle.opened":
        cycle = session.get(Cycle, args["cycle"])
        everyone = list(session.scalars(select(Team.id)))
        deadline = formats.date(cycle.deadline)
        through = _month(schema, cycle.fiscal_year, cycle.closed_through, formats)
        subject = f"{cycle.name}: reforecast your plan by {deadline}"
        text = (
            f"Finance opened the {cycle.name}. The months through {through} are closed and show the "
            f"actual spend booked; forecast the open months and submit by {deadline}.\n"
            "Download your team's template from the dashboard (or use your team's Google sheet): it is your reforecast."
        )
        if cycle.comment:
            text += f"\n\n{cycle.comment}"
        return _marketers(session, everyone), subject, text
    if event == PACK_BUILT:
        return _pack_notice(session, args, schema, formats)
    if event == "reminder":
        team, deadline, what = args["team"], formats.date(args["deadline"]), args.get("cycle") or "plan"
        subject = f"Reminder: the {what} for {team} is due on {deadline}"
        text = f"No {what} for {team} has been submitted yet (or it was sent back). It is due on {deadline}."
        return _marketers(session, [team]), subject, text
    raise ServiceError(f"unknown notice {event!r}")


def _packs(session: Session, args: Mapping[str, Any]) -> list[ManagementPack]:
    return list(session.scalars(select(ManagementPack).where(ManagementPack.id.in_(args["packs"]))))


def _pack_of(packs: list[ManagementPack], user: User) -> ManagementPack | None:
    """The pack of `user`'s view among those built: the organisation's for finance, their teams' for a marketer."""
    teams = visible_teams(user)
    mine = None if teams is None else sorted(teams)
    return next((p for p in packs if p.teams == mine), None)


def _pack_notice(
    session: Session, args: Mapping[str, Any], schema: PlanSchema, formats: Formats
) -> tuple[list[User], str, str]:
    packs = _packs(session, args)
    if not packs:
        return [], "", ""
    first = packs[0]
    month = _month(schema, first.fiscal_year, first.month, formats)
    recipients = [u for u in subscribers(session) if _pack_of(packs, u) is not None]
    why = "its accrual was closed" if first.reason == "close" else "finance asked for it"
    subject = f"Management pack: {month} ({schema.config.org_name})"
    text = (
        f"The management pack for {month} is attached ({why}): budget against the latest estimate and actual "
        "spend, spend control and accruals, and performance against the targets, by region and channel.\n"
        "The workbook and its PDF are also on the dashboard's Management packs page."
    )
    if first.pdf is None and first.pdf_note:
        text += f"\n\nOnly the workbook is attached: {first.pdf_note}."
    return recipients, subject, text


def attachments(session: Session, args: Mapping[str, Any], user: User) -> list[tuple[str, str, bytes]]:
    """The files a notice's email to `user` carries, as (filename, media type, data): a pack's workbook and PDF."""
    if args.get("event") != PACK_BUILT:
        return []
    pack = _pack_of(_packs(session, args), user)
    if pack is None:
        return []
    files = [(f"{pack.filename}.xlsx", XLSX_TYPE, pack.xlsx)]
    if pack.pdf is not None:
        files.append((f"{pack.filename}.pdf", "application/pdf", pack.pdf))
    return files


def _channel(channel: str) -> str:
    return "all channels" if channel == "*" else channel


def _month(schema: PlanSchema, year: int, key: str, formats: Formats) -> str:
    """A fiscal month key of `year` by name ("Jun 2026"); the key itself for a year the organisation file dropped."""
    try:
        return formats.month(key, schema.for_year(year).calendar)
    except ConfigError:
        return key


def send_email(config: Mapping[str, Any], messages: list[EmailMessage]) -> None:
    """Send `messages` over one SMTP connection: STARTTLS (default) or implicit TLS, certificates verified."""
    host, security = config["SMTP_HOST"], str(config.get("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY:
        raise ServiceError(f"SMTP_SECURITY is {security!r}; use one of {', '.join(SECURITY)}")
    port = int(config.get("SMTP_PORT") or (465 if security == "ssl" else 587))
    timeout = float(config.get("SMTP_TIMEOUT") or 30)
    context = ssl.create_default_context(cafile=config.get("SMTP_CA_FILE") or None)
    try:
        if security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        with server:
            if security == "starttls":
                server.starttls(context=context)
            if config.get("SMTP_USER"):
                server.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            for message in messages:
                server.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:  # a mail server down or refusing: the job tries again
        raise UpstreamFailed(f"the mail server {host}:{port} failed: {type(exc).__name__}: {exc}") from None


def post_chat(config: Mapping[str, Any], subject: str, text: str) -> None:
    """POST the notice to the chat's incoming webhook, in Slack's or Teams' (MessageCard) format."""
    kind = str(config.get("CHAT_WEBHOOK_FORMAT") or "slack").lower()
    if kind not in CHAT_FORMATS:
        raise ServiceError(f"CHAT_WEBHOOK_FORMAT is {kind!r}; use slack or teams")
    if kind == "slack":
        body: dict[str, Any] = {"text": f"*{subject}*\n{text}"}
    else:
        body = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": subject,
            "title": subject,
            "text": text.replace("\n", "<br>"),
        }
    request = urllib.request.Request(
        config["CHAT_WEBHOOK_URL"],
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=float(config.get("SMTP_TIMEOUT") or 30)) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise UpstreamFailed(f"the chat webhook failed: {exc}") from None


@jobs.kind(outbox.NOTICE_JOB, "Send a notification")
def notify_job(run: Any) -> dict[str, Any]:
    """The job `notify`: the notice's email to each recipient who has it on, and the chat channel."""
    config = run.app.config
    schema = run.schema
    args = run.job.args
    with run.store.reading() as session:
        formats = Formats(config.get("LOCALE", DEFAULT_LOCALE))
        recipients, subject, text = compose(session, args, schema, formats)
        people: dict[str, User] = {}
        for person in recipients:
            address = address_of(person)
            if address and address not in people:
                people[address] = person
        addresses = sorted(people)
        files = {a: attachments(session, args, people[a]) for a in addresses} if config.get("SMTP_HOST") else {}
    sent: dict[str, Any] = {"event": args["event"], "emails": addresses, "chat": False}
    if config.get("SMTP_HOST") and addresses:
        stop = STOP.get(args["event"], STOP_NOTICES)
        messages = []
        for address in addresses:
            message = EmailMessage()
            message["From"] = config.get("MAIL_FROM") or "plansheet@localhost"
            message["To"] = address
            message["Subject"] = f"[Plansheet] {subject}"
            message.set_content(f"{text}\n\n-- \nPlansheet. {stop}\n")
            for name, media_type, data in files[address]:
                main, _, sub = media_type.partition("/")
                message.add_attachment(data, maintype=main, subtype=sub, filename=name)
            messages.append(message)
        send_email(config, messages)
    if config.get("CHAT_WEBHOOK_URL"):
        post_chat(config, subject, text)
        sent["chat"] = True
    return sent


def remind(store: Any, config: Mapping[str, Any], today: dt.date, actor: User, year: int) -> dict[str, Any]:
    """Stage a reminder for every team without a plan of fiscal year `year` submitted, when the deadline is near.

    Near: REMINDER_DAYS away or less. Run once a day (cron, a systemd timer); a team is reminded at
    most once a day, however often it runs.
    """
    with store.reading() as session:
        cycle = open_cycle_row(session, year)
        deadline, name = (cycle.deadline, cycle.name) if cycle else (None, None)
    text = config.get("PLAN_DEADLINE")
    if cycle is None and not text:
        raise ServiceError("PLAN_DEADLINE is not set and no reforecast cycle is open: there is no deadline to remind")
    if cycle is None:
        try:
            deadline = dt.date.fromisoformat(str(text))
        except ValueError:
            raise ServiceError(f"PLAN_DEADLINE is {text!r}; write it as YYYY-MM-DD") from None
    assert deadline is not None
    days = int(config.get("REMINDER_DAYS") or 0)
    left = (deadline - today).days
    about = {"deadline": deadline.isoformat(), "days_left": left, "cycle": name}
    if not 0 <= left <= days:
        return {**about, "reminded": []}
    reminded = []
    with store.transaction() as session:
        if cycle is not None:
            waiting = set(waiting_teams(session, session.merge(cycle)))
            submitted = {t for t in session.scalars(select(Team.id)) if t not in waiting}
        else:
            rejected = select(Decision.submission_id).where(Decision.action == "rejected")
            submitted = set(
                session.scalars(
                    select(Submission.team_id).where(Submission.fiscal_year == year, Submission.id.not_in(rejected))
                )
            )
        done = set(
            session.scalars(
                select(AuditEvent.target).where(
                    AuditEvent.action == "reminder.sent", AuditEvent.target.like(f"team:%@{today.isoformat()}")
                )
            )
        )
        for team in session.scalars(select(Team.id).order_by(Team.id)):
            target = f"team:{team}@{today.isoformat()}"
            if team in submitted or target in done:
                continue
            outbox.stage(session, "reminder", actor, team=team, deadline=deadline.isoformat(), cycle=name)
            session.add(AuditEvent(user_id=actor.id, action="reminder.sent", target=target, detail={"days_left": left}))
            reminded.append(team)
    return {**about, "reminded": reminded}
