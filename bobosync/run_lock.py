"""The one-run-at-a-time lock: an operating-system lock on a file beside the database.

The OS releases it when the process ends, however it ends. It uses the calls the filelock 4
package uses (flock on POSIX; LockFileEx on byte 0 on Windows), so each sees a lock the other
holds, but it is standard library only: importing filelock costs a run with nothing to do more
than all of its work.

Only contention means "another run holds the lock": flock's EWOULDBLOCK, or LockFileEx's
ERROR_LOCK_VIOLATION read with GetLastError(). Any other failure is raised, so a lock that can
never be taken is an error the run reports, not a silent "another run" every minute.

The holder writes its pid and start time into the file (after byte 0, which Windows keeps
unreadable while it is locked); a run that finds the lock held by a run started more than
STUCK_AFTER_SECONDS ago logs a WARNING naming it, since no run lasts that long.
"""
import errno
import logging
import os
import sys
import time
from typing import Optional, Tuple

from wall_clock import wall_time

log = logging.getLogger("bobosync")

STUCK_AFTER_SECONDS = 15 * 60  # a whole run, mapping sync included, takes a few minutes at most
HOLDER_OFFSET = 1  # the holder's line starts after the locked byte

if sys.platform == "win32":  # (not os.name: mypy checks each branch only on its own platform)
    import ctypes
    import msvcrt
    from ctypes import wintypes

    # Not msvcrt.locking: its verdict comes from the C runtime's errno, and under Wine a region
    # another process holds gives OSError with errno 0, which no errno test can tell from a real
    # failure. LockFileEx's own GetLastError() code is what filelock 4 uses, and it is exact:
    # ERROR_LOCK_VIOLATION (33) means another handle holds the byte.
    ERROR_LOCK_VIOLATION = 33
    ERROR_NOT_LOCKED = 158
    _LOCKFILE_FAIL_IMMEDIATELY, _LOCKFILE_EXCLUSIVE_LOCK = 0x01, 0x02

    class _OVERLAPPED(ctypes.Structure):
        _fields_ = (("Internal", ctypes.c_void_p), ("InternalHigh", ctypes.c_void_p),
                    ("Offset", wintypes.DWORD), ("OffsetHigh", wintypes.DWORD), ("hEvent", wintypes.HANDLE))

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _kernel32.LockFileEx.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                                     wintypes.DWORD, ctypes.POINTER(_OVERLAPPED)]
    _kernel32.LockFileEx.restype = wintypes.BOOL
    _kernel32.UnlockFileEx.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                                       ctypes.POINTER(_OVERLAPPED)]
    _kernel32.UnlockFileEx.restype = wintypes.BOOL

    def _try_lock(fd: int) -> bool:
        overlapped = _OVERLAPPED()  # offset 0: byte 0, one byte long, as filelock
        if _kernel32.LockFileEx(msvcrt.get_osfhandle(fd), _LOCKFILE_EXCLUSIVE_LOCK | _LOCKFILE_FAIL_IMMEDIATELY,
                                0, 1, 0, ctypes.byref(overlapped)):
            return True
        code = ctypes.get_last_error()
        if code == ERROR_LOCK_VIOLATION:
            return False
        raise ctypes.WinError(code)

    def _unlock(fd: int) -> None:
        overlapped = _OVERLAPPED()
        if not _kernel32.UnlockFileEx(msvcrt.get_osfhandle(fd), 0, 1, 0, ctypes.byref(overlapped)):
            code = ctypes.get_last_error()
            if code != ERROR_NOT_LOCKED:
                raise ctypes.WinError(code)
else:
    import fcntl

    HELD_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK}

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in HELD_ERRNOS:
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open(path: str) -> int:
    """The lock file, opened for writing without truncating it (the holder's line is read by others).

    On Windows a file another process is deleting (filelock removes its lock file on release)
    refuses to open for a moment: that is retried briefly; a file that stays refused (read-only,
    no permission) is an error."""
    for attempt in range(10):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            if os.name != "nt" or attempt == 9 or not os.path.isfile(path):
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


class RunLock:
    """A lock on the file `path`, taken without waiting: `acquire()` says whether this process got it."""

    def __init__(self, path: str, stuck_after_seconds: float = STUCK_AFTER_SECONDS):
        self.path = path
        self.stuck_after_seconds = stuck_after_seconds
        self._fd = -1
        self._warned = False  # a command polling the lock warns about a stuck holder once, not twice a second

    def acquire(self) -> bool:
        """Take the lock; False when another process (or another RunLock) holds it.

        OSError when the lock cannot be taken for any other reason."""
        fd = _open(self.path)
        try:
            got = _try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not got:
            os.close(fd)
            self._warn_if_stuck()
            return False
        self._fd = fd
        try:
            self._write_holder()
        except OSError as exc:  # the lock is what counts; the line only helps to find a stuck run
            log.debug("Cannot write the holder's pid into %s: %s", self.path, exc)
        return True

    def _write_holder(self) -> None:
        started = wall_time()
        line = (f"pid {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))} "
                f"{started:.0f}\n")
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, b" " + line.encode("ascii"))
        os.ftruncate(self._fd, HOLDER_OFFSET + len(line))

    def holder(self) -> Optional[Tuple[int, float, str]]:
        """(pid, start time, start time as written) of the run that last took the lock, or None if unknown."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(HOLDER_OFFSET)
                words = handle.read(200).decode("ascii").split()
        except (OSError, UnicodeDecodeError):
            return None
        if len(words) != 6 or words[0] != "pid" or words[2] != "started":
            return None
        try:
            return int(words[1]), float(words[5]), f"{words[3]} {words[4]}"
        except ValueError:
            return None

    def _warn_if_stuck(self) -> None:
        holder = None if self._warned else self.holder()
        if holder is None or wall_time() - holder[1] <= self.stuck_after_seconds:
            return
        time.sleep(0.2)
        if self.holder() != holder:
            return  # the line was the previous run's: a run took the lock this instant and wrote its own
        pid, started, written = holder
        self._warned = True
        log.warning("The run holding the lock %s (pid %d) started at %s, %d minutes ago; no run lasts that long, "
                    "so it may be stuck: check that process, and end it if it is hung", self.path, pid, written,
                    (wall_time() - started) // 60)

    def release(self) -> None:
        """Give the lock back (the file stays)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd >= 0
