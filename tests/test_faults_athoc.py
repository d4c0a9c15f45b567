"""Fault suite, part B (issue 5): AtHoc misbehaving.

Every status code of the contract on the SyncByCommonNames call and on the mapping-sync search,
bodies that are not JSON or are cut short, a reply slower than the timeout, a connection reset, a
result array shorter than the request, an unknown `:SyncStatus`, and user listings whose pages
overlap, repeat or come back short.

Every test drives the real entry point (`bobo_processor.main([])` in-process, or
`python bobosync/bobo_processor.py` as a subprocess where runs go in parallel) against the AtHoc
simulator over HTTP, with real folders and a real SQLite file; nothing is mocked. Every fault test
checks the issue's three invariants on AtHoc's state, the files on disk and the database:

1. `assert_nothing_lost`: every generated event ends applied, stale, unmapped, or still in its file
   in the CSV or failed folder (files are found by their bytes, wherever they went).
2. `assert_requests_sound`: every SyncByCommonNames request the simulator recorded carried only
   mapped users, only LOGIN_ID and the duty field, syncExistingUsersOnly=true, and never an older
   event over a newer one.
3. `Site.run` / `Site.finish`: no traceback in the output or the log, a documented exit
   code; each test then runs again with the fault removed and checks the final AtHoc state
   (`assert_final_state`).

The site, the events and the invariants are in tests/testsite.py, shared with the other suites.
"""
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from athoc_client import RETRY_AFTER_CAP_SECONDS
from athoc_simulator import AtHocSimulator
from conftest import REAL_BACKOFF
from testsite import (AMBIGUOUS, FIELD, UNMAPPED, Ev, Site, assert_final_state, assert_nothing_lost, check_all,
                      fault_site, off, on)

SYNC = r"/syncbycommonnames"
SEARCH = r"/search/basic"


def standard_files(sc: Site) -> Tuple[List[Ev], List[Ev]]:
    """a.csv (three book-ons) and b.csv: a newer book-off, an older event (stale), a book-on and book-off
    in one file, a new book-on, an unmapped and an ambiguous employee."""
    first = [on("10001", "20240617065500"), on("10002", "20240617070000"), on("10003", "20240617071000")]
    second = [off("10001", "20240617150000"), on("10002", "20240617060000"), on("10004", "20240617080000"),
              off("10004", "20240617160000"), on("10005", "20240617090000"), on(UNMAPPED, "20240617091000"),
              on(AMBIGUOUS, "20240617092000")]
    return first, second


def b_fates_when_done(sc: Site) -> List[str]:
    fates = assert_nothing_lost(sc)
    return [fates[("b.csv", i)] for i in range(7)]


B_DONE = ["applied", "stale", "stale", "applied", "applied", "unmapped", "unmapped"]


def primed(sim: AtHocSimulator, tmp_path: Path, **env: str) -> Site:
    """A scenario after one clean run (mappings synced, a.csv applied) with b.csv waiting."""
    sc = fault_site(sim, tmp_path, **env)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    return sc


def mark_sync_due(sc: Site) -> None:
    """Make the next run's mapping sync due, as if the last good one were long ago."""
    conn = sqlite3.connect(str(sc.db))
    with conn:
        conn.execute("UPDATE sync_tracking SET last_sync_time = '2000-01-01 00:00:00', last_sync_date = '2000-01-01'")
    conn.close()


# --- faults on the SyncByCommonNames call, one run each ---

@dataclass
class Case:
    """A fault injected into one run. `done`: the run still finishes the batch (the client recovered)."""

    name: str
    status: Optional[int] = None
    times: Optional[int] = 1
    body: Optional[bytes] = None
    retry_after: Optional[float] = None
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    done: bool = False
    message: str = ""
    env: Dict[str, str] = field(default_factory=dict)

    def inject(self, sim: AtHocSimulator, path: str) -> None:
        sim.fail(path, self.status, times=self.times, body=self.body, retry_after=self.retry_after,
                 delay=self.delay, drop=self.drop, truncate=self.truncate)


