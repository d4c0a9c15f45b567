"""--status's first line: healthy, degraded or failing, and why.

failing: duty changes are not reaching AtHoc, or cannot be known to: a configuration error, the
database unreadable or missing, no run for NO_RUN_MINUTES, AtHoc refusing the credentials, files
waiting longer than WAITING_MINUTES, and the open alert problems "AtHoc cannot be reached" and "no
file from BOBO".
degraded: updates flow, but something needs a look: files in the failed folder or being retried, a
mapping sync that failed or was held back, clocks that differ, duty states ahead of the clock,
events pending longer than ALERT_PENDING_HOURS.
healthy: none of these.
"""
from datetime import datetime
from typing import Any, Dict, List

from schedule import parse_stamp

FAILING, DEGRADED, HEALTHY = "failing", "degraded", "healthy"
NO_RUN_MINUTES = 10  # runs start every minute: ten without one means the task is not running
WAITING_MINUTES = 10  # a ready file is sent within a run or two, unless AtHoc or bobosync is failing
FAILING_ALERTS = ("athoc_unreachable", "bobo_silent")  # the others have a fact of their own below


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def health(status: Dict[str, Any], pending_hours: float, now: datetime) -> Dict[str, Any]:
    """{"level": failing/degraded/healthy, "reasons": [the failing ones first]} of a collect_status dict."""
    failing: List[str] = list(status["problems"])
    degraded: List[str] = []
    if status.get("database_error"):
        failing.append(f"the database cannot be read ({status['database_error']})")
    elif status.get("database_missing"):
        failing.append("no run has happened yet (there is no database)")
    else:
        _database_facts(status, pending_hours, now, failing, degraded)
    oldest = status["oldest_waiting_seconds"]
    if oldest is not None and oldest > WAITING_MINUTES * 60:
        failing.append(f"{status['files_waiting']} file(s) wait to be sent, the oldest for {_minutes(oldest)}")
    if status["files_failed"]:
        degraded.append(f"{status['files_failed']} file(s) in the failed folder")
    level = FAILING if failing else DEGRADED if degraded else HEALTHY
    return {"level": level, "reasons": failing + degraded}


def _database_facts(status: Dict[str, Any], pending_hours: float, now: datetime, failing: List[str],
                    degraded: List[str]) -> None:
    last_run = status["last_run"]
    if last_run is None:
        failing.append("no run has happened yet")
    elif (now - parse_stamp(last_run)).total_seconds() > NO_RUN_MINUTES * 60:
        failing.append(f"no run for {_minutes((now - parse_stamp(last_run)).total_seconds())}: is the scheduled "
                       f"task running?")
    if status["credentials_refused"]["times"]:
        failing.append("AtHoc refused the credentials")
    for problem in status.get("alert_problems", []):
        if problem["problem"] in FAILING_ALERTS:
            failing.append(f"{problem['title']} (since {problem['since']})")
    if status["retrying"]:
        degraded.append(f"{len(status['retrying'])} file(s) being retried")
    sync = status["mapping_sync"]
    if sync["held_back"] and sync["status"] == "held_back":
        degraded.append("the mapping sync is held back (it would drop many mappings)")
    elif sync["status"] in ("error", "no_data"):
        degraded.append(f"the last mapping sync failed ({sync['status']})")
    offset = status.get("athoc_clock_minus_ours_seconds")
    if offset is not None and abs(offset) > status["clock_tolerance_seconds"]:
        degraded.append("AtHoc's clock and this server's differ by more than CLOCK_SKEW_TOLERANCE_MINUTES")
    if status["ahead_of_the_clock"]:
        degraded.append(f"{len(status['ahead_of_the_clock'])} duty state(s) dated ahead of the clock")
    oldest = status["pending"]["oldest_since"]
    if pending_hours > 0 and oldest and (now - parse_stamp(oldest)).total_seconds() > pending_hours * 3600:
        degraded.append(f"events pending for over ALERT_PENDING_HOURS ({pending_hours:g} h)")


def health_line(report: Dict[str, Any]) -> str:
    """'Health: degraded: 1 file(s) in the failed folder' as --status prints it first."""
    reasons = report["reasons"]
    return f"Health:              {report['level']}" + (": " + "; ".join(reasons) if reasons else
                                                        " (runs go on, nothing waits, nothing failed)")
