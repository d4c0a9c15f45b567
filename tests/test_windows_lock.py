"""The run lock between real processes (issue 19, finding 3). Under Wine, msvcrt.locking on a byte another
process holds raised OSError with errno 0, so the second run exited 2 instead of 0; the lock now decides
from LockFileEx's GetLastError(). An error that is not contention stays an error, and a holder that
started longer ago than any run lasts is reported. These run on Linux too (flock)."""
import logging
import os
import time

import pytest

from conftest import env_for
from other_process import run_bobosync, run_lock_held, under_wine
from run_lock import RunLock

ROW = "BON,10001,P0000001,20240617,065500,20240617070000,1,51.507200,-0.127600,8.0\r\n"


def _site(sim, tmp_path):
    sim.seed_users(2)
    env = env_for(sim, tmp_path)
    csv_dir = tmp_path / "crown_files"
    csv_dir.mkdir()
    (csv_dir / "rota.csv").write_bytes(ROW.encode())
    return env, csv_dir, env["DB_PATH"] + ".lock"


def test_a_run_while_another_process_holds_the_lock_exits_0_and_sends_nothing(sim, tmp_path):
    env, csv_dir, lock = _site(sim, tmp_path)
    with run_lock_held(lock):
        result = run_bobosync(env)
    assert result.returncode == 0, result.stdout
    assert "Another bobosync run holds the lock" in result.stdout and "WARNING" not in result.stdout
    assert sim.requests == [] and (csv_dir / "rota.csv").exists()
    result = run_bobosync(env)  # the holder is gone: the next run does the work
    assert result.returncode == 0, result.stdout
    assert not (csv_dir / "rota.csv").exists() and (tmp_path / "processed_files" / "rota.csv").exists()


def test_a_holder_that_started_long_ago_is_reported_as_stuck(sim, tmp_path):
    env, csv_dir, lock = _site(sim, tmp_path)
    long_ago = int(time.time()) - 3 * 3600 - 30
    line = f"pid 4242 started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(long_ago))} {long_ago:.0f}"
    with run_lock_held(lock, line):
        result = run_bobosync(env)
    assert result.returncode == 0, result.stdout
    warnings = [text for text in result.stdout.splitlines() if "WARNING" in text]
    assert len(warnings) == 1 and "pid 4242" in warnings[0] and "180 minutes ago" in warnings[0]
    assert "may be stuck" in warnings[0] and lock in warnings[0]
    assert sim.requests == []


def test_the_holder_writes_its_pid_and_start_time(tmp_path):
    lock = RunLock(str(tmp_path / "bobo_mapping.db.lock"))
    assert lock.acquire()
    try:
        pid, started, written = lock.holder()
        assert pid == os.getpid() and abs(started - time.time()) < 60 and written[:4].isdigit()
    finally:
        lock.release()


def test_a_recent_holder_is_not_reported(tmp_path, caplog):
    path = str(tmp_path / "bobo_mapping.db.lock")
    first = RunLock(path)
    assert first.acquire()
    with caplog.at_level(logging.DEBUG, logger="bobosync"):
        assert not RunLock(path).acquire()
    first.release()
    assert caplog.records == []


def test_a_lock_file_that_is_a_folder_is_an_error_not_another_run(sim, tmp_path):
    env, csv_dir, lock = _site(sim, tmp_path)
    os.mkdir(lock)
    result = run_bobosync(env)
    assert result.returncode == 2, result.stdout
    assert "Cannot take the run lock" in result.stdout and "Another bobosync run" not in result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.skipif((os.name == "posix" and os.geteuid() == 0) or under_wine(),
                    reason="root may write a read-only file (POSIX permissions do not bind root; Wine run as root "
                           "opens a read-only file for writing too)")
def test_a_read_only_lock_file_is_an_error_not_another_run(sim, tmp_path):
    env, csv_dir, lock = _site(sim, tmp_path)
    with open(lock, "w"):
        pass
    os.chmod(lock, 0o444)
    try:
        result = run_bobosync(env)
    finally:
        os.chmod(lock, 0o644)
    assert result.returncode == 2, result.stdout
    assert "Cannot take the run lock" in result.stdout and "Another bobosync run" not in result.stdout


def test_a_command_polling_a_stuck_lock_warns_once(tmp_path, caplog):
    path = str(tmp_path / "bobo_mapping.db.lock")
    long_ago = int(time.time()) - 3600
    with run_lock_held(path, f"pid 4242 started 2024-01-01 08:00:00 {long_ago}"):
        lock = RunLock(path)
        with caplog.at_level(logging.WARNING, logger="bobosync"):
            assert not lock.acquire() and not lock.acquire() and not lock.acquire()
    assert [r.getMessage().count("pid 4242") for r in caplog.records] == [1]
