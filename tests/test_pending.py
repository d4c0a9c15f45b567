"""People bobosync cannot map yet: their events are kept as pending and applied once a user holds the number.

Each test runs the real entry point in a new process against the simulator over HTTP, with real
folders and a real SQLite file.
"""
import json
import sqlite3
from datetime import datetime, timedelta

from test_time_and_order import FIELD, Site, row

NEW = 10009  # a new starter: BOBO knows them before AtHoc's user has a collar number


def pending_rows(site):
    conn = sqlite3.connect(str(site.root / "bobo_mapping.db"))
    try:
        return conn.execute("SELECT employee_id, event_time, on_duty FROM pending_events").fetchall()
    finally:
        conn.close()


def lookups(sim):
    """The criteria look-ups of collar numbers (not the mapping sync's listings)."""
    return [r for r in sim.requests_to("search/basic") if "Collar-Number eq" in r.query.get("criteria", "")]


def test_a_new_starters_book_on_is_kept_and_sent_once_their_user_appears(sim, tmp_path):
    """Rule: an event for an employee number with no mapping is kept as pending (its file can move) and applied
    as soon as a mapping exists, found by a criteria query on COLLAR_ID_FIELD."""
    site = Site(sim, tmp_path)
    recent = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    site.write("a.csv", row("BON", NEW, recent) + row("BON", 10001, recent))
    first = site.run()
    assert first.returncode == 0, first.stdout
    assert (tmp_path / "processed_files" / "a.csv").exists()  # the event is safe in the database
    assert pending_rows(site) == [(str(NEW), recent.strftime("%Y%m%d%H%M%S"), 1)]
    assert "1 applied, 0 stale or superseded, 1 pending (no AtHoc user yet)" in first.stdout
    log_row = sqlite3.connect(str(tmp_path / "bobo_mapping.db")).execute(
        "SELECT success_count, errors FROM processing_log WHERE filename = 'a.csv'").fetchone()
    assert log_row[0] == 1 and "1 pending" in log_row[1]
    status = json.loads(site.run("--status", "--json").stdout)
    assert status["pending"]["count"] == 1 and status["pending"]["oldest_since"]
    sim.add_user("new.starter@demo.example", **{"Collar-Number": str(NEW)})  # added in AtHoc this afternoon
    second = site.run()
    assert second.returncode == 0, second.stdout
    assert sim.attribute("new.starter@demo.example", FIELD) == recent.strftime("%d/%m/%Y %H:%M:%S")
    assert pending_rows(site) == []
    assert len(lookups(sim)) == 1  # the second run looked the number up, with one criteria query
    assert site.run().returncode == 0 and len(lookups(sim)) == 1  # nothing pending: no more look-ups


def test_look_ups_are_rate_limited_per_number_and_sync_mappings_applies_at_once(sim, tmp_path):
    """Rule: unmapped numbers are looked up at most every UNMAPPED_LOOKUP_MINUTES, not every minute; a mapping
    sync (here --sync-mappings by an operator who just fixed the number) applies pending events at once."""
    site = Site(sim, tmp_path)
    recent = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    site.write("a.csv", row("BON", NEW, recent))
    assert site.run().returncode == 0
    for _ in range(3):
        assert site.run().returncode == 0
    assert len(lookups(sim)) == 1  # the first later run looked; the next ones did not
    sim.add_user("fixed@demo.example", **{"Collar-Number": str(NEW)})
    synced = site.run("--sync-mappings")
    assert synced.returncode == 0, synced.stdout
    assert sim.attribute("fixed@demo.example", FIELD) == recent.strftime("%d/%m/%Y %H:%M:%S")


def test_a_pending_event_superseded_or_too_old_is_not_sent(sim, tmp_path):
    """Rule: the newest pending event is applied unless superseded, or a book-on older than AUTO_CLEANUP_HOURS."""
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24")
    now = datetime.now().replace(microsecond=0)
    site.write("a.csv", row("BON", NEW, now - timedelta(hours=2)) + row("BON", 10010, now - timedelta(hours=30)))
    assert site.run().returncode == 0
    assert len(pending_rows(site)) == 2
    sim.add_user("new@demo.example", **{"Collar-Number": str(NEW)})
    sim.add_user("old@demo.example", **{"Collar-Number": "10010"})
    assert site.run("--sync-mappings").returncode == 0  # both mapped now; the old book-on is dropped, not sent
    assert sim.attribute("old@demo.example", FIELD) in (None, "")
    assert sim.attribute("new@demo.example", FIELD) == (now - timedelta(hours=2)).strftime("%d/%m/%Y %H:%M:%S")
    assert pending_rows(site) == []