HTML = b"<html><body><h1>502 Bad Gateway</h1>The proxy could not reach the server</body></html>"
CALL_CASES = [
    Case("400", 400, message="HTTP 400"),
    Case("401-once", 401, done=True, message="fetching a new one and repeating the call once"),
    Case("401-always", 401, times=None, message="AtHoc refused a fresh token"),
    Case("403", 403, message="lacks the permission"),
    Case("404", 404, message="check ATHOC_SERVER_URL"),
    Case("429-once", 429, retry_after=1, done=True, env=REAL_BACKOFF),  # the real wait, checked below
    Case("500-once", 500, done=True),
    Case("502-once-html", 502, body=HTML, done=True),
    Case("503-once", 503, done=True),
    Case("504-once", 504, done=True),
    Case("200-not-json", 200, body=HTML, message="is not JSON"),
    Case("200-json-not-a-list", 200, body=b'{"Message": "ok"}', message="not a list"),
    Case("200-truncated-json", 200, body=b'[{"LOGIN_ID": "user10001@demo.example", ":SyncStatus": "OK"}]',
         truncate=True, message="cannot reach AtHoc"),
    Case("real-reply-truncated", None, truncate=True, message="cannot reach AtHoc"),
    Case("connection-reset", None, drop=True, message="cannot reach AtHoc"),
    Case("slower-than-timeout", None, delay=1.6, message="no answer within 1 s", env={"HTTP_TIMEOUT_SECONDS": "1"}),
]


def _tokens_requested(sim: AtHocSimulator) -> int:
    return len(sim.requests_to("/connect/token"))


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.name)
def test_fault_on_the_update_call(sim, tmp_path, case):
    sc = primed(sim, tmp_path, **case.env)
    sent, tokens = len(sc.sync_requests()), _tokens_requested(sim)
    case.inject(sim, SYNC)
    started = time.monotonic()
    output = sc.run(expect=(0,) if case.done else (1,))
    elapsed = time.monotonic() - started
    assert case.message in output
    check_all(sc)
    calls = len(sc.sync_requests()) - sent
    if case.done:
        assert sc.csv_left() == set()
        assert b_fates_when_done(sc) == B_DONE
        assert calls == 2  # the failed call and its one repeat
    else:
        assert sc.csv_left() == {"b.csv"}  # the whole batch waits
        assert sc.rows("SELECT COUNT(*) FROM file_attempts")[0][0] == 0  # an outage is not the file's fault
        assert sc.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'b.csv'")[0][0] == 0
        assert calls <= 2  # no retry of what the contract says is not retried
    if case.status == 401:
        assert _tokens_requested(sim) - tokens == 2  # the run's token and one renewal, no more
    if case.retry_after:
        assert elapsed >= case.retry_after * 0.9  # Retry-After was honoured
    if case.delay:  # let the slow reply land: AtHoc applied it after the client gave up
        while sim.attribute(sc.logins[0], FIELD) != "" and time.monotonic() < started + case.delay + 5:
            time.sleep(0.02)
        assert sim.attribute(sc.logins[0], FIELD) == ""
        check_all(sc)

    sim.clear_faults()
    sc.run()
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)
    assert sc.names(sc.processed_dir) == {"a.csv", "b.csv"}
    last = sc.sync_requests()[-1].body
    assert {item["LOGIN_ID"] for item in last} <= {sc.logins[i] for i in (0, 3, 4)}


# --- per-record outcomes: a short result array, unknown or failed :SyncStatus ---

