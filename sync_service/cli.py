"""The `plansheet` command line: templates, validation, consolidation, the service and the demo.

Every command prints a message a user can act on and exits with a meaningful code; no
command shows a Python traceback for bad input. Domain errors become exit codes in one
table here (`_EXIT_CODES`); HTTP statuses mean nothing to a shell. Each command imports the
service's modules it needs when it runs (never to dodge a cycle: there is none), so
`plansheet --help` and the spreadsheet commands start without loading Flask and the database.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from sheet_templates.errors import PlansheetError

if TYPE_CHECKING:
    from flask import Flask

    from addin.consolidate import FileOutcome
    from sheet_templates.formatting import Formats
    from sheet_templates.schema import PlanSchema

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TRY_AGAIN = 75  # the database is busy with another change (EX_TEMPFAIL): run it again in a moment


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: the process's arguments) and return its exit code."""
    try:
        code = cli.main(args=argv, prog_name="plansheet", standalone_mode=False)
    except click.ClickException as exc:  # a usage error: unknown option, missing argument, bad value
        exc.show()
        return exc.exit_code
    except Exception as exc:
        _report(exc)
        return _exit_code(exc)
    return EXIT_OK if code is None else code


def _exit_codes() -> tuple[tuple[type[BaseException], int], ...]:
    """Each kind of domain error and its exit code, most specific first."""
    from sync_service.platform.errors import Busy, Conflict, ServiceError, Unprocessable  # loaded only on an error

    return (
        (Busy, EXIT_TRY_AGAIN),  # the database is busy with another change
        (Unprocessable, EXIT_ISSUES),  # the plan has issues: fix them and run again
        (Conflict, EXIT_ISSUES),  # the team's state refuses it (a sheet exists, a decision was taken)
        (ServiceError, EXIT_UNREADABLE),  # refused: not found, not allowed, Google not configured or failing
        (PlansheetError, EXIT_UNREADABLE),  # bad input or configuration, said in the message
        (OSError, EXIT_UNREADABLE),  # a folder that cannot be written, a file open elsewhere, a full disk
        (click.Abort, EXIT_INTERRUPTED),  # Ctrl+C
    )


def _exit_code(exc: BaseException) -> int:
    return next((code for kind, code in _exit_codes() if isinstance(exc, kind)), EXIT_INTERNAL)


def _report(exc: Exception) -> None:
    """Say on standard error what went wrong, in the user's terms."""
    from sync_service.platform.errors import ServiceError

    if isinstance(exc, ServiceError):
        click.echo(f"{exc.title}: {exc.detail}", err=True)
        for issue in exc.issues or []:
            where = f"{issue.get('sheet')}!{issue.get('cell')}" if issue.get("cell") else ""
            click.echo(f"  {where:<10} {issue.get('severity', ''):<8} {issue.get('message', '')}", err=True)
    elif isinstance(exc, PlansheetError):
        click.echo(f"plansheet: {exc}", err=True)
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"plansheet: {exc.strerror or exc}{where}", err=True)
    elif isinstance(exc, click.Abort):
        click.echo("plansheet: interrupted", err=True)
    else:  # a bug: say so plainly, without a traceback in the user's face
        click.echo(f"plansheet: internal error ({type(exc).__name__}: {exc}); please report it", err=True)


class _Options:
    """What the top-level options give every command."""

    def __init__(self, config: str | None, year: int | None = None) -> None:
        self.config, self.year = config, year

    def schema(self) -> PlanSchema:
        """The plan schema of `--year` (default: the year the organisation file runs)."""
        from sheet_templates import build_schema, load_config  # imported here to keep start-up fast

        schema = build_schema(load_config(self.config))
        return schema.for_year(self.year) if self.year is not None else schema

    def app(self) -> Flask:
        from sync_service.app import create_app

        return create_app({"ORG_CONFIG": self.config} if self.config else None)


pass_options = click.make_pass_decorator(_Options)
PATH = click.Path(path_type=Path)
ISO_DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    metavar="FILE",
    help="Organisation configuration (TOML); default $PLANSHEET_CONFIG or the bundled sample.",
)
@click.option(
    "--year",
    type=click.IntRange(1990, 2200),
    metavar="YYYY",
    help="The fiscal year the templates, checks and consolidation are for (default: the organisation file's "
    "[fiscal] year; another year needs its [years.YYYY] table).",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, year: int | None) -> None:
    """Spreadsheet-native marketing performance planning."""
    ctx.obj = _Options(config, year)


# --- templates --------------------------------------------------------------------------------------------


@cli.group()
def templates() -> None:
    """The plan schema and the regional Excel templates."""


