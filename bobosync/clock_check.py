"""This server's clock against AtHoc's: a clock that jumps must not clear or reject anyone.

Windows' Secure Time Seeding, or a wrong NTP source, has moved servers' clocks by days. Every
AtHoc reply carries an HTTP Date header; when the two clocks differ by more than
CLOCK_SKEW_TOLERANCE_MINUTES, the run skips the cleanup and every decision that compares an event
with "now" (events ahead of the clock, pending book-ons too old to send), keeps sending events in
their own order, says so in one WARNING naming both clocks, and exits 3. The last difference seen
is kept for --status.
"""
import logging
from datetime import datetime, timedelta
from typing import Optional

from athoc_link import AtHocLink
from bobo_db import BOBODatabase
from config import Settings
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
