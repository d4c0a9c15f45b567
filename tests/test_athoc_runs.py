"""Runs at AtHoc's edges: refused credentials, failing or slow mapping syncs, renamed logins, collar numbers
that move, listings that shrink, exit code 3, and commands typed while a run holds the lock.

Each test runs the real entry point in a new process against the simulator over HTTP, with real
folders and a real SQLite file.
"""
import json
import sqlite3
import threading
import time
from datetime import datetime, timedelta

from filelock import FileLock

from test_time_and_order import FIELD, Site, row

ON = datetime(2024, 10, 1, 7, 0)
ON_VALUE = "01/10/2024 07:00:00"


def token_requests(sim) -> int:
    return len(sim.requests_to("connect/token"))


def db_rows(site, sql: str, params: tuple = ()) -> list:
    conn = sqlite3.connect(str(site.root / "bobo_mapping.db"))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def make_sync_due(site) -> None:
    """The last good mapping sync three days ago: the next run syncs (SYNC_RETRY_DAYS=2)."""
    old = (datetime.now() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    conn = sqlite3.connect(str(site.root / "bobo_mapping.db"))
    with conn:
        conn.execute("UPDATE sync_tracking SET last_sync_time = ?", (old,))
    conn.close()


def test_refused_credentials_are_not_retried_every_minute_and_exit_3(sim, tmp_path):
    """Rule: when the token endpoint refuses the credentials, later runs do not ask again until a back-off expires
    or the credentials change (no account lockout); the run exits 3, a person must act; --sync-mappings tries."""
    site = Site(sim, tmp_path)
    site.env["PASSWORD"] = "wrong-password"
    site.write("a.csv", row("BON", 10001, ON))
    first = site.run()
    assert first.returncode == 3, first.stdout
    assert "AtHoc refused the credentials" in first.stdout and token_requests(sim) == 1
    for _ in range(3):
        assert site.run().returncode == 3
    assert token_requests(sim) == 1  # not asked again: 1,440 refused logins a day would lock the account
    assert (site.csv_dir / "a.csv").exists()
    manual = site.run("--sync-mappings")
    assert manual.returncode == 3 and token_requests(sim) == 2  # a person asked: tried once
    site.env["PASSWORD"] = sim.password  # fixed in the settings: the next run asks at once
    fixed = site.run()
    assert fixed.returncode == 0, fixed.stdout
    assert sim.attribute(site.logins[0], FIELD) == ON_VALUE


def test_a_failing_mapping_sync_backs_off_and_sync_mappings_tries_at_once(sim, tmp_path):
    """Rule: a failed mapping sync is not repeated in full every minute: it backs off, the log says when the next
    attempt is, duty updates go on with the mappings held, and --sync-mappings tries at once."""
    site = Site(sim, tmp_path)
    assert site.run().returncode == 0  # the first sync
    make_sync_due(site)
    sim.fail("search/basic", status=500, times=None)
    first = site.run()
    assert first.returncode == 1 and "the next attempt is at" in first.stdout
    searches = len(sim.requests_to("search/basic"))
    site.write("a.csv", row("BON", 10001, ON))
    second = site.run()
    assert second.returncode == 0, second.stdout
    assert len(sim.requests_to("search/basic")) == searches  # backed off: no listing this minute
    assert sim.attribute(site.logins[0], FIELD) == ON_VALUE  # duty updates went on
    sim.clear_faults()
    assert site.run("--sync-mappings").returncode == 0
    assert len(sim.requests_to("search/basic")) > searches


def test_duty_updates_go_out_before_a_slow_mapping_sync_which_resumes_next_run(sim, tmp_path):
    """Rule: with a usable mapping held, the files come first and the sync gets what is left of the run's
    deadline; a listing that cannot finish resumes in the next run, and the mapping is replaced only whole."""
    site = Site(sim, tmp_path, RUN_DEADLINE_SECONDS="10")
    assert site.run().returncode == 0
    sim.seed_users(2500, first_collar=30001)  # three pages
    make_sync_due(site)
    site.write("a.csv", row("BON", 10001, ON))
    sim.fail("search/basic", delay=2.0, times=None)  # each page slow, though inside the timeout
    began = time.monotonic()
    first = site.run()
    assert time.monotonic() - began < 14, first.stdout  # the run kept to its deadline
    assert sim.attribute(site.logins[0], FIELD) == ON_VALUE  # the duty update was not held up by the sync
    kinds = [r.path.rsplit("/", 1)[-1].lower() for r in sim.requests if "connect/token" not in r.path]
    assert kinds.index("syncbycommonnames") < len(kinds) - kinds[::-1].index("basic") - 1
    assert "the next run goes on from page" in first.stdout
    assert db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] == 3  # the old mapping, still whole
    for _ in range(4):
        if db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] > 3:
            break
        site.run()
    assert db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] == 2503


