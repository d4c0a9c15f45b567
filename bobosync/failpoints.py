"""Test hooks: kill the process at a named point of a run, or make reading a named file fail.

The fault tests set BOBOSYNC_CRASH_AT=<point> to prove that a run killed there loses nothing
and the next run recovers (points: after_parse, after_athoc, after_commit,
during_mapping_replace), and BOBOSYNC_UNREADABLE=<file name> to refuse reading that file as
Windows refuses a file another program locks (a test running as root cannot use permissions
for that). Unset (always, in production) they do nothing.
"""
import os

ENV_VAR = "BOBOSYNC_CRASH_AT"
UNREADABLE_VAR = "BOBOSYNC_UNREADABLE"


def crash_point(name: str) -> None:
    """Die at once, like a SIGKILL, if the test hook names this point."""
    if os.environ.get(ENV_VAR) != name:
        return
    import signal
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)


def refuse_read(path: "os.PathLike[str]") -> None:
    """Raise PermissionError, as for a file that may not be read, if the test hook names this file."""
    if os.environ.get(UNREADABLE_VAR) == os.path.basename(path):
        raise PermissionError(13, "Permission denied (test hook)", os.fspath(path))
