"""The one wall clock of bobosync: every reading of the time of day (a run's "now", file ages, AtHoc's Date
against ours, the lock holder's start, the log file's day) comes from here.

In production it is exactly time.time(). The test hook BOBOSYNC_TEST_CLOCK_OFFSET=<seconds> shifts it, in
this process and in the runs it starts: the soak test (bench/soak.py) starts the scheduled run for each
simulated minute with the clock that minute would show, while time still passes inside the run. Durations,
deadlines and timeouts use time.monotonic() and are never shifted.
"""
import os
import time
from datetime import datetime

OFFSET_VAR = "BOBOSYNC_TEST_CLOCK_OFFSET"


def offset() -> float:
    """The test hook's shift in seconds (0 when unset, always in production)."""
    text = os.environ.get(OFFSET_VAR)
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return 0.0


def wall_time() -> float:
    """Seconds since the epoch, as time.time()."""
    return time.time() + offset()


def now() -> datetime:
    """Local time, as datetime.now()."""
    return datetime.fromtimestamp(wall_time())
