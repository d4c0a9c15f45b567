"""What --report shows, read from the database alone (opened read-only): the on-duty count minute by minute, the
runs, each asked-for person's trail rows, the files and, where the alerts table exists, the alerts.

"On duty at minute M" is what --on-duty-at M answers: the AtHoc users whose last value AtHoc confirmed at or before
M:00 is not blank. The count is replayed once over the period, from the day's snapshot (audit.take_snapshot)."""
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from audit_upkeep import on_duty_rows, snapshot_state
from audit_query import history
from run_history import number

GAP_SECONDS = 120  # two starts further apart than this: at least one scheduled (every-minute) run did not happen
LATE_MS = 60_000  # a run longer than its minute: the next scheduled start found it still running
MAX_POINTS = 1440  # points on the chart: a longer period is sampled every few minutes
_CHANGES = ("SELECT t.id, t.at, p.login, t.sent FROM audit_trail t JOIN audit_people p ON p.id = t.person "
            "WHERE t.at / 1000000 BETWEEN ? AND ? AND t.at > ? AND t.at <= ? AND t.answer = 'ok' ORDER BY t.at, t.id")


def _when(number_: int) -> datetime:
    return datetime.strptime(str(number_), "%Y%m%d%H%M%S")


def on_duty_series(conn: sqlite3.Connection, start: datetime, end: datetime) -> Tuple[int, List[Tuple[datetime, int]]]:
    """(minutes between points, [(minute, people on duty at its start)]) from `start` up to `end` (excluded)."""
    minutes = max(1, int((end - start).total_seconds() // 60))
    step = -(-minutes // MAX_POINTS)
    first = number(start)
    day = first // 1000000
    snap = conn.execute("SELECT MAX(day) FROM audit_snapshot WHERE day <= ?", (day,)).fetchone()[0]
    state = snapshot_state(conn, snap) if snap is not None else {}
    on_duty_rows(conn, state, snap if snap is not None else 0, day, first)
    on = sum(1 for _, value in state.values() if value)
    last = end - timedelta(minutes=1)
    changes = conn.execute(_CHANGES, (day, number(last) // 1000000, first, number(last)))
    pending = next(changes, None)
    points = []
    moment = start
    while moment < end:
        limit = number(moment)
        while pending is not None and pending[1] <= limit:
            tid, _, login, sent = pending
            held = state.get(login)
            if held is None or tid > held[0]:
                on += (1 if sent else 0) - (1 if held and held[1] else 0)
                state[login] = (tid, sent)
            pending = next(changes, None)
        points.append((moment, on))
        moment += timedelta(minutes=step)
    return step, points


def runs(conn: sqlite3.Connection, start: datetime, end: datetime) -> List[Dict[str, Any]]:
    """The scheduled runs that started in the period, oldest first, each marked failed (exit not 0) or late."""
    if not _table(conn, "run_history"):  # written from this version on
        return []
    cursor = conn.execute("SELECT * FROM run_history WHERE started >= ? AND started < ? ORDER BY started, id",
                          (number(start), number(end)))
    names = [d[0] for d in cursor.description]
    found = []
    for values in cursor:
        run = dict(zip(names, values))
        run["start"] = _when(run["started"])
        run["failed_run"] = run["exit_code"] != 0
        run["late"] = run["duration_ms"] > LATE_MS
        run["idle"] = not (run["files"] or run["updated"] or run["pending"] or run["stale"] or run["rejected"]
                           or run["failed"] or run["gone"] or run["failed_run"] or run["late"] or run["problems"])
        found.append(run)
    return found


def gaps(found: Sequence[Dict[str, Any]], start: datetime, end: datetime) -> List[Tuple[datetime, datetime]]:
    """The stretches of the period (up to `end`, or now when sooner) in which no run started for GAP_SECONDS."""
    marks = [start] + [r["start"] for r in found] + [min(end, datetime.now())]
    return [(a, b) for a, b in zip(marks, marks[1:]) if (b - a).total_seconds() > GAP_SECONDS]


def problem_changes(found: Sequence[Dict[str, Any]]) -> List[Tuple[datetime, str, str]]:
    """(when, 'opened' or 'cleared', the problem) each time the runs' problems changed: a problem opens with the
    first run that has it and clears with the first run after it that has not."""
    changes: List[Tuple[datetime, str, str]] = []
    held = ""
    for run in found:
        now = run["problems"]
        if now != held:
            if held:
                changes.append((run["start"], "cleared", held))
            if now:
                changes.append((run["start"], "opened", now))
            held = now
    return changes


def person_rows(conn: sqlite3.Connection, text: str, start: datetime, end: datetime) -> Dict[str, Any]:
    """A person's trail rows recorded in the period, oldest first (audit_query.history, with its words)."""
    result = history(conn, text, start)
    until = end.strftime("%Y-%m-%d %H:%M:%S")
    result["rows"] = [r for r in reversed(result["rows"]) if r["at"] < until]
    return result


def _table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


ALERT_COLUMNS = ("problem", "since", "alert sent", "last reminder", "cleared", "detail")


def alerts(conn: sqlite3.Connection, start: datetime, end: datetime) -> Optional[List[Tuple[Any, ...]]]:
    """The problems alerts knew of in the period (alert_state: since, message decided, last reminder, cleared),
    oldest first; None when this database has no alert table (a copy from before alerts)."""
    if not _table(conn, "alert_state"):
        return None
    span = (end.strftime("%Y-%m-%d %H:%M:%S"), start.strftime("%Y-%m-%d %H:%M:%S"))
    return conn.execute("SELECT problem, since, opened_at, reminded_at, cleared_at, detail FROM alert_state "
                        "WHERE since <= ? AND (cleared_at IS NULL OR cleared_at >= ?) ORDER BY since LIMIT 500",
                        span).fetchall()


def files(conn: sqlite3.Connection, start: datetime, end: datetime, csv_dir: Path, failed_dir: Path
          ) -> Dict[str, List[Tuple[Any, ...]]]:
    """The files processed in the period (processing_log), those failing or set aside (file_attempts and the
    failed folder), and those still waiting in the CSV folder."""
    span = (start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S"))
    processed = conn.execute("SELECT processed_at, filename, entries_processed, success_count, error_count, errors "
                             "FROM processing_log WHERE processed_at >= ? AND processed_at < ? ORDER BY id",
                             span).fetchall()
    attempts = {name: (count, error, when) for name, count, error, when in conn.execute(
        "SELECT filename, attempts, last_error, last_attempt FROM file_attempts")}
    set_aside = _listing(failed_dir, "")
    failed = [(name, attempts.get(name, (0, "", ""))[0], attempts.get(name, (0, "", ""))[1] or "set aside",
               "in the failed folder" if name in set_aside else "retried by the next run")
              for name in sorted(set(attempts) | set(set_aside))]
    return {"processed": processed, "failed": failed, "waiting": [(n,) for n in _listing(csv_dir, ".csv")]}


def _listing(folder: Path, suffix: str) -> List[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(suffix))
    except OSError:
        return []