def test_a_file_set_aside_in_the_failed_folder_exits_3(sim, tmp_path):
    """Rule: exit 3 when a person must act: here a bad file moved to the failed folder."""
    site = Site(sim, tmp_path)
    site.write("bad.csv", "BON,10001,too,few,fields\n")
    result = site.run()
    assert result.returncode == 3, result.stdout
    assert "A person must act: a file was set aside in the failed folder" in result.stdout
    assert (tmp_path / "failed_files" / "bad.csv").exists()


def test_a_user_whose_login_was_renamed_gets_the_event_in_the_same_run(sim, tmp_path):
    """Rule: on "gone", the person is looked up again by collar number; under a new login, the mapping is updated
    and the event sent again in the same run."""
    site = Site(sim, tmp_path)
    assert site.run().returncode == 0
    old = site.logins[0]
    attributes = dict(sim.users.pop(old))
    attributes["LOGIN_ID"] = "renamed@demo.example"
    sim.users["renamed@demo.example"] = attributes  # renamed in AtHoc after the mapping sync
    site.write("a.csv", row("BON", 10001, ON))
    result = site.run()
    assert result.returncode == 0, result.stdout
    assert sim.attribute("renamed@demo.example", FIELD) == ON_VALUE
    assert db_rows(site, "SELECT username FROM worker_mapping WHERE employee_id = '10001'") == [
        ("renamed@demo.example",)]
    assert db_rows(site, "SELECT COUNT(*) FROM pending_events")[0][0] == 0


def test_a_collar_number_moved_to_another_user_takes_the_duty_value_along(sim, tmp_path):
    """Rule: when a sync moves a collar number from A to B, B gets the officer's value and the value bobosync set
    on A is cleared, in the same run; the officer's book-off then goes to B."""
    site = Site(sim, tmp_path)
    site.write("on.csv", row("BON", 10001, ON))
    assert site.run().returncode == 0
    a = site.logins[0]
    assert sim.attribute(a, FIELD) == ON_VALUE
    sim.users[a]["Collar-Number"] = ""  # the number had been entered on the wrong account
    sim.add_user("right.account@demo.example", **{"Collar-Number": "10001"})
    moved = site.run("--sync-mappings")
    assert moved.returncode == 0, moved.stdout
    assert "Collar number 10001 moved from AtHoc user" in moved.stdout
    assert sim.attribute("right.account@demo.example", FIELD) == ON_VALUE
    assert sim.attribute(a, FIELD) == ""  # A is no longer paged for a shift that is not theirs
    site.write("off.csv", row("BOF", 10001, ON + timedelta(hours=8)))
    assert site.run().returncode == 0
    assert sim.attribute("right.account@demo.example", FIELD) == ""


def test_a_listing_that_would_unmap_everyone_is_held_back_until_a_person_accepts_it(sim, tmp_path):
    """Rule: a listing that would drop more than MAPPING_DROP_LIMIT_PERCENT of the mappings held (always when it
    maps nobody) is not applied: the held mappings stay in use, the sync backs off, --status says why, the run
    exits 3, and --sync-mappings --accept-drop applies it."""
    site = Site(sim, tmp_path)
    assert site.run().returncode == 0
    for user in sim.users.values():
        user.pop("Collar-Number")  # the attribute renamed or hidden in AtHoc for a while
    make_sync_due(site)
    site.write("a.csv", row("BON", 10001, ON))
    held = site.run()
    assert held.returncode == 3, held.stdout
    assert "User mapping sync held back" in held.stdout
    assert sim.attribute(site.logins[0], FIELD) == ON_VALUE  # the held mappings stayed in use
    assert db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] == 3
    status = json.loads(site.run("--status", "--json").stdout)
    assert "would drop 3 of the 3 mappings held" in status["mapping_sync"]["held_back"]
    accepted = site.run("--sync-mappings", "--accept-drop")
    assert accepted.returncode == 0, accepted.stdout
    assert db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] == 0


