"""bobosync's engine: one scheduled run, from BOBO CSV files to AtHoc (`BOBOProcessor`).

A run syncs user mappings when due, sends every ready CSV file's newest duty events to AtHoc,
clears stale duty values when due, purges old processed files, and says which exit code the
run ends with; then `alerts` tell a person of problems that last. A file moves only after AtHoc
confirmed its records. The pieces: `inbox` (the CSV folder), `planner` (newest event wins),
`recorder` (outcomes and moves), `mapping_sync`, `cleanup`. `run_locked` holds the one-run-at-a-time
lock around any of this. A run with nothing to do imports only what it needs: the CSV reader and the
AtHoc client (requests) are imported where they are used.
"""
import gc
import logging
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, cast

from alerts import after_run
from athoc_link import AtHocLink
from bobo_db import BOBODatabase
from cleanup import Cleanup
from config import Settings, load_settings
from failpoints import crash_point, run_clock
from inbox import Inbox
from mapping_sync import MappingSync
from results import EXIT_ACTION, EXIT_CONFIG, EXIT_OK, EXIT_RETRY, BatchResult
from run_history import purge as purge_runs, record as record_run
from schedule import is_due, stamp

if TYPE_CHECKING:
    from clock_check import ClockCheck
    from pending import PendingEvents
    from athoc_client import AtHocClient
    from athoc_types import SyncOutcome
    from bobo_csv import BOBOEntry
    from planner import BatchPlan

__all__ = ["BOBOProcessor", "BatchResult", "run_locked", "EXIT_OK", "EXIT_RETRY", "EXIT_CONFIG"]

log = logging.getLogger("bobosync")

SYNC_MARGIN_SECONDS = 5  # a mapping sync stops reading pages this long before the run's deadline
PURGE_INTERVAL = timedelta(hours=1)
_F = TypeVar("_F", bound=Callable[..., Any])


