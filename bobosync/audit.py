"""The audit trail: for every event read, what bobosync decided and what AtHoc answered, and every other change
bobosync made to AtHoc's duty field (the cleanup, a collar number moving to another user, --clear-future).

A step gathers its rows in a `Trail` and hands it to the database call that records the step, which writes it
inside the same transaction (`Trail.write`): the trail always agrees with duty_state. A run killed after AtHoc
answered and before the commit records neither; the next run sends the event again and records it then.
The tables are in db_schema.py; audit_query.py answers --history and --on-duty-at from them. `maintain`, in the
hourly purge step, takes the daily snapshots --on-duty-at starts from and purges, a bounded number of rows per
run, trail and processing_log rows older than AUDIT_RETENTION_DAYS.
"""
import os
import sqlite3
import time
from operator import itemgetter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from failpoints import AUDIT_OFF_VAR

if TYPE_CHECKING:
    from athoc_types import SyncOutcome
    from bobo_csv import BOBOEntry, CsvFile
    from bobo_db import BOBODatabase
    from planner import BatchPlan

# decision -> what it means (the words --history builds on)
DECISIONS = {
    "applied": "sent to AtHoc, which applied it",
    "superseded": "not sent: a later event of the same person in the same batch was sent instead",
    "stale": "not sent: not newer than the event already applied",
    "pending": "not sent: no AtHoc user holds the employee number yet; kept as pending",
    "rejected": "a bad row, not an event",
    "gone": "sent, but AtHoc says the user does not exist; kept as pending",
    "failed": "sent, but AtHoc did not apply it; its file is tried again",
    "dropped": "a pending event given up without sending: a later event was applied, or the book-on is too old",
    "expired": "a pending event given up after PENDING_EXPIRY_DAYS with no AtHoc user",
    "cleared": "the cleanup cleared the duty field: on duty too long without a book-off",
    "moved": "the collar number moved to another AtHoc user: the duty value followed it",
    "clear-future": "--clear-future forgot an event dated ahead of the clock",
}
SETS_FIELD = "ok"  # the answer of a row whose value AtHoc applied: what --on-duty-at reconstructs from

PURGE_CHUNK = 10_000  # rows per delete transaction: a run or a --status waits at most one chunk for the lock
PURGE_CHUNKS = 5  # chunks of each table per purge step (hourly): 50,000 trail rows an hour at most
PURGE_SECONDS = 5.0  # and the purge step stops starting chunks after this long
SNAPSHOTS_PER_RUN = 3
PER_PERSON = 100  # superseded events of one person listed one by one in one batch (then the last, and a count)
LISTED_CHARS = 21 * PER_PERSON  # a line has 21 characters at least: below this length, fewer than PER_PERSON
MAX_LISTED = 200_000  # and in all, per batch: a batch of any size is read in bounded memory and time

# A row as gathered, in the columns of _INSERT: at, (employee, LOGIN_ID) (then the audit_people id), event, event
# time, created, file name (then the audit_files id), line, decision, sent, answer, detail, superseded
Row = List[Any]

