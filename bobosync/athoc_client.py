"""AtHoc REST API client: token, paged user search, SyncByCommonNames, duty-field updates.

The API contract is described in docs/athoc-api.md; the HTTP side (session, TLS, proxies, retries
inside a deadline, no redirects, error messages) is athoc_http.AtHocHTTP. Errors are the classes
of athoc_types, with one-line messages that never carry the password, client secret or bearer token.

    >>> from athoc_client import AtHocClient
    >>> client = AtHocClient()          # reads .env and fetches a token
    >>> print("Connection successful!")
"""
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple


from athoc_types import (AtHocError, AuthenticationError, BadRequestError, ConnectionFailedError,
                         CredentialsRefusedError, DeadlineReachedError, IncompleteListingError, NotFoundError,
                         PermissionDeniedError, RateLimitedError, RedirectRefusedError, ServerError, SyncOutcome,
                         UnexpectedResponseError, ci_get, classify_result, parse_duty_value)
from athoc_http import (BACKOFF_FACTOR, BACKOFF_MAX_SECONDS, CONNECT_RETRIES, RETRY_AFTER_CAP_SECONDS,  # noqa: F401
                        STATUS_RETRIES, AtHocHTTP, backoff_seconds, retry_policy)
from config import Settings, load_settings
from wall_clock import now as wall_clock_now

__all__ = ["AtHocClient", "AtHocError", "AuthenticationError", "BadRequestError", "ConnectionFailedError",
           "CredentialsRefusedError", "DeadlineReachedError", "IncompleteListingError", "NotFoundError",
           "PermissionDeniedError", "RateLimitedError", "RedirectRefusedError", "ServerError", "SyncOutcome",
           "UnexpectedResponseError", "ci_get", "classify_result", "criteria_eq", "quote_value"]

log = logging.getLogger("bobosync.athoc")

PAGE_SIZE = 1000
TOKEN_PATH = "/AuthServices/Auth/connect/token"


