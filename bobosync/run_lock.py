"""The one-run-at-a-time lock: an operating-system lock on a file beside the database.

The OS releases it when the process ends, however it ends. It uses the calls the filelock
package uses (flock on POSIX, msvcrt.locking on Windows), so each sees a lock the other holds,
but it is standard library only: importing filelock costs a run with nothing to do more than
all of its work.
"""
import errno
import os

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

HELD_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


class RunLock:
    """A lock on the file `path`, taken without waiting: `acquire()` says whether this process got it."""

    def __init__(self, path: str):
        self.path = path
        self._fd = -1

    def acquire(self) -> bool:
        """Take the lock; False when another process (or another RunLock) holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except PermissionError:
            if os.name == "nt" and os.path.isfile(self.path):
                return False  # Windows refuses to open a file another process is removing
            raise
        try:
            _try_lock(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in HELD_ERRNOS:
                return False
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back (the file stays, empty)."""
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
