"""The audit trail (bobosync/audit.py, audit_query.py): every event read and every change to AtHoc's duty field is
recorded with its decision and AtHoc's answer; --history and --on-duty-at answer from it alone.

Whole runs of the real entry point (main(), in this process, unless a run must be killed), against the simulator
over HTTP, with real folders and a real SQLite file. Time passing between two runs is played by moving every
recorded time of the trail back (`age_trail`), as the other suites expire back-offs.
"""
import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any, Dict, List

import pytest

import audit
import audit_upkeep
import cli
import incident_review
from audit_query import _employee_number
from bobo_csv import normalize_employee_id
from conftest import ROOT
from testsite import AMBIGUOUS, FIELD, UNMAPPED, Site, off, on


def trail(site: Site) -> List[Dict[str, Any]]:
    """Every trail row, as audit_view shows it, in the order recorded."""
    conn = sqlite3.connect(str(site.db))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM audit_view ORDER BY id")]
    finally:
        conn.close()


def ask(site: Site, *argv: str) -> Any:
    """An audit query as a person types it, with --json; its parsed output."""
    site.run(*argv, "--json")
    return json.loads(site.output)


def age_trail(site: Site, seconds: int) -> None:
    """Time passes: every time the trail recorded moves `seconds` back (the daily snapshots, a cache of the trail,
    are taken again by the next purge step)."""
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute("UPDATE audit_trail SET at = CAST(strftime('%Y%m%d%H%M%S', printf('%04d-%02d-%02d %02d:%02d:%02d',"
                     " at / 10000000000, at / 100000000 % 100, at / 1000000 % 100, at / 10000 % 100, at / 100 % 100,"
                     " at % 100), ?) AS INTEGER)", (f"-{seconds} seconds",))
        conn.execute("DELETE FROM audit_snapshot")
        conn.execute("DELETE FROM run_state WHERE key = 'last_purge'")
    conn.close()


def recorded(site: Site, decision: str) -> List[str]:
    """The `at` of each trail row with this decision, as --history shows it."""
    return [audit.shown_time(r["at"]) for r in trail(site) if r["decision"] == decision]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def when(text: str, seconds: int = 0) -> str:
    """A trail time ('YYYY-MM-DD HH:MM:SS') moved by `seconds`, as --on-duty-at takes it (DD/MM/YYYY HH:MM:SS)."""
    return (datetime.strptime(text, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)).strftime("%d/%m/%Y %H:%M:%S")


# --- every decision ---

def test_every_event_read_is_in_the_trail_with_its_decision_and_athocs_answer(sim, tmp_path):
    """Rule: each event read is recorded with employee, login, event, file:line and the decision: applied (with the
    value sent and AtHoc's 'ok'), superseded (by which event), stale, pending (unmapped, or a number held by
    several users), rejected (why); --history tells it newest first, in words."""
    site = Site(sim, tmp_path)
    a = [site.ev("BON", "10001", "20241001065512"), site.ev("BOF", "10001", "20241001151003"),
         site.ev("BON", UNMAPPED, "20241001070500"), site.ev("BON", AMBIGUOUS, "20241001070600"),
         site.ev("BON", "10003", "20241001071000")]
    site.write("a.csv", a)
    site.write_bytes("bad.csv", b"BON,10002,P1,20241341,071000,20241001071010,1,,,\r\n"
                                b"BON,10002,P1,20241001,071100,20241001071110,1,,,\r\n")
    site.run()
    site.write("b.csv", [site.ev("BON", "10003", "20241001060000")])  # older than what AtHoc holds
    site.run()

    story = ask(site, "--history", "10001")
    assert story["logins"] == [site.logins[0]] and [r["decision"] for r in story["rows"]] == ["applied", "superseded"]
    applied, superseded = story["rows"]
    assert (applied["event"], applied["clocking_time"], applied["file"], applied["line"]) == \
        ("book-off", "2024-10-01 15:10:03", "a.csv", 2)
    assert (applied["sent"], applied["answer"], applied["login"]) == ("", "ok", site.logins[0])
    assert superseded["superseded_by"]["line"] == 2 and superseded["line"] == 1 and superseded["sent"] is None
    assert site.held(site.logins[0]) == ""  # what the trail says was sent is what AtHoc holds
    words = site.run("--history", "10001")
    assert words.index("book-off clocked 2024-10-01 15:10:03 (a.csv:2): sent") < words.index(
        "book-on clocked 2024-10-01 06:55:12 (a.csv:1): not sent: superseded by the book-off")

    assert [(r["decision"], r["detail"]) for r in ask(site, "--history", UNMAPPED)["rows"]] == \
        [("pending", "no AtHoc user holds this employee number")]
    ambiguous = ask(site, "--history", AMBIGUOUS)["rows"]
    assert ambiguous[0]["decision"] == "pending" and "twin.a@demo.example" in ambiguous[0]["detail"]
    rejected = [r for r in ask(site, "--history", "10002")["rows"] if r["decision"] == "rejected"]
    assert rejected[0]["file"] == "bad.csv" and rejected[0]["line"] == 1 and "not a real date" in rejected[0]["detail"]
    third = ask(site, "--history", site.logins[2])["rows"]  # by LOGIN_ID, newest first
    assert [r["decision"] for r in third] == ["stale", "applied"]
    assert "not newer than the event already applied" in third[0]["detail"]
    assert site.held(site.logins[2]) == "01/10/2024 07:10:00"