def quote_value(value: str) -> str:
    """A value for a Criteria filter: in single quotes, a quote inside doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def criteria_eq(field: str, value: str) -> str:
    """Criteria matching users whose `field` equals `value`."""
    return f"{field} eq {quote_value(value)}"


class AtHocClient(AtHocHTTP):
    """Client of the AtHoc REST API, on one requests.Session."""

    def __init__(self, settings: Optional[Settings] = None, *, lazy: bool = False,
                 deadline: Optional[float] = None):
        super().__init__(settings if settings is not None else load_settings(), deadline)
        self.org = self.settings.org_code
        self.chunk_size = self.settings.sync_chunk_size
        self._token_expiry = 0.0
        if not lazy:
            self.authenticate()

    # --- token ---

    def authenticate(self) -> None:
        """Fetch a bearer token with the OAuth2 password grant."""
        s = self.settings
        url = self.base_url + TOKEN_PATH
        form = {"grant_type": "password", "client_id": s.client_id, "client_secret": s.client_secret,
                "username": s.api_user, "password": s.password, "scope": s.scope,
                "acr_values": f"tenant:{s.org_code}"}
        response = self._send("POST", url, "authentication", data=form)
        if response.status_code in (400, 401):
            error = ""
            try:
                data = response.json()
                error = str(ci_get(data, "error", "")) if isinstance(data, dict) else ""
            except (ValueError, RecursionError):
                pass
            if error == "invalid_client":
                raise CredentialsRefusedError("authentication: AtHoc refused CLIENT_ID / CLIENT_SECRET "
                                              "(invalid_client): check both in .env")
            raise CredentialsRefusedError(
                f"authentication: AtHoc refused the service account {s.api_user} for org {s.org_code} "
                f"({error or 'HTTP ' + str(response.status_code)}): check APIUSER, PASSWORD and ORG_CODE, "
                f"and whether the account is locked")
        if response.status_code != 200:
            raise self._error_for(response, "authentication")
        data = self._json(response, "authentication")
        token = ci_get(data, "access_token") if isinstance(data, dict) else None
        if not token:
            raise UnexpectedResponseError("authentication: AtHoc's token reply has no access_token")
        self._token = str(token)
        try:
            lifetime = float(ci_get(data, "expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._token_expiry = time.monotonic() + max(0.0, lifetime - 60)
        log.info("Authentication successful: token for %s, org %s", s.api_user, s.org_code)

    def _bearer(self) -> str:
        if not self._token or time.monotonic() >= self._token_expiry:
            self.authenticate()
        return self._token or ""

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """An API call with the bearer token; on 401 one new token and one repeat."""
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            response = self._send(method, url, what, headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 1:
                log.info("%s: AtHoc refused the token (401); fetching a new one and repeating the call once", what)
                self._token = None
                continue
            if response.status_code != 200:
                raise self._error_for(response, what)
            return self._json(response, what)
        raise AssertionError("unreachable")

    # --- users ---

    @property
    def _users_path(self) -> str:
        return f"/api/v2/orgs/{self.org}/users"

    def get_all_users_with_attributes(self, fields: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """Every user with `fields`, keyed by LOGIN_ID; raises IncompleteListingError if pages don't add up."""
        return self.search_users(None, fields)

    def search_users(self, criteria: Optional[str], fields: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """Users matching `criteria` (None: all), with `fields`, keyed by LOGIN_ID, every page read."""
        users: Dict[str, Dict[str, Any]] = {}
        total: Optional[int] = None
        page = 0
        while True:
            params: Dict[str, Any] = {"Fields": ",".join(fields), "Limit": PAGE_SIZE, "Offset": page}
            if criteria:
                params["Criteria"] = criteria
            data = self._call("GET", f"{self._users_path}/search/basic", "user search", params=params)
            rows = ci_get(data, "Users") if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise UnexpectedResponseError(f"user search: page {page} has no Users list")
            total = self._page_total(data, total, page)
            before = len(users)
            for row in rows:
                login = ci_get(row, "LOGIN_ID") if isinstance(row, dict) else None
                if not login:
                    log.warning("user search: page %d holds a user without LOGIN_ID; it is left out", page)
                    continue
                users[str(login)] = {**row, "LOGIN_ID": str(login)}
            log.debug("user search: page %d gave %d users (%d distinct so far, TotalUsers %s)",
                      page, len(rows), len(users), total)
            if len(rows) < PAGE_SIZE:
                break
            if len(users) == before:
                raise IncompleteListingError(
                    f"user search: page {page} repeated users already listed; AtHoc may not read Offset as a page "
                    f"index: the listing is incomplete")
            page += 1
        if total is not None and len(users) != total:
            raise IncompleteListingError(
                f"user search: listed {len(users)} distinct users but AtHoc reported TotalUsers={total} "
                f"(users changed during the listing, or pages overlapped): the listing is incomplete")
        return users

    def users_page(self, fields: Sequence[str], page: int) -> Tuple[List[Dict[str, Any]], Optional[int], bool]:
        """One page (PAGE_SIZE users, Offset = page index) of every user with `fields`, TotalUsers, and whether
        the page was full (more may follow); users without LOGIN_ID are left out with a WARNING. The caller
        decides whether the pages add up."""
        params = {"Fields": ",".join(fields), "Limit": PAGE_SIZE, "Offset": page}
        data = self._call("GET", f"{self._users_path}/search/basic", "user search", params=params)
        rows = ci_get(data, "Users") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UnexpectedResponseError(f"user search: page {page} has no Users list")
        users = []
        for row in rows:
            login = ci_get(row, "LOGIN_ID") if isinstance(row, dict) else None
            if not login:
                log.warning("user search: page %d holds a user without LOGIN_ID; it is left out", page)
                continue
            users.append({**row, "LOGIN_ID": str(login)})
        return users, self._total(data, None), len(rows) >= PAGE_SIZE

    def find_users_by_field(self, field: str, values: Sequence[str], fields: Sequence[str]
                            ) -> Dict[str, Dict[str, Any]]:
        """Users whose `field` equals one of `values` (one criteria query), with `fields`, keyed by LOGIN_ID."""
        criteria = " or ".join(criteria_eq(field, value) for value in values)
        return self.search_users(criteria, fields)

    def sample_users(self, fields: Sequence[str], limit: int = 100) -> Tuple[List[Dict[str, Any]], Optional[int]]:
        """One page of users with `fields`, and TotalUsers: a cheap look for --check."""
        data = self._call("GET", f"{self._users_path}/search/basic", "user search",
                          params={"Fields": ",".join(fields), "Limit": limit, "Offset": 0})
        rows = ci_get(data, "Users") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UnexpectedResponseError("user search: the reply has no Users list")
        return [r for r in rows if isinstance(r, dict)], self._total(data, None)

    def _page_total(self, data: Mapping[str, Any], total: Optional[int], page: int) -> Optional[int]:
        """TotalUsers of this page; IncompleteListingError when it differs from the pages before (users were
        added or deleted while the pages were read, which shifts later pages: someone may be missed even
        when the final count adds up)."""
        new = self._total(data, total)
        if page > 0 and total is not None and new != total:
            raise IncompleteListingError(
                f"user search: TotalUsers changed from {total} to {new} at page {page} (users were added or "
                f"deleted while the pages were read, which shifts the pages): the listing is incomplete")
        return new

    def field_exists(self, name: str) -> Optional[bool]:
        """Whether AtHoc knows the user attribute `name`, as far as the API can tell: True when a user holds a
        value of it (a Criteria `<name> pr` query), False when AtHoc refuses that query as naming an unknown
        attribute (HTTP 400 naming it), None when no user holds a value, which the API cannot tell apart
        from an attribute that does not exist (the caller says so, as a warning)."""
        try:
            data = self._call("GET", f"{self._users_path}/search/basic", "user search",
                              params={"Fields": name, "Limit": 1, "Offset": 0, "Criteria": f"{name} pr"})
        except BadRequestError as exc:
            if name.lower() in str(exc).lower():
                return False
            raise
        rows = ci_get(data, "Users") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UnexpectedResponseError("user search: the reply has no Users list")
        total = self._total(data, None)
        return True if rows or (total or 0) > 0 else None

    @staticmethod
    def _total(data: Mapping[str, Any], previous: Optional[int]) -> Optional[int]:
        value = ci_get(data, "TotalUsers")
        try:
            return int(value) if value is not None else previous
        except (TypeError, ValueError):
            log.warning("user search: TotalUsers %r is not a number; the listing ends on a short page", value)
            return previous

    # --- updates ---

    def sync_users_by_common_names(self, records: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Send records in calls of SYNC_CHUNK_SIZE (existing users only); one result per record, in order."""
        results: List[Dict[str, Any]] = []
        for start in range(0, len(records), self.chunk_size):
            chunk = list(records[start:start + self.chunk_size])
            data = self._call("POST", f"{self._users_path}/SyncByCommonNames", "SyncByCommonNames",
                              params={"syncExistingUsersOnly": "true"}, json=chunk)
            if not isinstance(data, list):
                raise UnexpectedResponseError("SyncByCommonNames: the reply is not a list of results")
            results.extend(self._align(chunk, data))
        return results

    @staticmethod
    def _align(chunk: List[Mapping[str, Any]], data: List[Any]) -> List[Dict[str, Any]]:
        """Match results to records by LOGIN_ID; a record without a result is a failure."""
        by_login: Dict[str, Dict[str, Any]] = {}
        for item in data:
            login = ci_get(item, "LOGIN_ID") if isinstance(item, dict) else None
            if login is None:
                log.warning("SyncByCommonNames: a result without LOGIN_ID was ignored: %.200s", item)
                continue
            by_login.setdefault(str(login).lower(), item)
        aligned = []
        for record in chunk:
            login = str(record["LOGIN_ID"])
            result = by_login.pop(login.lower(), None)
            if result is None:
                result = {"LOGIN_ID": login, ":SyncStatus": "Error",
                          ":SyncDetails": "AtHoc returned no result for this user"}
            aligned.append(result)
        if by_login:
            log.warning("SyncByCommonNames: %d result(s) for users not in the request were ignored", len(by_login))
        return aligned

    def batch_update_duty_status(self, updates: Mapping[str, str], field: str) -> Dict[str, SyncOutcome]:
        """Set `field` for each LOGIN_ID in `updates` ('' clears it); the outcome per LOGIN_ID."""
        logins = list(updates)
        records = [{"LOGIN_ID": login, field: updates[login]} for login in logins]
        results = self.sync_users_by_common_names(records)
        return {login: classify_result(result, login, field) for login, result in zip(logins, results)}

    def duty_values(self, field: str) -> Dict[str, str]:
        """LOGIN_ID -> `field`'s value, for every user holding one (a complete listing, or IncompleteListingError)."""
        values = {login: str(ci_get(user, field) or "").strip()
                  for login, user in self.search_users(f"{field} pr", [field]).items()}
        return {login: value for login, value in values.items() if value}

    def clear_old_duty_status(self, field: str, hours: float, now: Optional[datetime] = None,
                              exclude: Iterable[str] = (), held: Optional[Dict[str, str]] = None) -> List[str]:
        """Clear `field` where it holds a time older than `hours` (missed book-offs); the LOGIN_IDs cleared.
        `held`: duty_values(field) if the caller has read them already."""
        now = now or wall_clock_now()
        cutoff = now - timedelta(hours=hours)
        skip = set(exclude)
        stale: Dict[str, str] = {}
        for login, value in (self.duty_values(field) if held is None else held).items():
            if login in skip:
                continue
            try:
                since = parse_duty_value(value)
            except ValueError:
                log.warning("cleanup: %s has %s=%r, not dd/MM/yyyy HH:mm:ss; left alone", login, field, value)
                continue
            if since < cutoff:
                stale[login] = ""
        if not stale:
            return []
        outcomes = self.batch_update_duty_status(stale, field)
        for login, outcome in outcomes.items():
            if not outcome.ok:
                log.warning("cleanup: clearing %s for %s failed: %s", field, login, outcome.details)
        return [login for login, outcome in outcomes.items() if outcome.ok]
