"""After AtHoc answered: record each outcome in one transaction, then move each file where it belongs.

A file goes to the processed folder only when every record of it that was sent is confirmed;
one with failures stays for the next run until MAX_RETRY_ATTEMPTS, then goes to the failed
folder; a bad file (not text, or no valid row) goes to the failed folder at once.
"""
import logging
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from athoc_types import SyncOutcome
from bobo_db import BatchRecord, BOBODatabase, PendingEvent, ProcessedFile
from config import Settings
from failpoints import crash_point
from file_names import readable_name
from inbox import Inbox
from planner import BatchPlan, Winner
from results import SHOWN_IDS, BatchResult

log = logging.getLogger("bobosync")

AppliedRow = Tuple[str, str, str, int, str, str, str, str, int]  # employee, event, created, on duty, value,
# login, file, file order, line
LogRow = Tuple[str, int, int, int, str]  # filename, entries, successes, errors, errors text
FileSort = Tuple[List[Tuple[Path, str]], List[Path], List[Tuple[Path, ProcessedFile]], List[LogRow]]


class Recorder:
    """Records one batch's outcomes and moves its files."""

    def __init__(self, settings: Settings, db: BOBODatabase, inbox: Inbox):
        self.settings, self.db, self.inbox = settings, db, inbox

    def finish(self, plan: BatchPlan, outcomes: Mapping[str, SyncOutcome], result: BatchResult,
               now: datetime) -> None:
        """Record the outcomes in one transaction, then move the files."""
        applied, gone, problems = self._sort_outcomes(plan, outcomes)
        result.updated, result.gone, result.gone_ids = len(applied), len(gone), list(gone)
        result.failed = sum(len(p) for p in problems.values())
        result.logins_set = [row[5] for row in applied]
        pending = [_pending(winner) for winner in plan.pending.values()]
        pending += [_pending(plan.sources[login]) for login, outcome in outcomes.items() if outcome.status == "gone"]
        bad, retry, finished, log_rows = self._sort_files(plan, problems, outcomes)
        waiting = self.db.pending_ids()  # usually none: then no applied event needs a look at pending_events
        done = [(row[0], (row[1], row[2], row[7], row[8])) for row in applied if row[0] in waiting]
        record = BatchRecord(applied, gone, self._failed_files(plan, problems), [f for _, f in finished], log_rows,
                             pending, done)
        attempts = self.db.commit_batch(record, now)
        crash_point("after_commit")
        self._move_bad(bad, result)
        self._move_retried(retry, attempts, result)
        self._move_finished(finished, result)
        log.info("Batch processing completed: %d file(s) done, %d to retry, %d set aside in the failed folder",
                 result.files_done, result.files_retrying, result.bad_files + result.files_failed)

    def _sort_outcomes(self, plan: BatchPlan, outcomes: Mapping[str, SyncOutcome]
                       ) -> Tuple[List[AppliedRow], List[str], Dict[Path, List[str]]]:
        applied: List[AppliedRow] = []
        gone: List[str] = []
        problems: Dict[Path, List[str]] = {}
        debug = log.isEnabledFor(logging.DEBUG)
        for login, outcome in outcomes.items():
            winner = plan.sources[login]
            entry = winner.entry
            if outcome.status == "ok":
                applied.append((entry.employee_id, entry.event_time, entry.record_created, int(entry.on_duty),
                                entry.athoc_value, login, entry.source_file, winner.key[2], entry.line))
                if debug:
                    log.debug("%s (%s) set to %r from %s:%d", login, entry.employee_id, entry.athoc_value,
                              entry.source_file, entry.line)
            elif outcome.status == "gone":
                gone.append(entry.employee_id)
                log.warning("%s (%s) is no longer in AtHoc: its mapping is dropped and its event kept as pending, "
                            "sent if a user holds %s again", login, entry.employee_id, entry.employee_id)
            else:
                problems.setdefault(winner.path, []).append(f"{entry.employee_id} ({login}): {outcome.details}")
        return applied, gone, problems

    def _sort_files(self, plan: BatchPlan, problems: Dict[Path, List[str]],
                    outcomes: Mapping[str, SyncOutcome]) -> FileSort:
        """(bad files with why, files to retry, finished files with their identity, processing_log rows)."""
        counts = _counts_by_file(plan, outcomes)
        bad: List[Tuple[Path, str]] = []
        retry: List[Path] = []
        finished: List[Tuple[Path, ProcessedFile]] = []
        log_rows: List[LogRow] = []
        for path, report in plan.reports:
            if report.is_bad:
                reason = "not text" if report.not_text else f"no valid row, {report.rejected_count} rejected"
                bad.append((path, reason))
                log_rows.append((readable_name(path.name), report.rows, 0, report.rejected_count, reason))
                continue
            errors = problems.get(path, [])
            applied, pending = counts.get(path, (0, 0))
            what = _what_happened(report.valid, applied, pending, len(errors))
            text = "; ".join([what] + errors + report.rejection_lines())[:4000]
            log_rows.append((readable_name(path.name), report.rows, applied, report.rejected_count + len(errors),
                             text))
            log.info("%s: %s", readable_name(path.name), what)
            if errors:
                retry.append(path)
                more = f"; and {len(errors) - SHOWN_IDS} more" if len(errors) > SHOWN_IDS else ""
                log.warning("%s: AtHoc did not apply %d record(s): %s%s", path.name, len(errors),
                            "; ".join(errors[:SHOWN_IDS]), more)
            elif self.inbox.unchanged(path, report.size, report.sha256):
                finished.append((path, self.inbox.identity(path, report.size, report.sha256)))
        return bad, retry, finished, log_rows

    @staticmethod
    def _failed_files(plan: BatchPlan, problems: Dict[Path, List[str]]) -> Dict[str, str]:
        return {readable_name(path.name): "; ".join(problems[path])[:1000] for path, report in plan.reports
                if not report.is_bad and problems.get(path)}

    def _move_bad(self, bad: List[Tuple[Path, str]], result: BatchResult) -> None:
        for path, reason in bad:
            log.error("%s is a bad file (%s): moved to FAILED_FILES_DIRECTORY; fix or remove it there", path.name,
                      reason)
            self.inbox.move(path, self.settings.failed_files_directory, "bad file")
            result.bad_files += 1

    def _move_retried(self, retry: List[Path], attempts: Dict[str, int], result: BatchResult) -> None:
        s = self.settings
        for path in retry:
            count = attempts.get(readable_name(path.name), 1)
            if count >= s.max_retry_attempts:
                log.error("%s: AtHoc rejected some of its records %d times; moved to FAILED_FILES_DIRECTORY. Check "
                          "the errors in the log, fix them in AtHoc, then move the file back to CSV_DIRECTORY",
                          path.name, count)
                if self.inbox.move(path, s.failed_files_directory, f"failed {count} attempts"):
                    self.db.clear_attempts([readable_name(path.name)])
                result.files_failed += 1
            else:
                log.warning("%s: AtHoc rejected some of its records (attempt %d of %d); it stays for the next run",
                            path.name, count, s.max_retry_attempts)
                result.files_retrying += 1

    def _move_finished(self, finished: List[Tuple[Path, ProcessedFile]], result: BatchResult) -> None:
        for path, identity in finished:
            result.files_done += 1
            if self.settings.move_processed_files:
                self.inbox.move_confirmed(path, identity.size, identity.sha256)
            else:
                log.info("%s is done; it stays (MOVE_PROCESSED_FILES=false) and will not be read again",
                         path.name)


