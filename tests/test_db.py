"""Database rules: a damaged file is set aside, a healthy one never is; seed tables keep their shape."""
import sqlite3

from bobo_db import SCHEMA_VERSION, BOBODatabase, is_damage


def real_error(action) -> sqlite3.DatabaseError:
    try:
        action()
    except sqlite3.DatabaseError as exc:
        return exc
    raise AssertionError("no error")


def test_only_real_damage_counts_as_a_damaged_database(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    damaged = real_error(lambda: sqlite3.connect(str(garbage)).execute("PRAGMA user_version").fetchone())
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES ('a')")
    constraint = real_error(lambda: conn.execute("INSERT INTO t VALUES ('a')"))
    misuse = real_error(lambda: conn.execute("SELECT * FROM no_such_table"))
    assert is_damage(damaged)
    assert not is_damage(constraint) and not is_damage(misuse)


def test_seed_tables_keep_their_names_and_columns(tmp_path):
    db = BOBODatabase(tmp_path / "bobo_mapping.db")
    columns = {table: [row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")]
               for table in ("worker_mapping", "processing_log", "sync_tracking")}
    assert columns == {
        "worker_mapping": ["employee_id", "username", "collar_id", "last_updated"],
        "processing_log": ["id", "filename", "processed_at", "entries_processed", "success_count", "error_count",
                           "errors"],
        "sync_tracking": ["sync_type", "last_sync_date", "last_sync_time", "status"],
    }
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_one_timestamp_format_in_the_database_older_rows_migrated(tmp_path):
    """Rule: every timestamp the database keeps is 'YYYY-MM-DD HH:MM:SS'; schema 1 wrote some run_state
    values with a 'T', which the upgrade rewrites, leaving other values alone."""
    path = tmp_path / "bobo_mapping.db"
    conn = sqlite3.connect(str(path))
    conn.executescript("CREATE TABLE run_state (key TEXT PRIMARY KEY, value TEXT); PRAGMA user_version = 1;")
    conn.executemany("INSERT INTO run_state VALUES (?, ?)", [("last_run", "2026-11-23T06:37:22"),
                                                            ("last_good_mapping_sync", "2026-11-23 06:00:00"),
                                                            ("note", "Tuesday")])
    conn.commit()
    conn.close()
    db = BOBODatabase(path)
    try:
        assert db.get_state("last_run") == "2026-11-23 06:37:22"
        assert db.get_state("last_good_mapping_sync") == "2026-11-23 06:00:00"
        assert db.get_state("note") == "Tuesday"
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


def test_a_run_reads_the_mappings_and_states_of_the_people_in_its_files_only(tmp_path, monkeypatch):
    """Rule: a run looks up only the people it handles (a force of 50,000 is not read for a file of 3), by index
    or, for many, by one read of the table; both give the same rows, and an unknown number gives none."""
    import bobo_db
    from datetime import datetime
    db = BOBODatabase(tmp_path / "bobo.db")
    now = datetime(2026, 6, 1, 7, 0)
    db.add_mappings([(str(n), f"user{n}@x", str(n)) for n in range(1000, 1100)], now)
    applied = [(str(n), "20260601070000", "20260601070001", 1, "01/06/2026 07:00:00", f"user{n}@x", "f.csv",
                "a", n) for n in range(1000, 1010)]
    db.commit_batch(bobo_db.BatchRecord(applied, [], {}, [], []), now)
    wanted = ["1001", "1005", "1050", "99999"]
    for limit in (5000, 2):  # one by one; then more than the limit: the table read once
        monkeypatch.setattr(bobo_db, "ONE_BY_ONE_LIMIT", limit)
        assert db.mappings_of(wanted) == {"1001": "user1001@x", "1005": "user1005@x", "1050": "user1050@x"}
        states = db.duty_states_of(wanted)
        assert sorted(states) == ["1001", "1005"]
        assert states["1005"] == ("20260601070000", "20260601070001", "a", 1005)
    assert db.mappings_of([]) == {} and db.duty_states_of([]) == {}
