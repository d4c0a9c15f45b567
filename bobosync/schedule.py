"""When scheduled work is due, and the one timestamp format the database keeps.

Every timestamp bobosync writes is local time as 'YYYY-MM-DD HH:MM:SS'. A recorded time
that lies ahead of the clock means the clock was set back: the work is then due at once,
rather than waiting until the clock catches up.
"""
import logging
from datetime import datetime, timedelta
from typing import Optional

log = logging.getLogger("bobosync")

CLOCK_SLACK = timedelta(minutes=1)  # a recorded time this little ahead is rounding, not a clock set back


def stamp(moment: datetime) -> str:
    """`moment` as the database keeps it: 'YYYY-MM-DD HH:MM:SS'."""
    return moment.isoformat(sep=" ", timespec="seconds")


def parse_stamp(text: str) -> datetime:
    """A database timestamp ('YYYY-MM-DD HH:MM:SS'; the older 'T' form is read too)."""
    return datetime.fromisoformat(text)


def clock_went_back(last: datetime, now: datetime) -> bool:
    """True, with a WARNING, when `last` is ahead of `now`: the clock was set back."""
    if last <= now + CLOCK_SLACK:
        return False
    log.warning("The clock is behind a time recorded earlier (%s > %s): it was set back; scheduled work is "
                "treated as due", stamp(last), stamp(now))
    return True


def is_due(last: Optional[str], now: datetime, interval: timedelta) -> bool:
    """Whether work last done at `last` (a stamp, None for never) is due again at `now`."""
    if last is None:
        return True
    when = parse_stamp(last)
    return clock_went_back(when, now) or now - when >= interval
