"""The engine's steps called by hand (from Python, the README's recipe) behave as a run: they take the
one-run-at-a-time lock, waiting up to LOCK_WAIT_SECONDS for a scheduled run to finish (then a clear
RunLockHeldError, nothing done), write to the log file as a run does, and record the run for --status.
So a batch sent by hand can never race the scheduled task and send twice.
"""
import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, List

from config import Settings
from log_setup import DailyLogHandler, setup_logging, teardown_logging

if TYPE_CHECKING:
    from engine import BOBOProcessor
    from run_lock import RunLock

log = logging.getLogger("bobosync")


class RunLockHeldError(RuntimeError):
    """Another bobosync run held the lock for longer than the wait: nothing was done."""


def lock_path(settings: Settings) -> str:
    """The run lock's file, beside the database (engine.run_locked takes the same)."""
    return str(settings.db_path) + ".lock"


def wait_for_lock(lock: "RunLock", path: str, wait_seconds: float) -> bool:
    """Poll the lock twice a second for up to `wait_seconds`; True once this process holds it."""
    log.info("Another bobosync run holds the lock (%s); waiting up to %g s for it to finish", path, wait_seconds)
    end = time.monotonic() + wait_seconds
    while time.monotonic() < end:
        time.sleep(0.5)
        if lock.acquire():  # an OSError here is the caller's, as for the first try
            return True
    return False


@contextmanager
def as_a_run(processor: "BOBOProcessor", what: str) -> Iterator[None]:
    """Hold the run lock (and the log file, unless already set up) around `what`, one step called by hand."""
    from run_lock import RunLock
    settings = processor.settings
    path = lock_path(settings)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)
    if not lock.acquire() and not wait_for_lock(lock, path, settings.lock_wait_seconds):
        raise RunLockHeldError(f"Another bobosync run still holds the lock {path} after {settings.lock_wait_seconds:g} "
                               f"s (LOCK_WAIT_SECONDS), so {what} did nothing: try again when it has finished")
    logging_ours: List[logging.Handler] = []
    if not any(isinstance(h, DailyLogHandler) for h in logging.getLogger().handlers):
        logging_ours = setup_logging(settings, console=False)
    processor.lock_held = True
    try:
        log.info("%s called by hand (from Python), holding the run lock", what)
        yield
    finally:
        processor.lock_held = False
        lock.release()
        teardown_logging(logging_ours)