def test_a_mapping_missing_from_a_shifted_listing_is_confirmed_before_it_is_dropped(sim, tmp_path):
    """Rule: a held mapping missing from a new listing is confirmed by a criteria query on its collar number
    before it is dropped (a user deleted while pages are read shifts the next page by one)."""
    site = Site(sim, tmp_path)
    assert site.run().returncode == 0
    hidden = site.logins[1]
    sim.hidden_from_listing = {hidden}  # TotalUsers agrees with what the pages show: counting cannot tell
    synced = site.run("--sync-mappings")
    assert synced.returncode == 0, synced.stdout
    assert "missing from the listing still hold their collar numbers" in synced.stdout
    assert (hidden,) in db_rows(site, "SELECT username FROM worker_mapping")


def test_a_command_typed_while_a_run_holds_the_lock_waits_for_it(sim, tmp_path):
    """Rule: a manual command waits for the lock for a bounded time, saying so; if it cannot get it, it says so
    and exits non-zero; a scheduled run still exits 0 quietly."""
    site = Site(sim, tmp_path, LOCK_WAIT_SECONDS="2")
    assert site.run().returncode == 0
    lock = FileLock(str(tmp_path / "bobo_mapping.db.lock"), thread_local=False)
    with lock:
        seen = len(sim.requests)
        assert site.run().returncode == 0  # scheduled: another run holds it, this one exits
        refused = site.run("--sync-mappings")
        assert refused.returncode == 1 and "still holds the lock after 2 s" in refused.stdout
        assert len(sim.requests) == seen  # neither asked AtHoc anything while the lock was held
    site.env["LOCK_WAIT_SECONDS"] = "20"
    lock.acquire()
    threading.Timer(5, lock.release).start()  # after the command has started: under Wine that takes seconds
    waited = site.run("--sync-mappings")
    assert waited.returncode == 0, waited.stdout
    assert "waiting up to 20 s" in waited.stdout


def test_a_duty_field_unknown_to_athoc_stops_the_run_with_exit_3_and_keeps_every_event(sim, tmp_path):
    """Rule: a result naming the duty field as unknown is a configuration problem, not "gone": no mapping is
    dropped, nothing is recorded, the file waits (no attempt counted), the run exits 3; once the field is right
    the next run sends the event."""
    site = Site(sim, tmp_path, DUTY_STATUS_FIELD="On-Duty-Typo")
    site.write("a.csv", row("BON", 10001, ON))
    typo = site.run()
    assert typo.returncode == 3, typo.stdout
    assert "AtHoc refused the duty field" in typo.stdout
    assert (site.csv_dir / "a.csv").exists()
    assert db_rows(site, "SELECT COUNT(*) FROM worker_mapping")[0][0] == 3
    assert db_rows(site, "SELECT COUNT(*) FROM file_attempts")[0][0] == 0
    site.env["DUTY_STATUS_FIELD"] = FIELD
    fixed = site.run()
    assert fixed.returncode == 0, fixed.stdout
    assert sim.attribute(site.logins[0], FIELD) == ON_VALUE


def test_a_first_mapping_sync_that_maps_nobody_exits_3(sim, tmp_path):
    """Rule: exit 3 when a person must act: a mapping that came back empty (COLLAR_ID_FIELD wrong?)."""
    site = Site(sim, tmp_path, COLLAR_ID_FIELD="Collar-Typo")
    site.write("a.csv", row("BON", 10001, ON))
    result = site.run()
    assert result.returncode == 3, result.stdout
    assert "No AtHoc user has a Collar-Typo value" in result.stdout
    assert (site.csv_dir / "a.csv").exists()  # nothing was reported unmapped by mistake
