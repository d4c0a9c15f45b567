"""The cleanup of missed book-offs: duty values older than AUTO_CLEANUP_HOURS are cleared in AtHoc.

It runs at most every CLEANUP_INTERVAL_MINUTES, skips users updated in the same run, and
records what it cleared so the duty state stays true to what AtHoc shows.
"""
import logging
from datetime import datetime, timedelta
from typing import Dict, List, Sequence

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
            client = self.link.client  # (may connect: an AtHocError too)
            held = client.duty_values(s.duty_status_field)
            cleared = client.clear_old_duty_status(s.duty_status_field, s.auto_cleanup_hours, now=now,
                                                   exclude=exclude, held=held)
        except AtHocError as exc:
            self.link.failed("Cleanup of old duty values failed", exc)
            return []
        from audit_steps import Cleared
        found = self._found_empty(now, held, exclude)
        self.db.record_cleared(cleared + found, now, Cleared(now, cleared, s.auto_cleanup_hours, found))
        self.db.set_state("last_cleanup", stamp(now))
        if cleared:
            log.info("Cleanup: cleared %s for %d user(s) on duty for over %g hours without a book-off: %s",
                     s.duty_status_field, len(cleared), s.auto_cleanup_hours, shorten(cleared))
        if found:
            log.warning("Cleanup: AtHoc already holds no %s for %d user(s) bobosync set on duty over %g hours ago "
                        "(a clearing whose answer was lost, or the value removed in AtHoc): recorded as off duty "
                        "now: %s", s.duty_status_field, len(found), s.auto_cleanup_hours, shorten(found))
        return cleared

    def _found_empty(self, now: datetime, held: Dict[str, str], exclude: Sequence[str]) -> List[str]:
        """Users bobosync last set on duty before the cleanup age whose field AtHoc's complete listing shows empty:
        an earlier clearing applied without its answer reaching us (a reply short of results, a run killed), which
        no later cleanup would see, as the listing only holds users with a value."""
        cutoff = (now - timedelta(hours=self.settings.auto_cleanup_hours)).strftime("%Y%m%d%H%M%S")
        skip = set(exclude)
        return [login for login in self.db.on_duty_logins_before(cutoff) if login not in held and login not in skip]