def test_gone_failed_pending_sent_dropped_and_expired_are_recorded(sim, tmp_path):
    """Rule: AtHoc's refusals are recorded with its words (gone: kept pending; failed: the file retried); a pending
    event is recorded again when sent once a user holds the number, dropped (a later event was applied, or a book-on
    older than the cleanup age), or expired after PENDING_EXPIRY_DAYS."""
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24", PENDING_EXPIRY_DAYS="1")
    now = datetime.now().replace(microsecond=0)
    gone_login, failed_login = site.logins[3], site.logins[4]
    site.run("--sync-mappings")
    sim.remove_user(gone_login)
    sim.reject[failed_login] = ("Error", "Value rejected by a rule")
    site.write("a.csv", [on("10004", stamp(now - timedelta(hours=1))), on("10005", stamp(now - timedelta(hours=1))),
                         on("10008", stamp(now - timedelta(hours=2))), on("10009", stamp(now - timedelta(hours=30))),
                         on("10010", stamp(now - timedelta(hours=3)))])
    site.run(expect=(1,))  # a record AtHoc refused: its file is retried
    rows = {r["employee_id"]: r for r in trail(site)}
    assert rows["10004"]["decision"] == "gone" and rows["10004"]["answer"].startswith("gone: ")
    assert rows["10005"]["decision"] == "failed" and "Value rejected by a rule" in rows["10005"]["answer"]
    assert rows["10005"]["sent"] == (now - timedelta(hours=1)).strftime("%d/%m/%Y %H:%M:%S")
    assert sim.attribute(failed_login, FIELD) is None
    del sim.reject[failed_login]

    sim.add_user("back@demo.example", **{"Collar-Number": "10004"})  # the number is held again, under a new login
    sim.add_user("new8@demo.example", **{"Collar-Number": "10008"})
    sim.add_user("new9@demo.example", **{"Collar-Number": "10009"})
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute("UPDATE pending_events SET first_seen = ? WHERE employee_id = '10010'",
                     ((now - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S"),))
    conn.close()
    site.run("--sync-mappings")
    decided = {(r["employee_id"], r["decision"]): r for r in trail(site)}
    sent = decided[("10004", "applied")]
    assert sent["login"] == "back@demo.example" and "pending event" in sent["detail"]
    assert sim.attribute("back@demo.example", FIELD) == sent["sent"]
    assert decided[("10008", "applied")]["login"] == "new8@demo.example"
    assert "older than AUTO_CLEANUP_HOURS" in decided[("10009", "dropped")]["detail"]
    assert sim.attribute("new9@demo.example", FIELD) is None
    assert "PENDING_EXPIRY_DAYS" in decided[("10010", "expired")]["detail"]
    site.run()  # the refused file again, now applied
    assert [r["decision"] for r in ask(site, "--history", "10005")["rows"]] == ["applied", "failed"]


def test_superseded_events_past_the_limit_for_one_person_are_counted(sim, tmp_path, monkeypatch):
    """Rule: in one batch the first PER_PERSON superseded events of a person are listed one by one, then the last,
    with how many came between (a backlog read at once costs bounded memory and time)."""
    monkeypatch.setattr(audit, "PER_PERSON", 3)
    monkeypatch.setattr(audit, "LISTED_CHARS", 3 * 21)
    site = Site(sim, tmp_path)
    events = [site.ev("BON" if i % 2 == 0 else "BOF", "10001", f"20241001{7 + i:02d}0000") for i in range(9)]
    site.write("a.csv", events)
    site.run()
    rows = ask(site, "--history", "10001")["rows"]
    assert rows[0]["decision"] == "applied" and rows[0]["line"] == 9
    assert [r["line"] for r in rows[1:]] == [1, 2, 3, 8]  # 4 to 7 counted, not listed
    assert rows[-1]["detail"].startswith("the last of 5 superseded events") and "the 4 before it" in rows[-1]["detail"]


# --- --on-duty-at ---

def test_on_duty_at_is_what_athoc_showed_before_and_after_it_confirmed_and_across_the_cleanup(sim, tmp_path):
    """Rule: --on-duty-at compares the instant with when AtHoc confirmed each update: not on duty a second before,
    on duty from then until the cleanup cleared the field; each answer names the event and its clocking time."""
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24", CLEANUP_INTERVAL_MINUTES="0")
    old_on = datetime.now().replace(microsecond=0) - timedelta(hours=30)  # missed its book-off
    site.write("a.csv", [on("10001", stamp(old_on)), on("10002", stamp(old_on + timedelta(hours=25)))])
    site.run()
    age_trail(site, 3600)
    site.run()  # the cleanup clears 10001's value, on for over 24 hours
    set_at, = recorded(site, "applied")[:1]
    cleared_at, = recorded(site, "cleared")
    assert sim.attribute(site.logins[0], FIELD) == ""

    before = ask(site, "--on-duty-at", when(set_at, -1), "10001")
    assert before["on_duty"] is False and before["users"][0]["set_by"] is None
    during = ask(site, "--on-duty-at", when(set_at), "10001")
    assert during["on_duty"] is True
    assert during["users"][0]["set_by"]["clocking_time"] == old_on.strftime("%Y-%m-%d %H:%M:%S")
    assert during["users"][0]["set_by"]["file"] == "a.csv" and during["users"][0]["set_by"]["line"] == 1
    after = ask(site, "--on-duty-at", when(cleared_at), "10001")
    assert after["on_duty"] is False and after["users"][0]["set_by"]["decision"] == "cleared"
    assert "cleanup" in site.run("--on-duty-at", when(cleared_at), "10001")

    force = ask(site, "--on-duty-at", when(set_at))
    assert [(r["employee_id"], r["login"]) for r in force["on_duty"]] == [("10001", site.logins[0]),
                                                                         ("10002", site.logins[1])]
    assert force["on_duty"][0]["clocking_time"] == old_on.strftime("%Y-%m-%d %H:%M:%S")
    later = ask(site, "--on-duty-at", when(cleared_at))
    assert [r["employee_id"] for r in later["on_duty"]] == ["10002"] and later["count"] == 1
    lines = site.run("--on-duty-at", when(cleared_at))
    assert "1 user(s)" in lines and "10002" in lines and "10001 " not in lines


def test_a_clearing_applied_without_its_answer_is_found_by_the_next_cleanup_and_recorded(sim, tmp_path):
    """Rule (found by the soak: 50,000 people, seed 488268): when AtHoc applies the cleanup's clearing but its
    reply leaves that result out (or the run is killed before recording it), the next cleanup finds the field
    empty and records the person off duty from then; before, the trail and --on-duty-at kept them on duty for
    good, as the listing the cleanup reads holds only users with a value."""
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24", CLEANUP_INTERVAL_MINUTES="0")
    old_on = datetime.now().replace(microsecond=0) - timedelta(hours=30)  # missed its book-off
    site.write("a.csv", [on("10001", stamp(old_on)), on("10002", stamp(old_on + timedelta(hours=25)))])
    site.run()
    age_trail(site, 3600)
    sim.short_results = 1  # AtHoc applies the clearing; its reply leaves the result out
    site.run()
    assert sim.attribute(site.logins[0], FIELD) == "" and not recorded(site, "cleared")  # nobody could know yet
    assert "AtHoc returned no result" in site.log()
    sim.short_results = 0
    site.run()  # the next cleanup: the field is empty, and bobosync set it on duty over 24 hours ago
    cleared_at, = recorded(site, "cleared")
    assert "already empty" in [r for r in trail(site) if r["decision"] == "cleared"][0]["detail"]
    assert site.rows("SELECT employee_id, on_duty FROM duty_state ORDER BY employee_id") == [("10001", 0),
                                                                                           ("10002", 1)]
    after = ask(site, "--on-duty-at", when(cleared_at))
    assert [r["employee_id"] for r in after["on_duty"]] == ["10002"]  # 10002, on for 5 hours, stays on duty
    assert sim.attribute(site.logins[1], FIELD) != ""
    site.run()  # and only once
    assert len(recorded(site, "cleared")) == 1


def test_on_duty_at_follows_a_collar_number_moved_to_another_login(sim, tmp_path):
    """Rule: when a collar number moves from user A to user B, the trail records the value sent to B and the one
    cleared on A: --on-duty-at names A before the move and B after, --history of A shows the move."""
    site = Site(sim, tmp_path)
    a, b = site.logins[0], "moved.here@demo.example"
    site.write("a.csv", [on("10001", "20241001070000")])
    site.run()
    age_trail(site, 3600)
    sim.users[a]["Collar-Number"] = "10099"  # the number was entered on the wrong account: fixed in AtHoc
    sim.add_user(b, **{"Collar-Number": "10001"})
    site.run("--sync-mappings")
    assert (sim.attribute(b, FIELD), sim.attribute(a, FIELD)) == ("01/10/2024 07:00:00", "")
    moves = [r for r in trail(site) if r["decision"] == "moved"]
    assert sorted((r["login"], r["sent"], r["answer"]) for r in moves) == [(b, "01/10/2024 07:00:00", "ok"),
                                                                          (a, "", "ok")]
    set_at, moved_at = recorded(site, "applied")[0], recorded(site, "moved")[0]

    before = ask(site, "--on-duty-at", when(set_at), "10001")
    assert before["on_duty"] and [u["login"] for u in before["users"] if u["on_duty"]] == [a]
    after = ask(site, "--on-duty-at", when(moved_at), "10001")
    assert [u["login"] for u in after["users"] if u["on_duty"]] == [b]
    assert after["users"][[u["login"] for u in after["users"]].index(b)]["set_by"]["decision"] == "moved"
    assert [r["login"] for r in ask(site, "--on-duty-at", when(moved_at))["on_duty"]] == [b]
    assert "moved from here to " + b in site.run("--history", a)


def test_clear_future_is_recorded_and_takes_the_person_off_duty(sim, tmp_path):
    """Rule: --clear-future's changes are in the trail: the duty field it cleared, and the state it forgot."""
    site = Site(sim, tmp_path)
    site.write("a.csv", [on("10001", "20241001070000")])
    site.run()
    conn = sqlite3.connect(str(site.db))
    with conn:  # as an older bobosync, which accepted an event from 2099
        conn.execute("UPDATE duty_state SET event_time = '20990101070000', athoc_value = '01/01/2099 07:00:00'")
    conn.close()
    sim.users[site.logins[0]][FIELD] = "01/01/2099 07:00:00"
    age_trail(site, 60)
    site.run("--clear-future")
    row = [r for r in trail(site) if r["decision"] == "clear-future"][0]
    assert (row["employee_id"], row["login"], row["sent"], row["answer"]) == ("10001", site.logins[0], "", "ok")
    assert ask(site, "--on-duty-at", datetime.now().strftime("%d/%m/%Y %H:%M:%S"), "10001")["on_duty"] is False


# --- the commands' input and output ---

def test_history_since_and_json_shapes(sim, tmp_path):
    """Rule: --history --since keeps the rows from WHEN on; the --json answers have stable keys."""
    site = Site(sim, tmp_path)
    site.write("a.csv", [on("10001", "20241001070000")])
    site.run()
    age_trail(site, 7200)
    site.write("b.csv", [off("10001", "20241001170000")])
    site.run()
    first, second = recorded(site, "applied")
    whole = ask(site, "--history", "010001")  # leading zeros are ignored, as in the files
    assert [r["event"] for r in whole["rows"]] == ["book-off", "book-on"]
    assert set(whole) == {"person", "employee_ids", "logins", "since", "rows"}
    assert set(whole["rows"][0]) == {"id", "at", "employee_id", "login", "event", "clocking_time", "record_created",
                                     "file", "line", "decision", "detail", "sent", "answer", "superseded_by", "text"}
    since = ask(site, "--history", "10001", "--since", when(first, 1))
    assert [r["at"] for r in since["rows"]] == [second] and since["since"] == first[:-2] + f"{int(first[-2:]) + 1:02d}"
    force = ask(site, "--on-duty-at", when(first))
    assert set(force) == {"at", "count", "on_duty"} and set(force["on_duty"][0]) == {
        "employee_id", "login", "value", "clocking_time", "set_at", "event", "file", "line", "decision", "trail_id"}
    one = ask(site, "--on-duty-at", when(second), "10001")
    assert set(one) == {"at", "person", "employee_ids", "logins", "on_duty", "text", "users"}
    assert one["on_duty"] is False and one["users"][0]["set_by"]["event"] == "book-off"


@pytest.mark.parametrize("argv, words", [
    (["--on-duty-at", "31/02/2024 03:00"], "not a date and time"),
    (["--on-duty-at", "yesterday"], "DD/MM/YYYY HH:MM"),
    (["--history", "10001", "--since", "2024-13-01"], "--since '2024-13-01': not a date and time"),
    (["--history", "nobody@demo.example"], "is in no audit trail row"),
    (["--on-duty-at", "01/10/2024 03:00", "77777"], "is in no audit trail row"),
])
def test_bad_input_is_a_clear_message_and_exit_2(sim, tmp_path, argv, words):
    """Rule: a date the trail cannot read, a person it never saw, or options that do not go together: one clear
    line and exit 2, no traceback."""
    site = Site(sim, tmp_path, users=2, odd_users=False)
    site.write("a.csv", [on("10001", "20241001070000")])
    site.run()
    output = site.run(*argv, expect=(2,))
    assert words in output and "Traceback" not in output


def test_the_queries_need_no_athoc_and_say_when_there_is_no_trail(sim, tmp_path):
    """Rule: --history and --on-duty-at are local: no AtHoc credentials, no network; no database yet is exit 1."""
    site = Site(sim, tmp_path, users=2, odd_users=False)
    missing = site.run("--history", "10001", expect=(1,), PASSWORD="", CLIENT_SECRET="")
    assert "does not exist yet" in missing
    site.write("a.csv", [on("10001", "20241001070000")])
    site.run()
    before = len(sim.requests)
    assert site.run("--history", "10001", PASSWORD="", CLIENT_SECRET="", ATHOC_SERVER_URL="")
    assert len(sim.requests) == before
    assert _employee_number("0012345") == normalize_employee_id("0012345") == "12345"
    assert _employee_number("00") == normalize_employee_id("00") and _employee_number("A01") == "A01"


@pytest.mark.parametrize("argv, words", [
    (["--on-duty-at", "01/10/2024", "03:00", "10001"], "at most one EMPLOYEE"),
    (["--since", "01/10/2024"], "--since goes with --history"),
    (["--dry-run", "--json"], "--json goes with --status, --history or --on-duty-at"),
])
def test_options_that_do_not_go_together_exit_2(argv, words, capsys):
    """Rule: the new options are refused, with a line saying why, where they do not belong (exit 2)."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2 and words in capsys.readouterr().err


# --- retention ---

def test_retention_purges_old_trail_and_processing_log_rows_in_bounded_chunks(sim, tmp_path, monkeypatch):
    """Rule: rows older than AUDIT_RETENTION_DAYS, of the trail and of processing_log, are purged a bounded number
    per purge step; younger rows stay, and so does an old row whose duty value is still in force."""
    monkeypatch.setattr(audit_upkeep, "PURGE_CHUNK", 40)
    monkeypatch.setattr(audit_upkeep, "PURGE_CHUNKS", 2)
    site = Site(sim, tmp_path, AUDIT_RETENTION_DAYS="400")
    site.write("a.csv", [on("10001", "20241001070000")] + [off(str(20000 + i), "20241001070000") for i in range(120)])
    site.run()
    age_trail(site, 500 * 86400)
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute("UPDATE processing_log SET processed_at = '2020-01-01 00:00:00'")
        conn.executemany("INSERT INTO processing_log (filename, processed_at, entries_processed) VALUES (?, ?, 0)",
                         ((f"old{i}.csv", "2020-01-01 00:00:00") for i in range(99)))
    conn.close()
    site.write("b.csv", [on("10002", "20241002070000")])
    site.run()

    cutoff = int(stamp(datetime.now() - timedelta(days=400)))
    old = [r for r in trail(site) if r["at"] < cutoff]
    assert len(old) == 121 - 80  # 121 old rows (one still in force), 80 deleted
    assert [r for r in trail(site) if r["employee_id"] == "10002"]
    assert site.rows("SELECT COUNT(*) FROM processing_log WHERE processed_at < '2021-01-01 00:00:00'")[0][0] == 100 - 80
    assert site.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'b.csv'")[0][0] == 1
    for _ in range(2):
        age_trail(site, 0)  # the next purge steps, an hour apart
        site.run()
    old = [r for r in trail(site) if r["at"] < cutoff]
    assert [(r["employee_id"], r["decision"]) for r in old] == [("10001", "applied")]  # still what AtHoc shows
    assert site.rows("SELECT COUNT(*) FROM processing_log WHERE processed_at < '2021-01-01 00:00:00'")[0][0] == 0
    now = ask(site, "--on-duty-at", datetime.now().strftime("%d/%m/%Y %H:%M:%S"))
    assert [r["employee_id"] for r in now["on_duty"]] == ["10001", "10002"]


# --- a run killed between AtHoc's answer and the commit ---

@pytest.mark.parametrize("point", ["after_athoc", "after_commit"])
def test_a_run_killed_around_the_commit_leaves_the_trail_agreeing_with_duty_state(sim, tmp_path, point):
    """Rule: the trail is written in the batch's own transaction: a run killed after AtHoc answered records neither
    the duty state nor the trail (the next run sends and records the events once); killed after the commit, both
    are there. Either way the last value applied per person in the trail is duty_state's."""
    site = Site(sim, tmp_path)
    site.write("a.csv", [on("10001", "20241001070000"), on("10002", "20241001070000")])
    site.run()
    site.write("b.csv", [off("10001", "20241001170000"), on("10003", "20241001080000"), on("10003", "20241001060000")])
    site.run_scheduled(crash=point)
    assert sim.attribute(site.logins[0], FIELD) == ""  # AtHoc answered before the kill
    b_rows = [r for r in trail(site) if r["source_file"] == "b.csv"]
    assert len(b_rows) == (0 if point == "after_athoc" else 2)
    assert_trail_agrees_with_duty_state(site)
    site.run()
    assert_trail_agrees_with_duty_state(site)
    b_rows = [r for r in trail(site) if r["source_file"] == "b.csv"]
    assert sorted((r["employee_id"], r["decision"]) for r in b_rows) == [("10001", "applied"), ("10003", "applied")]
    assert len(ask(site, "--history", "10003")["rows"]) == 2  # applied, and the superseded book-on: once each


def assert_trail_agrees_with_duty_state(site: Site) -> None:
    last: Dict[str, Dict[str, Any]] = {}
    for row in trail(site):
        if row["answer"] == "ok":
            last[row["employee_id"]] = row
    states = {e: (int(t), v, login) for e, t, v, login in site.rows(
        "SELECT employee_id, event_time, athoc_value, username FROM duty_state")}
    assert {e: (r["event_time"], r["sent"], r["login"]) for e, r in last.items()} == states


# --- the documents ---

def test_the_incident_review_in_readme_and_process_md_is_real_output(sim, tmp_path):
    """Rule: the documents show what the commands print: the night of tests/incident_review.py, played now against
    the simulator, gives the very answers README.md (some of them) and process.md (all) show."""
    answers = incident_review.play_the_night(sim, tmp_path)
    assert "10236 (user10236@demo.example) was not on duty" in answers['--on-duty-at "01/10/2024 03:00" 10236']
    for doc, least in (("README.md", 4), ("process.md", len(answers))):
        text = (ROOT / doc).read_text(encoding="utf-8")
        shown = 0
        for question, answer in answers.items():
            head = f"$ python bobosync/bobo_processor.py {question}\n"
            if head in text:
                assert head + answer + "\n" in text, f"{doc} shows another answer to {question}:\n{answer}"
                shown += 1
        assert shown >= least, doc