@templates.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_options
def schema(options: _Options, as_json: bool) -> int:
    """Print the plan's columns."""
    info = options.schema().describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return EXIT_OK
    click.echo(
        f"{info['template_id']} version {info['template_version']}, FY{info['fiscal_year']}, "
        f"sheet {info['sheet']} (header in row {info['header_row']})"
    )
    for col in info["columns"]:
        need = "required" if col["required"] else ("formula" if not col["input"] else "optional")
        allowed = f"  [{', '.join(col['allowed'])}]" if col["allowed"] else ""
        click.echo(f"  {col['column']:>3}  {col['name']:<16} {col['label']:<22} {col['type']:<8} {need}{allowed}")
    return EXIT_OK


@templates.command()
@click.option("--out", required=True, type=PATH, metavar="DIR", help="The folder to write them to.")
@click.option("--region", multiple=True, metavar="R", help="Only this region (repeatable).")
@pass_options
def build(options: _Options, out: Path, region: tuple[str, ...]) -> int:
    """Write plan-<REGION>.xlsx templates."""
    from sheet_templates.excel_template import build_templates

    for path in build_templates(options.schema(), out, list(region) or None):
        click.echo(path)
    return EXIT_OK


# --- validate and consolidate -----------------------------------------------------------------------------


@cli.command()
@click.argument("files", nargs=-1, required=True, type=PATH, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--region", help="Refuse templates of any other region.")
@pass_options
def validate(options: _Options, files: tuple[Path, ...], as_json: bool, region: str | None) -> int:
    """Check filled plans; exit 0 valid, 1 issues, 2 unreadable."""
    from addin.issues import Severity, UnreadableWorkbook
    from addin.reader import read_plan

    plan_schema = options.schema()
    reports, worst = [], EXIT_OK
    for path in files:
        try:
            read = read_plan(path, plan_schema, expected_region=region, display_name=str(path))
        except UnreadableWorkbook as exc:
            reports.append(
                {"file": str(path), "status": "unreadable", "lines": 0, "issues": [exc.as_issue().to_dict()]}
            )
            worst = EXIT_UNREADABLE
            continue
        errors = sum(i.severity is Severity.ERROR for i in read.issues)
        reports.append(
            {
                "file": str(path),
                "status": "invalid" if errors else "valid",
                "lines": len(read.table),
                "issues": [i.to_dict() for i in read.issues],
            }
        )
        if errors and worst == EXIT_OK:
            worst = EXIT_ISSUES
    if as_json:
        click.echo(json.dumps({"valid": worst == EXIT_OK, "files": reports}, indent=2, default=str))
    else:
        for report in reports:
            _print_report(report, sys.stdout)
    return worst


def _print_report(report: dict, out: TextIO) -> None:
    issues = report["issues"]
    errors = sum(i["severity"] == "error" for i in issues)
    warnings = len(issues) - errors
    status = report["status"]
    if status == "unreadable":
        click.echo(f"{report['file']}: cannot be read: {issues[0]['message']} [{issues[0]['rule']}]", file=out)
        return
    counts = ", ".join(
        _plural(n, word) for n, word in ((report["lines"], "line"), (errors, "error"), (warnings, "warning"))
    )
    click.echo(f"{report['file']}: {status}, {counts}", file=out)
    for i in issues:
        where = i["location"] or "(file)"
        click.echo(f"  {where:<12} {i['severity']:<8} {i['message']} [{i['rule']}]", file=out)


def _formats(app: Flask | None = None) -> Formats:
    """The formatting of numbers and dates in the app's LOCALE; with no app at hand, the default locale."""
    from sheet_templates.formatting import DEFAULT_LOCALE, Formats

    return Formats(app.config.get("LOCALE", DEFAULT_LOCALE) if app is not None else DEFAULT_LOCALE)


def _plural(n: int, word: str) -> str:
    return f"{_formats().count(n)} {word}{'' if n == 1 else 's'}"


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=PATH, metavar="PATH...")
@click.option("--out", required=True, type=PATH, metavar="master.xlsx", help="The master workbook to write.")
@click.option("--jobs", type=int, default=None, metavar="N", help="Worker processes (default: all cores).")
@click.option(
    "--as-of",
    type=ISO_DATE,
    default=None,
    metavar="YYYY-MM-DD",
    help="Compare actuals with the plan for the months closed by this date (default: today).",
)
@pass_options
def consolidate(
    options: _Options, paths: tuple[Path, ...], out: Path, jobs: int | None, as_of: dt.datetime | None
) -> int:
    """Merge filled plans (files or folders) into a master workbook.

    Exit 0 when every plan is in the master, 1 when some were rejected.
    """
    from addin.consolidate import ACCEPTED
    from addin.consolidate import consolidate as consolidate_plans

    plan_schema = options.schema()
    started = time.perf_counter()
    with _Progress(sys.stderr) as progress:
        result = consolidate_plans(
            paths, plan_schema, out, jobs=jobs, progress=progress, as_of=as_of.date() if as_of else None
        )
    accepted = [f for f in result.files if f.status == ACCEPTED]
    formats = _formats()
    count, seconds = formats.count, formats.ratio(time.perf_counter() - started, 1)
    click.echo(
        f"Master workbook of {plan_schema.calendar.label}: {out} ({count(len(result.table))} lines from "
        f"{count(len(accepted))} of {count(len(result.files))} files, {seconds} s)"
    )
    if result.rejected:
        click.echo(f"{count(len(result.rejected))} file(s) rejected; their lines are not in the master:")
        for f in result.rejected:
            _print_report(
                {"file": f.file, "status": f.status, "lines": f.lines, "issues": [i.to_dict() for i in f.issues]},
                sys.stdout,
            )
        return EXIT_ISSUES
    return EXIT_OK