def _like_a_run(method: _F) -> _F:
    """A step that, called by hand, takes the run lock and logs as a run does (manual_run.py)."""
    def by_hand(self: "BOBOProcessor", *args: Any, **kwargs: Any) -> Any:
        if self.lock_held:
            return method(self, *args, **kwargs)
        from manual_run import as_a_run
        with as_a_run(self, f"{method.__name__}()"):
            result = method(self, *args, **kwargs)
            if isinstance(result, BatchResult):
                record_run(self.db, self.clock(), result, self.link, None)  # --status shows it as the last run
            return result
    by_hand.__name__, by_hand.__doc__ = method.__name__, method.__doc__
    return cast(_F, by_hand)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a batch makes a few objects per row and per employee, none
    in reference cycles, and the collector would walk them all over and over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BOBOProcessor:
    """One bobosync run's work, also usable piece by piece from a Python prompt."""

    def __init__(self, settings: Optional[Settings] = None, *, env_file: Optional[str] = None,
                 clock: Optional[Callable[[], datetime]] = None):
        self.settings = settings if settings is not None else load_settings(env_file)
        self.clock = clock or run_clock()
        self.db = BOBODatabase(self.settings.db_path)
        self.link = AtHocLink(self.settings, self.db, self.clock)
        self.inbox = Inbox(self.settings, self.db)
        self.mappings = MappingSync(self.settings, self.db, self.link)
        self.cleanup = Cleanup(self.settings, self.db, self.link)
        self._pending: Optional[PendingEvents] = None
        self._clock_check: Optional[ClockCheck] = None
        self.lock_held = False  # True while this process holds the run lock (run_locked, or a step called by hand)

    # --- the steps a run with nothing to do never needs (imported on first use) ---

    @property
    def pending(self) -> "PendingEvents":
        if self._pending is None:
            from pending import PendingEvents
            self._pending = PendingEvents(self.settings, self.db, self.link)
            self._pending.clock_is_wrong = self.clock_check.skewed
        return self._pending

    @property
    def clock_check(self) -> "ClockCheck":
        if self._clock_check is None:
            from clock_check import ClockCheck
            self._clock_check = ClockCheck(self.settings, self.db, self.link)
        return self._clock_check

    # --- AtHoc ---

    def connect_athoc(self) -> "AtHocClient":
        """The AtHoc client, authenticated."""
        return self.link.client

    @property
    def athoc_client(self) -> "AtHocClient":
        return self.link.client

    # --- the steps, each usable alone ---

    def should_run_user_mapping_sync(self, now: Optional[datetime] = None) -> bool:
        """Whether the mapping sync is due (see MappingSync.due)."""
        return self.mappings.due(now or self.clock())

    @_like_a_run
    def sync_worker_mappings(self) -> bool:
        """Replace the mappings from a complete AtHoc listing; on error or no users, keep them."""
        return self._sync_with(None) == "done"

    def sync_now(self, accept_drop: bool = False) -> int:
        """--sync-mappings: sync at once, then send the pending events whose people have a user now.
        `accept_drop` (--accept-drop): a person confirmed a listing that drops many mappings."""
        self.link.ask_despite_backoff = True  # a person asked: try even while runs back off
        self.mappings.accept_drop = accept_drop
        if not self.sync_worker_mappings():
            return EXIT_ACTION if self.link.person_must_act else EXIT_RETRY
        self.pending.work(self.clock())
        return EXIT_RETRY if self.link.down else EXIT_OK

    def collect_csv_files(self) -> List[Path]:
        """Ready *.csv files, oldest first; settling files wait, files AtHoc already confirmed are left out."""
        ready, _ = self.inbox.ready_files()
        return ready

    def parse_csv_file(self, path: Path) -> List["BOBOEntry"]:
        """The valid events of one file (rejected rows are logged)."""
        from bobo_csv import parse_csv_file
        entries, report = parse_csv_file(Path(path))
        for line in report.rejection_lines():
            log.warning("Rejected %s", line)
        return entries

    def plan_file_batch(self, files: Sequence[Path], result: BatchResult) -> "BatchPlan":
        """Read the files and decide what to send: each person's newest event, if newer and mapped."""
        from planner import plan_updates, read_batch
        now = self.clock()
        tolerance = timedelta(minutes=self.settings.future_tolerance_minutes)
        not_after = "" if self.clock_check.skewed(now) else (now + tolerance).strftime("%Y%m%d%H%M%S")
        winners, reports, superseded = read_batch(files, result, self.inbox.order_of, not_after)
        crash_point("after_parse")
        return plan_updates(winners, reports, self.db, self.settings, result, superseded)

    @_like_a_run
    def process_file_batch(self, files: Sequence[Path]) -> BatchResult:
        """Send the newest event per employee of these files to AtHoc, then record and move the files."""
        started = time.monotonic()
        result = BatchResult(files=len(files))
        if not files:
            return result
        with _collector_paused():
            if not self._connected():  # AtHoc's Date tells whether this server's clock can be trusted
                log.error("The %d file(s) of this batch stay in %s for the next run", len(files),
                          self.settings.csv_directory)
                result.outage = True
                return result
            plan = self.plan_file_batch(files, result)
            outcomes: Dict[str, SyncOutcome] = {}
            if plan.updates:
                from athoc_types import AtHocError
                try:
                    outcomes = self.link.client.batch_update_duty_status(plan.updates,
                                                                         self.settings.duty_status_field)
                except AtHocError as exc:
                    self.link.failed("AtHoc update failed", exc)
                    log.error("The %d file(s) of this batch stay in %s for the next run (an outage does not count "
                              "towards MAX_RETRY_ATTEMPTS)", len(files), self.settings.csv_directory)
                    result.outage = True
                    return result
                crash_point("after_athoc")
                if self.link.unknown_field(outcomes):
                    result.outage = True
                    return result
            from recorder import Recorder
            Recorder(self.settings, self.db, self.inbox).finish(plan, outcomes, result, self.clock())
        log.info("Batch done in %.1f s: %s", time.monotonic() - started, result.summary())
        return result

    def _connected(self) -> bool:
        """Connect to AtHoc unless this run already gave up on it."""
        from athoc_types import AtHocError
        if self.link.down:
            return False
        try:
            self.link.client.close  # noqa: B018 (the property connects)
        except AtHocError as exc:
            self.link.failed("AtHoc cannot be reached", exc)
            return False
        return True

    def cleanup_due(self, now: Optional[datetime] = None) -> bool:
        """Whether the cleanup of missed book-offs is due."""
        return self.cleanup.due(now or self.clock())

    @_like_a_run
    def clear_old_duty_status(self, exclude: Sequence[str] = ()) -> List[str]:
        """Clear duty values older than AUTO_CLEANUP_HOURS (missed book-offs), except `exclude`."""
        return self.cleanup.run(self.clock(), exclude)

    @_like_a_run
    def purge_processed_files(self) -> int:
        """Delete processed files older than PROCESSED_FILES_PURGE_DAYS (0 keeps them), trim the audit trail; hourly."""
        now = self.clock()
        if not is_due(self.db.get_state("last_purge"), now, PURGE_INTERVAL):
            return 0
        removed = self.inbox.purge_processed(now) if self.settings.processed_files_purge_days > 0 else 0
        from audit_upkeep import maintain
        maintain(self.db, now, self.settings.audit_retention_days)
        purge_runs(self.db, now, self.settings.audit_retention_days)
        self.db.set_state("last_purge", stamp(now))
        return removed

    def clear_future_states(self) -> int:
        """--clear-future: forget duty states dated ahead of the clock (accepted before such rows were rejected),
        and clear the duty field of those that were book-ons, so each person's next real event applies."""
        from clock_check import clear_future_states
        return clear_future_states(self.settings, self.db, self.link, self.clock())

    def check_folders(self) -> List[str]:
        """Problems with the folders a run needs; the processed and failed folders are created."""
        s = self.settings
        problems = [self._csv_folder_problem()] if not s.csv_directory.is_dir() else []
        for name, folder in (("PROCESSED_DIRECTORY", s.processed_directory),
                             ("FAILED_FILES_DIRECTORY", s.failed_files_directory)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(f"{name} {folder} cannot be created: {exc}")
        return problems

    def _csv_folder_problem(self) -> str:
        return (f"CSV_DIRECTORY {self.settings.csv_directory} does not exist or is not reachable: check the path "
                f"(and the share, for a UNC path)")

    # --- the run ---

    def run(self) -> int:
        """One scheduled run, then its alerts (alerts.after_run: they never change it); returns the exit code."""
        return after_run(self, self._run())

    def _run(self) -> int:
        started, begun = time.monotonic(), self.clock()
        deadline = started + self.settings.run_deadline_seconds
        self.link.deadline = deadline
        for warning in self.settings.warnings:
            log.warning(warning)
        problems = self.check_folders()
        if problems:
            for problem in problems:
                log.error(problem)
            return EXIT_CONFIG
        self.link.backing_off()
        sync_due = self.should_run_user_mapping_sync() and not self.link.down
        sync = None if not sync_due else self._sync_with(deadline - SYNC_MARGIN_SECONDS) \
            if not self.db.mapping_count() else "later"  # with no usable mapping, who is who comes first
        files, confirmed = self.inbox.ready_files()
        self.inbox.settle_confirmed(confirmed)
        if files and not self.db.mapping_count():
            log.error("No user mappings yet (the mapping sync has not succeeded): %d file(s) wait, so no event is "
                      "reported unmapped by mistake. Run --check and --sync-mappings", len(files))
            self.link.down = self.link.down or "no user mappings"
        due = self.pending.due(self.clock()) if self.db.pending_count() and self.db.mapping_count() else None
        total, left = self._send_batches(files, started, deadline)  # before the look-ups: a slow one must wait
        if total.gone_ids:
            total.add(self.pending.look_again(total.gone_ids, self.clock()))
        if due is not None and not self.link.down:
            total.add(self.pending.work(self.clock(), due))
        if sync == "later" and not self.link.down:  # duty updates came first; the sync gets the time left
            sync = self._sync_with(deadline - SYNC_MARGIN_SECONDS)
            if sync == "done" and self.db.pending_count():  # people the new mapping knows get theirs now
                total.add(self.pending.work(self.clock()))
        if self.cleanup_due() and self._connected() and not self.clock_check.skewed(self.clock()):
            self.clear_old_duty_status(exclude=total.logins_set)
        self.purge_processed_files()
        code = self._exit_code(started, files, total, left, sync == "failed")
        record_run(self.db, self.clock(), total, self.link, (begun, started, code))  # with last_run, one commit
        return code

    def _sync_with(self, stop_at: Optional[float]) -> str:
        """The mapping sync: 'done', 'failed' or 'resumes' (the listing goes on in the next run)."""
        now = self.clock()
        synced = self.mappings.sync(now, stop_at)
        if synced and self.db.pending_count():
            self.pending.after_sync(now)
        return "resumes" if synced is None else "done" if synced else "failed"

    def _exit_code(self, started: float, files: List[Path], total: BatchResult, left: int, sync_failed: bool
                   ) -> int:
        """3 when a person must act, 1 when something is left for the next run, else 0; logs the summary."""
        needs_retry = bool(self.link.down or left or total.files_retrying or total.unreadable or sync_failed
                           or self.inbox.failed_moves or self.inbox.changed)
        needs_person = self.link.person_must_act + (["a file was set aside in the failed folder"]
                                                    if total.bad_files or total.files_failed else [])
        code = EXIT_ACTION if needs_person else EXIT_RETRY if needs_retry else EXIT_OK
        if needs_person:
            log.error("A person must act: %s (exit 3)", "; ".join(dict.fromkeys(needs_person)))
        if files or needs_retry or needs_person:
            log.info("Run done in %.1f s: %s; exit %d", time.monotonic() - started, total.summary(), code)
        else:
            log.info("Nothing to do%s", self.inbox.settling_note())
        return code

    def _send_batches(self, files: List[Path], started: float, deadline: float) -> Tuple[BatchResult, int]:
        """Process the files BATCH_SIZE at a time while AtHoc answers and the run's time lasts: no batch starts
        after 80% of RUN_DEADLINE_SECONDS."""
        total, left = BatchResult(), 0
        last_start = started + 0.8 * (deadline - started)
        for start in range(0, len(files), self.settings.batch_size):
            batch = files[start:start + self.settings.batch_size]
            if self.link.down or time.monotonic() > last_start:
                left += len(batch)
                continue
            total.add(self.process_file_batch(batch))
        if left:
            log.info("%d file(s) left for the next run%s", left, " (AtHoc is unavailable)" if self.link.down else "")
        return total, left

    def dry_run(self) -> int:
        """Parse, resolve and map as a run would, print what would be sent; move no file."""
        if not self.settings.csv_directory.is_dir():
            log.error(self._csv_folder_problem())
            return EXIT_CONFIG
        if not self.db.mapping_count() and self.settings.sync_mappings:
            print("No user mappings yet: reading them from AtHoc first (the only change --dry-run makes)")
            self.sync_worker_mappings()
        files = self.collect_csv_files()
        if not files:
            print("No ready CSV files: nothing would be sent.")
            return EXIT_OK
        if not self.db.mapping_count():
            print(f"No user mappings (the mapping sync has not succeeded): who would be updated cannot be told; "
                  f"{len(files)} file(s) would wait. Run --check and --sync-mappings")
            return EXIT_RETRY
        from planner import print_plan
        with _collector_paused():
            print_plan(self.plan_file_batch(files, BatchResult(files=len(files))), self.settings)
        return EXIT_OK

    def close(self) -> None:
        self.link.close()
        self.db.close()


def run_locked(settings: Settings, work: Callable[[BOBOProcessor], int], wait_seconds: float = 0) -> int:
    """Run `work` holding the one-run-at-a-time lock. A scheduled run (`wait_seconds` 0) that finds it held exits 0
    at once: the run holding it does the work. A command a person typed waits up to `wait_seconds`, saying so,
    and exits 1 if the lock stays held."""
    from run_lock import RunLock
    lock_path = str(settings.db_path) + ".lock"  # (manual_run.lock_path: the same file)
    lock = RunLock(lock_path)
    try:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        held = lock.acquire()
    except OSError as exc:
        log.error("Cannot take the run lock %s (%s): check DB_PATH, and that the service account may create "
                  "files in its folder", lock_path, f"{exc.strerror}: {exc.filename}" if exc.filename else exc)
        return EXIT_CONFIG
    if not held and wait_seconds > 0:
        try:
            from manual_run import wait_for_lock
            held = wait_for_lock(lock, lock_path, wait_seconds)
        except OSError as exc:
            log.error("Cannot take the run lock %s (%s)", lock_path, exc)
            return EXIT_CONFIG
        if not held:
            log.error("Another bobosync run still holds the lock after %g s, so nothing was done: try again in a "
                      "minute; if it stays held, a run is stuck (see the log)", wait_seconds)
            return EXIT_RETRY
    if not held:
        log.info("Another bobosync run holds the lock (%s); this run exits", lock_path)
        return EXIT_OK
    try:
        processor = BOBOProcessor(settings)
        processor.lock_held = True
        try:
            return work(processor)
        finally:
            processor.close()
    finally:
        lock.release()
