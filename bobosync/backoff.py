"""Back-offs that outlive a run: after each failure the wait doubles, from 5 minutes up to an hour.

Task Scheduler starts a run every minute, so a failure that only a person or time can cure (AtHoc
refusing the credentials, a mapping sync that keeps failing) would otherwise be retried 1,440 times
a day: enough to lock the service account, and a load on a struggling AtHoc. The state lives in
the database's run_state table, so every run sees it.
"""
from datetime import datetime, timedelta
from typing import Optional

from bobo_db import BOBODatabase
from schedule import parse_stamp, stamp

FIRST_WAIT = timedelta(minutes=5)
LONGEST_WAIT = timedelta(hours=1)


class Backoff:
    """The back-off called `name` (run_state keys <name>_until, <name>_failures, <name>_fingerprint)."""

    def __init__(self, db: BOBODatabase, name: str):
        self.db, self.name = db, name

    @property
    def failures(self) -> int:
        return int(self.db.get_state(f"{self.name}_failures") or 0)

    def next_try(self) -> Optional[datetime]:
        """When the next attempt is due, or None when not backing off."""
        until = self.db.get_state(f"{self.name}_until")
        return parse_stamp(until) if until else None

    def waiting(self, now: datetime, fingerprint: str = "") -> bool:
        """True while the back-off runs: not yet due, the same fingerprint, and the clock not set back."""
        until = self.next_try()
        if until is None or now >= until or until - now > LONGEST_WAIT + timedelta(minutes=1):
            return False  # due, or further ahead than any wait: the clock was set back
        return fingerprint == (self.db.get_state(f"{self.name}_fingerprint") or "")

    def failed(self, now: datetime, fingerprint: str = "") -> datetime:
        """Record one more failure; returns when the next attempt is due."""
        failures = self.failures + 1
        wait = min(FIRST_WAIT * 2 ** min(failures - 1, 10), LONGEST_WAIT)
        until = now + wait
        self.db.set_states({f"{self.name}_failures": str(failures), f"{self.name}_until": stamp(until),
                            f"{self.name}_fingerprint": fingerprint})
        return until

    def succeeded(self) -> None:
        if self.db.get_state(f"{self.name}_failures") is not None:
            self.db.delete_states([f"{self.name}_failures", f"{self.name}_until", f"{self.name}_fingerprint"])
