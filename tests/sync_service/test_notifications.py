"""Notifications through a real SMTP server (STARTTLS, a certificate the service verifies) and a chat webhook.

The mail server is aiosmtpd on loopback with a certificate made for the test; the webhook is a
local HTTP server. Every notice is sent by a background job, so the tests wait for what arrives.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.notifications.notices import remind
from sync_service.platform.context import STORE
from sync_service.platform.jobs import TERMINAL
from sync_service.platform.storage import Job, JobEvent, User
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth
from tests.sync_service.live_server import free_port
from tests.sync_service.service_helpers import SCHEMA, line, submit

# aiosmtpd's Controller leaves the socket it pokes its own server with at start-up to the collector.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Inbox:
    """What the mail server received: (envelope recipients, the parsed message, whether it came over TLS)."""

    messages: list[tuple[list[str], Any, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message, session.ssl is not None))
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        return [m for rcpt, m, _ in self.messages if address in rcpt]


@dataclass
class Hooks:
    bodies: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def mail_server(folder: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """A real SMTP server on 127.0.0.1 that requires STARTTLS with a certificate made in `folder`:
    (what it received, its port, the certificate a client must trust)."""
    cert, key = certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    controller.start()
    try:
        yield inbox, port, cert
    finally:
        controller.stop()


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    with mail_server(tmp_path) as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks, f"http://127.0.0.1:{server.server_port}/hooks/plansheet"
    finally:
        server.shutdown()


@dataclass
class Service:
    app: Any
    client: Any
    tokens: dict[str, str]


def service_with(tmp_path: Path, **config: Any) -> Service:
    url = f"sqlite:///{tmp_path / 'plansheet.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "JOB_BACKOFF": 0.2, "JOB_ATTEMPTS": 2, **config})
    with app.extensions[STORE].transaction() as session:
        sync_teams(session, app.extensions["plansheet.schema"])
        tokens = {
            "emea": create_token(session, "maria@acme.example", "marketer", ["EMEA-ENTERPRISE"]),
            "emea2": create_token(session, "erik@acme.example", "marketer", ["EMEA-SMB"]),
            "na": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),  # a name that is no address
            "finance": create_token(session, "fiona@acme.example", "finance"),
            "finance2": create_token(session, "frank@acme.example", "finance"),
        }
    return Service(app, app.test_client(), tokens)


@pytest.fixture
def service(tmp_path: Path, mail: tuple[Inbox, int, Path], webhook: tuple[Hooks, str]) -> Iterator[Service]:
    _, port, cert = mail
    s = service_with(
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_CA_FILE=str(cert),
        MAIL_FROM="plansheet@acme.example",
        CHAT_WEBHOOK_URL=webhook[1],
        TRANSFER_FINANCE_LIMIT="100",
    )
    yield s
    s.app.extensions[STORE].dispose()


def eventually(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def settled(s: Service) -> dict[str, str]:
    """Wait until every job has finished; each job's last state."""

    def states() -> dict[str, str] | None:
        with s.app.extensions[STORE].reading() as session:
            out = {}
            for job in session.scalars(select(Job)):
                newest = session.scalars(
                    select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id.desc())
                ).first()
                out[job.id] = newest.state
        return out if all(v in TERMINAL for v in out.values()) else None

    found = eventually(states)
    assert found, "no notification job, or one that did not finish"
    return found


