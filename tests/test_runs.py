"""Engine rules (docs/input-format.md): whole scheduled runs through main(), against the
simulator over HTTP, with real folders and a real SQLite file."""
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from filelock import FileLock

import bobo_processor
from bobo_db import SCHEMA_VERSION
from bobo_processor import BOBOProcessor
from conftest import BOBOSYNC_DIR, settings_for
from testsite import Site

FIELD = "On-Duty-DTG"
U1, U2, U3 = "user10001@demo.example", "user10002@demo.example", "user10003@demo.example"


@pytest.fixture
def site(sim, tmp_path, monkeypatch):
    """Five mapped users; the site's settings are also this process's environment."""
    return Site(sim, tmp_path, users=5, odd_users=False, monkeypatch=monkeypatch)


def bon(employee, date="20241001", time_="070000", created=""):
    return f"BON,{employee},P1,{date},{time_},{created},1,,,"


def bof(employee, date="20241001", time_="170000", created=""):
    return f"BOF,{employee},P1,{date},{time_},{created},1,,,"


# --- which event wins ---

def test_latest_event_wins_when_the_older_event_is_in_the_newer_file(site):
    site.write_text("a.csv", bof(10001, time_="170000"))
    site.write_text("b.csv", bon(10001, time_="070000"))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == ""
    assert site.names(site.processed_dir) == {"a.csv", "b.csv"}


def test_equal_event_times_are_decided_by_record_created_then_file_then_row(site):
    site.write_text("a.csv", "\n".join([bon(10001, created="20241001070005"), bof(10001, time_="070000",
                                                                             created="20241001070001")]))
    site.write_text("b.csv", bon(10002, time_="080000"))
    site.write_text("c.csv", bof(10002, time_="080000"))
    site.write_text("d.csv", "\n".join([bof(10003, time_="090000"), bon(10003, time_="090000")]))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"  # the later record created
    assert site.sim.attribute(U2, FIELD) == ""  # the later file
    assert site.sim.attribute(U3, FIELD) == "01/10/2024 09:00:00"  # the later row


def test_a_stale_event_arriving_in_a_later_run_is_not_sent(site):
    site.write_text("a.csv", bof(10001, time_="170000"))
    assert site.main() == 0
    site.write_text("b.csv", bon(10001, time_="070000"))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == ""
    assert len(site.sent()) == 1
    assert site.names(site.processed_dir) == {"a.csv", "b.csv"}


def test_ids_made_of_digits_match_without_leading_zeros(site):
    site.write_text("a.csv", bon("0010001"))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"


def test_layout_b_with_header_is_read(site):
    site.write_text("b.csv", "employee id,STATUS,time_stamp\n10001,On Duty,2024-06-17T14:30:00\n10002,BOF,"
                        "2024-06-17 14:31:00\n")
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == "17/06/2024 14:30:00"
    assert site.sim.attribute(U2, FIELD) == ""


# --- mapping ---

def test_unknown_employee_is_never_created_and_its_file_is_done(site):
    site.write_text("a.csv", "\n".join([bon(99999), bon(10001)]))
    assert site.main() == 0
    assert "user99999@demo.example" not in site.sim.users
    assert {r["LOGIN_ID"] for r in site.sent()} == {U1}
    assert site.names(site.processed_dir) == {"a.csv"}
    log_text = site.log_file.read_text()
    assert "99999" in log_text and log_text.count("have no AtHoc user") == 1


def test_user_deleted_in_athoc_after_the_mapping_sync_is_gone_and_the_mapping_dropped(site):
    assert site.main("--sync-mappings") == 0
    site.sim.users.pop(U2)
    site.write_text("a.csv", "\n".join([bon(10001), bon(10002)]))
    assert site.main() == 0
    assert U2 not in site.sim.users
    assert site.rows("SELECT COUNT(*) FROM worker_mapping WHERE employee_id = '10002'") == [(0,)]
    assert site.names(site.processed_dir) == {"a.csv"}
    assert site.rows("SELECT employee_id FROM duty_state") == [("10001",)]


