"""A BOBO export its writer still holds open (issue 19, finding 2). On Windows such a file is not settled,
however long it has been quiet: it waits for the next run with one INFO line naming it, and is not sent.
A move that still fails because another program has the file open says so."""
import logging
import os

import pytest

from bobo_db import BOBODatabase
from config import settings_for_tests
from conftest import env_for
from file_hold import is_held_open, move_error_hint
from inbox import Inbox, move_without_overwrite
from other_process import held_open, run_bobosync

WINDOWS_SHARING = pytest.mark.skipif(
    os.name != "nt", reason="Windows file sharing: POSIX lets any process open, move or delete a file another holds")


def row(collar: str) -> str:
    return f"BON,{collar},P{collar},20240617,065500,20240617070000,1,51.507200,-0.127600,8.0\r\n"


@WINDOWS_SHARING
def test_a_file_another_process_holds_open_waits_for_the_next_run_and_is_not_sent(sim, tmp_path):
    logins = sim.seed_users(2)
    env = env_for(sim, tmp_path, FILE_SETTLE_SECONDS="0")
    csv_dir = tmp_path / "crown_files"
    csv_dir.mkdir()
    (csv_dir / "held.csv").write_bytes(row("10001").encode())
    (csv_dir / "done.csv").write_bytes(row("10002").encode())
    with held_open(csv_dir / "held.csv"):
        result = run_bobosync(env)
        assert result.returncode == 0, result.stdout
        lines = [text for text in result.stdout.splitlines() if "held.csv" in text]
        assert len(lines) == 1 and "INFO" in lines[0] and "open in another program" in lines[0], result.stdout
        assert sorted(p.name for p in csv_dir.iterdir()) == ["held.csv"]
        sent = [item["LOGIN_ID"] for r in sim.requests_to("SyncByCommonNames") for item in r.body]
        assert sent == [logins[1]]  # only the file nobody holds
    result = run_bobosync(env)  # BOBO closed it: now it is read, sent and moved
    assert result.returncode == 0, result.stdout
    assert list(csv_dir.iterdir()) == [] and (tmp_path / "processed_files" / "held.csv").is_file()
    assert sim.attribute(logins[0], "On-Duty-DTG") == "17/06/2024 06:55:00"


@WINDOWS_SHARING
def test_a_move_refused_because_another_program_has_the_file_open_says_so(tmp_path, caplog):
    held = tmp_path / "held.csv"
    held.write_bytes(row("10001").encode())
    db = BOBODatabase(tmp_path / "bobo_mapping.db")
    inbox = Inbox(settings_for_tests(db_path=tmp_path / "bobo_mapping.db"), db)
    try:
        with held_open(held), caplog.at_level(logging.ERROR, logger="bobosync"):
            assert is_held_open(str(held))
            with pytest.raises(OSError) as refused:
                move_without_overwrite(held, tmp_path / "elsewhere")
            assert not inbox.move(held, tmp_path / "processed_files", "sent")
    finally:
        db.close()
    assert inbox.failed_moves == 1
    assert "another program has the file open" in move_error_hint(refused.value)
    [message] = [r.getMessage() for r in caplog.records]
    assert "Cannot move held.csv" in message and "another program has the file open" in message
    assert "free space" not in message
    assert held.read_bytes() == row("10001").encode() and not (tmp_path / "processed_files" / "held.csv").exists()


def test_a_closed_file_is_not_held_nor_a_missing_one(tmp_path):
    path = tmp_path / "quiet.csv"
    path.write_bytes(row("10001").encode())
    assert not is_held_open(str(path)) and not is_held_open(str(tmp_path / "missing.csv"))
    with open(path, encoding="utf-8"):
        pass
    assert not is_held_open(str(path))


def test_a_move_refused_for_another_reason_points_at_permissions_and_space():
    assert "permissions and free space" in move_error_hint(PermissionError(13, "Permission denied"))