@pytest.mark.parametrize("kind", ["short-results", "unknown-status", "partial", "error"])
def test_a_record_without_a_good_result_is_retried_alone(sim, tmp_path, kind):
    sc = primed(sim, tmp_path, MAX_RETRY_ATTEMPTS="3")
    sent = len(sc.sync_requests())
    victim = sc.logins[4]  # 10005: the last record of b.csv's request
    if kind == "short-results":
        sim.short_results = 1
    else:
        sim.reject[victim] = {"unknown-status": ("Queued", "will be processed later"),
                              "partial": ("Partial", "field On-Duty-DTG not updated"),
                              "error": ("Error", "Invalid value for On-Duty-DTG")}[kind]
    output = sc.run(expect=(1,))
    request = sc.sync_requests()[sent]
    assert request.body[-1]["LOGIN_ID"] == victim
    assert "attempt 1 of 3" in output
    detail = {"short-results": "AtHoc returned no result", "unknown-status": "unknown :SyncStatus 'Queued'",
              "partial": "field On-Duty-DTG not updated", "error": "Invalid value for On-Duty-DTG"}[kind]
    assert f"b.csv: AtHoc did not apply 1 record(s): 10005 ({victim}): " in output and detail in output
    check_all(sc)
    assert sc.csv_left() == {"b.csv"}
    assert sc.rows("SELECT attempts FROM file_attempts WHERE filename = 'b.csv'") == [(1,)]
    assert sim.attribute(sc.logins[0], FIELD) == ""  # the other records were applied and recorded
    assert set(sc.duty_state()) == {"10001", "10002", "10003", "10004"}

    sim.short_results = 0
    sim.reject.clear()
    sc.run()
    retry = sc.sync_requests()[sent + 1:]
    assert [r.body for r in retry] == [[{"LOGIN_ID": victim, FIELD: "17/06/2024 09:00:00"}]]  # only what failed
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)
    assert sc.rows("SELECT COUNT(*) FROM file_attempts")[0][0] == 0


def test_a_record_failing_every_time_ends_in_the_failed_folder_and_can_be_replayed(sim, tmp_path):
    sc = primed(sim, tmp_path, MAX_RETRY_ATTEMPTS="2")
    victim = sc.logins[4]
    sim.reject[victim] = ("Error", "Invalid value for On-Duty-DTG")
    sc.run(expect=(1,))
    output = sc.run(expect=(3,))  # attempt 2 of 2: the file is moved aside, a person must act
    assert "moved to FAILED_FILES_DIRECTORY" in output
    assert sc.names(sc.failed_dir) == {"b.csv"}
    fates = check_all(sc)
    assert all(fates[("b.csv", i)] == "waiting" for i in range(7))
    sends = len(sc.sync_requests())
    sc.run()
    assert len(sc.sync_requests()) == sends  # no loop

    sim.reject.clear()  # fixed in AtHoc; the operator moves the file back, as process.md says
    (sc.failed_dir / "b.csv").rename(sc.csv_dir / "b.csv")
    sc.run()
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)


def test_a_user_gone_from_athoc_has_its_mapping_dropped_and_its_event_kept_pending(sim, tmp_path):
    sc = primed(sim, tmp_path)
    victim = sc.logins[4]
    with sim.lock:
        del sim.users[victim]
    sc.gone.add(victim)
    output = sc.run()
    assert "is no longer in AtHoc: its mapping is dropped and its event kept as pending" in output
    assert "10005" not in dict(sc.mappings())
    assert ("10005",) in sqlite3.connect(str(sc.db)).execute("SELECT employee_id FROM pending_events").fetchall()
    check_all(sc)
    fates = b_fates_when_done(sc)
    assert fates == B_DONE[:4] + ["gone"] + B_DONE[5:]
    assert_final_state(sc)


# --- faults on the mapping sync's user search ---

SEARCH_CASES = [replace(c, env={}) if c.env == REAL_BACKOFF else c  # the real wait is the update call's to check
                for c in CALL_CASES if c.name not in ("200-json-not-a-list",)] + [
    Case("200-no-users-list", 200, body=b'{"Message": "ok"}', message="has no Users list"),
]


