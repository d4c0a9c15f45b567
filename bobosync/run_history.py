"""The history of scheduled runs (the run_history table): one row per run, written in the transaction that
records the run's last_run state, so an idle run pays one INSERT and no extra commit; --report reads it.
Purged with the audit trail's AUDIT_RETENTION_DAYS, in bounded chunks."""
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Optional, Tuple

from schedule import stamp

if TYPE_CHECKING:
    from athoc_link import AtHocLink
    from bobo_db import BOBODatabase
    from results import BatchResult

PURGE_CHUNK = 10_000  # rows per delete transaction (a day has 1,440 runs)
PURGE_CHUNKS = 5
_INSERT = ("INSERT INTO run_history (started, ended, duration_ms, exit_code, files, files_done, files_failed, "
           "updated, stale, pending, rejected, failed, gone, problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
           "?)")


def number(moment: datetime) -> int:
    """A moment as run_history and the audit trail keep it: the integer YYYYMMDDHHMMSS."""
    return int(moment.strftime("%Y%m%d%H%M%S"))


def record(db: "BOBODatabase", now: datetime, total: "BatchResult", link: "AtHocLink",
           run: Optional[Tuple[datetime, float, int]]) -> None:
    """Write last_run (and last_athoc_update when the run updated anyone) and, for a scheduled run (`run`: its
    start, monotonic start and exit code), its run_history row, in one transaction."""
    states = {"last_run": stamp(now), **({"last_athoc_update": stamp(now)} if total.updated else {})}
    with db.conn:
        db.conn.executemany("INSERT OR REPLACE INTO run_state (key, value) VALUES (?, ?)", states.items())
        if run is None:
            return
        begun, started, code = run
        problems = _shown("; ".join(dict.fromkeys(p for p in [link.down, *link.person_must_act] if p)), link)
        db.conn.execute(_INSERT, (number(begun), number(now), int((time.monotonic() - started) * 1000), code,
                                  total.files, total.files_done, total.files_failed, total.updated, total.stale,
                                  total.unmapped, total.rejected, total.failed, total.gone, problems))


def _shown(problems: str, link: "AtHocLink") -> str:
    """The problems as a log line would show them: no secret (a run with problems has read its secrets), no
    byte that SQLite cannot store as text; at most 500 characters."""
    if not problems:
        return ""
    from log_setup import SecretFilter
    import logging
    record = logging.LogRecord("bobosync", logging.ERROR, "", 0, problems, None, None)
    SecretFilter(link.settings.secrets).filter(record)
    return record.getMessage()[:500]


def purge(db: "BOBODatabase", now: datetime, retention_days: int) -> int:
    """Delete runs older than `retention_days` (0 keeps them), PURGE_CHUNK rows per transaction; the rows deleted."""
    if retention_days <= 0:
        return 0
    cutoff = number(now - timedelta(days=retention_days))
    deleted = 0
    for _ in range(PURGE_CHUNKS):
        with db.conn:
            count = db.conn.execute("DELETE FROM run_history WHERE id IN (SELECT id FROM run_history WHERE "
                                    "started < ? ORDER BY id LIMIT ?)", (cutoff, PURGE_CHUNK)).rowcount
        deleted += count
        if count < PURGE_CHUNK:
            break
    return deleted