class _Progress:
    """The consolidation's per-file progress bar on a terminal; silent when output is redirected.

    The bar opens at the first file done, when the number of files is known.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int, FileOutcome], None]:
        return self.update

    def update(self, done: int, total: int, outcome: FileOutcome) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=total,
                label="Reading plans",
                file=self.stream,
                hidden=not self.stream.isatty(),
                show_pos=True,
                item_show_func=lambda o: o.file if o else None,
            )
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos, outcome)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


# --- spreadsheet functions --------------------------------------------------------------------------------


@cli.group()
def functions() -> None:
    """The PS_ spreadsheet functions."""


@functions.command("list")
def functions_list() -> int:
    """List the functions with their arguments."""
    from addin.live import catalog

    for function in catalog():
        params = ", ".join(f"[{a.name}]" if a.optional else a.name for a in function.args)
        click.echo(f"{function.name}({params})\n    {function.help}\n    e.g. {function.example}")
    return EXIT_OK


@functions.command()
def metadata() -> int:
    """Print the Office.js custom-functions metadata (functions.json)."""
    from addin.live import catalog

    click.echo(json.dumps(catalog().metadata(), indent=2))
    return EXIT_OK


@functions.command()
@click.option("--out", required=True, type=PATH, metavar="FILE", help="The workbook to write.")
@pass_options
def workbook(options: _Options, out: Path) -> int:
    """Write a sample workbook that calls every function."""
    from addin.sample_workbook import build_sample_workbook

    click.echo(build_sample_workbook(options.schema(), out))
    return EXIT_OK


# --- the service: database, tokens, users, serving --------------------------------------------------------


@cli.command()
@pass_options
def init(options: _Options) -> int:
    """Create or upgrade the service's database and its teams."""
    from sync_service.access.teams import sync_teams
    from sync_service.platform.context import SCHEMA, STORE
    from sync_service.platform.migrate import upgrade

    app = options.app()
    store = app.extensions[STORE]
    upgraded = upgrade(store.url, app.extensions[SCHEMA].config.fiscal_year)
    if upgraded.copy is not None:
        click.echo(f"copied the database aside to {upgraded.copy} before upgrading it")
    if upgraded.before is not None and upgraded.before != upgraded.after:
        click.echo(f"upgraded the database schema from {upgraded.before} to {upgraded.after}")
    with store.transaction() as session:
        teams = sync_teams(session, app.extensions[SCHEMA])
        names = [t.id for t in teams]
    click.echo(f"database ready ({_safe_url(store.url)}); teams: {', '.join(names)}")
    return EXIT_OK


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@cli.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--name", required=True, help="The user's name, e.g. maria@example.com.")
@click.option("--role", required=True, type=click.Choice(["marketer", "finance", "admin"]))
@click.option("--team", multiple=True, metavar="T", help="A team the user plans for (repeatable).")
@click.option(
    "--approves",
    multiple=True,
    metavar="STEP[:REGION]",
    help="An approval step the user may take, for one region or all (repeatable), e.g. region_lead:EMEA.",
)
@pass_options
def token_create(options: _Options, name: str, role: str, team: tuple[str, ...], approves: tuple[str, ...]) -> int:
    """Create a user (or reuse one) and print a new API token for it."""
    from sync_service.access.auth import create_token
    from sync_service.platform.context import SCHEMA, STORE

    app = options.app()
    grants = [dict(zip(("step", "region"), a.split(":", 1), strict=False)) for a in approves]
    try:
        with app.extensions[STORE].transaction() as session:
            secret = create_token(
                session, name, role, list(team), approves=grants, config=app.extensions[SCHEMA].config
            )
    except ValueError as exc:
        raise PlansheetError(str(exc)) from exc
    except LookupError as exc:
        raise PlansheetError(f"{exc.args[0]}; run 'plansheet init' and use one of its teams") from exc
    click.echo(secret)
    return EXIT_OK