@pytest.mark.parametrize("when", ["first-sync", "resync"])
@pytest.mark.parametrize("case", SEARCH_CASES, ids=lambda c: c.name)
def test_fault_on_the_mapping_search(sim, tmp_path, case, when):
    sc = fault_site(sim, tmp_path, **case.env)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    if when == "resync":
        sc.run()
        mark_sync_due(sc)
    held = sc.mappings()
    newcomer = sc.add_mapped_user("10007")  # only a good sync maps this user
    sc.write("b.csv", second + [on("10007", "20240617100000")])
    searches = len(sim.requests_to("search/basic"))
    case.inject(sim, SEARCH)
    started = time.monotonic()
    output = sc.run(expect=(0,) if case.done else (1,))
    assert case.message in output
    check_all(sc)
    if case.done:
        assert sc.csv_left() == set()
        assert sim.attribute(newcomer, FIELD) == "17/06/2024 10:00:00"
    else:
        assert "User mapping sync failed" in output and "the next attempt is at" in output  # it backs off
        assert sc.mappings() == held  # kept as they were (none on a first sync)
        assert sc.rows("SELECT status FROM sync_tracking") == [("error",)]
        # with mappings held, duty updates came first (the newcomer's event is pending); with none, all wait
        assert sc.csv_left() == ({"a.csv", "b.csv"} if when == "first-sync" else set())
        assert len(sim.requests_to("search/basic")) - searches <= 2
    if case.delay:  # the slow reply has gone out (to nobody) before the next run
        time.sleep(max(0.0, started + case.delay + 0.2 - time.monotonic()))

    sim.clear_faults()
    sc.expire_backoffs()  # time passes: the sync's back-off is over
    sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert ("10007", newcomer) in sc.mappings()


# --- listings that do not add up: the mappings held are kept ---

def _unstable_order(users: list, page: int, limit: int) -> list:
    """Page 1 on repeats page 0's last 50 users in place of 50 it never serves (an unstable sort order)."""
    if page == 0:
        return users[:limit]
    return users[page * limit - 50:page * limit] + users[page * limit + 50:(page + 1) * limit]


def _repeat_first(users: list, page: int, limit: int) -> list:
    return users[:limit]  # Offset ignored, or read as a record offset rounded down


def _short_first(users: list, page: int, limit: int) -> list:
    return users[:limit - 10] if page == 0 else users[page * limit:(page + 1) * limit]


LISTINGS = {
    "total-one-more": (1, None, "TotalUsers="),
    "total-one-less": (-1, None, "TotalUsers="),
    "pages-overlap": (0, _unstable_order, "TotalUsers="),
    "page-0-repeated": (0, _repeat_first, "repeated users already listed"),
    "first-page-short": (0, _short_first, "TotalUsers="),
}


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_a_listing_that_does_not_add_up_keeps_the_mappings(sim, tmp_path, kind):
    bias, pages, message = LISTINGS[kind]
    sc = fault_site(sim, tmp_path, users=1100)  # two pages of 1000
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    held = sc.mappings()
    assert len(held) == 1100
    mark_sync_due(sc)
    newcomer = sc.add_mapped_user("30001")  # only a complete listing maps this user
    sc.write("b.csv", second)
    sim.total_users_bias, sim.page_rows = bias, pages
    for _ in range(2):  # the listing stays wrong: AtHoc answers, it just does not add up
        output = sc.run(expect=(1,))
        assert message in output and "listing is incomplete" in output
        assert "The 1100 mappings held are kept; the next attempt is at" in output
        sc.expire_backoffs()  # time passes: the sync is tried again
        assert sc.mappings() == held
        assert sc.rows("SELECT status FROM sync_tracking") == [("error",)]
        check_all(sc)
        # duty updates go on with the mappings held, as between two syncs
        assert b_fates_when_done(sc) == B_DONE

    sim.total_users_bias, sim.page_rows = 0, None
    sc.write("c.csv", [on("30001", "20240617100000"), off("10002", "20240617170000")])
    sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert len(sc.mappings()) == 1101 and ("30001", newcomer) in sc.mappings()
    assert sim.attribute(newcomer, FIELD) == "17/06/2024 10:00:00"


# --- persistent outages: bounded time, in parallel subprocesses (each with its own simulator) ---

