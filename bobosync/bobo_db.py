"""The local SQLite database: user mappings, duty state, file bookkeeping, run state.

The seed's three tables (worker_mapping, processing_log, sync_tracking) keep their
names and columns, so a database from an older bobosync is upgraded in place.
`PRAGMA user_version` records the schema version. Reads are in bulk (one query per
table); each batch's writes are one transaction.
"""
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Collection, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from db_schema import SCHEMA, SCHEMA_VERSION, migrate
from failpoints import crash_point
from schedule import stamp

log = logging.getLogger("bobosync.db")

USER_MAPPING = "user_mapping"
BUSY_TIMEOUT_SECONDS = 15
ONE_BY_ONE_LIMIT = 5000  # employees looked up one by one; more: the table read once (break-even ~10,000)


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """True for 'not a database' and 'malformed' errors, which SQLite raises as the base class itself;
    its subclasses (locked, constraint, programming errors) leave a healthy file."""
    return type(exc) is sqlite3.DatabaseError


def set_aside_damaged(path: Path, reason: Exception) -> Path:
    """Rename a damaged database (and its journal) to <name>.damaged-<timestamp>; never delete it."""
    aside = path.with_name(f"{path.name}.damaged-{datetime.now():%Y%m%d-%H%M%S}")
    path.replace(aside)
    for suffix in ("-journal", "-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.replace(aside.with_name(aside.name + suffix))
    log.warning("Database %s is damaged (%s): set aside as %s", path, reason, aside)
    return aside


class DatabaseError(Exception):
    """The database cannot be opened or used; the message says which file and what to do.
    `transient` is True when waiting may cure it (locked by another program)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ProcessedFile(NamedTuple):
    """A file AtHoc has confirmed, identified by name, size and content hash."""

    filename: str
    size: int
    mtime_ns: int
    sha256: str


class PendingEvent(NamedTuple):
    """The newest event of an employee number no AtHoc user holds yet, kept until one does."""

    employee_id: str
    event_time: str
    record_created: str
    file_order: str
    line: int
    on_duty: int
    athoc_value: str
    source_file: str

    @property
    def key(self) -> Tuple[str, str, str, int]:
        return self.event_time, self.record_created, self.file_order, self.line


class BatchRecord(NamedTuple):
    """Everything one batch writes, committed in one transaction after AtHoc answered."""

    applied: List[Tuple[str, str, str, int, str, str, str, str, int]]  # employee, event, created, on, value,
    # login, file, file order, line
    gone_employees: List[str]
    failed_files: Dict[str, str]  # filename -> reason (attempts go up)
    finished_files: List[ProcessedFile]  # done: attempts cleared, remembered
    log_rows: List[Tuple[str, int, int, int, str]]  # filename, entries, successes, errors, errors text
    pending: List[PendingEvent] = []  # events of unmapped people, kept until a user holds their number
    # (employee, event order key) applied: a pending event of theirs that is not later is superseded
    pending_done: List[Tuple[str, Tuple[str, str, str, int]]] = []
    trail: Any = None  # audit.Trail: the batch's audit trail rows, written in the same transaction


def _now_text(now: datetime) -> str:
    return stamp(now)


def _write_trail(conn: sqlite3.Connection, trail: Any) -> None:
    """The audit trail rows of a change (audit.Trail), in the transaction that records the change."""
    if trail is not None:
        trail.write(conn)


class BOBODatabase:
    """The SQLite file at `path`, created or upgraded on open."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.set_aside: Optional[Path] = None  # where a damaged file went, when this open replaced it
        try:
            self._open()
        except sqlite3.OperationalError as exc:  # locked, or cannot open
            raise DatabaseError(f"database {self.path}: {exc}. If another program holds it (a database viewer?), "
                                f"close it; the next run tries again", transient=True) from None
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self.conn.close()
            aside = self.set_aside = set_aside_damaged(self.path, exc)
            self._open()
            log.warning("A new database was built in place of the damaged one (kept as %s); the user mappings "
                        "are re-synced from AtHoc and duty state starts empty", aside.name)
        except OSError as exc:
            raise DatabaseError(f"database {self.path}: {exc}: check DB_PATH and the folder's permissions") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_SECONDS)
        self.init_database()

    def init_database(self) -> None:
        """Create missing tables and record the schema version (upgrades a seed-era file in place)."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"database {self.path} has schema version {version}, newer than this bobosync "
                                f"({SCHEMA_VERSION}): install the newer bobosync or point DB_PATH elsewhere")
        with self.conn:
            self.conn.executescript(SCHEMA)
            if version != SCHEMA_VERSION:  # no write when current: a damaged file is set aside as it was
                migrate(self.conn, version)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


    def close(self) -> None:
        self.conn.close()

    # --- run state ---

    def get_state(self, key: str) -> Optional[str]:
        row = self.conn.execute("SELECT value FROM run_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO run_state (key, value) VALUES (?, ?)", (key, value))

    def set_states(self, values: Dict[str, str]) -> None:
        """Several run_state values in one transaction."""
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO run_state (key, value) VALUES (?, ?)", values.items())

    def delete_states(self, keys: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("DELETE FROM run_state WHERE key = ?", ((k,) for k in keys))

    # --- mappings ---

    def all_mappings(self) -> Dict[str, str]:
        """employee id -> LOGIN_ID, in one query."""
        return dict(self.conn.execute("SELECT employee_id, username FROM worker_mapping"))

    def mappings_of(self, employee_ids: Collection[str]) -> Dict[str, str]:
        """employee id -> LOGIN_ID for these employees only: a few rows where all_mappings reads the force."""
        return dict(self._rows_of(employee_ids, "SELECT employee_id, username FROM worker_mapping WHERE "
                                  "employee_id = ?", "SELECT employee_id, username FROM worker_mapping"))

    def _rows_of(self, employee_ids: Collection[str], sql_one: str, sql_all: str) -> Iterator[Tuple]:
        """These employees' rows: an indexed look-up each (3 us), or past the limit the table read once (30 ms)."""
        if len(employee_ids) > ONE_BY_ONE_LIMIT:
            wanted = set(employee_ids)
            return (row for row in self.conn.execute(sql_all) if row[0] in wanted)
        return (row for employee in employee_ids for row in self.conn.execute(sql_one, (employee,)))

    def ambiguous_ids(self) -> Dict[str, str]:
        """employee id -> the LOGIN_IDs that share it, from the last mapping sync."""
        return dict(self.conn.execute("SELECT employee_id, usernames FROM ambiguous_ids"))

    def mapping_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM worker_mapping").fetchone()[0]

    def replace_mappings(self, mappings: Iterable[Tuple[str, str, str]], ambiguous: Dict[str, List[str]],
                         now: datetime, moved: Iterable[Tuple[str, str]] = (), trail: Any = None) -> int:
        """Replace every mapping and mark the sync good, in one transaction (with the `trail`'s rows); `moved`
        (employee, new LOGIN_ID) are collar numbers whose duty value AtHoc now holds on their new user."""
        stamp = _now_text(now)
        with self.conn:
            _write_trail(self.conn, trail)
            self.conn.executemany("UPDATE duty_state SET username = ? WHERE employee_id = ?",
                                  ((login, e) for e, login in moved))
            self.conn.execute("DELETE FROM worker_mapping")
            self.conn.executemany(
                "INSERT INTO worker_mapping (employee_id, username, collar_id, last_updated) VALUES (?, ?, ?, ?)",
                ((e, u, c, stamp) for e, u, c in mappings))
            crash_point("during_mapping_replace")
            self.conn.execute("DELETE FROM ambiguous_ids")
            self.conn.executemany("INSERT INTO ambiguous_ids (employee_id, usernames) VALUES (?, ?)",
                                  ((e, ", ".join(sorted(us))) for e, us in ambiguous.items()))
            self._write_sync(USER_MAPPING, "success", now)
            self.conn.execute("INSERT OR REPLACE INTO run_state (key, value) VALUES ('last_good_mapping_sync', ?)",
                              (stamp,))
            count = self.conn.execute("SELECT COUNT(*) FROM worker_mapping").fetchone()[0]
        return count

    def mappings_with_collars(self) -> Dict[str, Tuple[str, str]]:
        """employee id -> (LOGIN_ID, collar number as AtHoc holds it)."""
        return {e: (u, c or e) for e, u, c in self.conn.execute(
            "SELECT employee_id, username, collar_id FROM worker_mapping")}

    def listing_rows(self) -> List[Tuple[str, str]]:
        """(LOGIN_ID, attributes as JSON) of a user listing that a run could not finish."""
        return self.conn.execute("SELECT login, attributes FROM mapping_listing").fetchall()

    def keep_listing(self, rows: Iterable[Tuple[str, str]], states: Dict[str, str]) -> None:
        """Replace the kept listing (empty `states`: forget it) in one transaction."""
        with self.conn:
            self.conn.execute("DELETE FROM mapping_listing")
            self.conn.executemany("INSERT INTO mapping_listing (login, attributes) VALUES (?, ?)", rows)
            self.conn.execute("DELETE FROM run_state WHERE key IN ('mapping_listing_next_page', "
                              "'mapping_listing_total')")
            self.conn.executemany("INSERT INTO run_state (key, value) VALUES (?, ?)", states.items())

    def duty_values(self) -> Dict[str, Tuple[int, str, Optional[str]]]:
        """employee id -> (on duty, the duty value bobosync set, LOGIN_ID it was set on)."""
        return {e: (on, value, login) for e, on, value, login in self.conn.execute(
            "SELECT employee_id, on_duty, athoc_value, username FROM duty_state")}

    # --- sync tracking ---

    def _write_sync(self, sync_type: str, status: str, now: datetime) -> None:
        self.conn.execute("INSERT OR REPLACE INTO sync_tracking (sync_type, last_sync_date, last_sync_time, status)"
                          " VALUES (?, ?, ?, ?)", (sync_type, now.strftime("%Y-%m-%d"), _now_text(now), status))

    def record_sync(self, sync_type: str, status: str, now: datetime) -> None:
        with self.conn:
            self._write_sync(sync_type, status, now)

    def get_sync_status(self, sync_type: str = USER_MAPPING) -> Optional[Dict[str, str]]:
        row = self.conn.execute("SELECT last_sync_date, last_sync_time, status FROM sync_tracking "
                                "WHERE sync_type = ?", (sync_type,)).fetchone()
        return dict(zip(("last_sync_date", "last_sync_time", "status"), row)) if row else None

    # --- duty state ---

    def duty_states_of(self, employee_ids: Collection[str]) -> Dict[str, Tuple[str, str, str, int]]:
        """employee id -> the order key (event time, created, file order, line) of their last event applied."""
        return {e: (t, c, f, n) for e, t, c, f, n in self._rows_of(
            employee_ids, "SELECT employee_id, event_time, record_created, file_order, line FROM duty_state WHERE "
            "employee_id = ?", "SELECT employee_id, event_time, record_created, file_order, line FROM duty_state")}

    def states_after(self, event_time: str) -> List[Tuple[str, str, int, Optional[str]]]:
        """(employee id, event time, on duty, LOGIN_ID) of every duty state later than `event_time`."""
        return self.conn.execute("SELECT employee_id, event_time, on_duty, username FROM duty_state "
                                 "WHERE event_time > ? ORDER BY employee_id", (event_time,)).fetchall()

    def forget_states(self, employee_ids: Iterable[str], trail: Any = None) -> None:
        """Drop these duty states: the next event of each person is applied, whatever its time."""
        with self.conn:
            _write_trail(self.conn, trail)
            self.conn.executemany("DELETE FROM duty_state WHERE employee_id = ?", ((e,) for e in employee_ids))

    def on_duty_logins_before(self, event_time: str) -> List[str]:
        """The LOGIN_IDs whose last event applied is a book-on clocked before `event_time` (YYYYMMDDHHMMSS)."""
        return [login for (login,) in self.conn.execute(
            "SELECT username FROM duty_state WHERE on_duty = 1 AND event_time < ? AND username IS NOT NULL "
            "ORDER BY username", (event_time,))]

    def record_cleared(self, logins: Sequence[str], now: datetime, trail: Any = None) -> int:
        """Mark users cleared by the cleanup as off duty (their last event's time is kept)."""
        with self.conn:
            _write_trail(self.conn, trail)
            cur = self.conn.executemany(
                "UPDATE duty_state SET on_duty = 0, athoc_value = '', source_file = 'cleanup', applied_at = ? "
                "WHERE username = ?", ((_now_text(now), login) for login in logins))
        return cur.rowcount

    # --- pending events ---

    def _keep_pending(self, events: Iterable[PendingEvent], stamp: str) -> None:
        """Keep each event unless a later one of the same employee is already pending."""
        for ev in events:
            current = self.conn.execute("SELECT event_time, record_created, file_order, line FROM pending_events "
                                        "WHERE employee_id = ?", (ev.employee_id,)).fetchone()
            if current is not None and tuple(current) >= ev.key:
                continue
            self.conn.execute(
                "INSERT OR REPLACE INTO pending_events (employee_id, event_time, record_created, file_order, line, "
                "on_duty, athoc_value, source_file, first_seen, last_lookup) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "COALESCE((SELECT first_seen FROM pending_events WHERE employee_id = ?), ?), "
                "(SELECT last_lookup FROM pending_events WHERE employee_id = ?))",
                (*ev, ev.employee_id, stamp, ev.employee_id))

    def pending_ids(self) -> Set[str]:
        """The employees with a pending event."""
        return {e for (e,) in self.conn.execute("SELECT employee_id FROM pending_events")}

    def pending_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM pending_events").fetchone()[0]

    def pending_events(self) -> Dict[str, PendingEvent]:
        """employee id -> the pending event."""
        return {row[0]: PendingEvent(*row) for row in self.conn.execute(
            "SELECT employee_id, event_time, record_created, file_order, line, on_duty, athoc_value, source_file "
            "FROM pending_events")}

    def pending_due_for_lookup(self, before: datetime) -> List[str]:
        """Pending employee numbers not looked up in AtHoc since `before`."""
        return [e for (e,) in self.conn.execute(
            "SELECT employee_id FROM pending_events WHERE last_lookup IS NULL OR last_lookup < ? "
            "ORDER BY employee_id", (_now_text(before),))]

    def mark_looked_up(self, employee_ids: Iterable[str], now: datetime) -> None:
        with self.conn:
            self.conn.executemany("UPDATE pending_events SET last_lookup = ? WHERE employee_id = ?",
                                  ((_now_text(now), e) for e in employee_ids))

    def expire_pending(self, first_seen_before: datetime, trail: Any = None) -> List[Tuple[str, str, str]]:
        """Drop pending events first seen before the cutoff; (employee, event time, file) of each dropped."""
        cutoff = _now_text(first_seen_before)
        with self.conn:
            _write_trail(self.conn, trail)
            expired = self.conn.execute("SELECT employee_id, event_time, source_file FROM pending_events "
                                        "WHERE first_seen < ? ORDER BY employee_id", (cutoff,)).fetchall()
            self.conn.execute("DELETE FROM pending_events WHERE first_seen < ?", (cutoff,))
        return [tuple(row) for row in expired]

    def drop_pending(self, employee_ids: Iterable[str], trail: Any = None) -> None:
        with self.conn:
            _write_trail(self.conn, trail)
            self.conn.executemany("DELETE FROM pending_events WHERE employee_id = ?", ((e,) for e in employee_ids))

    def add_mappings(self, rows: Iterable[Tuple[str, str, str]], now: datetime) -> None:
        """Add mappings found by a look-up between two syncs (the next sync replaces them all)."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO worker_mapping (employee_id, username, collar_id, last_updated) "
                "VALUES (?, ?, ?, ?)", ((e, u, c, _now_text(now)) for e, u, c in rows))

    # --- files ---

    def file_attempts(self) -> Dict[str, int]:
        return dict(self.conn.execute("SELECT filename, attempts FROM file_attempts"))

    def processed_files(self) -> Dict[str, List[ProcessedFile]]:
        """Remembered files by name, in one query."""
        known: Dict[str, List[ProcessedFile]] = {}
        for name, size, mtime_ns, sha in self.conn.execute(
                "SELECT filename, size, mtime_ns, sha256 FROM processed_files"):
            known.setdefault(name, []).append(ProcessedFile(name, size, mtime_ns, sha))
        return known

    def forget_processed_before(self, cutoff: datetime) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM processed_files WHERE processed_at < ?", (_now_text(cutoff),))

    def clear_attempts(self, filenames: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("DELETE FROM file_attempts WHERE filename = ?", ((f,) for f in filenames))

    def commit_batch(self, record: BatchRecord, now: datetime) -> Dict[str, int]:
        """Write a batch's outcome in one transaction; return the new attempt count of each failed file."""
        stamp = _now_text(now)
        with self.conn:
            _write_trail(self.conn, record.trail)
            self.conn.executemany(
                "INSERT OR REPLACE INTO duty_state (employee_id, event_time, record_created, on_duty, athoc_value,"
                " username, source_file, file_order, line, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row + (stamp,) for row in record.applied))
            self.conn.executemany("DELETE FROM worker_mapping WHERE employee_id = ?",
                                  ((e,) for e in record.gone_employees))
            self._keep_pending(record.pending, stamp)
            self.conn.executemany("DELETE FROM pending_events WHERE employee_id = ? AND "
                                  "(event_time, record_created, file_order, line) <= (?, ?, ?, ?)",
                                  ((e, *key) for e, key in record.pending_done))
            for name, reason in record.failed_files.items():
                self.conn.execute(
                    "INSERT INTO file_attempts (filename, attempts, last_error, last_attempt) VALUES (?, 1, ?, ?) "
                    "ON CONFLICT(filename) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error,"
                    " last_attempt = excluded.last_attempt", (name, reason, stamp))
            self.conn.executemany("DELETE FROM file_attempts WHERE filename = ?",
                                  ((f.filename,) for f in record.finished_files))
            self.conn.executemany(
                "INSERT OR REPLACE INTO processed_files (filename, size, mtime_ns, sha256, processed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                ((f.filename, f.size, f.mtime_ns, f.sha256, stamp) for f in record.finished_files))
            self.conn.executemany(
                "INSERT INTO processing_log (filename, processed_at, entries_processed, success_count, error_count,"
                " errors) VALUES (?, ?, ?, ?, ?, ?)",
                ((name, stamp, n, ok, bad, text) for name, n, ok, bad, text in record.log_rows))
            attempts = {name: self.conn.execute("SELECT attempts FROM file_attempts WHERE filename = ?",
                                                (name,)).fetchone()[0] for name in record.failed_files}
        return attempts
