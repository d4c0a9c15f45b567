"""The audit trail rows of each step that reads events or changes AtHoc's duty field: a batch of files, pending
events sent or given up, the cleanup, collar numbers that moved, --clear-future (audit.Trail writes them)."""
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple

from audit import SETS_FIELD, Trail, answer_of, recording, shown_time

if TYPE_CHECKING:
    from athoc_types import SyncOutcome
    from bobo_csv import CsvFile
    from planner import BatchPlan


def event_row(trail: Trail, entry: Any, login: str, decision: str, **extra: Optional[str]) -> None:
    """A row for one event read from a file (a BOBOEntry or a PendingEvent-like object)."""
    trail.add(entry.employee_id, login, decision, event=int(entry.on_duty), event_time=entry.event_time,
              created=entry.record_created, file=entry.source_file, line=entry.line, **extra)


def file_batch(plan: "BatchPlan", outcomes: Mapping[str, "SyncOutcome"], now: datetime,
               ambiguous: Mapping[str, str]) -> Trail:
    """The rows of one batch of files (planner.BatchPlan, AtHoc's outcome per LOGIN_ID): every event read."""
    trail = Trail(now)
    if not recording():
        return trail
    rows, winners, at = trail.rows, trail.winners, trail.at
    for login, outcome in outcomes.items():
        e = plan.sources[login].entry
        status = outcome.status
        winners[e.employee_id] = len(rows)
        rows.append([at, (e.employee_id, login), e.on_duty, e.event_time, e.record_created or None, e.source_file,
                     e.line, "applied" if status == "ok" else "gone" if status == "gone" else "failed",
                     plan.updates[login], SETS_FIELD if status == "ok" else answer_of(status, outcome.details), None,
                     None])
    for employee, winner in plan.pending.items():
        winners[employee] = len(rows)
        why = (f"employee number held by several AtHoc users ({ambiguous[employee]})" if employee in ambiguous
               else "no AtHoc user holds this employee number")
        event_row(trail, winner.entry, "", "pending", detail=why)
    for winner, login, applied in plan.stale:
        winners[winner.entry.employee_id] = len(rows)
        event_row(trail, winner.entry, login, "stale", detail=_stale_reason(winner.key, applied))
    trail.superseded = plan.superseded
    for _, report in plan.reports:
        more = report.rejected_count - len(report.trail_rejected)
        if not report.rejected_count:
            continue
        name = _source_name(report)
        for line, reason, employee in report.trail_rejected:
            trail.add(employee, plan.mappings.get(employee, ""), "rejected", file=name, line=line, detail=reason)
        if more > 0:
            trail.add("", "", "rejected", file=name,
                      detail=f"and {more} more rejected rows in this file, not recorded one by one")
    return trail


def _source_name(report: "CsvFile") -> str:
    from file_names import readable_name
    return readable_name(report.path.name)


def _stale_reason(key: Tuple[Any, ...], applied: Tuple[Any, ...]) -> str:
    if tuple(key) == tuple(applied):
        return "the event already applied (its file was read again)"
    return f"not newer than the event already applied (clocking time {shown_time(applied[0])})"


def pending_sent(now: datetime, sources: Mapping[str, Any], outcomes: Mapping[str, "SyncOutcome"]) -> Trail:
    """The rows of pending events sent once an AtHoc user held the number (pending.py)."""
    trail = Trail(now)
    for login, outcome in outcomes.items():
        decision = "applied" if outcome.ok else "gone" if outcome.status == "gone" else "failed"
        event_row(trail, sources[login], login, decision, sent=sources[login].athoc_value,
                  answer=answer_of(outcome.status, outcome.details),
                  detail="a pending event, sent once an AtHoc user held the number")
    return trail


def pending_dropped(now: datetime, dropped: Mapping[str, Tuple[Any, str, str]]) -> Trail:
    """Pending events given up without sending: employee -> (event, LOGIN_ID, why)."""
    trail = Trail(now)
    for ev, login, why in dropped.values():
        event_row(trail, ev, login, "dropped", detail=why)
    return trail


