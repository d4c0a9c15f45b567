"""A collar number that moves to another AtHoc user takes the officer's duty value with it.

An administrator fixes a number entered on the wrong account, or reissues it: the new user (B)
gets the officer's current value, and the value bobosync set on the old user (A) is cleared,
unless A now holds another officer's number, whose own value it then gets. These updates go out
before the new mapping is recorded: if AtHoc refuses them, the sync fails and the old mapping
stays, so nothing is left half moved.
"""
import logging
from typing import Dict, List, Optional, Tuple

from athoc_link import AtHocLink
from athoc_types import AtHocError, SyncOutcome
from audit import Trail
from audit_steps import collar_moves
from bobo_db import BOBODatabase
from config import Settings

log = logging.getLogger("bobosync")


class CollarMoveFailed(AtHocError):
    """AtHoc did not apply the duty values that follow a moved collar number."""


def follow_moves(settings: Settings, db: BOBODatabase, link: AtHocLink, rows: List[Tuple[str, str, str]],
                 trail: Optional[Trail] = None) -> List[Tuple[str, str]]:
    """Send the duty values that follow moved collar numbers; (employee, new LOGIN_ID) of each move. The moves
    and the values sent go to `trail`, recorded with the new mapping."""
    old, new = db.all_mappings(), {eid: login for eid, login, _ in rows}
    moved = [(eid, old[eid], new[eid]) for eid in new if eid in old and old[eid] != new[eid]]
    if not moved:
        return []
    updates = _values_after_moves(moved, new, db.duty_values())
    outcomes: Dict[str, SyncOutcome] = {}
    if updates:
        outcomes = link.client.batch_update_duty_status(updates, settings.duty_status_field)
        refused = {login: o.details for login, o in outcomes.items() if o.status not in ("ok", "gone")}
        if refused:
            raise CollarMoveFailed(f"AtHoc did not apply the duty values that follow moved collar numbers: "
                                   f"{'; '.join(f'{k}: {v}' for k, v in sorted(refused.items()))}")
    if trail is not None:
        collar_moves(trail, moved, updates, outcomes, {login: eid for eid, login in new.items()}, _events(db))
    for eid, a, b in moved:
        log.warning("Collar number %s moved from AtHoc user %s to %s: %s now holds the officer's duty value (%r), "
                    "and %s %s", eid, a, b, b, updates.get(b, "unchanged"), a,
                    f"was set to {updates[a]!r}" if a in updates else "was left as it was")
    return [(eid, b) for eid, _, b in moved]


def _events(db: BOBODatabase) -> Dict[str, Tuple[str, str, int, str, int]]:
    """employee -> (event time, record created, on duty, file, line) of the event bobosync applied for them."""
    return {row[0]: tuple(row[1:]) for row in db.conn.execute(
        "SELECT employee_id, event_time, record_created, on_duty, source_file, line FROM duty_state")}


def _values_after_moves(moved: List[Tuple[str, str, str]], new: Dict[str, str],
                        states: Dict[str, Tuple[int, str, Optional[str]]]) -> Dict[str, str]:
    """LOGIN_ID -> the value it must hold once the numbers have moved."""
    officer_of = {login: eid for eid, login in new.items()}
    updates: Dict[str, str] = {}
    for eid, a, b in moved:
        state = states.get(eid)
        if state is None:
            continue  # bobosync never set a value for this officer: nothing to move
        updates[b] = state[1]
        other = officer_of.get(a)
        if other is not None and other in states:
            updates[a] = states[other][1]  # A holds another officer's number now: their value
        elif state[1]:
            updates.setdefault(a, "")  # the value bobosync set on A was this officer's: cleared
    return updates
