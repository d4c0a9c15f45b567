"""The database's tables, and how an older file is brought up to date.

The seed's three tables (worker_mapping, processing_log, sync_tracking) keep their names and
columns, so a database from an older bobosync is upgraded in place; `PRAGMA user_version`
records the schema version.
"""
import sqlite3

SCHEMA_VERSION = 4  # 2: run_state timestamps all 'YYYY-MM-DD HH:MM:SS' (1 wrote some with a 'T');
# 3: duty_state keeps the whole order of the event applied (file order and line, for ties);
# 4: new tables only: the audit trail (audit_trail, audit_people, audit_files, audit_snapshot, the audit_view view),
#    alert_state and run_history

SCHEMA = """
CREATE TABLE IF NOT EXISTS worker_mapping (
    employee_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    collar_id TEXT,
    last_updated TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS processing_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT NOT NULL,
    processed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    entries_processed INTEGER,
    success_count INTEGER,
    error_count INTEGER,
    errors TEXT
);
CREATE TABLE IF NOT EXISTS sync_tracking (
    sync_type TEXT PRIMARY KEY,
    last_sync_date DATE,
    last_sync_time TIMESTAMP,
    status TEXT
);
CREATE TABLE IF NOT EXISTS ambiguous_ids (
    employee_id TEXT PRIMARY KEY,
    usernames TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duty_state (
    employee_id TEXT PRIMARY KEY,
    event_time TEXT NOT NULL,
    record_created TEXT NOT NULL DEFAULT '',
    on_duty INTEGER NOT NULL,
    athoc_value TEXT NOT NULL,
    username TEXT,
    source_file TEXT,
    applied_at TIMESTAMP,
    file_order TEXT NOT NULL DEFAULT '',
    line INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS file_attempts (
    filename TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt TIMESTAMP
);
CREATE TABLE IF NOT EXISTS processed_files (
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    processed_at TIMESTAMP,
    PRIMARY KEY (filename, size, sha256)
);
CREATE TABLE IF NOT EXISTS pending_events (
    employee_id TEXT PRIMARY KEY,
    event_time TEXT NOT NULL,
    record_created TEXT NOT NULL DEFAULT '',
    file_order TEXT NOT NULL DEFAULT '',
    line INTEGER NOT NULL DEFAULT 0,
    on_duty INTEGER NOT NULL,
    athoc_value TEXT NOT NULL,
    source_file TEXT,
    first_seen TIMESTAMP NOT NULL,
    last_lookup TIMESTAMP
);
CREATE TABLE IF NOT EXISTS mapping_listing (
    login TEXT PRIMARY KEY,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_state (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS alert_state (
    problem TEXT PRIMARY KEY,
    since TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    opened_at TIMESTAMP,
    reminded_at TIMESTAMP,
    cleared_at TIMESTAMP,
    message_kind TEXT,
    message_id TEXT,
    subject TEXT,
    body TEXT,
    transports_left TEXT NOT NULL DEFAULT '',
    sending_since TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
-- The audit trail (audit.py writes it, audit_query.py reads it; process.md, "The audit trail").
-- Times are local, as the integer YYYYMMDDHHMMSS.
CREATE TABLE IF NOT EXISTS audit_people (  -- each employee number with each AtHoc LOGIN_ID it had ('' for none)
    id INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL,
    login TEXT NOT NULL DEFAULT '',
    UNIQUE (employee_id, login)
);
CREATE INDEX IF NOT EXISTS audit_people_login ON audit_people (login COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS audit_files (  -- the names of the files events were read from
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_trail (  -- a row per event read (but those superseded) and per change to the field
    id INTEGER PRIMARY KEY,      -- the order rows were recorded in
    at INTEGER NOT NULL,         -- when it was recorded; for a value sent, once AtHoc had answered
    person INTEGER NOT NULL,     -- audit_people.id
    event INTEGER,               -- 1 book-on, 0 book-off, NULL none
    event_time INTEGER,          -- the BOBO clocking time
    created INTEGER,             -- BOBO's record created, NULL when the file has none
    file INTEGER,                -- audit_files.id, with line: where the event was read
    line INTEGER,
    decision TEXT NOT NULL,      -- audit.DECISIONS
    sent TEXT,                   -- the duty value sent to AtHoc ('' clears it), NULL when nothing was sent
    answer TEXT,                 -- AtHoc's answer: 'ok', or 'gone: ...' / 'failed: ...' with its words
    detail TEXT,                 -- why, in words
    superseded TEXT              -- the events of this person this one superseded in its batch, one a line:
                                 -- on (1/0) TAB clocking time TAB record created TAB file TAB line; '+N': N more
);
CREATE INDEX IF NOT EXISTS audit_trail_day ON audit_trail (at / 1000000, person, at);
CREATE TABLE IF NOT EXISTS audit_snapshot (  -- the rows holding an on-duty value at the start of each day
    day INTEGER NOT NULL,
    trail_id INTEGER NOT NULL,   -- 0: the day's snapshot was taken (also when nobody was on duty)
    PRIMARY KEY (day, trail_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_snapshot_row ON audit_snapshot (trail_id);
-- One row per scheduled run, written with its last_run state (run_history.py; --report reads it).
CREATE TABLE IF NOT EXISTS run_history (
    id INTEGER PRIMARY KEY,
    started INTEGER NOT NULL,    -- local YYYYMMDDHHMMSS, as the trail's times
    ended INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    files INTEGER NOT NULL, files_done INTEGER NOT NULL, files_failed INTEGER NOT NULL,
    updated INTEGER NOT NULL, stale INTEGER NOT NULL, pending INTEGER NOT NULL, rejected INTEGER NOT NULL,
    failed INTEGER NOT NULL, gone INTEGER NOT NULL,
    problems TEXT NOT NULL DEFAULT ''  -- why AtHoc calls stopped, why a person must act ('' none)
);
CREATE INDEX IF NOT EXISTS run_history_started ON run_history (started);
CREATE VIEW IF NOT EXISTS audit_view AS  -- the trail in words and names, for people and reports
    SELECT t.id, t.at, p.employee_id, p.login,
           CASE t.event WHEN 1 THEN 'book-on' WHEN 0 THEN 'book-off' END AS event,
           t.event_time, t.created AS record_created, f.name AS source_file, t.line, t.decision, t.sent,
           t.answer, t.detail, t.superseded
    FROM audit_trail t JOIN audit_people p ON p.id = t.person LEFT JOIN audit_files f ON f.id = t.file;
"""


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring the rows of schema `version` to SCHEMA_VERSION (the tables exist: SCHEMA made them)."""
    if version < 2:
        conn.execute("UPDATE run_state SET value = replace(value, 'T', ' ') "
                     "WHERE value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:*'")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(duty_state)")}
    if "file_order" not in columns:
        conn.execute("ALTER TABLE duty_state ADD COLUMN file_order TEXT NOT NULL DEFAULT ''")
    if "line" not in columns:
        conn.execute("ALTER TABLE duty_state ADD COLUMN line INTEGER NOT NULL DEFAULT 0")