def _pending(winner: Winner) -> PendingEvent:
    e = winner.entry
    return PendingEvent(e.employee_id, e.event_time, e.record_created, winner.key[2], e.line, int(e.on_duty),
                        e.athoc_value, e.source_file)


def _counts_by_file(plan: BatchPlan, outcomes: Mapping[str, SyncOutcome]) -> Dict[Path, Tuple[int, int]]:
    """Per file: (events AtHoc applied, events kept pending), for the file's log line."""
    counts: Dict[Path, List[int]] = {}
    for login, outcome in outcomes.items():
        tally = counts.setdefault(plan.sources[login].path, [0, 0])
        if outcome.status == "ok":
            tally[0] += 1
        elif outcome.status == "gone":
            tally[1] += 1
    for winner in plan.pending.values():
        counts.setdefault(winner.path, [0, 0])[1] += 1
    return {path: (a, p) for path, (a, p) in counts.items()}


def _what_happened(valid: int, applied: int, pending: int, failed: int) -> str:
    """'N valid events: a applied, s stale or superseded, p pending (no AtHoc user yet), f failed'."""
    stale = valid - applied - pending - failed
    parts = [f"{applied} applied", f"{stale} stale or superseded"]
    if pending:
        parts.append(f"{pending} pending (no AtHoc user yet)")
    if failed:
        parts.append(f"{failed} not applied by AtHoc")
    return f"{valid} valid event(s): " + ", ".join(parts)
