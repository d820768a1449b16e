"""The `plansheet` command line: templates, validation, consolidation and the demo.

Every command prints a message a user can act on and exits with a meaningful code; no
command shows a Python traceback for bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sheet_templates.errors import PlansheetError

if TYPE_CHECKING:
    from sheet_templates.schema import PlanSchema

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE, EXIT_INTERNAL = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_UNREADABLE
    try:
        return args.handler(args)
    except PlansheetError as exc:
        print(f"plansheet: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except OSError as exc:  # a folder that cannot be written, a file open elsewhere, a full disk
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"plansheet: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_UNREADABLE
    except KeyboardInterrupt:
        print("plansheet: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly, without a traceback in the user's face
        print(f"plansheet: internal error ({type(exc).__name__}: {exc}); please report it", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plansheet", description="Spreadsheet-native marketing performance planning.")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="organisation configuration (TOML); default $PLANSHEET_CONFIG or the bundled sample",
    )
    sub = p.add_subparsers(metavar="COMMAND")

    templates = sub.add_parser("templates", help="the plan schema and the regional Excel templates")
    tsub = templates.add_subparsers(metavar="ACTION")
    schema = tsub.add_parser("schema", help="print the plan's columns")
    schema.add_argument("--json", action="store_true", help="print JSON")
    schema.set_defaults(handler=_schema)
    build = tsub.add_parser("build", help="write plan-<REGION>.xlsx templates")
    build.add_argument("--out", required=True, type=Path, metavar="DIR")
    build.add_argument("--region", action="append", metavar="R", help="only this region (repeatable)")
    build.set_defaults(handler=_build)

    validate = sub.add_parser("validate", help="check filled plan templates; exit 0 valid, 1 issues, 2 unreadable")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print a JSON report")
    validate.add_argument("--region", help="refuse templates of any other region")
    validate.set_defaults(handler=_validate)

    cons = sub.add_parser("consolidate", help="merge filled templates into a master workbook")
    cons.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="plan files or folders")
    cons.add_argument("--out", required=True, type=Path, metavar="master.xlsx")
    cons.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: all cores)")
    cons.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="compare actuals with the plan for the months closed by this date (default: today)",
    )
    cons.set_defaults(handler=_consolidate)

    functions = sub.add_parser("functions", help="the PS_ spreadsheet functions")
    fsub = functions.add_subparsers(metavar="ACTION")
    listing = fsub.add_parser("list", help="list the functions with their arguments")
    listing.set_defaults(handler=_functions_list)
    metadata = fsub.add_parser("metadata", help="print the Office.js custom-functions metadata (functions.json)")
    metadata.set_defaults(handler=_functions_metadata)
    sample = fsub.add_parser("workbook", help="write a sample workbook that calls every function")
    sample.add_argument("--out", required=True, type=Path, metavar="FILE")
    sample.set_defaults(handler=_functions_workbook)

    init = sub.add_parser("init", help="create or upgrade the service's database and its teams")
    init.set_defaults(handler=_init)
    token = sub.add_parser("token", help="API tokens")
    tsub2 = token.add_subparsers(metavar="ACTION")
    create = tsub2.add_parser("create", help="create a user (or reuse one) and print a new API token for it")
    create.add_argument("--name", required=True, help="the user's name, e.g. maria@example.com")
    create.add_argument("--role", required=True, choices=["marketer", "finance", "admin"])
    create.add_argument("--team", action="append", default=[], metavar="T", help="a team the user plans for")
    create.set_defaults(handler=_token_create)
    gs = sub.add_parser("gsheets", help="Google Sheets: team plan sheets and the finance master sheet")
    gsub = gs.add_subparsers(metavar="ACTION")
    gcreate = gsub.add_parser("create", help="create a team's plan spreadsheet from the schema and share it")
    gcreate.add_argument("--team", required=True, metavar="T")
    gcreate.add_argument("--editor", action="append", default=[], metavar="EMAIL", help="share with (writer)")
    gcreate.add_argument("--replace", action="store_true", help="give a team that has a sheet a new one")
    gcreate.set_defaults(handler=_gsheets_create)
    gpull = gsub.add_parser("pull", help="read a team's plan sheet, validate it and submit it")
    gpull.add_argument("--team", required=True, metavar="T")
    gpull.set_defaults(handler=_gsheets_pull)
    gpush = gsub.add_parser("push", help="write the master, rollup and variance to the finance master spreadsheet")
    gpush.add_argument("--spreadsheet", metavar="ID", help="default $PLANSHEET_GOOGLE_MASTER_SPREADSHEET_ID")
    gpush.set_defaults(handler=_gsheets_push)
    for parser in (gcreate, gpull, gpush):
        parser.add_argument(
            "--as",
            dest="user",
            default="plansheet-cli",
            metavar="NAME",
            help="the finance user to act as (default plansheet-cli, created as a finance user if missing)",
        )

    user = sub.add_parser("user", help="dashboard users")
    usub = user.add_subparsers(metavar="ACTION")
    password = usub.add_parser("password", help="set a user's dashboard password (read from standard input)")
    password.add_argument("--name", required=True, help="an existing user (see plansheet token create)")
    password.set_defaults(handler=_user_password)

    serve = sub.add_parser("serve", help="run the sync service with a production WSGI server (waitress)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default $PLANSHEET_PORT or 8050")
    serve.add_argument("--threads", type=int, default=8)
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser("demo", help="build templates, fill sample plans and consolidate them")
    demo.add_argument("--out", type=Path, default=Path("build/demo"), metavar="DIR")
    demo.add_argument(
        "--no-serve", dest="serve", action="store_false", help="stop after the story instead of serving the dashboard"
    )
    demo.set_defaults(handler=_demo)
    return p


def _schema_of(args: argparse.Namespace) -> PlanSchema:
    from sheet_templates import build_schema, load_config  # imported here to keep start-up fast

    return build_schema(load_config(args.config))


def _schema(args: argparse.Namespace) -> int:
    info = _schema_of(args).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(
        f"{info['template_id']} version {info['template_version']}, FY{info['fiscal_year']}, "
        f"sheet {info['sheet']} (header in row {info['header_row']})"
    )
    for col in info["columns"]:
        need = "required" if col["required"] else ("formula" if not col["input"] else "optional")
        allowed = f"  [{', '.join(col['allowed'])}]" if col["allowed"] else ""
        print(f"  {col['column']:>3}  {col['name']:<16} {col['label']:<22} {col['type']:<8} {need}{allowed}")
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from sheet_templates.excel_template import build_templates

    for path in build_templates(_schema_of(args), args.out, args.region):
        print(path)
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from addin.issues import Severity, UnreadableWorkbook
    from addin.reader import read_plan

    schema = _schema_of(args)
    reports, worst = [], EXIT_OK
    for path in args.files:
        try:
            read = read_plan(path, schema, expected_region=args.region, display_name=str(path))
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
    if args.json:
        print(json.dumps({"valid": worst == EXIT_OK, "files": reports}, indent=2, default=str))
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
        print(f"{report['file']}: cannot be read: {issues[0]['message']} [{issues[0]['rule']}]", file=out)
        return
    counts = ", ".join(
        _plural(n, word) for n, word in ((report["lines"], "line"), (errors, "error"), (warnings, "warning"))
    )
    print(f"{report['file']}: {status}, {counts}", file=out)
    for i in issues:
        where = i["location"] or "(file)"
        print(f"  {where:<12} {i['severity']:<8} {i['message']} [{i['rule']}]", file=out)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _consolidate(args: argparse.Namespace) -> int:
    from addin.consolidate import ACCEPTED, consolidate

    schema = _schema_of(args)
    started = time.perf_counter()
    bar = _Progress(sys.stderr, started)
    result = consolidate(args.paths, schema, args.out, jobs=args.jobs, progress=bar, as_of=args.as_of)
    bar.done()
    accepted = [f for f in result.files if f.status == ACCEPTED]
    print(
        f"Master workbook: {args.out} ({len(result.table):,} lines from {len(accepted)} of "
        f"{len(result.files)} files, {time.perf_counter() - started:.1f} s)"
    )
    if result.rejected:
        print(f"{len(result.rejected)} file(s) rejected; their lines are not in the master:")
        for f in result.rejected:
            _print_report(
                {"file": f.file, "status": f.status, "lines": f.lines, "issues": [i.to_dict() for i in f.issues]},
                sys.stdout,
            )
        return EXIT_ISSUES
    return EXIT_OK


class _Progress:
    """A one-line progress bar on a terminal; silent when output is redirected."""

    def __init__(self, stream: TextIO, started: float) -> None:
        self.stream, self.started = stream, started
        self.active = stream.isatty()

    def __call__(self, done: int, total: int, _outcome: object) -> None:
        if not self.active:
            return
        width = 30
        filled = width * done // total
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files "
            f"{time.perf_counter() - self.started:5.1f} s"
        )
        self.stream.flush()

    def done(self) -> None:
        if self.active:
            self.stream.write("\n")


def _functions_list(args: argparse.Namespace) -> int:
    from addin.live import catalog

    for function in catalog():
        params = ", ".join(f"[{a.name}]" if a.optional else a.name for a in function.args)
        print(f"{function.name}({params})\n    {function.help}\n    e.g. {function.example}")
    return EXIT_OK


def _functions_metadata(args: argparse.Namespace) -> int:
    from addin.live import catalog

    print(json.dumps(catalog().metadata(), indent=2))
    return EXIT_OK


def _functions_workbook(args: argparse.Namespace) -> int:
    from addin.sample_workbook import build_sample_workbook

    print(build_sample_workbook(_schema_of(args), args.out))
    return EXIT_OK


def _app(args: argparse.Namespace):
    from sync_service.app import create_app

    return create_app({"ORG_CONFIG": args.config} if args.config else None)


def _init(args: argparse.Namespace) -> int:
    from sync_service.api import SCHEMA, STORE
    from sync_service.migrate import upgrade
    from sync_service.workflow import sync_teams

    app = _app(args)
    store = app.extensions[STORE]
    upgrade(store.url)
    with store.transaction() as session:
        teams = sync_teams(session, app.extensions[SCHEMA])
        names = [t.id for t in teams]
    print(f"database ready ({_safe_url(store.url)}); teams: {', '.join(names)}")
    return EXIT_OK


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _token_create(args: argparse.Namespace) -> int:
    from sync_service.api import STORE
    from sync_service.auth import create_token

    app = _app(args)
    try:
        with app.extensions[STORE].transaction() as session:
            token = create_token(session, args.name, args.role, args.team)
    except LookupError as exc:
        raise PlansheetError(f"{exc.args[0]}; run 'plansheet init' and use one of its teams") from exc
    print(token)
    return EXIT_OK


def _gsheets(args: argparse.Namespace, work: Any) -> int:
    """Run a Google Sheets action as a finance user; print its answer, or its refusal with the issues."""
    from sqlalchemy import select

    from sync_service.api import SCHEMA, STORE
    from sync_service.problems import ApiError
    from sync_service.storage import Role, User

    app = _app(args)
    store = app.extensions[STORE]
    with store.transaction() as session:
        user = session.scalar(select(User).where(User.name == args.user))
        if user is None:
            user = User(name=args.user, role=Role.FINANCE)
            session.add(user)
            session.flush()
        if user.role != Role.FINANCE:
            raise PlansheetError(f"{args.user} is a {user.role}; Google Sheets commands act as a finance user")
        user.teams  # noqa: B018 - loaded while the session is open
    try:
        result = work(store, app.extensions[SCHEMA], user, app.config)
    except ApiError as exc:
        print(f"{exc.title}: {exc.detail}", file=sys.stderr)
        for issue in exc.issues or []:
            where = f"{issue.get('sheet')}!{issue.get('cell')}" if issue.get("cell") else ""
            print(f"  {where:<10} {issue.get('severity', ''):<8} {issue.get('message', '')}", file=sys.stderr)
        return EXIT_ISSUES if exc.status in (409, 422) else EXIT_UNREADABLE
    print(json.dumps(result, indent=2))
    return EXIT_OK


def _gsheets_create(args: argparse.Namespace) -> int:
    from sync_service import sheets_sync

    return _gsheets(
        args,
        lambda store, schema, user, config: sheets_sync.create_for_team(
            store, schema, user, args.team, config, args.editor, replace=args.replace
        ),
    )


def _gsheets_pull(args: argparse.Namespace) -> int:
    from sync_service import sheets_sync

    return _gsheets(
        args,
        lambda store, schema, user, config: sheets_sync.pull_for_team(
            store, schema, user, args.team, config, config["OVER_ALLOCATION"]
        ),
    )


def _gsheets_push(args: argparse.Namespace) -> int:
    from sync_service import sheets_sync

    return _gsheets(
        args,
        lambda store, schema, user, config: sheets_sync.push_master(store, schema, user, config, args.spreadsheet),
    )


def _user_password(args: argparse.Namespace) -> int:
    import getpass

    from sync_service.api import STORE
    from sync_service.web import set_password

    secret = getpass.getpass(f"Password for {args.name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    app = _app(args)
    try:
        with app.extensions[STORE].transaction() as session:
            set_password(session, args.name, secret)
    except (LookupError, ValueError) as exc:
        raise PlansheetError(str(exc.args[0])) from exc
    print(f"{args.name} can now log in to the dashboard")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import os

    from waitress import serve

    port = args.port or int(os.environ.get("PLANSHEET_PORT", "8050"))
    app = _app(args)
    print(f"Plansheet sync service on http://{args.host}:{port}/ (Ctrl+C stops it)")
    serve(app, host=args.host, port=port, threads=args.threads)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from sync_service.demo import run_demo

    return run_demo(_schema_of(args), args.out, sys.stdout, serve=args.serve)


if __name__ == "__main__":
    raise SystemExit(main())
