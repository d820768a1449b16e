"""Every setting of the sync service: its name, default and what it does (checked at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS = (
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL of the database; default: a SQLite file plansheet.db in the "
        "instance folder. Also read from the DATABASE_URL environment variable.",
    ),
    Setting(
        "ORG_CONFIG",
        None,
        "Path of the organisation's TOML configuration; default $PLANSHEET_CONFIG or the bundled sample.",
    ),
    Setting("MAX_CONTENT_LENGTH", 20 * 2**20, "Largest request body accepted, in bytes (413 beyond it)."),
    Setting(
        "OVER_ALLOCATION",
        "flag",
        "What a plan over its region's allocation gets: 'flag' (accepted and approved with a warning) "
        "or 'refuse' (422 at submission, 409 at approval).",
    ),
    Setting(
        "IMPORT_DATE_WINDOW_DAYS",
        366,
        "How many days before the fiscal year's start and after its end a PO's service period or an "
        "invoice's date may fall; a date outside is refused naming its cell (a 1900 or 9999 typo).",
    ),
    Setting(
        "GOOGLE_CREDENTIALS",
        None,
        "Path of the Google service-account key file (JSON) used for Google Sheets; never logged.",
    ),
    Setting(
        "GOOGLE_CREDENTIALS_JSON",
        None,
        "The service-account key itself, as JSON (for platforms that pass secrets in the environment).",
    ),
    Setting("GOOGLE_API_BASE", None, "Base address of the Google APIs; default Google's own (tests use a local one)."),
    Setting("GOOGLE_MASTER_SPREADSHEET_ID", None, "The finance master spreadsheet that pushes write to."),
    Setting("GOOGLE_PUSH_ON_APPROVAL", False, "Push the master to the master spreadsheet after every approval."),
    Setting("GOOGLE_RETRIES", 5, "Retries of a Google API call answered 408, 429 or 5xx, with exponential backoff."),
    Setting("GOOGLE_BACKOFF", 1.0, "Seconds before the first retry (doubling each time, with jitter)."),
    Setting("GOOGLE_TIMEOUT", 60.0, "Seconds to wait for Google's answer before the call counts as failed."),
    Setting("GOOGLE_MAX_REQUEST_BYTES", 8 * 2**20, "Largest request a push sends to Google (its limit is 10 MB)."),
    Setting(
        "PUBLIC_URL",
        None,
        "The address users reach the service at (https://plansheet.acme.com), written into the Office add-in "
        "manifest; default the address of the request.",
    ),
    Setting(
        "ALLOWED_ORIGINS",
        None,
        "Origins (scheme://host[:port], comma-separated) whose pages may call the function endpoints and "
        "read /addin/ across origins (CORS), such as a task pane served from another Plansheet address; "
        "default none.",
    ),
    Setting(
        "PROXY_HOPS",
        0,
        "How many reverse proxies stand in front of the service; their X-Forwarded-For/-Proto/-Host/-Port "
        "headers are then trusted, so URLs are https:// and the client's address is known. Default 0: ignored.",
    ),
    Setting(
        "TRANSFER_FINANCE_LIMIT",
        "10000",
        "Largest budget transfer (reporting currency) finance approves alone; above it a marketer of the "
        "giving region approves too. 0: the giving side approves every transfer.",
    ),
    Setting(
        "SMTP_HOST",
        None,
        "The mail server notifications are sent through (none: no email). Notices are sent by background jobs.",
    ),
    Setting("SMTP_PORT", None, "Its port; default 587 (STARTTLS) or 465 (SMTP_SECURITY=ssl)."),
    Setting(
        "SMTP_SECURITY",
        "starttls",
        "'starttls' (upgrade the connection, the usual on 587), 'ssl' (TLS from the start, 465) or 'none' "
        "(a relay on the same machine only); certificates are always verified.",
    ),
    Setting("SMTP_USER", None, "The login at the mail server, if it needs one."),
    Setting("SMTP_PASSWORD", None, "Its password; never logged."),
    Setting("SMTP_CA_FILE", None, "A CA bundle to verify the mail server's certificate with; default the system's."),
    Setting("SMTP_TIMEOUT", 30, "Seconds to wait for the mail server or the chat webhook."),
    Setting("MAIL_FROM", "plansheet@localhost", "The sender address of notification emails."),
    Setting(
        "CHAT_WEBHOOK_URL",
        None,
        "A chat incoming webhook that hears every notice (Slack or Microsoft Teams); none: no chat.",
    ),
    Setting("CHAT_WEBHOOK_FORMAT", "slack", "The webhook's message format: 'slack' or 'teams' (a MessageCard)."),
    Setting(
        "REMINDER_DAYS",
        3,
        "plansheet remind sends reminders this many days before PLAN_DEADLINE (and on each day up to it) to "
        "teams without a plan submitted.",
    ),
    Setting(
        "LOCALE",
        "en_US",
        "The locale every page, email and command-line table writes numbers, money and dates in "
        "(a CLDR name: en_US, en_GB, de_DE...).",
    ),
    Setting("PLAN_DEADLINE", None, "The date plans are due (YYYY-MM-DD), counted down on the dashboard."),
    Setting(
        "SECRET_KEY",
        None,
        "Key that signs the dashboard's session cookies; default: a random key made once and kept in the "
        "database, so every worker on it shares it.",
    ),
    Setting(
        "LOGIN_LIMIT_ACCOUNT",
        "5 per 15 minutes",
        "Failed dashboard logins allowed for one user name (known or not) in a moving window; past it the "
        "login answers 429 with Retry-After and checks no password until the window has room again.",
    ),
    Setting(
        "LOGIN_LIMIT_ADDRESS",
        "20 per 15 minutes",
        "Failed dashboard logins allowed from one client address, whatever the names tried (same answer).",
    ),
    Setting(
        "REDIS_URL",
        None,
        "Redis (redis://host:6379/0) shared by every worker: the failed-login counts, the job queue served by "
        "`plansheet worker` and the cache of master read models; default: each process's memory, and jobs run "
        "on threads of the service itself, enough for one process.",
    ),
    Setting(
        "JOB_ATTEMPTS", 4, "Attempts of a background job that failed for a passing reason (Google, a busy database)."
    ),
    Setting("JOB_BACKOFF", 10.0, "Seconds before a job's first retry, doubling each time."),
    Setting("JOB_TIMEOUT", 1800, "Seconds a job worker gives one job before stopping it."),
    Setting("JOB_THREADS", 2, "Threads that run jobs inside the service when there is no REDIS_URL."),
    Setting(
        "PACK_ON_CLOSE",
        True,
        "Build the month's management pack (a workbook and its PDF) when finance closes a month's accrual, and "
        "email it to its subscribers; false: only when finance asks.",
    ),
    Setting(
        "SOFFICE",
        "soffice",
        "The LibreOffice program that renders the management pack as PDF (a name on PATH or a path); without it "
        "the pack is a workbook only, with a note saying what to install.",
    ),
    Setting("PDF_TIMEOUT", 120, "Seconds LibreOffice may take to render a PDF before it is stopped."),
    Setting(
        "OIDC_ISSUER",
        None,
        "The OpenID Connect provider for single sign-on on the dashboard (https://login.acme.com/realms/staff); "
        "its discovery document is read from <issuer>/.well-known/openid-configuration. Default none: "
        "password login only.",
    ),
    Setting("OIDC_CLIENT_ID", None, "The client id Plansheet is registered under at the provider."),
    Setting("OIDC_CLIENT_SECRET", None, "The client's secret at the provider; never logged."),
    Setting("OIDC_PROVIDER_NAME", "single sign-on", "What the login page's button names: 'Sign in with <name>'."),
    Setting(
        "OIDC_SCOPES",
        "openid email profile",
        "Scopes asked for at sign-in (space-separated; must include openid); add the one that releases "
        "the role claim if the provider needs it (often 'groups').",
    ),
    Setting(
        "OIDC_ROLE_CLAIM",
        "groups",
        "The claim (in the ID token, else from the userinfo endpoint) whose values OIDC_GROUPS maps to "
        "roles and teams: a list of groups, or one text value.",
    ),
    Setting(
        "OIDC_NAME_CLAIM",
        "email",
        "The claim that gives a new user's Plansheet name (shown on the dashboard and in the audit log).",
    ),
    Setting(
        "OIDC_GROUPS",
        None,
        'Values of the role claim and what each grants: {"plansheet-finance": {"role": "finance"}, '
        '"emea-marketing": {"role": "marketer", "regions": ["EMEA"]}, "na-smb": {"role": '
        '"marketer", "teams": ["NA-SMB"]}} (JSON in the environment). Read again at every login; '
        "finance outranks marketer, marketer outranks admin; a user whose values match none is refused.",
    ),
    Setting(
        "ADDIN_TOKEN_DAYS",
        7,
        "Days a token from the dashboard's 'Token for the add-ins' page works (read-only: the spreadsheet "
        "functions and reading the master).",
    ),
)
DEFAULTS = {s.name: s.default for s in SETTINGS}
