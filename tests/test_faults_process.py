"""Fault suite, part A (issue 5): the process killed, the processed folder unusable, the database
locked or damaged, and time (daylight saving, a clock set back).

Every test drives the real entry point (`python bobosync/bobo_processor.py` as a subprocess for a kill,
for a run going on while the test acts, and in the daylight-saving tests, which set TZ;
`bobo_processor.main([])` in-process otherwise) against the AtHoc simulator over HTTP, with real
folders and a real SQLite file; nothing is mocked. Every fault test checks the
issue's three invariants on AtHoc's state, the files on disk and the database:

1. `assert_nothing_lost`: every generated event ends applied, stale, unmapped, or still in its
   file in the CSV or failed folder.
2. `assert_requests_sound`: every SyncByCommonNames request carried only mapped users, only
   LOGIN_ID and the duty field, syncExistingUsersOnly=true, and never an older event over a newer.
3. `Site.run_scheduled` / `Site.run` (tests/testsite.py): no traceback, a documented exit code; each test
   then runs again with the fault removed and checks the final AtHoc state (`assert_final_state`).
"""
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

import bobo_db
from failpoints import FILE_FAULT_VAR
from testsite import AMBIGUOUS, FIELD, ODD_USERS, UNMAPPED, Ev, Site, fault_site



# --- the three invariants ---
# Here events are found by their rows' text (each has a tag of its own, Site.ev) in the site's folders and
# where a test put a folder aside, and ordered by `real` (UTC in the daylight-saving tests); after damage to
# the database, duty state is judged from AtHoc alone. tests/testsite.py has the by-file versions.

def _rows_on_disk(sc: Site) -> Dict[str, Set[str]]:
    """Row text -> the folders ('csv', 'processed', 'failed') holding a file with that row."""
    found: Dict[str, Set[str]] = {}
    folders = [("csv", sc.csv_dir), ("processed", sc.processed_dir), ("failed", sc.failed_dir)]
    for label, folder in folders + [("processed", extra) for extra in sc.extra_folders]:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for line in text.splitlines():
                found.setdefault(line.strip(), set()).add(label)
    return found


def assert_nothing_lost(sc: Site, state_known: bool = True) -> Dict[str, str]:
    """Invariant 1: each generated event is applied, stale, unmapped, or still in its file in the CSV or
    failed folder. `state_known=False` when the database holding duty state was just damaged: then an
    event counts as applied or stale when AtHoc holds that event or a newer one of the employee.
    Returns each event's fate by tag."""
    on_disk = _rows_on_disk(sc)
    state = sc.duty_state() if state_known and sc.db.exists() else {}
    fates: Dict[str, str] = {}
    for ev in sc.events:
        where = on_disk.get(ev.row, set())
        assert where, f"event {ev.row} is in no file of the CSV, processed or failed folder: lost"
        if where & {"csv", "failed"}:
            fates[ev.tag] = "waiting"
            continue
        login = sc.login_of(ev.eid)
        if login is None:
            fates[ev.tag] = "unmapped"
            continue
        held = sc.sim.attribute(login, FIELD)
        if state_known:
            assert ev.eid in state, f"{ev.row}: its file was moved to processed but duty_state has no {ev.eid}"
            event_time, created, value = state[ev.eid]
            applied = next(e for e in sc.events if (e.eid, e.stamp, e.created) == (ev.eid, event_time, created))
            in_flight = [e for e in sc.events if e.eid == ev.eid and e.value == held and e.real >= applied.real
                         and on_disk.get(e.row, set()) & {"csv", "failed"}]  # sent, not yet recorded
            assert held == value or in_flight, \
                f"{ev.eid}: duty_state says {value!r} was applied, AtHoc holds {held!r}"
        else:
            candidates = [e for e in sc.events if e.eid == ev.eid and e.value == held]
            assert candidates, f"{ev.eid}: AtHoc holds {held!r}, from no event"
            applied = max(candidates, key=lambda e: e.real)
        assert ev.real <= applied.real, f"{ev.row} is newer than the event applied ({applied.row}): lost"
        fates[ev.tag] = "applied" if ev == applied else "stale"
    return fates


