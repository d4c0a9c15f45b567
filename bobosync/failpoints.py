"""Test hooks, all unset (always, in production), when they do nothing.

BOBOSYNC_CRASH_AT=<point> kills the process at a named point of a run: the fault tests prove
that a run killed there loses nothing and the next run recovers (points: after_parse,
after_athoc, after_commit, during_mapping_replace; alert_decided: an alert's message decided and
stored, not yet sent; alert_sent: a transport accepted it, not yet recorded as delivered).

BOBOSYNC_UNREADABLE=<file name> refuses reading that file, as Windows refuses a file another
program locks (a test running as root cannot use permissions for that).

BOBOSYNC_TEST_BACKOFF_SCALE=<factor> scales the AtHoc client's waits between retries
(back-off and Retry-After): 0 waits not at all, so the outage tests need not sleep.

BOBOSYNC_TEST_NO_AUDIT=1 records no audit trail, so that the benchmark can tell what recording it costs.

BOBOSYNC_TEST_CLOCK=<YYYY-MM-DD HH:MM:SS> starts a run's clock (BOBOProcessor's "now") at that moment, from which it
runs on with the real one, so that a test can stage runs minutes or hours apart without waiting.

BOBOSYNC_TEST_ENV_DIRS=<folders, separated by os.pathsep> are searched for .env instead of bobosync/ and
the project root (config.env_file_candidates), so that the suite never reads the operator's .env.

BOBOSYNC_TEST_FILE_FAULT=<ENOSPC|EACCES>[:<folder name>] makes moving a file (into that folder, or any)
fail as a full disk does (half the file copied, then ENOSPC, as a copy across drives is cut short) or as a
folder the service account may not write (EACCES): a test running as root cannot use permissions for that.

BOBOSYNC_TEST_CLOCK_OFFSET=<seconds> shifts the wall clock (see wall_clock.py).

BOBOSYNC_TEST_EVENTCREATE_ON_PATH=1 lets ALERT_EVENT_LOG use an `eventcreate` found on PATH (a stand-in
that records its arguments), on any system, instead of Windows' own System32\\eventcreate.exe
(alert_settings.eventcreate_program).
"""
import os
from datetime import datetime
from typing import Callable

ENV_VAR = "BOBOSYNC_CRASH_AT"
UNREADABLE_VAR = "BOBOSYNC_UNREADABLE"
BACKOFF_SCALE_VAR = "BOBOSYNC_TEST_BACKOFF_SCALE"
AUDIT_OFF_VAR = "BOBOSYNC_TEST_NO_AUDIT"
CLOCK_VAR = "BOBOSYNC_TEST_CLOCK"
FILE_FAULT_VAR = "BOBOSYNC_TEST_FILE_FAULT"
CRASH_EXIT_CODE = 137  # where there is no SIGKILL (Windows): what a POSIX shell reports for a SIGKILL


def crash_point(name: str) -> None:
    """Die at once, like a SIGKILL, if the test hook names this point."""
    if os.environ.get(ENV_VAR) != name:
        return
    import signal
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(CRASH_EXIT_CODE)


def refuse_read(path: "os.PathLike[str]") -> None:
    """Raise PermissionError, as for a file that may not be read, if the test hook names this file."""
    if os.environ.get(UNREADABLE_VAR) == os.path.basename(path):
        raise PermissionError(13, "Permission denied (test hook)", os.fspath(path))


def backoff_scale() -> float:
    """The factor for every wait between retries: 1 unless the test hook says otherwise."""
    try:
        return max(0.0, float(os.environ.get(BACKOFF_SCALE_VAR) or 1))
    except ValueError:
        return 1.0


def run_clock() -> Callable[[], datetime]:
    """The run's "now": wall_clock.now, or under the test hook BOBOSYNC_TEST_CLOCK a clock started at the
    hook's moment. That hook moves the run's own "now" alone (event ages, run_history), not file ages or
    AtHoc's Date; the soak's BOBOSYNC_TEST_CLOCK_OFFSET (wall_clock.py) moves every reading."""
    from wall_clock import now
    start = os.environ.get(CLOCK_VAR)
    if not start:
        return now
    offset = datetime.strptime(start, "%Y-%m-%d %H:%M:%S") - now()
    return lambda: now() + offset


def file_fault(src: "os.PathLike[str]", target: "os.PathLike[str]") -> None:
    """Fail the move of `src` to `target` as the test hook says (see BOBOSYNC_TEST_FILE_FAULT above)."""
    hook = os.environ.get(FILE_FAULT_VAR)
    if not hook:
        return
    kind, _, folder = hook.partition(":")
    if folder and os.path.basename(os.path.dirname(os.fspath(target))) != folder:
        return
    import errno
    if kind == "ENOSPC":
        with open(src, "rb") as source, open(target, "wb") as copy:
            data = source.read()
            copy.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device (test hook)", os.fspath(target))
    raise PermissionError(errno.EACCES, "Permission denied (test hook)", os.fspath(target))
