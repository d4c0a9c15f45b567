"""The audit trail's upkeep, in the hourly purge step: the daily snapshots --on-duty-at starts from, and the
purge of rows older than AUDIT_RETENTION_DAYS (of processing_log too), a bounded number per run.

A snapshot of a day holds the trail rows whose value was in force on an AtHoc user at the day's start, on duty;
it is taken from the one before and the days in between. A row a kept snapshot still refers to is kept past the
retention, with the value it holds.
"""
import sqlite3
import time
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Dict, Tuple

from audit import at_number

if TYPE_CHECKING:
    from bobo_db import BOBODatabase

PURGE_CHUNK = 10_000  # rows per delete transaction: a run or a --status waits at most one chunk for the lock
PURGE_CHUNKS = 5  # chunks of each table per purge step (hourly): 50,000 trail rows an hour at most
PURGE_SECONDS = 5.0  # and the purge step stops starting chunks after this long
SNAPSHOTS_PER_RUN = 3


def maintain(db: "BOBODatabase", now: datetime, retention_days: int) -> None:
    """Take the missing daily snapshots and purge rows older than `retention_days` (0 keeps them), in bounded time."""
    conn = db.conn
    stop_at = time.monotonic() + PURGE_SECONDS
    today = int(now.strftime("%Y%m%d"))
    for _ in range(SNAPSHOTS_PER_RUN):
        if time.monotonic() > stop_at or not take_snapshot(conn, today):
            break
    if retention_days > 0:
        cutoff = now - timedelta(days=retention_days)
        purge(conn, at_number(cutoff), cutoff.isoformat(sep=" ", timespec="seconds"), stop_at)


def day_number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def number_day(number: int) -> date:
    return date(number // 10000, number // 100 % 100, number % 100)


def on_duty_rows(conn: sqlite3.Connection, state: Dict[str, Tuple[int, str]], first_day: int, last_day: int,
                 until: int) -> None:
    """Replay into `state` (LOGIN_ID -> (trail id, value)) every value AtHoc applied on those days, up to `until`:
    each login keeps its last one."""
    for tid, login, sent in conn.execute(
            "SELECT t.id, p.login, t.sent FROM audit_trail t JOIN audit_people p ON p.id = t.person "
            "WHERE t.at / 1000000 BETWEEN ? AND ? AND t.at <= ? AND t.answer = 'ok'", (first_day, last_day, until)):
        held = state.get(login)
        if held is None or tid > held[0]:
            state[login] = (tid, sent)


def snapshot_state(conn: sqlite3.Connection, day: int) -> Dict[str, Tuple[int, str]]:
    """LOGIN_ID -> (trail id, value) of the on-duty values in the snapshot of `day`."""
    return {login: (tid, sent) for tid, login, sent in conn.execute(
        "SELECT t.id, p.login, t.sent FROM audit_snapshot s JOIN audit_trail t ON t.id = s.trail_id "
        "JOIN audit_people p ON p.id = t.person WHERE s.day = ?", (day,))}


def take_snapshot(conn: sqlite3.Connection, today: int) -> bool:
    """Take the next missing snapshot (the on-duty values at the start of a day, from the one before and the days
    in between), for a day up to `today`; False when none is missing."""
    last = conn.execute("SELECT MAX(day) FROM audit_snapshot").fetchone()[0]
    if last is None:
        first = conn.execute("SELECT at / 1000000 FROM audit_trail ORDER BY at / 1000000 LIMIT 1").fetchone()
        if first is None or first[0] > today:
            return False
        day, state = first[0], {}
    else:
        later = conn.execute("SELECT at / 1000000 FROM audit_trail WHERE at / 1000000 > ? ORDER BY at / 1000000 "
                             "LIMIT 1", (last,)).fetchone()
        day = min(later[0] if later else today, today)
        if day <= last:
            return False
        state = snapshot_state(conn, last)
        previous = day_number(number_day(day) - timedelta(days=1))
        on_duty_rows(conn, state, last, previous, previous * 1000000 + 235959)
    with conn:
        conn.execute("INSERT OR IGNORE INTO audit_snapshot (day, trail_id) VALUES (?, 0)", (day,))
        conn.executemany("INSERT OR IGNORE INTO audit_snapshot (day, trail_id) VALUES (?, ?)",
                         ((day, tid) for tid, sent in state.values() if sent))
    return True


def purge(conn: sqlite3.Connection, cutoff_at: int, cutoff_stamp: str, stop_at: float) -> Dict[str, int]:
    """Delete trail rows, snapshots, file names and processing_log rows older than the cutoff, PURGE_CHUNK rows per
    transaction, PURGE_CHUNKS chunks of each at most; the rows deleted, by table. A row a kept snapshot still
    refers to (a duty value still in force) is kept."""
    cutoff_day = cutoff_at // 1000000
    keep = conn.execute("SELECT MAX(day) FROM audit_snapshot WHERE day <= ?", (cutoff_day,)).fetchone()[0]
    statements = {
        "audit_snapshot": ("DELETE FROM audit_snapshot WHERE day = (SELECT MIN(day) FROM audit_snapshot) AND day < ?",
                           (keep or 0,)),
        "audit_trail": ("DELETE FROM audit_trail WHERE id IN (SELECT id FROM audit_trail WHERE at / 1000000 < ? AND "
                        "NOT EXISTS (SELECT 1 FROM audit_snapshot s WHERE s.trail_id = audit_trail.id) LIMIT ?)",
                        (cutoff_day, PURGE_CHUNK)),
        "audit_files": ("DELETE FROM audit_files WHERE id IN (SELECT id FROM audit_files ORDER BY id LIMIT ?) AND "
                        "last_seen < ?", (PURGE_CHUNK, cutoff_at)),
        "processing_log": ("DELETE FROM processing_log WHERE id IN (SELECT id FROM processing_log ORDER BY id "
                           "LIMIT ?) AND processed_at < ?", (PURGE_CHUNK, cutoff_stamp)),
    }
    deleted: Dict[str, int] = {}
    for table, (sql, params) in statements.items():
        deleted[table] = 0
        for _ in range(PURGE_CHUNKS):
            if time.monotonic() > stop_at:
                break
            with conn:
                count = conn.execute(sql, params).rowcount
            deleted[table] += count
            if count < (PURGE_CHUNK if table != "audit_snapshot" else 1):
                break
    return deleted
