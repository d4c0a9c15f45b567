"""The command line of bobo_processor.py: options, the mode each selects, and the exit code.

With no option it is one scheduled run. Every failure becomes one clear line and an exit
code (0 done or nothing to do, 1 something left for the next run, 2 configuration error, 3 a person must act);
the log file keeps a traceback only for an unexpected error.
"""
import logging
import sqlite3
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional, Sequence

from bobo_db import DatabaseError, is_damage, set_aside_damaged
from config import ConfigError, Settings, load_settings
from engine import BOBOProcessor, run_locked
from log_setup import output_closed, setup_logging, teardown_logging
from results import EXIT_CONFIG, EXIT_RETRY

if TYPE_CHECKING:
    import argparse

log = logging.getLogger("bobosync")


def build_parser() -> "argparse.ArgumentParser":
    """The options; argparse is imported only when there are options to parse."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="bobo_processor.py",
        description="Send BOBO book-on/book-off events to AtHoc's duty field. With no option: one scheduled run "
                    "(what Task Scheduler starts every minute).",
        epilog="Exit codes: 0 done or nothing to do, 1 something left for the next run (it retries by itself), "
               "2 configuration error, 3 a person must act (credentials refused, a field unknown to AtHoc, a file set "
               "aside in the failed folder, a mapping sync held back). New here? Try --demo, then --check.")
    from version import VERSION
    parser.add_argument("--version", action="version", version=f"bobosync {VERSION}")
    _add_commands(parser.add_mutually_exclusive_group())
    _add_qualifiers(parser)
    # for run_bobo_windows.bat and .ps1, given with the run's own arguments: where their log goes (wrapper_logs.py)
    parser.add_argument("--wrapper-logs", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add_commands(mode: Any) -> None:
    """The commands, one at a time (none: the scheduled run)."""
    mode.add_argument("--dry-run", action="store_true",
                      help="show what would be sent and where each file would go; change nothing")
    mode.add_argument("--sync-mappings", action="store_true", help="sync user mappings from AtHoc now, then exit")
    mode.add_argument("--check", action="store_true",
                      help="preflight for a new site: settings, folders, DNS, TCP, TLS, proxy, token, users")
    mode.add_argument("--status", action="store_true",
                      help="files waiting, retrying and failed, last sync and run; local only, no network")
    mode.add_argument("--clear-future", action="store_true",
                      help="forget duty states dated ahead of the clock (a wrong terminal clock or a typo that an "
                           "older bobosync accepted) and clear their duty field in AtHoc; --status lists them")
    mode.add_argument("--history", metavar="EMPLOYEE_OR_LOGIN",
                      help="that person's audit trail, newest first: every event read, what bobosync decided, what "
                           "AtHoc answered; local only, no network")
    mode.add_argument("--on-duty-at", nargs="+", metavar=("WHEN", "EMPLOYEE"),
                      help="who AtHoc's duty field, as bobosync set it, said was on duty at WHEN (\"DD/MM/YYYY "
                           "HH:MM[:SS]\", local time), from the audit trail; with EMPLOYEE (or a LOGIN_ID), that "
                           "person and the event that put them there; local only")
    mode.add_argument("--report", action="store_true",
                      help="write one self-contained HTML page for an incident review (people on duty minute by "
                           "minute, the runs, the files, and each --person's events and decisions) and print its "
                           "path; local only, no network")
    mode.add_argument("--demo", action="store_true",
                      help="rehearse one run against a built-in AtHoc simulator; needs no AtHoc and no .env")
    mode.add_argument("--store-secret", metavar="NAME",
                      help="store the secret setting NAME (CLIENT_SECRET, PASSWORD, SMTP_PASSWORD, HTTP_PROXY or "
                           "HTTPS_PROXY: the proxy's password) in the credential store for this site; typed without "
                           "echo, or one line of standard input; then set NAME=keyring in .env")
    mode.add_argument("--backup", metavar="PATH",
                      help="copy the database to PATH (a new file, or a folder for a dated name) while runs go on; "
                           "never overwrites a file")
    mode.add_argument("--task-xml", action="store_true",
                      help="print the Windows Task Scheduler definition of the every-minute task for this checkout "
                           "(schtasks /Create /TN bobosync /XML FILE /RU ACCOUNT /RP *)")


def _add_qualifiers(parser: Any) -> None:
    """The options that go with one command or another (parse_args says which)."""
    parser.add_argument("--delete", action="store_true", help="with --store-secret: remove NAME from the store")
    parser.add_argument("--user", metavar="ACCOUNT", help="with --task-xml: the account the task runs as")
    parser.add_argument("--out", metavar="FILE", help="with --task-xml: write the XML to FILE in UTF-16, as "
                                                      "schtasks /XML reads it; with --report: the page's file "
                                                      "(default bobosync_report_<date>.html here)")
    parser.add_argument("--since", metavar="WHEN", help="with --history or --report: from WHEN on (DD/MM/YYYY "
                                                        "[HH:MM[:SS]])")
    parser.add_argument("--until", metavar="WHEN", help="with --report: up to WHEN (default now)")
    parser.add_argument("--day", metavar="DD/MM/YYYY", help="with --report: that whole day (default today)")
    parser.add_argument("--person", action="append", metavar="EMPLOYEE_OR_LOGIN",
                        help="with --report: a lane for this person (repeat it for more people)")
    parser.add_argument("--json", action="store_true", help="with --status, --history or --on-duty-at: print JSON")
    parser.add_argument("--test-alert", action="store_true",
                        help="with --check: send a test alert by e-mail and to the event log, as configured")
    parser.add_argument("--accept-drop", action="store_true",
                        help="with --sync-mappings: apply a listing that drops more than MAPPING_DROP_LIMIT_PERCENT "
                             "of the mappings held (after checking in AtHoc that it is right)")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from this file instead of bobosync/.env")


# What build_parser() makes of no option at all: the scheduled run, which need not import argparse.
SCHEDULED_RUN = dict(dry_run=False, sync_mappings=False, check=False, status=False, clear_future=False, demo=False,
                     store_secret=None, task_xml=False, delete=False, user=None, out=None, json=False,
                     accept_drop=False, env_file=None, wrapper_logs=False, backup=None, test_alert=False,
                     history=None, since=None, on_duty_at=None, report=False, until=None, day=None, person=None)


def parse_args(argv: Optional[Sequence[str]] = None) -> Any:
    """The options of `argv` (default: the command line's)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        return SimpleNamespace(**SCHEDULED_RUN)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not (args.status or args.history is not None or args.on_duty_at):
        parser.error("--json goes with --status, --history or --on-duty-at")
    if args.since is not None and args.history is None and not args.report:
        parser.error("--since goes with --history or --report")
    if (args.until is not None or args.day is not None or args.person) and not args.report:
        parser.error("--until, --day and --person go with --report")
    if args.day is not None and (args.since is not None or args.until is not None):
        parser.error("--report takes --day, or --since and --until, not both")
    if args.on_duty_at and len(args.on_duty_at) > 2:
        parser.error("--on-duty-at takes WHEN and at most one EMPLOYEE (quote WHEN: \"01/10/2024 03:00\")")
    if args.test_alert and not args.check:
        parser.error("--test-alert goes with --check")
    if args.accept_drop and not args.sync_mappings:
        parser.error("--accept-drop goes with --sync-mappings")
    if args.delete and args.store_secret is None:
        parser.error("--delete goes with --store-secret NAME")
    if (args.user is not None and not args.task_xml) or (args.out is not None and not (args.task_xml or args.report)):
        parser.error("--user and --out go with --task-xml (--out also with --report)")
    return args


def entry(argv: Optional[Sequence[str]] = None) -> int:
    """main() as the script runs it: output closed early (`--check | head -2`) ends the command quietly, with
    exit code 1 and no traceback. (A run's log lines go on to the log file: the console handler drops them.)"""
    try:
        code = main(argv)
        sys.stdout.flush()
        return code
    except OSError as exc:
        if not output_closed(exc):
            raise
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that the interpreter's last flush finds no closed pipe
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RETRY


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit code."""
    args = parse_args(argv)
    if args.wrapper_logs:
        from wrapper_logs import wrapper_logs_command
        return wrapper_logs_command(args.env_file)
    if args.demo:
        from demo import run_demo
        return run_demo()
    if args.check:
        from preflight import run_checks
        return run_checks(args.env_file, test_alert=args.test_alert)
    if args.backup is not None:
        from backup import backup_command
        return backup_command(args.backup, args.env_file)
    if args.store_secret is not None:
        from secret_command import store_command
        return store_command(args.store_secret, delete=args.delete, env_file=args.env_file)
    if args.task_xml:
        from task_xml import task_xml_command
        return task_xml_command(user=args.user, out=args.out, env_file=args.env_file)
    local = args.status or args.report or args.history is not None or bool(args.on_duty_at)  # no AtHoc credentials
    try:
        settings = load_settings(args.env_file, local=local)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    if args.history is not None or args.on_duty_at:
        from audit_query import run_query
        return run_query(settings.db_path, args.history, args.since, args.on_duty_at, args.json)
    if args.report:
        from report import run_report
        return run_report(settings, args.day, args.since, args.until, args.person or [], args.out)
    if args.status:
        from status_report import print_status
        return print_status(settings, as_json=args.json)
    handlers = setup_logging(settings, mode="dry-run" if args.dry_run else "")
    try:
        return _run_mode(args, settings)
    finally:
        teardown_logging(handlers)


def _run_mode(args: Any, settings: Settings) -> int:
    """A run, --dry-run or --sync-mappings under the lock, every failure turned into an exit code."""
    wait = settings.lock_wait_seconds  # a person typed it: wait for a scheduled run to finish
    try:
        if args.dry_run:
            return run_locked(settings, BOBOProcessor.dry_run, wait)
        if args.sync_mappings:
            return run_locked(settings, lambda p: p.sync_now(accept_drop=args.accept_drop), wait)
        if args.clear_future:
            return run_locked(settings, BOBOProcessor.clear_future_states, wait)
        return run_locked(settings, BOBOProcessor.run)
    except ConfigError as exc:  # a secret in the credential store, read when first needed
        log.error("%s", exc)
        return EXIT_CONFIG
    except DatabaseError as exc:
        log.error("%s", exc)
        return EXIT_RETRY if exc.transient else EXIT_CONFIG
    except sqlite3.OperationalError as exc:
        log.error("Database %s is busy or unusable (%s): if another program holds it, close it; the next run "
                  "tries again", settings.db_path, exc)
        return EXIT_RETRY
    except sqlite3.DatabaseError as exc:
        return _database_refused(settings, exc)
    except KeyboardInterrupt:
        log.warning("Interrupted; files not yet confirmed by AtHoc stay for the next run")
        return EXIT_RETRY
    except Exception as exc:  # the operator gets a message; the log file keeps the traceback
        log.error("Unexpected error: %s: %s. Files not confirmed by AtHoc stay for the next run; "
                  "the log file holds the details", type(exc).__name__, exc, exc_info=True)
        return EXIT_RETRY


def _database_refused(settings: Settings, exc: sqlite3.DatabaseError) -> int:
    """A damaged file is set aside for the next run to rebuild; any other refusal keeps the file."""
    if not is_damage(exc):  # e.g. a constraint or trigger someone added: the file itself is fine, keep it
        log.error("Database %s refused a change (%s: %s): it is kept as it is; if another program or a "
                  "person changed its tables, undo that. Files not confirmed by AtHoc stay for the next run",
                  settings.db_path, type(exc).__name__, exc)
        return EXIT_RETRY
    set_aside_damaged(settings.db_path, exc)
    log.error("The database was damaged and has been set aside; the next run builds a new one and re-syncs "
              "the mappings. Files not confirmed by AtHoc stay for that run")
    return EXIT_RETRY
