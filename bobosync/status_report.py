"""--status: what bobosync is doing, from the local database and folders only (no network)."""
import json
import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from alert_settings import alerts_on
from config import Settings
from bobo_db import ProcessedFile
from file_names import readable_name
from health import health, health_line
from inbox import is_remembered
from wall_clock import wall_time

NOT_A_FILE = "it is not a file"


def _csv_files(folder: Path) -> List[Tuple[Path, os.stat_result]]:
    """The folder's *.csv files and their stat (none when it cannot be read)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    found = []
    for p in entries:
        try:
            if p.suffix.lower() == ".csv" and p.is_file():
                found.append((p, p.stat()))
        except OSError:  # moved away since the listing
            continue
    return found


def _still_to_send(files: List[Tuple[Path, os.stat_result]], known: Dict[str, List[ProcessedFile]]) -> List[float]:
    """The modification times of the files a run would still send: not those AtHoc already confirmed (same
    name and size, and the same modification time or content), which stay with MOVE_PROCESSED_FILES=false."""
    mtimes = []
    for path, st in files:
        try:
            confirmed = is_remembered(path, st, known.get(readable_name(path.name), ()))
        except OSError:
            confirmed = False
        if not confirmed:
            mtimes.append(st.st_mtime)
    return mtimes


def _no_table(exc: sqlite3.OperationalError) -> bool:
    return str(exc).startswith("no such table")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class _Reader:
    """Queries on a database opened read-only; a missing table (a seed-era file) reads as the default."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def one(self, sql: str, default: Any = None, params: tuple = ()) -> Any:
        rows = _rows(self.conn, sql, params)
        return rows[0][0] if rows and rows[0] else default

    def state(self, key: str) -> Optional[str]:
        return self.one("SELECT value FROM run_state WHERE key = ?", None, (key,))