def test_a_later_applied_event_supersedes_the_pending_one(sim, tmp_path):
    site = Site(sim, tmp_path)
    now = datetime.now().replace(microsecond=0)
    site.write("a.csv", row("BON", NEW, now - timedelta(hours=2)))
    assert site.run().returncode == 0
    sim.add_user("new@demo.example", **{"Collar-Number": str(NEW)})
    site.write("b.csv", row("BOF", NEW, now - timedelta(hours=1)))  # the book-off arrives with the user
    assert site.run().returncode == 0
    assert sim.attribute("new@demo.example", FIELD) in (None, "")
    assert pending_rows(site) == []


def test_pending_events_expire_with_a_warning(sim, tmp_path):
    """Rule: pending events expire after PENDING_EXPIRY_DAYS, with a WARNING naming the person."""
    site = Site(sim, tmp_path, PENDING_EXPIRY_DAYS="2")
    site.write("a.csv", row("BON", NEW, datetime.now().replace(microsecond=0) - timedelta(hours=1)))
    assert site.run().returncode == 0
    conn = sqlite3.connect(str(tmp_path / "bobo_mapping.db"))
    with conn:
        conn.execute("UPDATE pending_events SET first_seen = ?",
                     ((datetime.now() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"),))
    conn.close()
    result = site.run()
    assert f"The pending event of {NEW}" in result.stdout and "expired after 2 days" in result.stdout
    assert pending_rows(site) == []


def test_a_clock_days_ahead_does_not_expire_pending_events(sim, tmp_path):
    """Rule: while this server's clock and AtHoc's differ, no decision compares an event with "now": a pending
    event that looks older than PENDING_EXPIRY_DAYS only by the wrong clock is kept."""
    site = Site(sim, tmp_path, PENDING_EXPIRY_DAYS="2")
    sim.clock_skew_seconds = -3 * 86400  # AtHoc three days behind: this server's clock jumped ahead
    site.write("a.csv", row("BON", NEW, datetime.now().replace(microsecond=0) - timedelta(hours=1)))
    assert site.run().returncode == 3  # the clocks differ: a person must act
    conn = sqlite3.connect(str(tmp_path / "bobo_mapping.db"))
    with conn:
        conn.execute("UPDATE pending_events SET first_seen = ?",
                     ((datetime.now() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"),))
    conn.close()
    result = site.run()
    assert "expired" not in result.stdout
    assert len(pending_rows(site)) == 1


def test_a_slow_look_up_of_pending_numbers_never_holds_up_the_duty_updates(sim, tmp_path):
    """Rule: a run sends its files' duty updates before it looks up the numbers of pending events, so a look-up
    that fails or times out (a slow criteria search over a large organisation) delays only the pending people,
    never everyone else. Found by the soak test at 50,000 people: each run's look-up timed out first, and no
    file was sent for as long as it did."""
    site = Site(sim, tmp_path, HTTP_TIMEOUT_SECONDS="1")
    recent = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    site.write("a.csv", row("BON", NEW, recent))
    first = site.run()
    assert first.returncode == 0, first.stdout
    assert pending_rows(site) and not lookups(sim)  # looked up from the next run on
    sim.fail("search/basic", delay=1.5, times=None)  # every search slower than HTTP_TIMEOUT_SECONDS
    later = recent + timedelta(minutes=10)
    site.write("b.csv", row("BON", 10001, later))
    second = site.run()
    assert second.returncode == 1, second.stdout  # the look-up failed: tried again next run
    assert "Looking up employee numbers with pending events failed" in second.stdout
    assert site.duty(0) == later.strftime("%d/%m/%Y %H:%M:%S")
    assert (tmp_path / "processed_files" / "b.csv").exists()
    assert lookups(sim)  # tried, after the updates
    sim.clear_faults()
    assert site.run().returncode == 0
    assert pending_rows(site) == [(str(NEW), recent.strftime("%Y%m%d%H%M%S"), 1)]  # still kept for its user