def test_mapping_sync_maps_2500_users_in_one_go(site):
    site.sim.seed_users(2495, first_collar=20001)
    assert site.main("--sync-mappings") == 0
    assert site.rows("SELECT COUNT(*) FROM worker_mapping") == [(2500,)]
    assert len(site.sim.requests_to("search/basic")) == 3


def test_ambiguous_collar_number_is_mapped_to_nobody(site):
    site.sim.add_user("twin@demo.example", **{"Collar-Number": "010001"})
    site.write_text("a.csv", "\n".join([bon(10001), bon(10002)]))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) is None and site.sim.attribute("twin@demo.example", FIELD) is None
    assert site.sim.attribute(U2, FIELD) == "01/10/2024 07:00:00"
    assert site.rows("SELECT employee_id FROM ambiguous_ids") == [("10001",)]


def test_incomplete_listing_keeps_the_mappings_held(site):
    assert site.main("--sync-mappings") == 0
    site.sim.total_users_bias = 1
    assert site.main("--sync-mappings") == 1
    assert site.rows("SELECT COUNT(*) FROM worker_mapping") == [(5,)]
    assert site.rows("SELECT status FROM sync_tracking") == [("error",)]


def test_a_listing_with_no_users_is_no_data_and_keeps_the_mappings(site):
    assert site.main("--sync-mappings") == 0
    site.sim.users.clear()
    assert site.main("--sync-mappings") == 1
    assert site.rows("SELECT COUNT(*) FROM worker_mapping") == [(5,)]
    assert site.rows("SELECT status FROM sync_tracking") == [("no_data",)]


# --- outcomes: nothing lost ---

def test_outage_longer_than_max_retry_attempts_keeps_the_file_then_recovers(site):
    site.configure(MAX_RETRY_ATTEMPTS="2")
    assert site.main("--sync-mappings") == 0
    site.write_text("a.csv", bon(10001))
    site.sim.fail("syncbycommonnames", 503, times=None)
    for _ in range(3):
        assert site.main() == 1
    assert site.names(site.csv_dir) == {"a.csv"} and site.names(site.failed_dir) == set()
    assert site.rows("SELECT COUNT(*) FROM file_attempts") == [(0,)]
    site.sim.clear_faults()
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"
    assert site.names(site.processed_dir) == {"a.csv"}


def test_athoc_unreachable_keeps_every_file_and_exits_1(site):
    site.write_text("a.csv", bon(10001))
    site.configure(ATHOC_SERVER_URL="http://127.0.0.1:9")  # nothing listens on the discard port
    assert site.main() == 1
    assert site.names(site.csv_dir) == {"a.csv"}


def test_record_failure_is_retried_then_the_file_goes_to_the_failed_folder(site):
    site.configure(MAX_RETRY_ATTEMPTS="2")
    site.sim.reject[U2] = ("Error", "Field is read-only for this user")
    site.write_text("a.csv", "\n".join([bon(10001), bon(10002)]))
    assert site.main() == 1
    assert site.names(site.csv_dir) == {"a.csv"}
    assert site.rows("SELECT attempts FROM file_attempts") == [(1,)]
    assert site.main() == 3  # set aside in the failed folder: a person must act
    assert site.names(site.failed_dir) == {"a.csv"} and site.names(site.csv_dir) == set()
    assert [r["LOGIN_ID"] for r in site.sent()] == [U1, U2, U2]  # U1 applied once, never re-sent
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"


def test_garbage_file_goes_to_the_failed_folder_and_a_mixed_file_keeps_its_good_rows(site):
    (site.csv_dir / "junk.csv").write_bytes(b"\x00\x01\x02 not text")
    site.write_text("mixed.csv", "\n".join([bon(10001), "BON,10002,P1,20241399,070000,,1,,,", "NOPE,1"]))
    site.write_text("allbad.csv", "hello,world\n1,2,3\n")
    assert site.main() == 3  # two files set aside in the failed folder: a person must act
    assert site.names(site.failed_dir) == {"allbad.csv", "junk.csv"}
    assert site.names(site.processed_dir) == {"mixed.csv"}
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"
    assert site.sim.attribute(U2, FIELD) is None
    errors = site.rows("SELECT errors FROM processing_log WHERE filename = 'mixed.csv'")[0][0]
    assert "mixed.csv:2:" in errors and "mixed.csv:3:" in errors