@cli.group()
def user() -> None:
    """Dashboard users."""


@user.command()
@click.option("--name", required=True, help="An existing user (see plansheet token create).")
@pass_options
def password(options: _Options, name: str) -> int:
    """Set a user's dashboard password (read from standard input)."""
    from sync_service.access.passwords import set_password
    from sync_service.platform.context import STORE

    if sys.stdin.isatty():
        secret = click.prompt(f"Password for {name}", hide_input=True, prompt_suffix=": ", err=True)
    else:
        secret = sys.stdin.readline().rstrip("\n")
    app = options.app()
    try:
        with app.extensions[STORE].transaction() as session:
            set_password(session, name, secret)
    except (LookupError, ValueError) as exc:
        raise PlansheetError(str(exc.args[0])) from exc
    click.echo(f"{name} can now log in to the dashboard")
    return EXIT_OK


@cli.command()
@click.option("--as", "as_user", required=True, help="The finance user the reminders are sent for (audited).")
@click.option("--today", type=ISO_DATE, default=None, help="The day to remind for; default today.")
@pass_options
def remind(options: _Options, as_user: str, today: dt.datetime | None) -> int:
    """Remind teams of the open reforecast's deadline, or PLAN_DEADLINE."""
    from sqlalchemy import select

    from sync_service.notifications import notices as notifications
    from sync_service.platform import outbox
    from sync_service.platform.context import SCHEMA, STORE
    from sync_service.platform.storage import User

    app = options.app()
    store = app.extensions[STORE]
    with store.reading() as session:
        actor = session.scalars(select(User).where(User.name == as_user)).first()
    if actor is None or actor.role != "finance":
        raise PlansheetError(f"{as_user} is not a finance user; reminders are sent in finance's name")
    if not outbox.configured(app.config):
        raise PlansheetError("neither SMTP_HOST nor CHAT_WEBHOOK_URL is set: there is nowhere to send reminders")
    with app.app_context():
        day = (today or dt.datetime.now()).date()
        result = notifications.remind(store, app.config, day, actor, app.extensions[SCHEMA].calendar.year)
    teams = result["reminded"]
    what = f"the {result['cycle']} is" if result.get("cycle") else "plans are"
    formats = _formats(app)
    click.echo(
        f"{what} due on {formats.date(result['deadline'])} ({formats.count(result['days_left'])} day(s) left): "
        + (f"reminded {', '.join(teams)}" if teams else "no team to remind today")
    )
    return EXIT_OK


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=int, default=None, help="Default $PLANSHEET_PORT or 8050.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes. 1: waitress. More: gunicorn (Linux, macOS), with PostgreSQL and PLANSHEET_REDIS_URL.",
)
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Threads per process.")
@pass_options
def serve(options: _Options, host: str, port: int | None, workers: int, threads: int) -> int:
    """Run the sync service: waitress, or gunicorn workers with --workers N.

    With several workers, SIGHUP replaces them gracefully (configuration read again) and SIGTERM
    drains and stops; a worker that dies is replaced. GET /health says a process answers and
    GET /ready that it can serve (database at the newest schema, Redis reachable when configured).
    """
    import os

    from sync_service.platform import jobs, server

    port = port or int(os.environ.get("PLANSHEET_PORT", "8050"))
    if workers == 1:
        app = options.app()
        if isinstance(jobs.backend(app), jobs.InlineJobs):  # jobs run here: take up what the last process left
            jobs.recover(app, grace=0.0)
        click.echo(f"Plansheet sync service on http://{host}:{port}/ (Ctrl+C stops it)")
        server.serve_one(app, host, port, threads)
    else:
        click.echo(f"Plansheet sync service on http://{host}:{port}/, {workers} workers (Ctrl+C stops it)")
        server.serve_many(options.app, host, port, workers, threads)
    return EXIT_OK


# --- Google Sheets ----------------------------------------------------------------------------------------


@cli.group()
def gsheets() -> None:
    """Google Sheets: team plan sheets and the finance master sheet."""


act_as = click.option(
    "--as",
    "user_name",
    default="plansheet-cli",
    metavar="NAME",
    help="The finance user to act as (default plansheet-cli, created as a finance user if missing).",
)


