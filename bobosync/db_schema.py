"""The database's tables, and how an older file is brought up to date.

The seed's three tables (worker_mapping, processing_log, sync_tracking) keep their names and
columns, so a database from an older bobosync is upgraded in place; `PRAGMA user_version`
records the schema version.
"""
import sqlite3

SCHEMA_VERSION = 3  # 2: run_state timestamps all 'YYYY-MM-DD HH:MM:SS' (1 wrote some with a 'T');
# 3: duty_state keeps the whole order of the event applied (file order and line, for ties)

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