def test_empty_and_header_only_files_are_nothing_to_do(site):
    site.write_text("empty.csv", "")
    site.write_text("header.csv", "Employee_ID,Status,Timestamp\n\n")
    assert site.main() == 0
    assert site.names(site.processed_dir) == {"empty.csv", "header.csv"}
    assert site.sent() == []


def test_a_file_still_being_written_waits_for_a_later_run(site):
    site.configure(FILE_SETTLE_SECONDS="60")
    site.write_text("new.csv", bon(10001), age=1)
    assert site.main() == 0
    assert site.names(site.csv_dir) == {"new.csv"} and site.sent() == []


def test_move_processed_files_false_sends_a_file_once_and_a_changed_file_again(site):
    site.configure(MOVE_PROCESSED_FILES="false")
    path = site.write_text("a.csv", bon(10001))
    assert site.main() == 0 and site.main() == 0
    assert site.names(site.csv_dir) == {"a.csv"} and len(site.sent()) == 1
    assert site.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'a.csv'") == [(1,)]  # not even re-read
    path.write_text(bon(10001) + "\n" + bof(10001) + "\n")
    assert site.main() == 0
    assert len(site.sent()) == 2 and site.sim.attribute(U1, FIELD) == ""


def test_moves_never_overwrite(site):
    site.processed_dir.mkdir()
    (site.processed_dir / "a.csv").write_text("earlier file")
    site.write_text("a.csv", bon(10001))
    assert site.main() == 0
    assert site.names(site.processed_dir) == {"a.1.csv", "a.csv"}
    assert (site.processed_dir / "a.csv").read_text() == "earlier file"


# --- schedule, cleanup, idle ---

def schedule_processor(sim, tmp_path, **overrides) -> BOBOProcessor:
    settings = settings_for(sim, db_path=tmp_path / "s.db", csv_directory=tmp_path, **overrides)
    return BOBOProcessor(settings)


def record_good_sync(processor: BOBOProcessor, when: datetime) -> None:
    processor.db.replace_mappings([("1", "a@x", "1")], {}, when)


@pytest.mark.parametrize("last, now, due", [
    (None, datetime(2024, 6, 1, 9, 0), True),                                   # first run
    (datetime(2024, 6, 1, 8, 0), datetime(2024, 6, 1, 19, 59), False),           # before SYNC_HOUR
    (datetime(2024, 6, 1, 8, 0), datetime(2024, 6, 1, 20, 0), True),            # SYNC_HOUR reached
    (datetime(2024, 6, 1, 20, 0), datetime(2024, 6, 1, 23, 0), False),          # done after the hour today
    (datetime(2024, 5, 31, 20, 30), datetime(2024, 6, 1, 19, 0), False),        # yesterday evening's
    (datetime(2024, 5, 31, 20, 30), datetime(2024, 6, 1, 20, 1), True),         # next evening
    (datetime(2024, 5, 29, 21, 0), datetime(2024, 6, 1, 7, 0), True),           # older than SYNC_RETRY_DAYS
])
def test_mapping_sync_schedule_at_boundary_hours(sim, tmp_path, last, now, due):
    processor = schedule_processor(sim, tmp_path)
    if last:
        record_good_sync(processor, last)
    assert processor.should_run_user_mapping_sync(now=now) is due


@pytest.mark.parametrize("status", ["error", "no_data"])
def test_mapping_sync_is_due_at_once_after_a_failed_or_empty_sync(sim, tmp_path, status):
    processor = schedule_processor(sim, tmp_path)
    record_good_sync(processor, datetime(2024, 6, 1, 20, 30))
    processor.db.record_sync("user_mapping", status, datetime(2024, 6, 1, 21, 0))
    assert processor.should_run_user_mapping_sync(now=datetime(2024, 6, 1, 21, 1))


