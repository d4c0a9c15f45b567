"""The cleanup of missed book-offs: duty values older than AUTO_CLEANUP_HOURS are cleared in AtHoc.

It runs at most every CLEANUP_INTERVAL_MINUTES, skips users updated in the same run, and
records what it cleared so the duty state stays true to what AtHoc shows.
"""
import logging
from datetime import datetime, timedelta
from typing import List, Sequence

from athoc_link import AtHocLink
from athoc_types import AtHocError
from bobo_db import BOBODatabase
from config import Settings
from results import shorten
from schedule import is_due, stamp

log = logging.getLogger("bobosync")


class Cleanup:
    """When the cleanup is due, and the cleanup itself."""

    def __init__(self, settings: Settings, db: BOBODatabase, link: AtHocLink):
        self.settings, self.db, self.link = settings, db, link

    def due(self, now: datetime) -> bool:
        """AUTO_CLEANUP_HOURS > 0 and the last cleanup is CLEANUP_INTERVAL_MINUTES old or more."""
        s = self.settings
        return s.auto_cleanup_hours > 0 and is_due(self.db.get_state("last_cleanup"), now,
                                                   timedelta(minutes=s.cleanup_interval_minutes))

    def run(self, now: datetime, exclude: Sequence[str] = ()) -> List[str]:
        """Clear duty values older than AUTO_CLEANUP_HOURS, except `exclude`; the LOGIN_IDs cleared."""
        s = self.settings
        try:
            cleared = self.link.client.clear_old_duty_status(s.duty_status_field, s.auto_cleanup_hours, now=now,
                                                             exclude=exclude)
        except AtHocError as exc:
            self.link.failed("Cleanup of old duty values failed", exc)
            return []
        from audit_steps import Cleared
        self.db.record_cleared(cleared, now, Cleared(now, cleared, s.auto_cleanup_hours))
        self.db.set_state("last_cleanup", stamp(now))
        if cleared:
            log.info("Cleanup: cleared %s for %d user(s) on duty for over %g hours without a book-off: %s",
                     s.duty_status_field, len(cleared), s.auto_cleanup_hours, shorten(cleared))
        return cleared
