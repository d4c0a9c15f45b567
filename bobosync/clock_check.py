"""This server's clock against AtHoc's: a clock that jumps must not clear or reject anyone.

Windows' Secure Time Seeding, or a wrong NTP source, has moved servers' clocks by days. Every
AtHoc reply carries an HTTP Date header; when the two clocks differ by more than
CLOCK_SKEW_TOLERANCE_MINUTES, the run skips the cleanup and every decision that compares an event
with "now" (events ahead of the clock, pending book-ons too old to send), keeps sending events in
their own order, says so in one WARNING naming both clocks, and exits 3. The last difference seen
is kept for --status. --clear-future repairs duty states dated ahead of the clock.
"""
import logging
from datetime import datetime, timedelta
from typing import Optional

from athoc_link import AtHocLink
from bobo_db import BOBODatabase
from config import Settings
from results import EXIT_OK, EXIT_RETRY
from schedule import stamp

log = logging.getLogger("bobosync")


class ClockCheck:
    """Whether this run may trust its own clock."""

    def __init__(self, settings: Settings, db: BOBODatabase, link: AtHocLink):
        self.settings, self.db, self.link = settings, db, link
        self._warned = False

    def offset(self) -> Optional[float]:
        """AtHoc's clock minus this server's, in seconds: from this run's replies, else the last run's."""
        seen = self.link.clock_offset()
        if seen is not None:
            self.db.set_state("athoc_clock_offset_seconds", f"{seen:.0f}")
            return seen
        stored = self.db.get_state("athoc_clock_offset_seconds")
        return float(stored) if stored else None

    def skewed(self, now: datetime) -> bool:
        """True (with one WARNING, and exit 3) when the two clocks differ by more than the tolerance."""
        offset = self.offset()
        if offset is None or abs(offset) <= self.settings.clock_skew_tolerance_minutes * 60:
            return False
        if not self._warned:
            self._warned = True
            athoc = now + timedelta(seconds=offset)
            log.warning("This server's clock says %s but AtHoc's says %s (%+.0f minutes, more than "
                        "CLOCK_SKEW_TOLERANCE_MINUTES): the cleanup and the checks of events against the clock are "
                        "skipped, events are still sent in their own order. Fix this server's clock (w32tm /resync)",
                        stamp(now), stamp(athoc), offset / 60)
            self.link.person_must_act.append("this server's clock and AtHoc's differ")
        return True


def clear_future_states(settings: Settings, db: BOBODatabase, link: AtHocLink, now: datetime) -> int:
    """--clear-future: forget duty states dated ahead of the clock (accepted before such rows were rejected),
    and clear the duty field of those that were book-ons, so each person's next real event applies."""
    from athoc_types import AtHocError
    limit = (now + timedelta(minutes=settings.future_tolerance_minutes)).strftime("%Y%m%d%H%M%S")
    ahead = db.states_after(limit)
    if not ahead:
        print("No duty state is ahead of the clock: nothing to clear.")
        return EXIT_OK
    on_duty = {login: "" for _, _, on, login in ahead if on and login}
    if on_duty:
        try:
            outcomes = link.client.batch_update_duty_status(on_duty, settings.duty_status_field)
        except AtHocError as exc:
            link.failed("Clearing the duty field of people dated ahead of the clock failed", exc)
            return EXIT_RETRY
        refused = [login for login, outcome in outcomes.items() if not outcome.ok]
        if refused:
            log.error("AtHoc did not clear %s for %s; run --clear-future again", settings.duty_status_field,
                      ", ".join(sorted(refused)))
            return EXIT_RETRY
    from audit_steps import cleared_future
    db.forget_states([employee for employee, _, _, _ in ahead], cleared_future(now, ahead))
    for employee, event_time, on, login in ahead:
        cleared = f"; {settings.duty_status_field} cleared in AtHoc" if on and login else ""
        log.warning("Cleared the duty state of %s (%s), dated %s, ahead of the clock%s", employee,
                    login or "unmapped", event_time, cleared)
    return EXIT_OK
