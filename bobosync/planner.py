"""The batch planner: read a batch of files, keep each person's newest event, decide what to send.

An event is sent when it is newer than the last one AtHoc confirmed for that person and the
person is mapped to an AtHoc user; older events are stale, unmapped ones are reported.
"""
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from audit import Superseded, recording
from bobo_csv import BOBOEntry, CsvFile, supersedes
from bobo_db import BOBODatabase
from config import Settings
from results import BatchResult, shorten

log = logging.getLogger("bobosync")

# event time, record created, file order (modification time, then name: the same whichever batch or run reads
# the file), line: one total order of events, so the same files give the same result in any batching
OrderKey = Tuple[str, str, str, int]


class Winner:
    """The newest event of one employee in a batch, its order key and the file it came from."""

    __slots__ = ("entry", "key", "path")

    def __init__(self, entry: BOBOEntry, key: OrderKey, path: Path):
        self.entry, self.key, self.path = entry, key, path


class BatchPlan:
    """What a batch read and what it would send: LOGIN_ID -> duty value, and each value's source."""

    def __init__(self, reports: List[Tuple[Path, CsvFile]], superseded: Optional[Superseded] = None):
        self.reports = reports
        self.updates: Dict[str, str] = {}
        self.sources: Dict[str, Winner] = {}
        self.pending: Dict[str, Winner] = {}  # employee id -> newest event, for people no AtHoc user holds yet
        self.superseded = superseded  # the events superseded inside the batch, for the audit trail
        self.stale: List[Tuple[Winner, str, OrderKey]] = []  # with the LOGIN_ID and the order of the event applied
        self.mappings: Dict[str, str] = {}


def read_batch(files: Sequence[Path], result: BatchResult, file_order: Callable[[Path], str], not_after: str
               ) -> Tuple[Dict[str, Winner], List[Tuple[Path, CsvFile]], Optional[Superseded]]:
    """Stream every file, keeping only each employee's newest event, and the events it superseded (for the audit
    trail); unreadable files are left out. Events later than `not_after` (YYYYMMDDHHMMSS) are rejected rows."""
    winners: Dict[str, Winner] = {}
    reports: List[Tuple[Path, CsvFile]] = []
    superseded = Superseded() if recording() else None
    lost = superseded.add if superseded is not None else None
    for path in files:
        report = CsvFile(path, not_after=not_after)
        order = file_order(path)
        try:
            for entry in report.events():
                key = (entry.event_time, entry.record_created, order, entry.line)
                best = winners.get(entry.employee_id)
                if best is None or supersedes(key, best.key):
                    winners[entry.employee_id] = Winner(entry, key, path)
                    loser = best.entry if best is not None else None
                else:
                    loser = entry
                if loser is not None and lost is not None:
                    lost(loser)
        except FileNotFoundError:
            log.info("%s disappeared before it was read; skipped", path.name)
            continue
        except (OSError, UnicodeDecodeError) as exc:  # a decoding error: the file changed after its encoding was told
            log.error("Cannot read %s: %s. It stays for the next run; check the file's permissions", path.name, exc)
            result.unreadable += 1
            continue
        for line in report.rejection_lines():
            log.warning("Rejected %s", line)
        if report.rejected_count or report.not_text:  # the seed's wording, which monitoring may watch for
            log.warning("Error parsing CSV file %s: %s", path.name, "it is not text" if report.not_text else
                        f"{report.rejected_count} row(s) rejected (listed above), {report.valid} valid")
        if report.encoding == "cp1252":
            log.info("%s is not UTF-8; read as Windows-1252", path.name)
        result.rows += report.rows
        result.rejected += report.rejected_count
        reports.append((path, report))
    return winners, reports, superseded


def plan_updates(winners: Dict[str, Winner], reports: List[Tuple[Path, CsvFile]], db: BOBODatabase,
                 settings: Settings, result: BatchResult, superseded: Optional[Superseded] = None) -> BatchPlan:
    """The updates for winners newer than what AtHoc has from us, and mapped; counts stale and unmapped."""
    plan = BatchPlan(reports, superseded)
    result.stale = sum(r.valid for _, r in reports) - len(winners)  # superseded inside the batch
    # only the people in these files: 50 of a force of 50,000 cost 0.1 ms, where reading all costs 30 ms
    people = set(winners) | {employee for _, report in reports for _, _, employee in report.trail_rejected}
    states = db.duty_states_of(people)
    mappings = plan.mappings = db.mappings_of(people)
    unmapped: List[str] = []
    for eid, winner in winners.items():
        applied = states.get(eid)
        if applied is not None and not supersedes(winner.key, applied):
            result.stale += 1
            plan.stale.append((winner, mappings.get(eid, ""), applied))
            continue
        login = mappings.get(eid)
        if login is None:
            unmapped.append(eid)
            plan.pending[eid] = winner
            continue
        plan.updates[login] = winner.entry.athoc_value
        plan.sources[login] = winner
    if unmapped:
        _report_unmapped(unmapped, db, settings)
        result.unmapped = len(unmapped)
    return plan


def _report_unmapped(unmapped: List[str], db: BOBODatabase, settings: Settings) -> None:
    ambiguous_ids = db.ambiguous_ids()
    ambiguous = [e for e in unmapped if e in ambiguous_ids]
    plain = [e for e in unmapped if e not in ambiguous_ids]
    if plain:
        log.warning("%d employee id(s) have no AtHoc user in the mappings: %s. Their events are kept as pending "
                    "and sent once a user holds the number (looked up in AtHoc every UNMAPPED_LOOKUP_MINUTES and "
                    "after each mapping sync); check their %s in AtHoc", len(plain), shorten(plain),
                    settings.collar_id_field)
    if ambiguous:
        log.warning("%d employee id(s) are held by several AtHoc users: %s. Their events are kept as pending "
                    "until one user holds each", len(ambiguous), shorten(ambiguous))


def print_plan(plan: BatchPlan, settings: Settings) -> None:
    """--dry-run: what would be sent and where each file would go."""
    print(f"Would send {len(plan.updates)} update(s) to AtHoc field {settings.duty_status_field}:")
    for login in sorted(plan.updates, key=lambda name: plan.sources[name].entry.employee_id):
        entry = plan.sources[login].entry
        value = plan.updates[login] or "(cleared: off duty)"
        print(f"  {entry.employee_id:>10}  {login:<40} {value:<22} {entry.source_file}:{entry.line}")
    target = settings.processed_directory if settings.move_processed_files else "stays (remembered)"
    for path, report in plan.reports:
        where = settings.failed_files_directory if report.is_bad else target
        print(f"  {path.name}: {report.valid} valid, {report.rejected_count} rejected rows -> {where}")
