"""The problems an alert is about, and what one scheduled run saw of each, from facts the run already has.

For each problem a run says one of three things: it is there (with a detail), it is not, or this run
cannot tell (an idle run makes no AtHoc call, so it knows nothing of AtHoc): then its state is left as it
was. AtHoc's problems come from the run's AtHoc link (its first call-level failure, or a token issued);
the others from the database and the folders.
"""
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Dict, NamedTuple, Optional

from results import shorten
from schedule import parse_stamp, stamp

if TYPE_CHECKING:
    from engine import BOBOProcessor

ATHOC, CREDENTIALS, FAILED_FILES = "athoc_unreachable", "credentials_refused", "failed_files"
MAPPING_SYNC, PENDING, BOBO_SILENT = "mapping_sync_failing", "pending_events_old", "bobo_silent"
LAST_FILE_KEY = "last_bobo_file"  # run_state: the newest modification time of a BOBO file seen
UNKNOWN = "(this run cannot tell)"


class Problem(NamedTuple):
    """What an alert says of a problem: its title, what to do, and its Windows event id."""

    title: str
    advice: str
    event_id: int


PROBLEMS = {
    ATHOC: Problem("AtHoc cannot be reached or refuses bobosync's calls",
                   "Files wait in CSV_DIRECTORY and are sent, newest event per person, once AtHoc answers. Check "
                   "the network, the proxy and AtHoc itself; --check shows where it stops.", 101),
    CREDENTIALS: Problem("AtHoc refused the credentials",
                         "AtHoc refused APIUSER/PASSWORD or CLIENT_ID/CLIENT_SECRET. Runs stop asking until they "
                         "change (so the account is not locked): fix them in .env or the credential store "
                         "(--store-secret), then run --check.", 102),
    FAILED_FILES: Problem("A file was set aside in the failed folder",
                          "Each file in FAILED_FILES_DIRECTORY needs a person: the log says why it was set aside. "
                          "Fix it and move it back to CSV_DIRECTORY, or remove it.", 103),
    MAPPING_SYNC: Problem("The user mapping sync is failing",
                          "The mappings held stay in use, but new starters and moved collar numbers wait. The log "
                          "and --status say why; --sync-mappings tries at once (--accept-drop for a held-back "
                          "listing that is right).", 104),
    PENDING: Problem("Events wait for an AtHoc user",
                     "These employee numbers have had no AtHoc user for ALERT_PENDING_HOURS: their duty is not "
                     "shown in AtHoc. Check their COLLAR_ID_FIELD in AtHoc; the events are sent once a user holds "
                     "the number.", 105),
    BOBO_SILENT: Problem("No file from BOBO",
                         "No new CSV file has arrived for BOBO_SILENCE_MINUTES: check that BOBO is running and "
                         "exporting, and that CSV_DIRECTORY (the share) is reachable.", 106),
}
TEST_EVENT_ID = 100


def observe(processor: "BOBOProcessor") -> Dict[str, Optional[str]]:
    """problem -> its detail when this run saw it, None when it saw it is not there; a problem this run cannot
    tell about is left out."""
    seen: Dict[str, Optional[str]] = {}
    _athoc(processor, seen)
    seen[FAILED_FILES] = _failed_files(processor)
    if MAPPING_SYNC not in seen:
        seen[MAPPING_SYNC] = _mapping_sync(processor)
    now = processor.clock()
    seen[PENDING] = _pending(processor, now)
    seen[BOBO_SILENT] = _silence(processor, now)
    return {name: detail for name, detail in seen.items() if detail != UNKNOWN}


def _athoc(processor: "BOBOProcessor", seen: Dict[str, Optional[str]]) -> None:
    """AtHoc unreachable and credentials refused, from the run's first AtHoc failure; while AtHoc fails, a
    failing mapping sync is its consequence, not a problem of its own (left as it was)."""
    from athoc_link import CredentialsBackoffError
    from athoc_types import CredentialsRefusedError
    link = processor.link
    failure = link.failure
    if isinstance(failure, (CredentialsRefusedError, CredentialsBackoffError)):
        seen[CREDENTIALS] = str(failure)
        if isinstance(failure, CredentialsRefusedError):
            seen[ATHOC] = None  # it answered, refusing
        seen[MAPPING_SYNC] = UNKNOWN
    elif failure is not None:
        seen[ATHOC] = str(failure)
        seen[MAPPING_SYNC] = UNKNOWN
        if link.answered:
            seen[CREDENTIALS] = None
    elif link.answered:
        seen[ATHOC] = seen[CREDENTIALS] = None


def _failed_files(processor: "BOBOProcessor") -> Optional[str]:
    folder = processor.settings.failed_files_directory
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.lower().endswith(".csv") and e.is_file()]
    except OSError:
        return None if not folder.exists() else UNKNOWN
    if not names:
        return None
    return f"{len(names)} file(s) in {folder}: {shorten(names)}"


def _mapping_sync(processor: "BOBOProcessor") -> Optional[str]:
    status = processor.db.get_sync_status()
    if not processor.settings.sync_mappings or status is None or status["status"] == "success":
        return None
    held = processor.db.get_state("mapping_held_back")
    if status["status"] == "held_back" and held:
        return f"held back since {status['last_sync_time']}: {held}"
    what = "AtHoc listed no users" if status["status"] == "no_data" else "it failed (the log says why)"
    return (f"the last attempt, at {status['last_sync_time']}: {what}; last good sync "
            f"{processor.db.get_state('last_good_mapping_sync') or 'never'}")


def _pending(processor: "BOBOProcessor", now: datetime) -> Optional[str]:
    hours = processor.settings.alert_pending_hours
    if hours <= 0:
        return None
    cutoff = stamp(now - timedelta(hours=hours))
    old = [e for (e,) in processor.db.conn.execute(
        "SELECT employee_id FROM pending_events WHERE first_seen < ? ORDER BY employee_id", (cutoff,))]
    if not old:
        return None
    return f"{len(old)} employee number(s) with events pending for over {hours:g} h: {shorten(old)}"


def _silence(processor: "BOBOProcessor", now: datetime) -> Optional[str]:
    """No BOBO file newer than BOBO_SILENCE_MINUTES. The newest file's time is kept in run_state; the first
    run that looks starts the count (a new site is not silent at once)."""
    db, minutes = processor.db, processor.settings.bobo_silence_minutes
    kept = db.get_state(LAST_FILE_KEY)
    last = parse_stamp(kept) if kept else None
    newest = processor.inbox.newest_mtime
    seen = min(datetime.fromtimestamp(newest), now) if newest else None
    if last is None or last > now or (seen is not None and seen > last + timedelta(seconds=1)):
        last = seen or now  # (a time ahead of the clock: it was set back, so the count starts again)
        db.set_state(LAST_FILE_KEY, stamp(last))
    if minutes <= 0 or now - last < timedelta(minutes=minutes):
        return None
    why = "; CSV_DIRECTORY cannot be read" if not processor.settings.csv_directory.is_dir() else ""
    return f"the newest file from BOBO is from {stamp(last)}, over {minutes:g} min ago{why}"
