"""The user mapping: which AtHoc user (LOGIN_ID) holds each employee's collar number.

It is rebuilt from a complete AtHoc listing once a day after SYNC_HOUR, after a failed
sync, and when the last good one is older than SYNC_RETRY_DAYS. An incomplete or empty
listing never replaces the mappings held.
"""
import logging
from datetime import datetime, timedelta
from typing import Any, Dict, List, Tuple

from athoc_link import AtHocLink
from athoc_types import AtHocError, IncompleteListingError, ci_get
from bobo_db import USER_MAPPING, BOBODatabase
from config import Settings
from schedule import clock_went_back, parse_stamp

log = logging.getLogger("bobosync")

MappingRow = Tuple[str, str, str]  # employee id, LOGIN_ID, collar number as AtHoc holds it


def build_mapping(users: Dict[str, Dict[str, Any]], collar_field: str
                  ) -> Tuple[List[MappingRow], Dict[str, List[str]], int]:
    """(employee id, LOGIN_ID, raw collar) rows, ids held by several users, users without an id."""
    from bobo_csv import normalize_employee_id
    holders: Dict[str, List[Tuple[str, str]]] = {}
    without = 0
    for login, attributes in users.items():
        raw = str(ci_get(attributes, collar_field) or "").strip()
        if not raw:
            without += 1
            continue
        holders.setdefault(normalize_employee_id(raw), []).append((login, raw))
    rows = [(eid, hs[0][0], hs[0][1]) for eid, hs in holders.items() if len(hs) == 1]
    ambiguous = {eid: [login for login, _ in hs] for eid, hs in holders.items() if len(hs) > 1}
    return rows, ambiguous, without


class MappingSync:
    """When the mapping sync is due, and the sync itself."""

    def __init__(self, settings: Settings, db: BOBODatabase, link: AtHocLink):
        self.settings, self.db, self.link = settings, db, link

    def due(self, now: datetime) -> bool:
        """Due on first run, after a failed or empty sync, when the last good sync is older than
        SYNC_RETRY_DAYS, or once SYNC_HOUR has passed today and no good sync happened since then."""
        s = self.settings
        if not s.sync_mappings:
            return False
        status = self.db.get_sync_status()
        if status is None or status["status"] != "success":
            return True
        last = parse_stamp(status["last_sync_time"])
        if clock_went_back(last, now) or now - last > timedelta(days=s.sync_retry_days):
            return True
        todays_mark = now.replace(hour=s.sync_hour, minute=0, second=0, microsecond=0)
        return now >= todays_mark > last

    def sync(self, now: datetime) -> bool:
        """Replace the mappings from a complete AtHoc listing; on error or no users, keep them."""
        s = self.settings
        held = self.db.mapping_count()
        try:
            users = self.link.client.get_all_users_with_attributes(s.mapping_fields)
        except AtHocError as exc:
            self.db.record_sync(USER_MAPPING, "error", now)
            if isinstance(exc, IncompleteListingError) and held:
                # AtHoc answers, its listing just does not add up (maybe on every run): duty updates go on with
                # the mappings held, as between two syncs, instead of stopping until the listing is fixed
                log.error("User mapping sync failed: %s", exc)
            else:
                self.link.failed("User mapping sync failed", exc)
            log.error("The %d mappings held are kept; the next run tries the sync again", held)
            return False
        if not users:
            self.db.record_sync(USER_MAPPING, "no_data", now)
            log.warning("User mapping sync: AtHoc listed no users; the %d mappings held are kept. Check that the "
                        "service account may search users of org %s", held, s.org_code)
            return False
        return self._replace(users, now)

    def _replace(self, users: Dict[str, Dict[str, Any]], now: datetime) -> bool:
        s = self.settings
        rows, ambiguous, without = build_mapping(users, s.collar_id_field)
        for eid, logins in sorted(ambiguous.items()):
            log.warning("Collar number %s is held by %d AtHoc users (%s): it is mapped to nobody until fixed in "
                        "AtHoc", eid, len(logins), ", ".join(sorted(logins)))
        count = self.db.replace_mappings(rows, ambiguous, now)
        log.info("User mapping sync: %d AtHoc users, %d mapped, %d without %s, %d ambiguous collar numbers",
                 len(users), count, without, s.collar_id_field, len(ambiguous))
        if count == 0:
            log.warning("No AtHoc user has a %s value: is COLLAR_ID_FIELD the right field name?", s.collar_id_field)
        return True