def assert_requests_sound(sc: Site, cleanup_clears: bool = False) -> None:
    """Invariant 2 over every SyncByCommonNames request the simulator recorded, in arrival order."""
    newest: Dict[str, str] = {}
    for request in sc.sync_requests():
        assert request.method == "POST"
        assert request.query.get("syncexistingusersonly") == "true", request.query
        assert isinstance(request.body, list) and request.body, request.body
        for item in request.body:
            assert set(item) == {"LOGIN_ID", FIELD}, f"unexpected fields sent: {item}"
            login, value = item["LOGIN_ID"], item[FIELD]
            assert login in sc.mapped, f"{login} is outside the mapping"
            candidates = [e.real for e in sc.events if e.eid == sc.mapped[login] and e.value == value
                          and e.real >= newest.get(login, "")]
            if not candidates:
                assert cleanup_clears and value == "", \
                    f"{login}: {value!r} is not from an event newer than the one sent before ({newest.get(login)})"
                continue
            newest[login] = min(candidates)


def expected_values(sc: Site) -> Dict[str, Optional[str]]:
    """Each mapped user's duty value once every generated event is handled: the newest event wins."""
    expected: Dict[str, Optional[str]] = {}
    for login, eid in sc.mapped.items():
        mine = [e for e in sc.events if e.eid == eid]
        expected[login] = max(mine, key=lambda e: e.real).value if mine else None
    return expected


def assert_final_state(sc: Site, state_known: bool = True, **overrides: Optional[str]) -> None:
    """Invariant 3's end: every file handled, AtHoc holds the newest event of every mapped user."""
    assert not [p for p in sc.csv_dir.iterdir() if p.suffix.lower() == ".csv"], sorted(sc.names(sc.csv_dir))
    fates = assert_nothing_lost(sc, state_known)
    assert "waiting" not in fates.values(), fates
    expected = expected_values(sc)
    expected.update({k: v for k, v in overrides.items()})
    for login, value in expected.items():
        assert sc.sim.attribute(login, FIELD) == value, login
    for login in ODD_USERS:
        assert sc.sim.attribute(login, FIELD) is None


def standard_files(sc: Site) -> Tuple[List[Ev], List[Ev]]:
    """a.csv (three book-ons) and b.csv: a newer book-off, an older event (stale), a book-on and
    book-off in one file, a new book-on, an unmapped and an ambiguous employee."""
    first = [sc.ev("BON", "10001", "20241001065500"), sc.ev("BON", "10002", "20241001070000"),
             sc.ev("BON", "10003", "20241001071000")]
    second = [sc.ev("BOF", "10001", "20241001150000"), sc.ev("BON", "10002", "20241001060000"),
              sc.ev("BON", "10004", "20241001080000"), sc.ev("BOF", "10004", "20241001160000"),
              sc.ev("BON", "10005", "20241001090000"), sc.ev("BON", UNMAPPED, "20241001091000"),
              sc.ev("BON", AMBIGUOUS, "20241001092000")]
    return first, second


def check_all(sc: Site, cleanup_clears: bool = False) -> Dict[str, str]:
    assert_requests_sound(sc, cleanup_clears)
    return assert_nothing_lost(sc)


# --- process killed ---

