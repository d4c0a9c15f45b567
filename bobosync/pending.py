"""Events of people bobosync cannot map yet: kept in the database, sent once an AtHoc user holds the number.

A new starter added to AtHoc after the last mapping sync, or a collar number fixed in AtHoc
this afternoon, must not lose the book-on BOBO already sent. Such an event is pending: its
number is looked up in AtHoc (one criteria query per chunk of numbers, each number at most
every UNMAPPED_LOOKUP_MINUTES), and the newest pending event of a person is applied as soon as a
mapping exists, unless a later event was applied meanwhile or it is a book-on older than the
cleanup age. Pending events expire after PENDING_EXPIRY_DAYS.
"""
import logging
from datetime import datetime, timedelta
from typing import Callable, Dict, List, Optional, Tuple

from athoc_link import AtHocLink
from athoc_types import AtHocError, BadRequestError, IncompleteListingError
from bobo_db import BatchRecord, BOBODatabase, PendingEvent
from config import Settings
from mapping_sync import build_mapping
from results import BatchResult, shorten
from schedule import stamp

log = logging.getLogger("bobosync")

LOOKUP_CHUNK = 50  # collar numbers per criteria query: a short URL, one request for most runs


class PendingEvents:
    """Expire, look up and apply the pending events."""

    def __init__(self, settings: Settings, db: BOBODatabase, link: AtHocLink):
        self.settings, self.db, self.link = settings, db, link
        # while this server's clock and AtHoc's differ, no pending book-on is judged too old to send
        self.clock_is_wrong: Callable[[datetime], bool] = lambda now: False

    def due(self, now: datetime) -> List[str]:
        """The numbers due for a look-up (UNMAPPED_LOOKUP_MINUTES), taken before a run's batches: the run
        sends those first, then looks these up, so a slow look-up never holds up the duty updates."""
        return self.db.pending_due_for_lookup(now - timedelta(minutes=self.settings.unmapped_lookup_minutes))

    def work(self, now: datetime, due: Optional[List[str]] = None) -> BatchResult:
        """One run's share: expire old ones, look up the numbers `due` (default: those due now), apply those that
        can be applied."""
        result = BatchResult()
        if not self.db.pending_count():
            return result
        if not self.clock_is_wrong(now):  # a clock days ahead must not expire events that are still young
            self._expire(now)
        self._look_up(now, self.due(now) if due is None else due)
        if not self.link.down:
            self._apply(now, result)
        return result

    def look_again(self, employee_ids: List[str], now: datetime) -> BatchResult:
        """Users AtHoc no longer knows (a renamed LOGIN_ID?): look their numbers up now, in one query, and send
        their events again under the login that holds the number today."""
        result = BatchResult()
        if employee_ids and not self.link.down:
            self._look_up(now, employee_ids)
            if not self.link.down:
                self._apply(now, result)
        return result

    def after_sync(self, now: datetime) -> None:
        """A complete listing was just read: a number it did not map needs no look-up for a while."""
        self.db.mark_looked_up(self.db.pending_events(), now)

    def _expire(self, now: datetime) -> None:
        from audit_steps import ExpiredPending
        cutoff = now - timedelta(days=self.settings.pending_expiry_days)
        expired = self.db.expire_pending(cutoff, ExpiredPending(now, stamp(cutoff), self.settings.pending_expiry_days))
        for employee, event_time, source in expired:
            log.warning("The pending event of %s (%s, from %s) expired after %d days with no AtHoc user holding "
                        "that number: it is dropped. Check %s in AtHoc", employee, event_time, source,
                        self.settings.pending_expiry_days, self.settings.collar_id_field)

    def _look_up(self, now: datetime, only: Optional[List[str]] = None) -> None:
        """Look up pending numbers with no mapping: those due (UNMAPPED_LOOKUP_MINUTES), or `only` these."""
        wanted = self.due(now) if only is None else only
        mapped = self.db.mappings_of(wanted)
        due = [e for e in wanted if e not in mapped]
        for start in range(0, len(due), LOOKUP_CHUNK):
            chunk = due[start:start + LOOKUP_CHUNK]
            try:
                users = self.link.client.find_users_by_field(self.settings.collar_id_field, chunk,
                                                             self.settings.mapping_fields)
            except AtHocError as exc:
                if isinstance(exc, (IncompleteListingError, BadRequestError)):  # AtHoc answered; looked up later
                    log.warning("Looking up employee numbers with pending events failed: %s", exc)
                else:
                    self.link.failed("Looking up employee numbers with pending events failed", exc)
                return
            rows, ambiguous, _ = build_mapping(users, self.settings.collar_id_field)
            found = [row for row in rows if row[0] in set(chunk)]
            if found:
                self.db.add_mappings(found, now)
                log.info("Found AtHoc users for %d employee number(s) with pending events: %s", len(found),
                         shorten([f"{e} ({login})" for e, login, _ in found]))
            self.db.mark_looked_up(chunk, now)

    def _apply(self, now: datetime, result: BatchResult) -> None:
        import audit_steps
        updates, sources, done = self._plan(now)
        if done:
            self.db.drop_pending(done, audit_steps.pending_dropped(now, done))
        if not updates:
            return
        try:
            outcomes = self.link.client.batch_update_duty_status(updates, self.settings.duty_status_field)
        except AtHocError as exc:
            self.link.failed("Sending pending events failed", exc)
            return
        if self.link.unknown_field(outcomes):
            return
        applied, gone = [], []
        for login, outcome in outcomes.items():
            ev = sources[login]
            if outcome.ok:
                applied.append((ev.employee_id, ev.event_time, ev.record_created, ev.on_duty, ev.athoc_value, login,
                                ev.source_file, ev.file_order, ev.line))
            elif outcome.status == "gone":
                gone.append(ev.employee_id)
            else:
                log.warning("AtHoc did not apply the pending event of %s (%s): %s; it stays pending",
                            ev.employee_id, login, outcome.details)
        self.db.commit_batch(BatchRecord(applied, gone, {}, [], [], [], [(r[0], (r[1], r[2], r[7], r[8]))
                                                                         for r in applied],  # all pending
                                         audit_steps.pending_sent(now, sources, outcomes)), now)
        result.updated, result.logins_set = len(applied), [row[5] for row in applied]
        if applied:
            log.info("Applied %d pending event(s) now that AtHoc users hold their numbers: %s", len(applied),
                     shorten([f"{r[0]} ({r[5]})" for r in applied]))

    def _plan(self, now: datetime) -> Tuple[Dict[str, str], Dict[str, PendingEvent], Dict[str, Tuple]]:
        """(LOGIN_ID -> value to send, LOGIN_ID -> its pending event, employee -> (pending event, LOGIN_ID, why)
        for the pending events done without sending)."""
        pending = self.db.pending_events()
        mappings, states = self.db.mappings_of(pending), self.db.duty_states_of(pending)
        too_old = (now - timedelta(hours=self.settings.auto_cleanup_hours)).strftime("%Y%m%d%H%M%S")
        if self.clock_is_wrong(now):
            too_old = ""
        updates: Dict[str, str] = {}
        sources: Dict[str, PendingEvent] = {}
        done: Dict[str, Tuple] = {}
        for employee, ev in pending.items():
            login = mappings.get(employee)
            if login is None:
                continue
            if employee in states and states[employee] >= ev.key:
                done[employee] = (ev, login, "a later event of theirs was applied meanwhile")
            elif ev.on_duty and self.settings.auto_cleanup_hours > 0 and ev.event_time < too_old:
                log.info("The pending book-on of %s (%s) is older than AUTO_CLEANUP_HOURS: not sent, as the "
                         "cleanup would clear it", employee, ev.event_time)
                done[employee] = (ev, login, "a book-on older than AUTO_CLEANUP_HOURS: the cleanup would clear it")
            else:
                updates[login], sources[login] = ev.athoc_value, ev
        return updates, sources, done