def approve(s: Service, who: str, sid: int, action: str = "approve", comment: str = "") -> None:
    response = s.client.post(
        f"/api/v1/submissions/{sid}/{action}", headers=auth(s.tokens[who]), json={"comment": comment}
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_finance_hears_of_a_plan_and_the_submitter_of_its_rejection_over_tls(service, mail, webhook) -> None:
    inbox, _, _ = mail
    hooks, _ = webhook
    sid = submit(service.client, service.tokens["emea"], [line("EMEA-0001", m01="100")]).get_json()["id"]
    settled(service)
    assert sorted(a for rcpt, _, _ in inbox.messages for a in rcpt) == ["fiona@acme.example", "frank@acme.example"]
    assert all(tls for _, _, tls in inbox.messages)  # STARTTLS, the test's certificate verified by the service
    message = inbox.to("fiona@acme.example")[0]
    assert message["From"] == "plansheet@acme.example"
    assert f"EMEA-ENTERPRISE submitted a plan for approval (submission {sid})" in message["Subject"]
    assert "maria@acme.example submitted 1 line for EMEA-ENTERPRISE." in message.get_content()
    assert f"submission {sid}" in hooks.bodies[0]["text"]  # the chat channel hears it too (Slack's format)

    approve(service, "finance", sid, "reject", "Q1 is over the allocation; move the event to Q2")
    settled(service)
    rejected = inbox.to("maria@acme.example")
    assert len(rejected) == 1 and "was rejected" in rejected[0]["Subject"]
    assert "Comment: Q1 is over the allocation; move the event to Q2" in rejected[0].get_content()


def test_each_person_turns_their_email_off_or_sets_an_address(service, mail) -> None:
    inbox, _, _ = mail
    off = service.client.put(
        "/api/v1/me/notifications", headers=auth(service.tokens["finance2"]), json={"enabled": False}
    )
    assert off.get_json() == {"email": None, "address": None, "enabled": False}
    mine = service.client.put(
        "/api/v1/me/notifications", headers=auth(service.tokens["na"]), json={"email": "sam@na.example"}
    )
    assert mine.get_json()["address"] == "sam@na.example"
    bad = service.client.put("/api/v1/me/notifications", headers=auth(service.tokens["na"]), json={"email": "sam"})
    assert bad.status_code == 400 and "email" in bad.get_json()["detail"]
    sid = submit(
        service.client, service.tokens["na"], [line("NA-0001", team="NA-ENTERPRISE", m01="100")], "NA-ENTERPRISE"
    )
    assert sid.status_code == 201, sid.get_data(as_text=True)
    settled(service)
    assert [rcpt for rcpt, _, _ in inbox.messages] == [["fiona@acme.example"]]  # frank turned it off
    approve(service, "finance", sid.get_json()["id"])
    settled(service)
    assert len(inbox.to("sam@na.example")) == 1 and "was approved" in inbox.to("sam@na.example")[0]["Subject"]


def test_a_transfer_is_told_to_its_approvers_and_its_decision_to_whoever_asked(service, mail) -> None:
    inbox, _, _ = mail
    service.client.put("/api/v1/me/notifications", headers=auth(service.tokens["na"]), json={"email": "sam@na.example"})
    body = {
        "from": {"region": "EMEA", "quarter": "Q1", "channel": "*"},
        "to": {"region": "NA", "quarter": "Q1", "channel": "*"},
        "amount": "5000",
        "reason": "NA's launch needs it",
    }
    answer = service.client.post("/api/v1/transfers", headers=auth(service.tokens["na"]), json=body).get_json()
    settled(service)
    told = sorted(a for rcpt, _, _ in inbox.messages for a in rcpt)
    assert told == ["erik@acme.example", "fiona@acme.example", "frank@acme.example", "maria@acme.example"]
    fy = SCHEMA.calendar.year  # money with its currency and separators, quarters of their fiscal year
    moved = f"$5,000.00 from EMEA Q1 FY{fy} all channels to NA Q1 FY{fy} all channels"
    assert f"sam asks to move {moved}." in inbox.to("maria@acme.example")[0].get_content()
    inbox.messages.clear()
    for who in ("emea", "finance"):
        decided = service.client.post(
            f"/api/v1/transfers/{answer['id']}/approve", headers=auth(service.tokens[who]), json={"comment": "fine"}
        )
        assert decided.status_code == 200, decided.get_data(as_text=True)
    settled(service)
    assert [rcpt for rcpt, _, _ in inbox.messages] == [["sam@na.example"]]  # once, when it was decided
    assert "was approved" in inbox.messages[0][1]["Subject"]
    assert f"approved moving {moved}." in inbox.messages[0][1].get_content()


def test_a_mail_server_that_is_down_never_blocks_or_undoes_the_action(tmp_path: Path) -> None:
    s = service_with(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TIMEOUT=2)
    try:
        response = submit(s.client, s.tokens["emea"], [line("EMEA-0001", m01="100")])
        assert response.status_code == 201
        states = settled(s)
        assert list(states.values()) == ["failed"]  # retried, then given up: logged in the job's history
        with s.app.extensions[STORE].reading() as session:
            events = list(session.scalars(select(JobEvent.state).order_by(JobEvent.id)))
        assert "retrying" in events
        listed = s.client.get("/api/v1/submissions", headers=auth(s.tokens["finance"])).get_json()["submissions"]
        assert [x["id"] for x in listed] == [response.get_json()["id"]]  # the submission stands
    finally:
        s.app.extensions[STORE].dispose()


def test_teams_webhooks_get_a_message_card(tmp_path: Path, webhook) -> None:
    hooks, url = webhook
    s = service_with(tmp_path, CHAT_WEBHOOK_URL=url, CHAT_WEBHOOK_FORMAT="teams")
    try:
        submit(s.client, s.tokens["emea"], [line("EMEA-0001", m01="100")])
        settled(s)
        card = hooks.bodies[0]
        assert card["@type"] == "MessageCard" and "EMEA-ENTERPRISE submitted a plan" in card["title"]
    finally:
        s.app.extensions[STORE].dispose()


def test_reminders_go_to_teams_without_a_plan_once_a_day(service, mail) -> None:
    inbox, _, _ = mail
    app = service.app
    app.config["PLAN_DEADLINE"] = "2026-03-10"
    app.config["REMINDER_DAYS"] = 3
    app.config["LOCALE"] = "en_GB"  # the emails write dates as the organisation does
    submit(service.client, service.tokens["emea"], [line("EMEA-0001", m01="100")])  # EMEA-ENTERPRISE has one
    settled(service)
    inbox.messages.clear()
    store = app.extensions[STORE]
    with store.reading() as session:
        fiona = session.scalars(select(User).where(User.name == "fiona@acme.example")).one()
    with app.app_context():
        early = remind(store, app.config, dt.date(2026, 3, 1), fiona, SCHEMA.calendar.year)
    assert early["reminded"] == [] and early["days_left"] == 9
    with app.app_context():
        first = remind(store, app.config, dt.date(2026, 3, 8), fiona, SCHEMA.calendar.year)
    assert "EMEA-ENTERPRISE" not in first["reminded"] and {"EMEA-SMB", "NA-ENTERPRISE"} <= set(first["reminded"])
    settled(service)
    assert len(inbox.to("erik@acme.example")) == 1  # EMEA-SMB's marketer
    assert "is due on 10 Mar 2026" in inbox.to("erik@acme.example")[0]["Subject"]
    assert inbox.to("maria@acme.example") == []
    with app.app_context():
        again = remind(store, app.config, dt.date(2026, 3, 8), fiona, SCHEMA.calendar.year)
    assert again["reminded"] == []  # not twice on one day


def test_a_cycle_is_announced_to_marketers_and_its_deadline_reminds_the_teams_it_waits_for(service, mail) -> None:
    inbox, _, _ = mail
    app = service.app
    app.config["PLAN_DEADLINE"] = "2026-03-10"  # the open cycle's deadline wins over it
    app.config["REMINDER_DAYS"] = 3
    sid = submit(service.client, service.tokens["emea"], [line("EMEA-0001", m01="100")]).get_json()["id"]
    approve(service, "finance", sid)
    settled(service)
    inbox.messages.clear()
    deadline = dt.date.today() + dt.timedelta(days=30)  # a cycle's deadline is never in the past
    body = {"name": "June reforecast", "through": "m04", "deadline": deadline.isoformat(), "comment": "Events moved"}
    opened = service.client.post("/api/v1/cycles", headers=auth(service.tokens["finance"]), json=body)
    assert opened.status_code == 201, opened.get_data(as_text=True)
    settled(service)
    told = sorted(a for rcpt, _, _ in inbox.messages for a in rcpt)
    assert told == ["erik@acme.example", "maria@acme.example"]  # every marketer with an address; finance opened it
    message = inbox.to("maria@acme.example")[0]
    due = f"{deadline:%b} {deadline.day}, {deadline.year}"  # as people read it: "Jul 7, 2026"
    assert message["Subject"] == f"[Plansheet] June reforecast: reforecast your plan by {due}"
    assert f"months through {SCHEMA['m04'].label} are closed" in message.get_content()  # the month by name
    assert f"submit by {due}." in message.get_content() and "Events moved" in message.get_content()
    inbox.messages.clear()
    # EMEA-ENTERPRISE's approved plan is from before the cycle: the cycle still waits for its reforecast.
    changed = [line("EMEA-0001", m01="100", m06="50")]
    sent = submit(service.client, service.tokens["emea"], changed, based_on={"submission": sid})
    assert sent.status_code == 201 and sent.get_json()["cycle"] == opened.get_json()["id"]
    settled(service)
    inbox.messages.clear()
    store = app.extensions[STORE]
    with store.reading() as session:
        fiona = session.scalars(select(User).where(User.name == "fiona@acme.example")).one()
    with app.app_context():
        first = remind(store, app.config, deadline - dt.timedelta(days=2), fiona, SCHEMA.calendar.year)
    assert first["cycle"] == "June reforecast" and first["deadline"] == deadline.isoformat()
    assert "EMEA-ENTERPRISE" not in first["reminded"] and {"EMEA-SMB", "NA-ENTERPRISE"} <= set(first["reminded"])
    settled(service)
    subject = " ".join(inbox.to("erik@acme.example")[0]["Subject"].split())  # a long subject is folded
    assert subject == f"[Plansheet] Reminder: the June reforecast for EMEA-SMB is due on {due}"
    # A rejected reforecast is waited for again.
    approve(service, "finance", sent.get_json()["id"], "reject", "Q3 is too light")
    with app.app_context():
        later = remind(store, app.config, deadline - dt.timedelta(days=1), fiona, SCHEMA.calendar.year)
    assert "EMEA-ENTERPRISE" in later["reminded"]
    settled(service)  # the notices of the rejection and the reminders are sent before the service stops


def test_each_step_of_a_chain_is_told_to_its_own_approvers(tmp_path: Path, mail) -> None:
    """A plan in a chain goes to the region lead first; once they approve, to finance."""
    from sheet_templates.config import default_config_path, load_config

    inbox, port, cert = mail
    org = tmp_path / "org.toml"
    org.write_text(
        default_config_path().read_text(encoding="utf-8") + '\n[approvals]\nsteps = ["region_lead", "finance"]\n',
        encoding="utf-8",
    )
    s = service_with(
        tmp_path, ORG_CONFIG=str(org), SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_CA_FILE=str(cert),
        MAIL_FROM="plansheet@acme.example",
    )  # fmt: skip
    try:
        with s.app.extensions[STORE].transaction() as session:
            lead = [{"step": "region_lead", "region": "EMEA"}]
            s.tokens["lena"] = create_token(
                session, "lena@acme.example", "marketer", [], approves=lead, config=load_config(org)
            )
        sid = submit(s.client, s.tokens["emea"], [line("EMEA-0001", m01="100")]).get_json()["id"]
        settled(s)
        assert [a for rcpt, _, _ in inbox.messages for a in rcpt] == ["lena@acme.example"]
        assert "as Region lead (step 1 of 2)" in inbox.to("lena@acme.example")[0].get_content()
        approve(s, "lena", sid, comment="fine by EMEA")
        settled(s)
        told = sorted(a for rcpt, _, _ in inbox.messages[1:] for a in rcpt)
        assert told == ["fiona@acme.example", "frank@acme.example"]
        assert "as Finance (step 2 of 2)" in inbox.to("fiona@acme.example")[0].get_content()
    finally:
        s.app.extensions[STORE].dispose()