@pytest.mark.parametrize("point", ["after_parse", "after_athoc", "after_commit"])
def test_sigkill_during_a_batch_then_the_next_run_recovers(sim, tmp_path, point):
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    before = len(sc.sync_requests())

    sc.run_scheduled(crash=point)
    crash_requests = sc.sync_requests()[before:]
    fates = check_all(sc)
    assert "b.csv" in sc.names(sc.csv_dir)
    assert all(fates[e.tag] == "waiting" for e in second)
    assert len(crash_requests) == (0 if point == "after_parse" else 1)
    logged = sc.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'b.csv'")[0][0]
    assert logged == (1 if point == "after_commit" else 0)  # the batch's transaction is all or nothing
    if point != "after_parse":
        assert sim.attribute(sc.logins[0], FIELD) == ""  # AtHoc answered before the kill

    output = sc.run()
    recovery = sc.sync_requests()[before + len(crash_requests):]
    if point == "after_parse":
        assert len(recovery) == 1
    elif point == "after_athoc":  # the same values again: harmless
        assert [r.body for r in recovery] == [r.body for r in crash_requests]
    else:  # committed: nothing is sent again, the file is only moved
        assert recovery == []
        assert "already confirmed by AtHoc" in output
    assert sc.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'b.csv'")[0][0] == 1
    assert_requests_sound(sc)
    assert_final_state(sc)
    assert sc.names(sc.processed_dir) == {"a.csv", "b.csv"}
    fates = assert_nothing_lost(sc)
    assert [fates[e.tag] for e in second] == ["applied", "stale", "stale", "applied", "applied", "unmapped",
                                              "unmapped"]


@pytest.mark.parametrize("when", ["first_sync", "resync"])
def test_sigkill_during_the_mapping_replacement_keeps_the_old_mappings(sim, tmp_path, when):
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    if when == "first_sync":
        sc.write("b.csv", second)
        sc.run_scheduled(crash="during_mapping_replace")
        assert len(sc.sync_requests()) == 0
        assert Path(str(sc.db) + "-journal").exists()  # killed inside the transaction
        check_all(sc)
        sc.run()
        assert sc.rows("SELECT COUNT(*) FROM worker_mapping")[0][0] == 6
    else:
        sc.run()
        held = sc.rows("SELECT employee_id, username FROM worker_mapping ORDER BY employee_id")
        assert len(held) == 6
        sc.run_scheduled("--sync-mappings", crash="during_mapping_replace")
        assert Path(str(sc.db) + "-journal").exists()
        sc.write("b.csv", second)
        sc.run()  # the next run rolls the half-done replacement back, then applies b.csv
        assert sc.rows("SELECT employee_id, username FROM worker_mapping ORDER BY employee_id") == held
    assert sc.rows("SELECT status FROM sync_tracking")[0][0] == "success"
    assert_requests_sound(sc)
    assert_final_state(sc)


# --- processed folder unusable when the move happens ---

def _chattr(path: Path, flag: str) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def _make_read_only(folder: Path) -> bool:
    """chmod 0o555; as root (who ignores permissions) the immutable attribute instead."""
    if os.name == "posix" and os.geteuid() == 0:
        return _chattr(folder, "+i")
    folder.chmod(0o555)
    return not os.access(str(folder), os.W_OK)


def _undo_read_only(folder: Path) -> None:
    if os.name == "posix" and os.geteuid() == 0:
        _chattr(folder, "-i")
    folder.chmod(0o755)


