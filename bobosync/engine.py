"""bobosync's engine: one scheduled run, from BOBO CSV files to AtHoc (`BOBOProcessor`).

One run loads the settings, syncs user mappings when due, sends every ready CSV file's
newest duty events to AtHoc, clears stale duty values when due, and says which exit
code the run ends with. A file moves only after AtHoc confirmed its records. The command
line, and the lock around a run, are in bobo_processor.py.

A run with nothing to do imports only what it needs: the CSV reader, hashing and the AtHoc
client (requests) are imported where they are used.
"""
import gc
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from bobo_db import BatchRecord, BOBODatabase, ProcessedFile
from config import Settings, load_settings
from failpoints import crash_point

if TYPE_CHECKING:
    from bobo_csv import BOBOEntry, CsvFile

__all__ = ["BOBOProcessor", "BatchResult", "EXIT_OK", "EXIT_RETRY", "EXIT_CONFIG"]

log = logging.getLogger("bobosync")

EXIT_OK, EXIT_RETRY, EXIT_CONFIG = 0, 1, 2
RUN_BUDGET_SECONDS = 40  # no new batch starts after this, so a run ends inside its minute
SHOWN_IDS = 20  # ids named in one aggregated warning


class BatchResult:
    """What one batch did; the run summary adds these up. (Plain classes here: a dataclass costs
    a run with nothing to do a millisecond each to define.)"""

    COUNTS = ("files", "rows", "rejected", "updated", "stale", "unmapped", "gone", "failed", "bad_files",
              "files_done", "files_retrying", "files_failed")

    def __init__(self, files: int = 0) -> None:
        self.files = files
        self.rows = self.rejected = self.updated = self.stale = self.unmapped = self.gone = self.failed = 0
        self.bad_files = self.files_done = self.files_retrying = self.files_failed = 0
        self.outage = False
        self.logins_set: List[str] = []

    def add(self, other: "BatchResult") -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.outage = self.outage or other.outage
        self.logins_set.extend(other.logins_set)

    def summary(self) -> str:
        return (f"{self.files} files, {self.rows} rows ({self.rejected} rejected), {self.updated} updated, "
                f"{self.stale} stale, {self.unmapped} unmapped, {self.gone} gone from AtHoc, {self.failed} failed")


class _Winner:
    """The newest event of one employee in a batch, its order key and the file it came from."""

    __slots__ = ("entry", "key", "path")

    def __init__(self, entry: "BOBOEntry", key: Tuple[str, str, int, int], path: Path):
        self.entry, self.key, self.path = entry, key, path


def file_sha256(path: Path) -> str:
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def move_without_overwrite(src: Path, dest_dir: Path) -> Path:
    """Move `src` into `dest_dir`; an existing name gets a numbered suffix, never overwritten."""
    import shutil
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / src.name
    n = 1
    while target.exists():
        target = dest_dir / f"{src.stem}.{n}{src.suffix}"
        n += 1
    try:
        shutil.move(str(src), str(target))
    except OSError:
        # Across drives shutil.move copies: a copy cut short (a full drive) or whose source could not be
        # removed must not stay as a second, maybe truncated, "processed" copy, one more on every run.
        if src.exists() and target.is_file():
            try:
                target.unlink()
            except OSError:
                pass
        raise
    return target


def build_mapping(users: Dict[str, Dict[str, Any]], collar_field: str
                  ) -> Tuple[List[Tuple[str, str, str]], Dict[str, List[str]], int]:
    """(employee id, LOGIN_ID, raw collar) rows, ids held by several users, users without an id."""
    from athoc_client import ci_get
    from bobo_csv import normalize_employee_id
    holders: Dict[str, List[Tuple[str, str]]] = {}
    without = 0
    for login, attributes in users.items():
        raw = str(ci_get(attributes, collar_field) or "").strip()
        if not raw:
            without += 1
            continue
        holders.setdefault(normalize_employee_id(raw), []).append((login, raw))
    rows = [(eid, hs[0][0], hs[0][1]) for eid, hs in holders.items() if len(hs) == 1]
    ambiguous = {eid: [login for login, _ in hs] for eid, hs in holders.items() if len(hs) > 1}
    return rows, ambiguous, without