PERSISTENT = [
    ("sync", Case("500-always", 500, times=None, message="HTTP 500")),
    ("sync", Case("502-always", 502, times=None, body=HTML, message="HTTP 502")),
    ("sync", Case("503-always", 503, times=None, message="HTTP 503")),
    ("sync", Case("504-always", 504, times=None, message="HTTP 504")),
    ("sync", Case("429-always", 429, times=None, retry_after=1, message="rate limiting")),
    ("sync", Case("429-retry-after-3600-once", 429, retry_after=3600, done=True, env=REAL_BACKOFF)),
    ("sync", Case("timeout-always", None, times=None, delay=3, message="no answer within 2 s")),
    ("sync", Case("reset-always", None, times=None, drop=True, message="cannot reach AtHoc")),
    ("search", Case("500-always", 500, times=None, message="HTTP 500")),
    ("search", Case("502-always", 502, times=None, body=HTML, message="HTTP 502")),
    ("search", Case("503-always", 503, times=None, message="HTTP 503")),
    ("search", Case("504-always", 504, times=None, message="HTTP 504")),
    ("search", Case("429-always", 429, times=None, retry_after=1, message="rate limiting")),
    ("search", Case("timeout-always", None, times=None, delay=3, message="no answer within 2 s")),
]


def test_persistent_outages_end_the_run_in_bounded_time_and_lose_nothing(tmp_path):
    sims, scenarios, procs, started = [], [], [], []
    try:
        for where, case in PERSISTENT:
            sim = AtHocSimulator(org="DEMO").start()
            sims.append(sim)
            sc = fault_site(sim, tmp_path / f"{where}-{case.name}", HTTP_TIMEOUT_SECONDS="2", BATCH_SIZE="1",
                          **case.env)
            first, second = standard_files(sc)
            sc.write("a.csv", first)
            if where == "sync":
                sc.run()
                sc.write("b.csv", second[:4])
                sc.write("c.csv", second[4:])  # a second batch: no AtHoc call is made for it
            scenarios.append(sc)
            case.inject(sim, SYNC if where == "sync" else SEARCH)
        for sc in scenarios:
            started.append(time.monotonic())
            procs.append(sc.start())

        def finish(sc: Site, proc, case: Case, t0: float) -> Tuple[str, float, float]:
            output = sc.finish(proc, expect=(0,) if case.done else (1,))
            return output, time.monotonic() - t0, time.monotonic()

        with ThreadPoolExecutor(len(procs)) as pool:  # each run's own time, not the wait for the runs before it
            futures = [pool.submit(finish, sc, proc, case, t0)
                       for sc, proc, (_, case), t0 in zip(scenarios, procs, PERSISTENT, started)]
            outputs, elapsed, ended = (list(column) for column in zip(*(f.result() for f in futures)))
        # a slow reply asked for before its run ended has gone out by then + its delay
        replies_out = max(end + case.delay for end, (_, case) in zip(ended, PERSISTENT))
        for sc, output, took, (where, case) in zip(scenarios, outputs, elapsed, PERSISTENT):
            label = f"{where} {case.name}"
            assert took < 40, f"{label}: the run took {took:.1f} s"
            if case.retry_after and case.env == REAL_BACKOFF:  # Retry-After honoured, up to its cap
                assert took >= min(case.retry_after, RETRY_AFTER_CAP_SECONDS) * 0.9, f"{label}: {took:.1f} s"
            assert case.message in output, label
            check_all(sc)
            path = "SyncByCommonNames" if where == "sync" else "search/basic"
            calls = len(sc.sim.requests_to(path)) - (1 if where == "sync" else 0)
            assert calls <= 4, f"{label}: {calls} calls (one and at most three retries)"
            if case.done:
                assert not sc.csv_left(), label
            elif where == "sync":
                assert sc.csv_left() == {"b.csv", "c.csv"}, label
                assert "1 file(s) left for the next run (AtHoc is unavailable)" in output, label
            else:
                assert sc.csv_left() == {"a.csv"} and not sc.sync_requests(), label
        time.sleep(max(0.0, replies_out - time.monotonic()))
        for sc in scenarios:
            sc.sim.clear_faults()
            sc.expire_backoffs()  # time passes: a failed first sync is tried again
            sc.run()
            check_all(sc)
            assert_final_state(sc)
    finally:
        for sim in sims:
            sim.stop()