def _mount_tiny_tmpfs(folder: Path) -> bool:
    """A 64 KiB tmpfs at `folder` (root only): a processed folder on another, small drive."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def _fill(folder: Path) -> Path:
    """Fill the drive holding `folder` to the last byte."""
    filler = folder / "filler.bin"
    handle = open(filler, "wb", buffering=0)
    try:
        while True:
            handle.write(b"\0" * 1024)
    except OSError:
        pass
    finally:
        handle.close()
    return filler


@pytest.mark.parametrize("kind", ["read_only", "full", "full_by_test_hook"])
def test_processed_folder_unusable_at_the_move_sends_once_and_moves_later(sim, tmp_path, kind):
    """Rule: a move that fails (a folder that may not be written, a full drive: for real where the test may
    mount one, else by the test hook BOBOSYNC_TEST_FILE_FAULT, as the soak test injects it) sends once, leaves
    no partial copy and exits 1 until the file is moved."""
    processed = tmp_path / "processed_mnt"
    hook = {FILE_FAULT_VAR: "ENOSPC:done"} if kind == "full_by_test_hook" else {}
    if kind == "full":
        if not _mount_tiny_tmpfs(processed):
            pytest.skip("a full drive needs a small filesystem to mount, which needs root")
    try:
        sc = fault_site(sim, tmp_path, PROCESSED_DIRECTORY=str(processed / "done"))
        first, second = standard_files(sc)
        sc.write("a.csv", first)
        sc.run()
        b_bytes = sc.write("b.csv", second).read_bytes()
        if kind == "read_only":
            if not _make_read_only(sc.processed_dir):
                pytest.skip("cannot make a folder read-only here")
            filler = None
        elif kind == "full":
            filler = _fill(processed)
        else:
            filler = None
        before = len(sc.sync_requests())
        try:
            for _ in range(3):  # exit 1: the move is left for the next run
                output = sc.run(expect=(1,), **hook)
                assert "Cannot move b.csv" in output and "Nothing to do" not in output
                assert "b.csv" in sc.names(sc.csv_dir)
                check_all(sc)
            assert len(sc.sync_requests()) - before == 1  # AtHoc updated once, no re-sending loop
            assert sc.log().count("ERROR   bobosync: Cannot move b.csv") == 3
        finally:
            if kind == "read_only":
                _undo_read_only(sc.processed_dir)
            elif filler is not None:
                filler.unlink()
        sc.run()
        assert len(sc.sync_requests()) - before == 1
        assert sc.names(sc.processed_dir) == {"a.csv", "b.csv"}, "a partial copy was left behind"
        assert (sc.processed_dir / "b.csv").read_bytes() == b_bytes
        assert_requests_sound(sc)
        assert_final_state(sc)
    finally:
        if kind == "full":
            subprocess.run(["umount", str(processed)], capture_output=True)


def test_processed_folder_replaced_by_a_file_during_the_run(sim, tmp_path):
    """Works as root too: the folder is swapped for a file while AtHoc is answering."""
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    before = len(sc.sync_requests())
    sim.fail("syncbycommonnames", delay=1.0)  # a slow but good answer
    proc = sc.start()
    deadline = time.monotonic() + 20
    while len(sc.sync_requests()) == before:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    aside = tmp_path / "processed_aside"
    sc.processed_dir.rename(aside)
    sc.extra_folders.append(aside)
    sc.processed_dir.write_text("not a folder")
    sc.finish(proc, (1,))
    assert "Cannot move b.csv" in sc.log()
    assert len(sc.sync_requests()) - before == 1
    check_all(sc)
    for _ in range(2):  # while the folder is a file: a clear error, nothing sent, the file kept
        output = sc.run(expect=(2,))
        assert "PROCESSED_DIRECTORY" in output
        assert len(sc.sync_requests()) - before == 1
        check_all(sc)
    sc.processed_dir.unlink()
    aside.rename(sc.processed_dir)
    sc.run()
    assert len(sc.sync_requests()) - before == 1
    assert sc.names(sc.processed_dir) == {"a.csv", "b.csv"}
    assert_requests_sound(sc)
    assert_final_state(sc)


# --- database locked ---

def _lock(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db), timeout=5, check_same_thread=False, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_database_locked_for_a_second_the_run_waits_and_succeeds(sim, tmp_path):
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    conn = _lock(sc.db)
    releaser = threading.Timer(1.0, conn.close)
    started = time.monotonic()
    releaser.start()
    try:
        sc.run()
    finally:
        releaser.join()
    assert time.monotonic() - started >= 0.9
    check_all(sc)
    assert_final_state(sc)


def test_database_locked_throughout_exits_1_keeps_the_files_then_recovers(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(bobo_db, "BUSY_TIMEOUT_SECONDS", 1)
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    before = len(sc.sync_requests())
    conn = _lock(sc.db)
    try:
        output = sc.run(expect=(1,))
    finally:
        conn.close()
    assert "is locked" in output and str(sc.db) in output
    assert "ERROR" in sc.log()
    assert len(sc.sync_requests()) == before
    assert "b.csv" in sc.names(sc.csv_dir)
    check_all(sc)
    sc.run()
    assert_requests_sound(sc)
    assert_final_state(sc)


def test_database_locked_at_the_commit_after_athoc_answered(sim, tmp_path, monkeypatch):
    """A viewer opens the database while AtHoc is answering: the commit waits, gives up, exit 1;
    the next run sends the same values again (harmless) and records them."""
    monkeypatch.setattr(bobo_db, "BUSY_TIMEOUT_SECONDS", 1)
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    before = len(sc.sync_requests())
    sim.fail("syncbycommonnames", delay=0.5)
    holder: Dict[str, sqlite3.Connection] = {}

    def lock_when_athoc_is_called() -> None:
        deadline = time.monotonic() + 20
        while len(sc.sync_requests()) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        holder["conn"] = _lock(sc.db)

    locker = threading.Thread(target=lock_when_athoc_is_called)
    locker.start()
    try:
        output = sc.run(expect=(1,))
    finally:
        locker.join()
        holder["conn"].close()
    assert "is locked" in output
    assert len(sc.sync_requests()) - before == 1
    assert sim.attribute(sc.logins[0], FIELD) == ""
    assert "b.csv" in sc.names(sc.csv_dir)
    check_all(sc)
    sc.run()
    assert len(sc.sync_requests()) - before == 2
    assert sc.sync_requests()[-1].body == sc.sync_requests()[-2].body
    assert_requests_sound(sc)
    assert_final_state(sc)


# --- database damaged ---

def _garbage(db: Path) -> bytes:
    data = bytes((i * 7919 + 13) % 251 for i in range(20000))
    db.write_bytes(data)
    return data


def _truncate(db: Path) -> bytes:
    data = db.read_bytes()
    data = data[:len(data) // 2 + 100]  # cut mid-page
    db.write_bytes(data)
    return data


def _zero_second_half(db: Path) -> bytes:
    data = db.read_bytes()
    half = len(data) // 2
    data = data[:half] + b"\0" * (len(data) - half)  # same length, pages wiped (a torn write)
    db.write_bytes(data)
    return data


@pytest.mark.parametrize("damage", [_garbage, _truncate, _zero_second_half], ids=["garbage", "truncated", "zeroed"])
def test_damaged_database_is_set_aside_rebuilt_and_the_files_applied(sim, tmp_path, damage):
    sc = fault_site(sim, tmp_path, users=400)  # a few hundred mappings: a database of many pages
    first = [sc.ev("BON", "10001", "20241001065500"), sc.ev("BON", "10399", "20241001070000"),
             sc.ev("BON", "10200", "20241001071000")]
    sc.write("a.csv", first)
    sc.run()
    damaged = damage(sc.db)
    second = [sc.ev("BOF", "10001", "20241001150000"), sc.ev("BOF", "10399", "20241001151000"),
              sc.ev("BON", "10400", "20241001152000"), sc.ev("BON", UNMAPPED, "20241001153000")]
    sc.write("b.csv", second)
    output = sc.run(expect=(0, 1))
    aside = sorted(tmp_path.glob("bobo_mapping.db.damaged-*"))
    assert [p.name for p in aside if not p.name.endswith(("-journal", "-wal", "-shm"))], "not set aside"
    assert aside[0].read_bytes() == damaged  # the damaged file is kept as it was
    assert "damaged" in output and "WARNING" in sc.log()
    assert_requests_sound(sc)
    assert_nothing_lost(sc, state_known=False)
    if "b.csv" in sc.names(sc.csv_dir):  # detected mid-run: a clear error, the next run recovers
        assert "ERROR" in output
        sc.run()
    assert sc.rows("SELECT COUNT(*) FROM worker_mapping")[0][0] == 400
    assert sc.rows("SELECT status FROM sync_tracking")[0][0] == "success"
    assert_requests_sound(sc)
    assert_final_state(sc, state_known=False)  # duty state went with the damaged file (documented)
    assert {e for e, in sc.rows("SELECT employee_id FROM duty_state")} == {"10001", "10399", "10400"}


def test_database_refusing_a_write_is_kept_and_reported_without_a_traceback(sim, tmp_path):
    """A healthy database that refuses a write (here a trigger someone added; SQLite says 'constraint'):
    not damage, so the file is kept as it is; the operator gets one ERROR line, exit 1, the files wait."""
    sc = fault_site(sim, tmp_path)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    conn = sqlite3.connect(str(sc.db))
    conn.execute("CREATE TRIGGER site_rule BEFORE INSERT ON processing_log "
                 "BEGIN SELECT RAISE(ABORT, 'processing_log is closed for maintenance'); END")
    conn.commit()
    conn.close()
    sc.write("b.csv", second)
    proc = sc.start()
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in output, output
    assert "ERROR" in output and "processing_log is closed for maintenance" in output
    assert str(sc.db) in output and "Traceback" not in sc.log()
    assert not list(tmp_path.glob("bobo_mapping.db.damaged-*"))  # not damage: nothing set aside
    assert "b.csv" in sc.names(sc.csv_dir)  # the batch's writes rolled back: the file waits
    check_all(sc)
    conn = sqlite3.connect(str(sc.db))
    conn.execute("DROP TRIGGER site_rule")
    conn.commit()
    conn.close()
    sc.run()
    assert_requests_sound(sc)
    assert_final_state(sc)


# --- time ---

LONDON = {"TZ": "Europe/London"}


@pytest.mark.skipif(os.name == "nt", reason="TZ=Europe/London (POSIX C library); "
                                           "test_windows_dst.py injects the zone instead")
def test_dst_repeated_hour_across_runs_the_later_arrival_wins(sim, tmp_path):
    """27 Oct 2024, London: 01:00-01:59 happens twice. `real` is UTC."""
    sc = fault_site(sim, tmp_path, **LONDON)
    dst_across_runs(sc, sc.run_scheduled)


def dst_across_runs(sc, run) -> None:
    """A BON at the first 01:30 (BST), then a BOF at the second 01:10 (GMT) in the next `run`: the later arrival
    wins inside the repeated hour, and outside it an older event arriving later is stale."""
    sim = sc.sim
    sc.write("a.csv", [
        sc.ev("BON", "10001", "20241027013000", "20241027013010", real="20241027003000"),  # first 01:30 (BST)
        sc.ev("BON", "10002", "20241027030000", real="20241027030000"),
        sc.ev("BON", "10003", "20241027013000", real="20241027003000"),
    ])
    run()
    assert sim.attribute(sc.logins[0], FIELD) == "27/10/2024 01:30:00"
    sc.write("b.csv", [
        sc.ev("BOF", "10001", "20241027011000", "20241027011020", real="20241027011000"),  # second 01:10 (GMT)
        sc.ev("BOF", "10002", "20241027020000", real="20241027020000"),  # outside the hour: older, stale
        sc.ev("BOF", "10003", "20241027005000", real="20241026235000"),  # 00:50 BST: older, stale
    ])
    run()
    fates = check_all(sc)
    assert [fates[e.tag] for e in sc.events_in("b.csv")] == ["applied", "stale", "stale"]
    assert_final_state(sc)
    assert sim.attribute(sc.logins[0], FIELD) == ""  # booked off: nobody pages them
    assert sim.attribute(sc.logins[1], FIELD) == "27/10/2024 03:00:00"


@pytest.mark.skipif(os.name == "nt", reason="TZ=Europe/London (POSIX C library); "
                                           "test_windows_dst.py injects the zone instead")
def test_dst_repeated_hour_in_one_batch_the_later_file_and_row_win(sim, tmp_path):
    sc = fault_site(sim, tmp_path, **LONDON)
    sc.write("a.csv", [
        sc.ev("BON", "10001", "20241027013000", real="20241027003000"),
        sc.ev("BON", "10003", "20241027004000", real="20241026234000"),
    ])
    sc.write("b.csv", [
        sc.ev("BOF", "10001", "20241027011000", real="20241027011000"),
        sc.ev("BOF", "10003", "20241027002000", real="20241026232000"),  # older, outside the hour: loses
    ])
    sc.write("c.csv", [
        sc.ev("BON", "10002", "20241027014000", real="20241027004000"),
        sc.ev("BOF", "10002", "20241027010500", real="20241027010500"),
    ])
    sc.run_scheduled()
    check_all(sc)
    assert_final_state(sc)
    assert sim.attribute(sc.logins[0], FIELD) == ""
    assert sim.attribute(sc.logins[1], FIELD) == ""
    assert sim.attribute(sc.logins[2], FIELD) == "27/10/2024 00:40:00"


def test_clock_set_back_cleanup_and_mapping_sync_still_run(sim, tmp_path):
    sc = fault_site(sim, tmp_path, AUTO_CLEANUP_HOURS="24", CLEANUP_INTERVAL_MINUTES="60")
    now = datetime.now().replace(microsecond=0)
    stamp = lambda t: t.strftime("%Y%m%d%H%M%S")  # noqa: E731
    sc.write("a.csv", [sc.ev("BON", "10001", stamp(now - timedelta(hours=1)))])
    sc.run()
    forgotten = sc.logins[1]  # on duty for two days: a missed book-off, set before bobosync
    sim.users[forgotten][FIELD] = (now - timedelta(hours=48)).strftime("%d/%m/%Y %H:%M:%S")
    future = now + timedelta(days=365)
    conn = sqlite3.connect(str(sc.db))
    with conn:
        for key in ("last_cleanup", "last_purge"):
            conn.execute("INSERT OR REPLACE INTO run_state (key, value) VALUES (?, ?)",
                         (key, future.isoformat(timespec="seconds")))
        conn.execute("UPDATE sync_tracking SET last_sync_date = ?, last_sync_time = ?",
                     (future.strftime("%Y-%m-%d"), future.strftime("%Y-%m-%d %H:%M:%S")))
    conn.close()
    newcomer = sc.add_mapped_user("10777")  # joined AtHoc since the last mapping sync
    sc.write("b.csv", [sc.ev("BON", "10777", stamp(now - timedelta(minutes=30)))])
    searches = len(sim.requests_to("search/basic"))

    output = sc.run()
    assert "set back" in output
    assert sim.attribute(forgotten, FIELD) == ""  # the cleanup ran
    assert sim.attribute(newcomer, FIELD) == sc.events[-1].value  # the mapping sync ran
    last_sync = sc.rows("SELECT last_sync_time FROM sync_tracking")[0][0]
    assert datetime.strptime(last_sync, "%Y-%m-%d %H:%M:%S") <= datetime.now()
    for key in ("last_cleanup", "last_purge"):
        value = sc.rows("SELECT value FROM run_state WHERE key = ?", (key,))[0][0]
        assert datetime.fromisoformat(value) <= datetime.now(), key
    check_all(sc, cleanup_clears=True)
    assert len(sim.requests_to("search/basic")) > searches

    searches = len(sim.requests_to("search/basic"))
    sent = len(sc.sync_requests())
    output = sc.run()  # neither stalled nor looping: nothing is due now
    assert "Nothing to do" in output and "set back" not in output
    assert len(sim.requests_to("search/basic")) == searches and len(sc.sync_requests()) == sent
    assert_requests_sound(sc, cleanup_clears=True)
    assert_final_state(sc, **{forgotten: ""})
