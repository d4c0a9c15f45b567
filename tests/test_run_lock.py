"""The one-run-at-a-time lock (standard library since issue 6): exclusive, released, and seen by filelock."""
import pytest
from filelock import FileLock, Timeout, __version__ as filelock_version

from other_process import under_wine
from run_lock import RunLock


def test_a_second_lock_on_the_file_is_refused_until_the_first_is_released(tmp_path):
    path = str(tmp_path / "bobo_mapping.db.lock")
    first, second = RunLock(path), RunLock(path)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    first.release()
    assert second.acquire()
    second.release()
    second.release()  # releasing twice is harmless


@pytest.mark.skipif(under_wine() and int(filelock_version.split(".")[0]) < 4,
                    reason="filelock 3 (Python 3.9) locks with msvcrt.locking, which under Wine fails with errno 0 "
                           "on a held lock (a Wine quirk, issue 19 finding 3)")
def test_filelock_sees_the_lock_as_held(tmp_path):
    path = str(tmp_path / "bobo_mapping.db.lock")
    lock = RunLock(path)
    assert lock.acquire()
    with pytest.raises(Timeout):
        FileLock(path, timeout=0).acquire()
    lock.release()
    with FileLock(path, timeout=0):
        assert not RunLock(path).acquire()


def test_an_unusable_folder_is_an_error_not_a_lock_held_elsewhere(tmp_path):
    with pytest.raises(OSError):
        RunLock(str(tmp_path / "missing" / "bobo_mapping.db.lock")).acquire()