def _as_finance(options: _Options, user_name: str, work: Callable[..., Any]) -> int:
    """Run a Google Sheets action as a finance user and print its answer; a refusal is raised to `main`."""
    from sqlalchemy import select

    from sync_service.platform.context import SCHEMA, STORE
    from sync_service.platform.storage import Role, User

    app = options.app()
    store = app.extensions[STORE]
    with store.transaction() as session:
        acting = session.scalar(select(User).where(User.name == user_name))
        if acting is None:
            acting = User(name=user_name, role=Role.FINANCE)
            session.add(acting)
            session.flush()
        if acting.role != Role.FINANCE:
            raise PlansheetError(f"{user_name} is a {acting.role}; Google Sheets commands act as a finance user")
        acting.teams  # noqa: B018 - loaded while the session is open
    result = work(store, app.extensions[SCHEMA], acting, app.config)
    click.echo(json.dumps(result, indent=2))
    return EXIT_OK


@gsheets.command("create")
@click.option("--team", required=True, metavar="T", help="The team whose plan sheet to create.")
@click.option("--editor", multiple=True, metavar="EMAIL", help="Share with (writer); repeatable.")
@click.option("--replace", is_flag=True, help="Give a team that has a sheet a new one.")
@act_as
@pass_options
def gsheets_create(options: _Options, team: str, editor: tuple[str, ...], replace: bool, user_name: str) -> int:
    """Create a team's plan spreadsheet from the schema and share it."""
    from sync_service.integrations.google import sync as sheets_sync

    return _as_finance(
        options,
        user_name,
        lambda store, schema, user, config: sheets_sync.create_for_team(
            store, schema, user, team, config, list(editor), replace=replace
        ),
    )


@gsheets.command("pull")
@click.option("--team", required=True, metavar="T", help="The team whose plan sheet to read.")
@act_as
@pass_options
def gsheets_pull(options: _Options, team: str, user_name: str) -> int:
    """Read a team's plan sheet, validate it and submit it."""
    from sync_service.integrations.google import sync as sheets_sync

    return _as_finance(
        options,
        user_name,
        lambda store, schema, user, config: sheets_sync.pull_for_team(
            store, schema, user, team, config, config["OVER_ALLOCATION"]
        ),
    )


@gsheets.command("push")
@click.option("--spreadsheet", metavar="ID", help="Default $PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID.")
@act_as
@pass_options
def gsheets_push(options: _Options, spreadsheet: str | None, user_name: str) -> int:
    """Write master, rollup and variance to the master spreadsheet."""
    from sync_service.integrations.google import sync as sheets_sync

    return _as_finance(
        options,
        user_name,
        lambda store, schema, user, config: sheets_sync.push_now(store, schema, user, config, spreadsheet),
    )


@cli.command()
@click.option("--burst", is_flag=True, help="Stop once the queue is empty instead of waiting for more.")
@click.option(
    "--recover-every",
    type=click.FloatRange(0.1, 3600),
    default=5.0,
    show_default=True,
    metavar="S",
    help="Seconds between looks for jobs whose worker died, and for retries that are due.",
)
@pass_options
def worker(options: _Options, burst: bool, recover_every: float) -> int:
    """Run background jobs (Google pushes, workbook builds) from the Redis queue.

    Run as many as needed, on any machine that reaches the database and Redis. SIGTERM finishes
    the job in hand, then stops; a worker killed mid-job loses nothing: another worker, or this
    one restarted, runs the job again, and each job's effect happens once.
    """
    from sync_service.platform import jobs

    app = options.app()
    jobs.require_queue(app)
    click.echo(f"Plansheet job worker on {_safe_url(app.config['REDIS_URL'])} (Ctrl+C stops it)")
    jobs.work(app, burst=burst, recover_every=recover_every)
    return EXIT_OK


# --- the demo ---------------------------------------------------------------------------------------------


@cli.command()
@click.option("--out", type=PATH, default=Path("build/demo"), show_default=True, metavar="DIR", help="Where to work.")
@click.option("--no-serve", is_flag=True, help="Stop after the story instead of serving the dashboard.")
@click.option(
    "--as-of",
    type=ISO_DATE,
    default=None,
    metavar="YYYY-MM-DD",
    help="The day the story is told on (default: today): the months before it are closed, with their actuals.",
)
@pass_options
def demo(options: _Options, out: Path, no_serve: bool, as_of: dt.datetime | None) -> int:
    """Run the demo: sample plans, consolidation, then the service."""
    from sync_service.demo import run_demo

    return run_demo(options.schema(), out, sys.stdout, serve=not no_serve, as_of=as_of.date() if as_of else None)


if __name__ == "__main__":
    raise SystemExit(main())