_PEOPLE_AFTER = "SELECT id, employee_id, login FROM audit_people WHERE id > ?"
_INSERT = ("INSERT INTO audit_trail (at, person, event, event_time, created, file, line, decision, sent, answer, "
           "detail, superseded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def recording() -> bool:
    """False only under the benchmark's test hook that measures a run without the trail."""
    return not os.environ.get(AUDIT_OFF_VAR)


def at_number(moment: datetime) -> int:
    """A moment as the trail keeps it: the integer YYYYMMDDHHMMSS."""
    return int(moment.strftime("%Y%m%d%H%M%S"))


def answer_of(status: str, details: str) -> str:
    """AtHoc's answer as the trail keeps it: 'ok', or the outcome with AtHoc's words."""
    return SETS_FIELD if status == "ok" else f"{status}: {details}"[:500]


class Trail:
    """The trail rows of one step, written by `write` inside the transaction that records the step.

    `superseded` holds the events superseded in a batch of files: each is listed in the row, in `rows`, of the
    event of the same employee that won the batch (`winners`: employee -> index in rows)."""

    def __init__(self, now: datetime):
        self.at = at_number(now)
        self.rows: List[Row] = []
        self.superseded: Optional[Superseded] = None
        self.winners: Dict[str, int] = {}

    def add(self, employee: str, login: Optional[str], decision: str, *, event: Optional[int] = None,
            event_time: Optional[str] = None, created: Optional[str] = None, file: Optional[str] = None,
            line: Optional[int] = None, sent: Optional[str] = None, answer: Optional[str] = None,
            detail: Optional[str] = None) -> None:
        self.rows.append([self.at, (employee, login or ""), event, event_time, created or None, file, line, decision,
                          sent, answer, detail, None])

    def collect(self, conn: sqlite3.Connection) -> None:
        """Rows that can only be read inside the transaction (subclasses)."""

    def write(self, conn: sqlite3.Connection) -> None:
        """Insert the rows, inside the caller's transaction, in the order of the day-and-person index (so that a
        large batch costs the index one pass, not a page per row)."""
        if not recording():
            return
        self.collect(conn)
        rows = self.rows
        if not rows:
            return
        if self.superseded is not None:
            for employee, text in self.superseded.texts().items():
                at = self.winners.get(employee)
                if at is not None:
                    rows[at][11] = text
        people = _people(conn, {row[1] for row in rows})
        files = _file_ids(conn, {row[5] for row in rows if row[5]}, self.at)
        for row in rows:
            row[1] = people[row[1]]
            row[5] = files[row[5]]
        rows.sort(key=itemgetter(1))
        conn.executemany(_INSERT, rows)


class Superseded:
    """The events superseded inside a batch of files, by employee, as the lines of audit_trail.superseded in the
    row of the event that won: `on (1/0) TAB clocking time TAB record created TAB file TAB line`. Of one person
    the first PER_PERSON and the last are listed, with a line '+N' for the N between them; MAX_LISTED in all per
    batch (then each person's last only), so that a batch of any size is read in bounded memory and time."""

    def __init__(self) -> None:
        self.lines: Dict[str, str] = {}  # employee -> the lines listed
        self.last: Dict[str, BOBOEntry] = {}  # employee -> the last event, of those over PER_PERSON
        self.more: Dict[str, int] = {}  # employee -> how many over PER_PERSON
        self.listed = 0
        self._names: Dict[str, str] = {}

    def add(self, entry: "BOBOEntry") -> None:
        employee = entry.employee_id
        if employee in self.more:  # over PER_PERSON already: only the last one is kept, and counted
            self.last[employee] = entry
            self.more[employee] += 1
            return
        line = self._line(entry)
        held = self.lines.get(employee)
        self.listed += 1
        if held is None:
            self.lines[employee] = line
        elif len(held) < LISTED_CHARS and self.listed <= MAX_LISTED:  # surely fewer than PER_PERSON lines
            self.lines[employee] = held + "\n" + line
        elif held.count("\n") + 1 < PER_PERSON and self.listed <= MAX_LISTED:
            self.lines[employee] = held + "\n" + line
        else:
            self.last[employee] = entry
            self.more[employee] = 1

    def _line(self, entry: "BOBOEntry") -> str:
        name = self._names.get(entry.source_file)
        if name is None:  # a tab or a line break in a file name (possible on Linux) would break the lines
            name = self._names[entry.source_file] = " ".join(entry.source_file.replace("\t", " ").splitlines())
        return f"{'1' if entry.on_duty else '0'}\t{entry.event_time}\t{entry.record_created}\t{name}\t{entry.line}"

    def texts(self) -> Dict[str, str]:
        """employee -> the lines for the row of their winning event."""
        texts = dict(self.lines)
        for employee, more in self.more.items():
            gap = f"\n+{more - 1}" if more > 1 else ""
            texts[employee] = f"{texts[employee]}{gap}\n{self._line(self.last[employee])}"
        return texts


def superseded_events(text: Optional[str]) -> List[Tuple[Optional[int], str, str, str, Optional[int], int]]:
    """The events in an audit_trail.superseded value: (on duty, clocking time, record created, file, line, how
    many more before this one were not listed)."""
    events: List[Tuple[Optional[int], str, str, str, Optional[int], int]] = []
    more = 0
    for line in (text or "").split("\n"):
        if line.startswith("+"):
            more = int(line[1:])
            continue
        parts = line.split("\t")
        if len(parts) == 5:
            events.append((int(parts[0]), parts[1], parts[2], parts[3], int(parts[4]), more))
            more = 0
    return events


# --- people and files: small integers in the trail's rows ---

_PEOPLE_CACHE: Dict[str, Tuple[Tuple[int, str, str], Dict[Tuple[str, str], int]]] = {}


def _people(conn: sqlite3.Connection, wanted: Iterable[Tuple[str, str]]) -> Dict[Tuple[str, str], int]:
    """(employee, login) -> audit_people.id, adding the pairs not seen before. The table is read once per database
    and process, then only its new rows; a last row that is not the one remembered (a rollback) reads it all
    again."""
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    last = conn.execute("SELECT id, employee_id, login FROM audit_people ORDER BY id DESC LIMIT 1").fetchone()
    held = _PEOPLE_CACHE.get(path)
    if held is not None and last is not None and (held[0] == tuple(last) or held[0][0] < last[0]):
        ids = held[1]
        if held[0][0] < last[0]:
            ids.update({(e, login): i for i, e, login in conn.execute(_PEOPLE_AFTER, (held[0][0],))})
    else:
        ids = {(e, login): i for i, e, login in conn.execute(_PEOPLE_AFTER, (0,))}
    missing = set(wanted) - ids.keys()
    if missing:
        top = last[0] if last is not None else 0
        conn.executemany("INSERT OR IGNORE INTO audit_people (employee_id, login) VALUES (?, ?)", sorted(missing))
        ids.update({(e, login): i for i, e, login in conn.execute(_PEOPLE_AFTER, (top,))})
        last = conn.execute("SELECT id, employee_id, login FROM audit_people ORDER BY id DESC LIMIT 1").fetchone()
    if last is not None:
        _PEOPLE_CACHE[path] = (tuple(last), ids)
    return ids


def _file_ids(conn: sqlite3.Connection, names: Iterable[str], at: int) -> Dict[Optional[str], Optional[int]]:
    """File name -> audit_files.id (None -> None), adding new names; every name's last_seen becomes `at`."""
    ids: Dict[Optional[str], Optional[int]] = {None: None}
    names = sorted(names)
    conn.executemany("INSERT INTO audit_files (name, last_seen) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                     "last_seen = excluded.last_seen", ((name, at) for name in names))
    for name in names:
        ids[name] = conn.execute("SELECT id FROM audit_files WHERE name = ?", (name,)).fetchone()[0]
    return ids


# --- the steps' rows ---

def event_row(trail: Trail, entry: Any, login: str, decision: str, **extra: Optional[str]) -> None:
    """A row for one event read from a file (a BOBOEntry or a PendingEvent-like object)."""
    trail.add(entry.employee_id, login, decision, event=int(entry.on_duty), event_time=entry.event_time,
              created=entry.record_created, file=entry.source_file, line=entry.line, **extra)


def file_batch(plan: "BatchPlan", outcomes: Mapping[str, "SyncOutcome"], now: datetime,
               ambiguous: Mapping[str, str]) -> Trail:
    """The rows of one batch of files (planner.BatchPlan, AtHoc's outcome per LOGIN_ID): every event read."""
    trail = Trail(now)
    if not recording():
        return trail
    rows, winners, at = trail.rows, trail.winners, trail.at
    for login, outcome in outcomes.items():
        e = plan.sources[login].entry
        status = outcome.status
        winners[e.employee_id] = len(rows)
        rows.append([at, (e.employee_id, login), e.on_duty, e.event_time, e.record_created or None, e.source_file,
                     e.line, "applied" if status == "ok" else "gone" if status == "gone" else "failed",
                     plan.updates[login], SETS_FIELD if status == "ok" else answer_of(status, outcome.details), None,
                     None])
    for employee, winner in plan.pending.items():
        winners[employee] = len(rows)
        why = (f"employee number held by several AtHoc users ({ambiguous[employee]})" if employee in ambiguous
               else "no AtHoc user holds this employee number")
        event_row(trail, winner.entry, "", "pending", detail=why)
    for winner, login, applied in plan.stale:
        winners[winner.entry.employee_id] = len(rows)
        event_row(trail, winner.entry, login, "stale", detail=_stale_reason(winner.key, applied))
    trail.superseded = plan.superseded
    for _, report in plan.reports:
        more = report.rejected_count - len(report.trail_rejected)
        if not report.rejected_count:
            continue
        name = _source_name(report)
        for line, reason, employee in report.trail_rejected:
            trail.add(employee, plan.mappings.get(employee, ""), "rejected", file=name, line=line, detail=reason)
        if more > 0:
            trail.add("", "", "rejected", file=name,
                      detail=f"and {more} more rejected rows in this file, not recorded one by one")
    return trail


def _source_name(report: "CsvFile") -> str:
    from file_names import readable_name
    return readable_name(report.path.name)


def _stale_reason(key: Tuple[Any, ...], applied: Tuple[Any, ...]) -> str:
    if tuple(key) == tuple(applied):
        return "the event already applied (its file was read again)"
    return f"not newer than the event already applied (clocking time {shown_time(applied[0])})"


def shown_time(stamp: Optional[object]) -> str:
    """YYYYMMDDHHMMSS (text or integer) as 'YYYY-MM-DD HH:MM:SS'."""
    t = str(stamp or "")
    if len(t) != 14:
        return t
    return f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}"


def pending_sent(now: datetime, sources: Mapping[str, Any], outcomes: Mapping[str, "SyncOutcome"]) -> Trail:
    """The rows of pending events sent once an AtHoc user held the number (pending.py)."""
    trail = Trail(now)
    for login, outcome in outcomes.items():
        decision = "applied" if outcome.ok else "gone" if outcome.status == "gone" else "failed"
        event_row(trail, sources[login], login, decision, sent=sources[login].athoc_value,
                  answer=answer_of(outcome.status, outcome.details),
                  detail="a pending event, sent once an AtHoc user held the number")
    return trail


def pending_dropped(now: datetime, dropped: Mapping[str, Tuple[Any, str, str]]) -> Trail:
    """Pending events given up without sending: employee -> (event, LOGIN_ID, why)."""
    trail = Trail(now)
    for ev, login, why in dropped.values():
        event_row(trail, ev, login, "dropped", detail=why)
    return trail


class ExpiredPending(Trail):
    """Pending events first seen before the cutoff, read inside the transaction that deletes them."""

    def __init__(self, now: datetime, cutoff: str, days: int):
        super().__init__(now)
        self.cutoff, self.days = cutoff, days

    def collect(self, conn: sqlite3.Connection) -> None:
        for row in conn.execute("SELECT employee_id, on_duty, event_time, record_created, source_file, line, "
                                "first_seen FROM pending_events WHERE first_seen < ?", (self.cutoff,)):
            employee, on, event_time, created, source, line, first_seen = row
            self.add(employee, "", "expired", event=on, event_time=event_time, created=created, file=source,
                     line=line, detail=f"pending since {first_seen}; no AtHoc user held the number within "
                                       f"PENDING_EXPIRY_DAYS ({self.days})")


class Cleared(Trail):
    """The users the cleanup cleared, with the event each had from bobosync, read before duty_state changes."""

    def __init__(self, now: datetime, logins: Sequence[str], hours: float):
        super().__init__(now)
        self.logins, self.hours = logins, hours

    def collect(self, conn: sqlite3.Connection) -> None:
        why = f"on duty for over {self.hours:g} hours without a book-off (AUTO_CLEANUP_HOURS)"
        for login in self.logins:
            state = conn.execute("SELECT employee_id, on_duty, event_time, record_created, source_file, line FROM "
                                 "duty_state WHERE username = ?", (login,)).fetchone()
            if state is None:
                mapped = conn.execute("SELECT employee_id FROM worker_mapping WHERE username = ?", (login,)).fetchone()
                self.add(mapped[0] if mapped else "", login, "cleared", sent="", answer=SETS_FIELD,
                         detail=why + "; the value was not one bobosync had set")
                continue
            employee, on, event_time, created, source, line = state
            self.add(employee, login, "cleared", event=on, event_time=event_time, created=created, file=source,
                     line=line, sent="", answer=SETS_FIELD, detail=why)


def collar_moves(trail: Trail, moved: Sequence[Tuple[str, str, str]], updates: Mapping[str, str],
                 outcomes: Mapping[str, "SyncOutcome"], officer_of: Mapping[str, str],
                 states: Mapping[str, Tuple[Any, ...]]) -> None:
    """Rows for collar numbers that moved (employee, old LOGIN_ID, new LOGIN_ID), and the values that followed."""
    for eid, a, b in moved:
        _move_row(trail, eid, b, states.get(eid), updates, outcomes, f"collar number {eid} moved here from {a}")
        other = officer_of.get(a)
        if a not in updates:
            continue
        if other is not None and other in states:
            _move_row(trail, other, a, states.get(other), updates, outcomes,
                      f"{a} now holds collar number {other}: that officer's value")
        else:
            _move_row(trail, eid, a, states.get(eid), updates, outcomes,
                      f"collar number {eid} moved from here to {b}, so the value bobosync set here is cleared")


def _move_row(trail: Trail, employee: str, login: str, state: Optional[Tuple[Any, ...]], updates: Mapping[str, str],
              outcomes: Mapping[str, "SyncOutcome"], why: str) -> None:
    sent = updates.get(login)
    outcome = outcomes.get(login)
    answer = answer_of(outcome.status, outcome.details) if outcome is not None else None
    if state is None:
        trail.add(employee, login, "moved", sent=sent, answer=answer, detail=why + " (no duty value to move)")
        return
    event_time, created, on, source, line = state
    trail.add(employee, login, "moved", event=on, event_time=event_time, created=created, file=source, line=line,
              sent=sent, answer=answer, detail=why)


def cleared_future(now: datetime, ahead: Sequence[Tuple[str, str, int, Optional[str]]]) -> Trail:
    """--clear-future: the duty states forgotten (employee, event time, on duty, LOGIN_ID)."""
    trail = Trail(now)
    for employee, event_time, on, login in ahead:
        sent = "" if on and login else None
        trail.add(employee, login or "", "clear-future", event=on, event_time=event_time, sent=sent,
                  answer=SETS_FIELD if sent is not None else None,
                  detail="dated ahead of the clock; forgotten so that the next real event applies"
                         + ("; duty field cleared" if sent is not None else ""))
    return trail


# --- the daily snapshots and the purge (the hourly purge step) ---

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
