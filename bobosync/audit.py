"""The audit trail: for every event read, what bobosync decided and what AtHoc answered, and every other change
bobosync made to AtHoc's duty field (the cleanup, a collar number moving to another user, --clear-future).

A step gathers its rows in a `Trail` (audit_steps.py builds them) and hands it to the database call that records
the step, which writes it inside the same transaction (`Trail.write`): the trail always agrees with duty_state. A
run killed after AtHoc answered and before the commit records neither; the next run sends the event again and
records it then. The tables are in db_schema.py; audit_query.py answers --history and --on-duty-at from them;
audit_upkeep.py takes the daily snapshots and purges old rows.
"""
import os
import sqlite3
from operator import itemgetter
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from failpoints import AUDIT_OFF_VAR

if TYPE_CHECKING:
    from bobo_csv import BOBOEntry

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

PER_PERSON = 100  # superseded events of one person listed one by one in one batch (then the last, and a count)
LISTED_CHARS = 21 * PER_PERSON  # a line has 21 characters at least: below this length, fewer than PER_PERSON
MAX_LISTED = 100_000  # and in all, per batch: a batch of any size is read in bounded memory and time

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


def shown_time(stamp: Optional[object]) -> str:
    """YYYYMMDDHHMMSS (text or integer) as 'YYYY-MM-DD HH:MM:SS'."""
    t = str(stamp or "")
    if len(t) != 14:
        return t
    return f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}"