def _read_db(path: Path, future: str = "99999999999999") -> Optional[Dict[str, Any]]:
    """The database's view, opened read-only so --status never creates or changes it."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, timeout=5)
    try:
        db = _Reader(conn)
        return {
            "mapping_sync": _mapping_sync(db),
            "credentials_refused": {"times": int(db.state("credentials_refused_failures") or 0),
                                    "next_try": db.state("credentials_refused_until")},
            "athoc_clock_minus_ours_seconds": _number(db.state("athoc_clock_offset_seconds")),
            "last_run": db.state("last_run"),
            "last_athoc_update": db.state("last_athoc_update"),
            "last_cleanup": db.state("last_cleanup"),
            "on_duty": db.one("SELECT COUNT(*) FROM duty_state WHERE on_duty = 1", 0),
            "pending": _pending(conn),
            "ahead_of_the_clock": [e for (e,) in _rows(conn, "SELECT employee_id FROM duty_state WHERE event_time > ? "
                                                            "ORDER BY employee_id", (future,))],
            "retrying": [{"file": f, "attempts": a, "last_error": e} for f, a, e in _rows(
                conn, "SELECT filename, attempts, last_error FROM file_attempts ORDER BY filename")],
            "alert_problems": _alert_problems(conn),
            "_processed": _processed(conn),
        }
    finally:
        conn.close()


def _mapping_sync(db: _Reader) -> Dict[str, Any]:
    sync = _rows(db.conn, "SELECT last_sync_time, status FROM sync_tracking WHERE sync_type = 'user_mapping'")
    last, status = sync[0] if sync else (None, "never")
    return {"last_attempt": last, "status": status, "last_good": db.state("last_good_mapping_sync"),
            "next_attempt": db.state("mapping_sync_until"), "held_back": db.state("mapping_held_back"),
            "resuming_at_page": db.state("mapping_listing_next_page"),
            "users_mapped": db.one("SELECT COUNT(*) FROM worker_mapping", 0),
            "ambiguous_ids": db.one("SELECT COUNT(*) FROM ambiguous_ids", 0)}


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> List[tuple]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if _no_table(exc):
            return []
        raise


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _processed(conn: sqlite3.Connection) -> Dict[str, List[ProcessedFile]]:
    """The files AtHoc confirmed: name -> [(size, mtime_ns, sha256)]."""
    known: Dict[str, List[ProcessedFile]] = {}
    for name, size, mtime_ns, sha in _rows(conn, "SELECT filename, size, mtime_ns, sha256 FROM processed_files"):
        known.setdefault(name, []).append(ProcessedFile(name, size, mtime_ns, sha))
    return known


def _alert_problems(conn: sqlite3.Connection) -> List[Dict[str, Any]]:
    """The problems alerts know of and that have not cleared (alerts.py)."""
    from alert_problems import PROBLEMS
    rows = _rows(conn, "SELECT problem, since, last_seen, detail, opened_at, message_kind, last_error FROM alert_state "
                       "WHERE cleared_at IS NULL ORDER BY since, problem")
    return [{"problem": p, "title": PROBLEMS[p].title if p in PROBLEMS else p, "since": since, "last_seen": seen,
             "detail": detail, "message_sent": opened is not None and kind != "open",
             "undelivered": f"{kind} ({error})" if kind and error else kind} for p, since, seen, detail, opened, kind,
            error in rows]


def _pending(conn: sqlite3.Connection) -> Dict[str, Any]:
    """How many events wait for an AtHoc user to hold their number, and since when."""
    rows = _rows(conn, "SELECT COUNT(*), MIN(first_seen) FROM pending_events")
    count, oldest = rows[0] if rows else (0, None)
    return {"count": count, "oldest_since": oldest}


def collect_status(settings: Settings) -> Dict[str, Any]:
    """Everything --status reports, as a dict (also the --json output). `problems` lists what makes every run
    exit 2 (a configuration error)."""
    now = wall_time()
    future = time.strftime("%Y%m%d%H%M%S", time.localtime(now + settings.future_tolerance_minutes * 60))
    csv_ok = settings.csv_directory.is_dir() and os.access(settings.csv_directory, os.R_OK | os.X_OK)
    status: Dict[str, Any] = {
        "problems": [] if csv_ok else [f"CSV_DIRECTORY {settings.csv_directory} does not exist or cannot be read: "
                                       f"every run exits 2 until it is created or the path is fixed"],
        "csv_directory": str(settings.csv_directory),
        "files_waiting": None, "oldest_waiting_seconds": None,
        "files_failed": len(_csv_files(settings.failed_files_directory)),
        "failed_directory": str(settings.failed_files_directory),
        "move_processed_files": settings.move_processed_files,
        "database": str(settings.db_path),
        "clock_tolerance_seconds": settings.clock_skew_tolerance_minutes * 60,
    }
    db: Optional[Dict[str, Any]] = None
    if settings.db_path.exists() and not settings.db_path.is_file():
        status["database_error"] = NOT_A_FILE
    else:
        try:
            db = _read_db(settings.db_path, future)
        except sqlite3.Error as exc:  # locked for long, damaged, unreadable
            status["database_error"] = str(exc)
    if csv_ok:
        mtimes = _still_to_send(_csv_files(settings.csv_directory), db.pop("_processed") if db else {})
        status["files_waiting"] = len(mtimes)
        status["oldest_waiting_seconds"] = round(now - min(mtimes)) if mtimes else None
    if db is not None:
        db.pop("_processed", None)
        status.update(db)
        if not alerts_on(settings):
            status["alert_problems"] = []  # left from when alerts were on: no run looks at them now
    elif "database_error" not in status:
        status["database_missing"] = True
    return {"health": health(status, settings.alert_pending_hours, datetime.now()), **status}


def _clock_line(status: Dict[str, Any]) -> List[str]:
    """How AtHoc's clock compared with this server's at the last reply seen."""
    offset = status.get("athoc_clock_minus_ours_seconds")
    if offset is None:
        return []
    side = "ahead of" if offset >= 0 else "behind"
    line = f"Clocks:              AtHoc's is {abs(offset) / 60:.1f} min {side} this server's (last reply seen)"
    if abs(offset) > status["clock_tolerance_seconds"]:
        line += "; more than CLOCK_SKEW_TOLERANCE_MINUTES: fix this server's clock (a person must act)"
    return [line]


def format_status(status: Dict[str, Any]) -> str:
    """The human-readable --status page, its health line first."""
    lines = [health_line(status["health"])] + _file_lines(status)
    if status.get("database_missing"):
        lines.append(f"Database:            {status['database']} does not exist yet: no run has happened")
        return "\n".join(lines)
    if status.get("database_error"):
        hint = ("fix DB_PATH" if status["database_error"] == NOT_A_FILE else "if another program holds it, close "
                "it; if it is damaged, the next scheduled run sets it aside and builds a new one")
        lines.append(f"Database:            {status['database']} cannot be read ({status['database_error']}): {hint}")
        return "\n".join(lines)
    retrying = status["retrying"]
    lines.append(f"Files being retried: {len(retrying)}")
    for item in retrying:
        lines.append(f"  {item['file']}: {item['attempts']} attempt(s); last error: {item['last_error']}")
    lines += _sync_lines(status) + _clock_line(status) + _alert_lines(status)
    lines.append(f"Last run:            {status['last_run'] or 'never'}")
    lines.append(f"Last AtHoc update:   {status['last_athoc_update'] or 'never'}")
    lines.append(f"Last cleanup:        {status['last_cleanup'] or 'never'}")
    lines.append(f"On duty (our records): {status['on_duty']}")
    return "\n".join(lines + _people_lines(status))


def _file_lines(status: Dict[str, Any]) -> List[str]:
    lines = [f"Configuration error: {problem}" for problem in status["problems"]]
    oldest = status["oldest_waiting_seconds"]
    if status["files_waiting"] is None:
        waiting = f"unknown: {status['csv_directory']} cannot be read"
    else:
        waiting = f"{status['files_waiting']} to send in {status['csv_directory']}"
    if oldest is not None:
        waiting += f", oldest {_age(oldest)} old"
    if not status["move_processed_files"] and status["files_waiting"] is not None:
        waiting += " (MOVE_PROCESSED_FILES=false: files AtHoc confirmed stay there and are not counted)"
    return lines + [f"Files waiting:       {waiting}",
            f"Files failed:        {status['files_failed']} in {status['failed_directory']}"]


def _alert_lines(status: Dict[str, Any]) -> List[str]:
    lines = []
    for p in status["alert_problems"]:
        told = "alert sent" if p["message_sent"] else "no alert yet"
        waiting = f"; waiting to be delivered: {p['undelivered']}" if p["undelivered"] else ""
        lines.append(f"Alert problem:       {p['title']} since {p['since']} ({told}{waiting}): {p['detail']}")
    return lines


def _sync_lines(status: Dict[str, Any]) -> List[str]:
    sync = status["mapping_sync"]
    lines = [f"Mapping sync:        last {sync['last_attempt'] or 'never'} ({sync['status']}), "
             f"last good {sync['last_good'] or 'never'}, {sync['users_mapped']} users mapped, "
             f"{sync['ambiguous_ids']} ambiguous ids"]
    if sync["held_back"]:
        lines.append(f"  held back: {sync['held_back']}; run --sync-mappings --accept-drop if the listing is right")
    if sync["next_attempt"] and sync["status"] != "success":
        lines.append(f"  next attempt at {sync['next_attempt']} (--sync-mappings tries at once)")
    if sync["resuming_at_page"]:
        lines.append(f"  a listing is being read across runs: the next run goes on from page "
                     f"{sync['resuming_at_page']}")
    refused = status["credentials_refused"]
    if refused["times"]:
        lines.append(f"Credentials:         AtHoc refused them {refused['times']} time(s); runs ask again at "
                     f"{refused['next_try']} or as soon as they change in the settings (a person must act)")
    return lines


def _people_lines(status: Dict[str, Any]) -> List[str]:
    pending = status["pending"]
    lines = [f"Pending events:      {pending['count']} for employee numbers no AtHoc user holds yet, oldest since "
             f"{pending['oldest_since']} (sent once a user holds the number)" if pending["count"]
             else "Pending events:      none"]
    ahead = status["ahead_of_the_clock"]
    if ahead:
        shown = ", ".join(ahead[:20]) + (f" and {len(ahead) - 20} more" if len(ahead) > 20 else "")
        lines.append(f"Ahead of the clock:  {len(ahead)} person(s) whose last event applied is in the future "
                     f"(a wrong terminal clock or a typo, accepted before bobosync rejected such rows): {shown}. "
                     f"Every later real event of theirs is stale until you run --clear-future")
    return lines


def print_status(settings: Settings, as_json: bool = False) -> int:
    """Print the status; exit 2 for a configuration error (as every run then exits), 1 when the database
    cannot be read, else 0."""
    status = collect_status(settings)
    print(json.dumps(status, indent=2) if as_json else format_status(status))
    if status["problems"]:
        return 2
    return 1 if status.get("database_error") else 0