def test_sync_mappings_false_never_schedules_a_sync(sim, tmp_path):
    assert not schedule_processor(sim, tmp_path, sync_mappings=False).should_run_user_mapping_sync()


def test_cleanup_runs_when_due_and_not_again_within_the_interval(site):
    site.sim.add_user("late@demo.example", **{"Collar-Number": "30001", FIELD: "01/01/2020 08:00:00"})
    site.write_text("a.csv", bon(10001, date="20200101", time_="070000"))
    assert site.main() == 0
    assert site.sim.attribute("late@demo.example", FIELD) == ""  # cleared: on duty for years
    assert site.sim.attribute(U1, FIELD) == "01/01/2020 07:00:00"  # set this run: never cleared by it
    assert site.rows("SELECT on_duty FROM duty_state WHERE employee_id = '10001'") == [(1,)]
    def cleanups() -> list:
        return [r for r in site.sim.requests_to("search/basic") if " pr" in r.query.get("criteria", "")]

    assert len(cleanups()) == 1
    assert site.main() == 0
    assert len(cleanups()) == 1  # within CLEANUP_INTERVAL_MINUTES
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute("UPDATE run_state SET value = '2000-01-01T00:00:00' WHERE key = 'last_cleanup'")
    conn.close()
    assert site.main() == 0
    assert len(cleanups()) == 2 and site.sim.attribute(U1, FIELD) == ""
    assert site.rows("SELECT on_duty FROM duty_state WHERE employee_id = '10001'") == [(0,)]


def test_idle_run_makes_no_network_call_and_does_not_import_requests(site):
    assert site.main() == 0  # first run: mapping sync and cleanup are due
    before = len(site.sim.requests)
    code = (f"import sys; sys.path.insert(0, r'{BOBOSYNC_DIR}'); import bobo_processor; "
            f"rc = bobo_processor.main([]); print('requests' in sys.modules, rc)")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split()[-2:] == ["False", "0"], result.stdout + result.stderr
    assert len(site.sim.requests) == before