def _clock_went_back(last: datetime, now: datetime) -> bool:
    """A recorded time in the future means the clock was set back: treat the task as due."""
    if last <= now + timedelta(minutes=1):
        return False
    log.warning("The clock is behind a time recorded earlier (%s > %s): it was set back; scheduled work is "
                "treated as due", last.isoformat(sep=" ", timespec="seconds"), now.isoformat(sep=" ", timespec="seconds"))
    return True


def _parse_stamp(text: str) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' as the database holds it (fromisoformat: strptime costs an import)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside. A batch makes a few objects per row and per employee, none of them
    in reference cycles, and the collector walked them all over and over (a fifth of a 30,000-person batch);
    cycles made meanwhile, if any, are collected after the batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _not_a_file(item: "os.DirEntry[str]") -> str:
    """'name (what it is)' for a folder entry with a .csv name that is not a file."""
    if item.is_symlink():
        return f"{item.name} (a link to nothing)"
    return f"{item.name} ({'a folder' if item.is_dir() else 'not a regular file'})"


def _shorten(ids: Sequence[str]) -> str:
    shown = ", ".join(sorted(ids)[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


class BOBOProcessor:
    """One bobosync run's work, also usable piece by piece from a Python prompt."""

    def __init__(self, settings: Optional[Settings] = None, *, env_file: Optional[str] = None,
                 clock: Callable[[], datetime] = datetime.now):
        self.settings = settings if settings is not None else load_settings(env_file)
        self.clock = clock
        self.db = BOBODatabase(self.settings.db_path)
        self._client: Any = None
        self.athoc_down = ""  # why AtHoc calls stopped for this run ('' while none failed)
        self.read_only = False  # --dry-run: move no file
        self.waiting_files = 0
        self.failed_moves = 0  # files whose move failed: retried next run, so the run exits 1
        self._stats: Dict[Path, os.stat_result] = {}

    # --- AtHoc ---

    def connect_athoc(self) -> Any:
        """The AtHoc client, authenticated (requests is imported only when AtHoc is needed)."""
        if self._client is None:
            from athoc_client import AtHocClient
            self._client = AtHocClient(self.settings)
        return self._client

    @property
    def athoc_client(self) -> Any:
        return self.connect_athoc()

    def _athoc_failed(self, what: str, exc: Exception) -> None:
        """Log a call-level AtHoc failure and stop further AtHoc calls in this run."""
        self.athoc_down = str(exc)
        log.error("%s: %s", what, exc)

    # --- user mappings ---

    def should_run_user_mapping_sync(self, now: Optional[datetime] = None) -> bool:
        """Due on first run, after a failed or empty sync, when the last good sync is older than
        SYNC_RETRY_DAYS, or once SYNC_HOUR has passed today and no good sync happened since then."""
        s = self.settings
        if not s.sync_mappings:
            return False
        now = now or self.clock()
        status = self.db.get_sync_status()
        if status is None:
            return True
        if status["status"] != "success":
            return True
        last = _parse_stamp(status["last_sync_time"])
        if _clock_went_back(last, now) or now - last > timedelta(days=s.sync_retry_days):
            return True
        todays_mark = now.replace(hour=s.sync_hour, minute=0, second=0, microsecond=0)
        return now >= todays_mark > last

    def sync_worker_mappings(self) -> bool:
        """Replace the mappings from a complete AtHoc listing; on error or no users, keep them."""
        from athoc_client import AtHocError, IncompleteListingError
        s, now = self.settings, self.clock()
        held = self.db.mapping_count()
        try:
            users = self.athoc_client.get_all_users_with_attributes(s.mapping_fields)
        except AtHocError as exc:
            self.db.record_sync("user_mapping", "error", now)
            if isinstance(exc, IncompleteListingError) and held:
                # AtHoc answers, its listing just does not add up (maybe on every run): duty updates go on with
                # the mappings held, as between two syncs, instead of stopping until the listing is fixed
                log.error("User mapping sync failed: %s", exc)
            else:
                self._athoc_failed("User mapping sync failed", exc)
            log.error("The %d mappings held are kept; the next run tries the sync again", held)
            return False
        if not users:
            self.db.record_sync("user_mapping", "no_data", now)
            log.warning("User mapping sync: AtHoc listed no users; the %d mappings held are kept. Check that the "
                        "service account may search users of org %s", held, s.org_code)
            return False
        rows, ambiguous, without = build_mapping(users, s.collar_id_field)
        for eid, logins in sorted(ambiguous.items()):
            log.warning("Collar number %s is held by %d AtHoc users (%s): it is mapped to nobody until fixed in "
                        "AtHoc", eid, len(logins), ", ".join(sorted(logins)))
        count = self.db.replace_mappings(rows, ambiguous, now)
        log.info("User mapping sync: %d AtHoc users, %d mapped, %d without %s, %d ambiguous collar numbers",
                 len(users), count, without, s.collar_id_field, len(ambiguous))
        if count == 0:
            log.warning("No AtHoc user has a %s value: is COLLAR_ID_FIELD the right field name?", s.collar_id_field)
        return True

    # --- files ---

    def collect_csv_files(self) -> List[Path]:
        """Ready *.csv files, oldest first; settling files wait, remembered files are not sent again."""
        s = self.settings
        now = time.time()
        found: List[Tuple[float, str, Path]] = []
        not_files: List[str] = []
        self.waiting_files = 0
        with os.scandir(s.csv_directory) as entries:
            for item in entries:
                if not item.name.lower().endswith(".csv"):
                    continue
                try:
                    if not item.is_file():
                        not_files.append(_not_a_file(item))
                        continue
                    st = item.stat()
                except OSError:
                    continue  # gone since the listing
                if now - st.st_mtime < s.file_settle_seconds:
                    self.waiting_files += 1
                    continue
                path = Path(item.path)
                self._stats[path] = st
                found.append((st.st_mtime, item.name, path))
        found.sort()
        if not_files:
            log.warning("Skipped %d entr%s in %s named *.csv that %s not a file to read: %s; move %s away",
                        len(not_files), "y" if len(not_files) == 1 else "ies", s.csv_directory,
                        "is" if len(not_files) == 1 else "are", ", ".join(sorted(not_files)),
                        "it" if len(not_files) == 1 else "them")
        if self.waiting_files:
            log.info("%d file(s) modified in the last %g s wait for the next run (BOBO may still be writing)",
                     self.waiting_files, s.file_settle_seconds)
        return self._skip_remembered([path for _, _, path in found])

    def _identity(self, path: Path, sha256: Optional[str] = None) -> ProcessedFile:
        st = self._stats.get(path) or path.stat()
        return ProcessedFile(path.name, st.st_size, st.st_mtime_ns, sha256 or file_sha256(path))

    def _skip_remembered(self, paths: List[Path]) -> List[Path]:
        if not paths:
            return paths
        known = self.db.processed_files()
        ready = []
        for path in paths:
            st = self._stats[path]
            same_size = [k for k in known.get(path.name, ()) if k.size == st.st_size]
            if same_size and (any(k.mtime_ns == st.st_mtime_ns for k in same_size)
                              or file_sha256(path) in {k.sha256 for k in same_size}):
                if self.settings.move_processed_files and not self.read_only:
                    self._move(path, self.settings.processed_directory, "already confirmed by AtHoc")
                continue
            ready.append(path)
        return ready

    def parse_csv_file(self, path: Path) -> List["BOBOEntry"]:
        """The valid events of one file (rejected rows are logged)."""
        from bobo_csv import parse_csv_file
        entries, report = parse_csv_file(Path(path))
        for line in report.rejection_lines():
            log.warning("Rejected %s", line)
        return entries

    def _move(self, path: Path, folder: Path, why: str) -> bool:
        try:
            target = move_without_overwrite(path, folder)
        except OSError as exc:
            log.error("Cannot move %s to %s (%s): %s. Its records are recorded, so the next run only retries the "
                      "move; check the folder's permissions and free space", path.name, folder, why, exc)
            self.failed_moves += 1
            return False
        log.info("Moved %s to %s (%s)", path.name, target, why)
        return True

    def _read_batch(self, files: Sequence[Path], result: BatchResult
                    ) -> Tuple[Dict[str, _Winner], List[Tuple[Path, "CsvFile"]]]:
        """Stream every file, keeping only each employee's newest event."""
        from bobo_csv import CsvFile, supersedes
        winners: Dict[str, _Winner] = {}
        reports: List[Tuple[Path, CsvFile]] = []
        for index, path in enumerate(files):
            report = CsvFile(path)
            try:
                for entry in report.events():
                    key = (entry.event_time, entry.record_created, index, entry.line)
                    best = winners.get(entry.employee_id)
                    if best is None or supersedes(key, best.key):
                        winners[entry.employee_id] = _Winner(entry, key, path)
            except FileNotFoundError:
                log.info("%s disappeared before it was read; skipped", path.name)
                continue
            except OSError as exc:
                log.error("Cannot read %s: %s. It stays for the next run; check the file's permissions",
                          path.name, exc)
                continue
            for line in report.rejection_lines():
                log.warning("Rejected %s", line)
            if report.encoding == "cp1252":
                log.info("%s is not UTF-8; read as Windows-1252", path.name)
            result.rows += report.rows
            result.rejected += report.rejected_count
            reports.append((path, report))
        return winners, reports

    # --- one batch ---

    def process_file_batch(self, files: Sequence[Path], dry_run: bool = False) -> BatchResult:
        """Send the newest event per employee of these files to AtHoc, then record and move the files."""
        with _collector_paused():
            return self._process_file_batch(files, dry_run)

    def _process_file_batch(self, files: Sequence[Path], dry_run: bool) -> BatchResult:
        started = time.monotonic()
        s = self.settings
        result = BatchResult(files=len(files))
        winners, reports = self._read_batch(files, result)
        crash_point("after_parse")
        result.stale = sum(r.valid for _, r in reports) - len(winners)  # superseded inside the batch
        updates, sources = self._plan_updates(winners, result)
        if dry_run:
            self._print_plan(updates, sources, reports)
            return result
        outcomes: Dict[str, Any] = {}
        if updates:
            from athoc_client import AtHocError
            try:
                outcomes = self.athoc_client.batch_update_duty_status(updates, s.duty_status_field)
            except AtHocError as exc:
                self._athoc_failed("AtHoc update failed", exc)
                log.error("The %d file(s) of this batch stay in %s for the next run (an outage does not count "
                          "towards MAX_RETRY_ATTEMPTS)", len(files), s.csv_directory)
                result.outage = True
                return result
            crash_point("after_athoc")
        self._finish_batch(reports, winners, sources, outcomes, result)
        log.info("Batch done in %.1f s: %s", time.monotonic() - started, result.summary())
        return result

    def _plan_updates(self, winners: Dict[str, _Winner], result: BatchResult
                      ) -> Tuple[Dict[str, str], Dict[str, _Winner]]:
        """LOGIN_ID -> new duty value for winners newer than what AtHoc has from us, and mapped."""
        from bobo_csv import supersedes
        states = self.db.duty_states()
        mappings = self.db.all_mappings()
        unmapped, ambiguous = [], []
        updates: Dict[str, str] = {}
        sources: Dict[str, _Winner] = {}
        for eid, winner in winners.items():
            applied = states.get(eid)
            if applied is not None and not supersedes(winner.entry.order_key, applied):
                result.stale += 1
                continue
            login = mappings.get(eid)
            if login is None:
                unmapped.append(eid)
                continue
            updates[login] = winner.entry.athoc_value
            sources[login] = winner
        if unmapped:
            ambiguous_ids = self.db.ambiguous_ids()
            ambiguous = [e for e in unmapped if e in ambiguous_ids]
            plain = [e for e in unmapped if e not in ambiguous_ids]
            if plain:
                log.warning("%d employee id(s) have no AtHoc user in the mappings, so their events were not sent: %s."
                            " If they should, check their %s in AtHoc, then run --sync-mappings",
                            len(plain), _shorten(plain), self.settings.collar_id_field)
            if ambiguous:
                log.warning("%d employee id(s) are held by several AtHoc users, so their events were not sent: %s",
                            len(ambiguous), _shorten(ambiguous))
            result.unmapped = len(unmapped)
        return updates, sources

    def _finish_batch(self, reports: List[Tuple[Path, "CsvFile"]], winners: Dict[str, _Winner],
                      sources: Dict[str, _Winner], outcomes: Dict[str, Any], result: BatchResult) -> None:
        """Record the outcome in one transaction, then move the files."""
        now = self.clock()
        applied, gone = [], []
        problems: Dict[Path, List[str]] = {}
        debug = log.isEnabledFor(logging.DEBUG)
        for login, outcome in outcomes.items():
            winner = sources[login]
            entry = winner.entry
            if outcome.status == "ok":
                applied.append((entry.employee_id, entry.event_time, entry.record_created, int(entry.on_duty),
                                entry.athoc_value, login, entry.source_file))
                if debug:
                    log.debug("%s (%s) set to %r from %s:%d", login, entry.employee_id, entry.athoc_value,
                              entry.source_file, entry.line)
            elif outcome.status == "gone":
                gone.append(entry.employee_id)
                log.info("%s (%s) is no longer in AtHoc; its mapping is dropped", login, entry.employee_id)
            else:
                problems.setdefault(winner.path, []).append(f"{entry.employee_id} ({login}): {outcome.details}")
        result.updated, result.gone = len(applied), len(gone)
        result.failed = sum(len(p) for p in problems.values())
        result.logins_set = [row[5] for row in applied]

        finished: List[Tuple[Path, ProcessedFile]] = []
        failed_files: Dict[str, str] = {}
        log_rows, bad, retry = [], [], []
        for path, report in reports:
            if report.is_bad:
                reason = "not text" if report.not_text else f"no valid row, {report.rejected_count} rejected"
                bad.append((path, reason))
                log_rows.append((path.name, report.rows, 0, report.rejected_count, reason))
                continue
            errors = problems.get(path, [])
            text = "; ".join(errors + report.rejection_lines())[:4000]
            log_rows.append((path.name, report.rows, report.valid - len(errors), report.rejected_count + len(errors),
                             text))
            if errors:
                failed_files[path.name] = "; ".join(errors)[:1000]
                retry.append(path)
                more = f"; and {len(errors) - SHOWN_IDS} more" if len(errors) > SHOWN_IDS else ""
                log.warning("%s: AtHoc did not apply %d record(s): %s%s", path.name, len(errors),
                            "; ".join(errors[:SHOWN_IDS]), more)
            else:
                finished.append((path, self._identity(path)))
        record = BatchRecord(applied, gone, failed_files, [f for _, f in finished], log_rows)
        attempts = self.db.commit_batch(record, now)
        crash_point("after_commit")
        self._file_moves(bad, retry, finished, attempts, result)

    def _file_moves(self, bad: List[Tuple[Path, str]], retry: List[Path], finished: List[Tuple[Path, ProcessedFile]],
                    attempts: Dict[str, int], result: BatchResult) -> None:
        s = self.settings
        for path, reason in bad:
            log.error("%s is a bad file (%s): moved to FAILED_FILES_DIRECTORY; fix or remove it there", path.name,
                      reason)
            self._move(path, s.failed_files_directory, "bad file")
            result.bad_files += 1
        for path in retry:
            count = attempts.get(path.name, 1)
            if count >= s.max_retry_attempts:
                log.error("%s: AtHoc rejected some of its records %d times; moved to FAILED_FILES_DIRECTORY. Check "
                          "the errors in the log, fix them in AtHoc, then move the file back to CSV_DIRECTORY",
                          path.name, count)
                if self._move(path, s.failed_files_directory, f"failed {count} attempts"):
                    self.db.clear_attempts([path.name])
                result.files_failed += 1
            else:
                log.warning("%s: AtHoc rejected some of its records (attempt %d of %d); it stays for the next run",
                            path.name, count, s.max_retry_attempts)
                result.files_retrying += 1
        for path, _ in finished:
            result.files_done += 1
            if s.move_processed_files:
                self._move(path, s.processed_directory, "confirmed by AtHoc")
            else:
                log.info("%s confirmed by AtHoc; it stays (MOVE_PROCESSED_FILES=false) and will not be sent again",
                         path.name)

    def _print_plan(self, updates: Dict[str, str], sources: Dict[str, _Winner],
                    reports: List[Tuple[Path, "CsvFile"]]) -> None:
        """--dry-run: what would be sent and where each file would go."""
        print(f"Would send {len(updates)} update(s) to AtHoc field {self.settings.duty_status_field}:")
        for login in sorted(updates, key=lambda l: sources[l].entry.employee_id):
            entry = sources[login].entry
            value = updates[login] or "(cleared: off duty)"
            print(f"  {entry.employee_id:>10}  {login:<40} {value:<22} {entry.source_file}:{entry.line}")
        target = self.settings.processed_directory if self.settings.move_processed_files else "stays (remembered)"
        for path, report in reports:
            where = self.settings.failed_files_directory if report.is_bad else target
            print(f"  {path.name}: {report.valid} valid, {report.rejected_count} rejected rows -> {where}")

    # --- cleanup and purges ---

    def cleanup_due(self, now: Optional[datetime] = None) -> bool:
        """AUTO_CLEANUP_HOURS > 0 and the last cleanup is CLEANUP_INTERVAL_MINUTES old or more."""
        s = self.settings
        if s.auto_cleanup_hours <= 0:
            return False
        last = self.db.get_state("last_cleanup")
        now = now or self.clock()
        if last is None or _clock_went_back(datetime.fromisoformat(last), now):
            return True
        return now - datetime.fromisoformat(last) >= timedelta(minutes=s.cleanup_interval_minutes)

    def clear_old_duty_status(self, exclude: Sequence[str] = ()) -> List[str]:
        """Clear duty values older than AUTO_CLEANUP_HOURS (missed book-offs), except `exclude`."""
        from athoc_client import AtHocError
        s, now = self.settings, self.clock()
        try:
            cleared = self.athoc_client.clear_old_duty_status(s.duty_status_field, s.auto_cleanup_hours, now=now,
                                                              exclude=exclude)
        except AtHocError as exc:
            self._athoc_failed("Cleanup of old duty values failed", exc)
            return []
        self.db.record_cleared(cleared, now)
        self.db.set_state("last_cleanup", now.isoformat(timespec="seconds"))
        if cleared:
            log.info("Cleanup: cleared %s for %d user(s) on duty for over %g hours without a book-off: %s",
                     s.duty_status_field, len(cleared), s.auto_cleanup_hours, _shorten(cleared))
        return cleared

    def purge_processed_files(self) -> int:
        """Delete processed files older than PROCESSED_FILES_PURGE_DAYS (0 keeps them); at most hourly."""
        s, now = self.settings, self.clock()
        last = self.db.get_state("last_purge")
        if s.processed_files_purge_days <= 0:
            return 0
        if last and not _clock_went_back(datetime.fromisoformat(last), now) and \
                now - datetime.fromisoformat(last) < timedelta(hours=1):
            return 0
        cutoff = time.time() - s.processed_files_purge_days * 86400
        removed = 0
        if s.processed_directory.is_dir():
            for path in s.processed_directory.iterdir():
                try:
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except OSError as exc:
                    log.warning("Cannot delete old processed file %s: %s", path, exc)
        self.db.forget_processed_before(now - timedelta(days=s.processed_files_purge_days))
        self.db.set_state("last_purge", now.isoformat(timespec="seconds"))
        if removed:
            log.info("Deleted %d processed file(s) older than %d days", removed, s.processed_files_purge_days)
        return removed

    # --- the run ---

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

    def run(self) -> int:
        """One scheduled run; returns the exit code."""
        started = time.monotonic()
        for warning in self.settings.warnings:
            log.warning(warning)
        problems = self.check_folders()
        if problems:
            for problem in problems:
                log.error(problem)
            return EXIT_CONFIG
        total = BatchResult()
        sync_failed = False
        if self.should_run_user_mapping_sync():
            sync_failed = not self.sync_worker_mappings()
        files = self.collect_csv_files()
        if files and not self.db.mapping_count():
            log.error("No user mappings yet (the mapping sync has not succeeded): %d file(s) wait, so no event is "
                      "reported unmapped by mistake. Run --check and --sync-mappings", len(files))
            self.athoc_down = self.athoc_down or "no user mappings"
        left = 0
        for start in range(0, len(files), self.settings.batch_size):
            batch = files[start:start + self.settings.batch_size]
            if self.athoc_down or time.monotonic() - started > RUN_BUDGET_SECONDS:
                left += len(batch)
                continue
            total.add(self.process_file_batch(batch))
        if left:
            log.info("%d file(s) left for the next run%s", left, " (AtHoc is unavailable)" if self.athoc_down else "")
        if not self.athoc_down and self.cleanup_due():
            self.clear_old_duty_status(exclude=total.logins_set)
        self.purge_processed_files()
        self.db.set_state("last_run", self.clock().isoformat(timespec="seconds"))
        if total.updated:
            self.db.set_state("last_athoc_update", self.clock().isoformat(timespec="seconds"))
        needs_retry = bool(self.athoc_down or left or total.files_retrying or sync_failed or self.failed_moves)
        if files or needs_retry:
            log.info("Run done in %.1f s: %s; exit %d", time.monotonic() - started, total.summary(),
                     EXIT_RETRY if needs_retry else EXIT_OK)
        else:
            log.info("Nothing to do (%d file(s) settling)", self.waiting_files)
        return EXIT_RETRY if needs_retry else EXIT_OK

    def dry_run(self) -> int:
        """Parse, resolve and map as a run would, print what would be sent; write nothing."""
        self.read_only = True
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
        self.process_file_batch(files, dry_run=True)
        return EXIT_OK

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self.db.close()
