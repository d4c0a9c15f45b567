"""The user mapping: which AtHoc user (LOGIN_ID) holds each employee's collar number.

It is rebuilt from a complete AtHoc listing once a day after SYNC_HOUR, after a failed sync, and
when the last good one is older than SYNC_RETRY_DAYS. Only a complete listing replaces the
mappings held, and only when it would not drop more than MAPPING_DROP_LIMIT_PERCENT of them
(a renamed or hidden collar field must not unmap a force: a person confirms with --accept-drop).
A listing the run's time cannot finish is kept and resumed by the next run; a sync that fails
backs off (5 minutes, doubling to an hour). When a collar number moves to another user, the
officer's duty value moves with it before the new mapping is used.
"""
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

from athoc_link import AtHocLink, CredentialsBackoffError
from athoc_types import AtHocError, CredentialsRefusedError, IncompleteListingError, ci_get
from backoff import Backoff
from bobo_db import USER_MAPPING, BOBODatabase
from config import Settings
from results import shorten
from schedule import clock_went_back, parse_stamp

log = logging.getLogger("bobosync")

MappingRow = Tuple[str, str, str]  # employee id, LOGIN_ID, collar number as AtHoc holds it
Users = Dict[str, Dict[str, Any]]  # LOGIN_ID -> attributes
CONFIRM_CHUNK = 50  # collar numbers per criteria query when confirming mappings missing from a listing


def build_mapping(users: Users, collar_field: str) -> Tuple[List[MappingRow], Dict[str, List[str]], int]:
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


class SyncHeldBack(Exception):
    """A complete listing that would drop too many of the mappings held: not applied until a person confirms."""