def test_two_overlapping_runs_second_exits_0_and_sends_nothing(site):
    site.write_text("a.csv", bon(10001))
    with FileLock(str(site.db) + ".lock"):
        result = subprocess.run([sys.executable, str(BOBOSYNC_DIR / "bobo_processor.py")], env=dict(os.environ),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "holds the lock" in result.stdout
    assert site.sim.requests == [] and site.names(site.csv_dir) == {"a.csv"}



def test_a_missing_database_folder_is_created_and_the_run_goes_on(site):
    site.configure(DB_PATH=str(site.work / "data" / "bobo.db"))
    site.write_text("a.csv", bon(10001))
    assert site.main() == 0
    assert (site.work / "data" / "bobo.db").is_file() and site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"


@pytest.mark.parametrize("blocker", ["database folder is a file", "lock file is a folder"])
def test_a_lock_that_cannot_be_taken_is_a_configuration_error_naming_it(site, blocker):
    if blocker == "database folder is a file":
        (site.work / "data").write_text("not a folder")
        site.configure(DB_PATH=str(site.work / "data" / "bobo.db"))
        lock = site.work / "data" / "bobo.db.lock"
    else:
        lock = Path(str(site.db) + ".lock")
        lock.mkdir()
    site.write_text("a.csv", bon(10001))
    assert site.main() == 2
    assert f"Cannot take the run lock {lock}" in site.output and "Traceback" not in site.output
    log = site.log_file.read_text()
    assert "Traceback" not in log and "DB_PATH" in log
    assert site.sim.requests == [] and site.names(site.csv_dir) == {"a.csv"}

# --- database, exit codes, logs ---

def test_seed_era_database_is_upgraded_in_place_and_its_mappings_used(site):
    conn = sqlite3.connect(str(site.db))
    conn.executescript("""
        CREATE TABLE worker_mapping (employee_id TEXT PRIMARY KEY, username TEXT NOT NULL, collar_id TEXT,
                                     last_updated TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE processing_log (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL,
            processed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, entries_processed INTEGER, success_count INTEGER,
            error_count INTEGER, errors TEXT);
        CREATE TABLE sync_tracking (sync_type TEXT PRIMARY KEY, last_sync_date DATE, last_sync_time TIMESTAMP,
                                    status TEXT);
        INSERT INTO worker_mapping (employee_id, username, collar_id) VALUES ('10001', 'user10001@demo.example',
                                                                             '10001');
        INSERT INTO processing_log (filename, entries_processed) VALUES ('old.csv', 3);
    """)
    now = datetime.now()
    conn.execute("INSERT INTO sync_tracking VALUES ('user_mapping', ?, ?, 'success')",
                 (now.strftime("%Y-%m-%d"), now.strftime("%Y-%m-%d %H:%M:%S")))
    conn.commit()
    conn.close()
    site.configure(SYNC_MAPPINGS="false", AUTO_CLEANUP_HOURS="0")
    site.write_text("a.csv", bon(10001))
    assert site.main() == 0
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"
    assert site.sim.requests_to("search/basic") == []  # the old mappings were used
    assert site.rows("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert site.rows("SELECT filename FROM processing_log ORDER BY id") == [("old.csv",), ("a.csv",)]


def test_exit_codes_0_1_2(site):
    assert site.main() == 0
    site.sim.reject[U1] = ("Error", "nope")
    site.write_text("a.csv", bon(10001))
    assert site.main() == 1
    site.configure(BATCH_SIZE="many")
    assert site.main() == 2


def test_log_file_holds_one_summary_per_batch_and_per_run(site):
    site.configure(BATCH_SIZE="2")
    for name in ("a.csv", "b.csv", "c.csv"):
        site.write_text(name, bon(10001))
    assert site.main() == 0
    text = site.log_file.read_text()
    assert text.count("Batch done") == 2 and text.count("Run done") == 1
    # the same event in a later file wins the tie (one total order, whatever the batching), so both batches send
    assert len(site.sim.requests_to("syncbycommonnames")) == 2


def test_python_api_recipes_of_the_readme_work(site):
    site.write_text("a.csv", bon(10001))
    processor = BOBOProcessor()
    try:
        processor.connect_athoc()
        assert processor.sync_worker_mappings()
        users = processor.athoc_client.get_all_users_with_attributes(["Collar-Number"])
        assert len(users) == 5
        files = processor.collect_csv_files()
        assert [f.name for f in files] == ["a.csv"]
        assert [e.employee_id for e in processor.parse_csv_file(files[0])] == ["10001"]
        processor.process_file_batch(files)
    finally:
        processor.close()
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"


def test_settings_object_can_be_given_directly(sim, tmp_path):
    settings = settings_for(sim).replace(db_path=tmp_path / "x.db")
    processor = BOBOProcessor(settings)
    assert processor.db.mapping_count() == 0
    processor.close()


def test_the_scheduled_run_without_argparse_reads_what_the_parser_would():
    assert vars(bobo_processor.parse_args([])) == vars(bobo_processor.build_parser().parse_args([]))


def test_a_run_reads_only_the_people_in_its_files_and_pending_events_not_the_force(site):
    """Rule (found by the soak at 50,000 people): a batch reads the mappings and duty states of its files'
    people, and the pending step those of the pending events, never a whole table: at 50,000 people each
    whole read costs 30 ms, every run while an event is pending (on a real site, nearly always)."""
    assert site.main() == 0  # the mapping sync
    site.write_text("a.csv", "\r\n".join([bon(10001), bon(99999)]) + "\r\n")  # 99999: no user holds it
    statements = []
    processor = BOBOProcessor()
    try:
        processor.db.conn.set_trace_callback(statements.append)
        assert processor.run() == 0
    finally:
        processor.close()
    assert site.sim.attribute(U1, FIELD) == "01/10/2024 07:00:00"
    assert site.rows("SELECT employee_id FROM pending_events") == [("99999",)]
    whole = [s for s in statements if s.startswith("SELECT employee_id")
             and any(s.rstrip().endswith(f"FROM {t}") for t in ("worker_mapping", "duty_state"))]
    assert not whole, whole
    assert any("FROM worker_mapping WHERE employee_id = " in s for s in statements)  # (3.11 shows the value)