class ExpiredPending(Trail):
    """Pending events first seen before the cutoff, read inside the transaction that deletes them."""

    def __init__(self, now: datetime, cutoff: str, days: int):
        super().__init__(now)
        self.cutoff, self.days = cutoff, days

    def collect(self, conn: sqlite3.Connection) -> None:
        for row in conn.execute("SELECT employee_id, on_duty, event_time, record_created, source_file, line, "
                                "first_seen FROM pending_events WHERE first_seen < ?", (self.cutoff,)):
            employee, on, event_time, created, source, line, first_seen = row
            self.add(employee, "", "expired", event=on, event_time=event_time, created=created, file=source,
                     line=line, detail=f"pending since {first_seen}; no AtHoc user held the number within "
                                       f"PENDING_EXPIRY_DAYS ({self.days})")


class Cleared(Trail):
    """The users the cleanup cleared, with the event each had from bobosync, read before duty_state changes."""

    def __init__(self, now: datetime, logins: Sequence[str], hours: float, found_empty: Sequence[str] = ()):
        super().__init__(now)
        self.logins, self.hours, self.found_empty = logins, hours, found_empty

    def collect(self, conn: sqlite3.Connection) -> None:
        why = f"on duty for over {self.hours:g} hours without a book-off (AUTO_CLEANUP_HOURS)"
        found = ("; AtHoc's field was already empty (a clearing whose answer was lost, or the value removed in "
                 "AtHoc): off duty from now")
        for login in [*self.logins, *self.found_empty]:
            detail = why + found if login in self.found_empty else why
            state = conn.execute("SELECT employee_id, on_duty, event_time, record_created, source_file, line FROM "
                                 "duty_state WHERE username = ?", (login,)).fetchone()
            if state is None:
                mapped = conn.execute("SELECT employee_id FROM worker_mapping WHERE username = ?", (login,)).fetchone()
                self.add(mapped[0] if mapped else "", login, "cleared", sent="", answer=SETS_FIELD,
                         detail=detail + "; the value was not one bobosync had set")
                continue
            employee, on, event_time, created, source, line = state
            self.add(employee, login, "cleared", event=on, event_time=event_time, created=created, file=source,
                     line=line, sent="", answer=SETS_FIELD, detail=detail)


def collar_moves(trail: Trail, moved: Sequence[Tuple[str, str, str]], updates: Mapping[str, str],
                 outcomes: Mapping[str, "SyncOutcome"], officer_of: Mapping[str, str],
                 states: Mapping[str, Tuple[Any, ...]]) -> None:
    """Rows for collar numbers that moved (employee, old LOGIN_ID, new LOGIN_ID), and the values that followed."""
    for eid, a, b in moved:
        _move_row(trail, eid, b, states.get(eid), updates, outcomes, f"collar number {eid} moved here from {a}")
        other = officer_of.get(a)
        if a not in updates:
            continue
        if other is not None and other in states:
            _move_row(trail, other, a, states.get(other), updates, outcomes,
                      f"{a} now holds collar number {other}: that officer's value")
        else:
            _move_row(trail, eid, a, states.get(eid), updates, outcomes,
                      f"collar number {eid} moved from here to {b}, so the value bobosync set here is cleared")


def _move_row(trail: Trail, employee: str, login: str, state: Optional[Tuple[Any, ...]], updates: Mapping[str, str],
              outcomes: Mapping[str, "SyncOutcome"], why: str) -> None:
    sent = updates.get(login)
    outcome = outcomes.get(login)
    answer = answer_of(outcome.status, outcome.details) if outcome is not None else None
    if state is None:
        trail.add(employee, login, "moved", sent=sent, answer=answer, detail=why + " (no duty value to move)")
        return
    event_time, created, on, source, line = state
    trail.add(employee, login, "moved", event=on, event_time=event_time, created=created, file=source, line=line,
              sent=sent, answer=answer, detail=why)


def cleared_future(now: datetime, ahead: Sequence[Tuple[str, str, int, Optional[str]]]) -> Trail:
    """--clear-future: the duty states forgotten (employee, event time, on duty, LOGIN_ID)."""
    trail = Trail(now)
    for employee, event_time, on, login in ahead:
        sent = "" if on and login else None
        trail.add(employee, login or "", "clear-future", event=on, event_time=event_time, sent=sent,
                  answer=SETS_FIELD if sent is not None else None,
                  detail="dated ahead of the clock; forgotten so that the next real event applies"
                         + ("; duty field cleared" if sent is not None else ""))
    return trail