class MappingSync:
    """When the mapping sync is due, and the sync itself."""

    def __init__(self, settings: Settings, db: BOBODatabase, link: AtHocLink):
        self.settings, self.db, self.link = settings, db, link
        self.backoff = Backoff(db, "mapping_sync")
        self.accept_drop = False  # --accept-drop: a person confirmed that the listing may drop mappings

    def due(self, now: datetime) -> bool:
        """Due on first run, after a failed or empty sync (once its back-off expired), while a listing is being
        resumed, when the last good sync is older than SYNC_RETRY_DAYS, or once SYNC_HOUR has passed today and
        no good sync happened since then."""
        s = self.settings
        if not s.sync_mappings:
            return False
        if self.db.get_state("mapping_listing_next_page") is not None:
            return True
        status = self.db.get_sync_status()
        if status is None:
            return True
        if status["status"] != "success":
            if self.backoff.waiting(now):
                log.info("User mapping sync: the next attempt is at %s, after %d failure(s) (--sync-mappings "
                         "tries at once)", f"{self.backoff.next_try():%Y-%m-%d %H:%M:%S}", self.backoff.failures)
                return False
            return True
        last = parse_stamp(status["last_sync_time"])
        if clock_went_back(last, now) or now - last > timedelta(days=s.sync_retry_days):
            return True
        todays_mark = now.replace(hour=s.sync_hour, minute=0, second=0, microsecond=0)
        return now >= todays_mark > last

    def sync(self, now: datetime, stop_at: Optional[float] = None) -> Optional[bool]:
        """Replace the mappings from a complete AtHoc listing: True when done, False when it failed (the mappings
        held are kept), None when `stop_at` (time.monotonic()) came first and the listing resumes next run."""
        held = self.db.mapping_count()
        try:
            users = self._listing(stop_at)
            if users is None:
                return None
            if not users:
                raise _NoUsers()
            return self._replace(users, now, held)
        except AtHocError as exc:
            self._failed(now, "error", counts=not isinstance(exc, (CredentialsRefusedError, CredentialsBackoffError)))
            if isinstance(exc, IncompleteListingError) and held:
                # AtHoc answers, its listing just does not add up (maybe on every run): duty updates go on with
                # the mappings held, as between two syncs, instead of stopping until the listing is fixed
                log.error("User mapping sync failed: %s", exc)
            else:
                self.link.failed("User mapping sync failed", exc)
            log.error("The %d mappings held are kept; %s", held, self._next_attempt())
        except _NoUsers:
            self._failed(now, "no_data")
            log.warning("User mapping sync: AtHoc listed no users; the %d mappings held are kept. Check that the "
                        "service account may search users of org %s; %s", held, self.settings.org_code,
                        self._next_attempt())
        except SyncHeldBack as exc:
            self._failed(now, "held_back")
            self.db.set_state("mapping_held_back", str(exc))
            self.link.person_must_act.append("a mapping sync was held back")
            log.error("User mapping sync held back: %s. The %d mappings held stay in use; if the listing is right, "
                      "run --sync-mappings --accept-drop; %s", exc, held, self._next_attempt())
        return False

    def _failed(self, now: datetime, status: str, counts: bool = True) -> None:
        """Record a failed sync; it backs off unless `counts` is False (refused credentials have a back-off of
        their own, which ends as soon as the credentials change)."""
        self._forget_listing()
        self.db.record_sync(USER_MAPPING, status, now)
        if counts:
            self.backoff.failed(now)

    def _next_attempt(self) -> str:
        until = self.backoff.next_try()
        return f"the next attempt is at {until:%Y-%m-%d %H:%M:%S}" if until else "the next run tries again"

    # --- the listing, page by page, resumable ---

    def _listing(self, stop_at: Optional[float]) -> Optional[Users]:
        """Every user, read from where an earlier run stopped; None when `stop_at` came first (kept for later)."""
        users, page, total = self._resumed()
        fields = self.settings.mapping_fields
        slowest = 0.0
        while True:
            if stop_at is not None and time.monotonic() + max(slowest, 1.0) > stop_at:
                self._keep_listing(users, page, total)
                return None
            began = time.monotonic()
            rows, page_total, full = self.link.client.users_page(fields, page)
            slowest = max(slowest, time.monotonic() - began)
            if total is not None and page_total is not None and page_total != total:
                raise IncompleteListingError(
                    f"user search: TotalUsers went from {total} to {page_total} while the pages were read (users "
                    f"added or deleted meanwhile shift the pages): the listing is incomplete")
            total = page_total if page_total is not None else total
            before = len(users)
            users.update((row["LOGIN_ID"], row) for row in rows)
            if not full:
                break
            if len(users) == before:
                raise IncompleteListingError(f"user search: page {page} repeated users already listed; AtHoc may "
                                             f"not read Offset as a page index: the listing is incomplete")
            page += 1
        self._forget_listing()
        if total is not None and len(users) != total:
            raise IncompleteListingError(
                f"user search: listed {len(users)} distinct users but AtHoc reported TotalUsers={total} (users "
                f"changed during the listing, or pages overlapped): the listing is incomplete")
        return users

    def _resumed(self) -> Tuple[Users, int, Optional[int]]:
        page = self.db.get_state("mapping_listing_next_page")
        if page is None:
            return {}, 0, None
        import json
        total = self.db.get_state("mapping_listing_total")
        users = {login: json.loads(attributes) for login, attributes in self.db.listing_rows()}
        log.info("User mapping sync: resuming the listing at page %s (%d users read so far)", page, len(users))
        return users, int(page), int(total) if total else None

    def _keep_listing(self, users: Users, page: int, total: Optional[int]) -> None:
        import json
        self.db.keep_listing(((login, json.dumps(attributes)) for login, attributes in users.items()),
                             {"mapping_listing_next_page": str(page), "mapping_listing_total": str(total or "")})
        log.info("User mapping sync: %d of %s users read; the run's time is up, so the next run goes on from "
                 "page %d (the mappings held stay in use until the listing is complete)", len(users),
                 total if total is not None else "?", page)

    def _forget_listing(self) -> None:
        if self.db.get_state("mapping_listing_next_page") is not None:
            self.db.keep_listing((), {})

    # --- applying a complete listing ---

    def _replace(self, users: Users, now: datetime, held: int) -> bool:
        s = self.settings
        rows, ambiguous, without = build_mapping(users, s.collar_id_field)
        rows = rows + self._confirm_missing(rows, ambiguous)
        self._guard(rows, held)
        for eid, logins in sorted(ambiguous.items()):
            log.warning("Collar number %s is held by %d AtHoc users (%s): it is mapped to nobody until fixed in "
                        "AtHoc", eid, len(logins), ", ".join(sorted(logins)))
        from audit import Trail
        from collar_moves import follow_moves
        trail = Trail(now)
        moves = follow_moves(self.settings, self.db, self.link, rows, trail)
        count = self.db.replace_mappings(rows, ambiguous, now, moves, trail)
        self.backoff.succeeded()
        self.db.delete_states(["mapping_held_back"])
        log.info("User mapping sync: %d AtHoc users, %d mapped, %d without %s, %d ambiguous collar numbers",
                 len(users), count, without, s.collar_id_field, len(ambiguous))
        if count == 0:
            log.warning("No AtHoc user has a %s value: is COLLAR_ID_FIELD the right field name?", s.collar_id_field)
            self.link.person_must_act.append("the mapping sync mapped nobody")
        return True

    def _confirm_missing(self, rows: List[MappingRow], ambiguous: Dict[str, List[str]]) -> List[MappingRow]:
        """Held mappings absent from the listing, found again by a criteria query on their collar numbers (a
        user deleted while the pages were read shifts a page and hides an unchanged user)."""
        listed = {eid for eid, _, _ in rows} | set(ambiguous)
        missing = [(eid, collar) for eid, (_, collar) in self.db.mappings_with_collars().items() if eid not in listed]
        found: List[MappingRow] = []
        for start in range(0, len(missing), CONFIRM_CHUNK):
            chunk = missing[start:start + CONFIRM_CHUNK]
            users = self.link.client.find_users_by_field(self.settings.collar_id_field, [c for _, c in chunk],
                                                         self.settings.mapping_fields)
            again, _, _ = build_mapping(users, self.settings.collar_id_field)
            wanted = {eid for eid, _ in chunk}
            found += [row for row in again if row[0] in wanted]
        if found:
            log.warning("User mapping sync: %d user(s) missing from the listing still hold their collar numbers in "
                        "AtHoc (the listing shifted while it was read); their mappings are kept: %s", len(found),
                        shorten([f"{eid} ({login})" for eid, login, _ in found]))
        return found

    def _guard(self, rows: List[MappingRow], held: int) -> None:
        """Raise SyncHeldBack when the listing would drop more than MAPPING_DROP_LIMIT_PERCENT of the mappings
        held, or map nobody (Microsoft Entra Connect's 'prevent accidental deletes' does the same)."""
        if not held or self.accept_drop:
            return
        kept = len({eid for eid, _, _ in rows} & set(self.db.all_mappings()))
        dropped = held - kept
        limit = self.settings.mapping_drop_limit_percent
        if not rows or dropped * 100 > held * limit:
            raise SyncHeldBack(f"the listing would drop {dropped} of the {held} mappings held "
                               f"({dropped * 100 // held}%, more than MAPPING_DROP_LIMIT_PERCENT={limit:g}); is "
                               f"{self.settings.collar_id_field} renamed or hidden in AtHoc?")


class _NoUsers(Exception):
    """AtHoc listed no user at all."""
