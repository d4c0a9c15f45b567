"""AtHoc REST API client: token, paged user search, SyncByCommonNames, duty-field updates.

The API contract is described in docs/athoc-api.md. Every request has a timeout; no redirect is
ever followed (a 3xx is RedirectRefusedError); retries (429, 5xx, connection failures) are made by
`AtHocClient._send`, so one call's time is bounded, and with a deadline (`AtHocClient(deadline=...)`,
a time.monotonic() value) every attempt, retry and pause ends by it or the call raises
DeadlineReachedError. (urllib3's Retry on the adapter did this before; it cannot shorten each
attempt's timeout to the time left nor refuse a pause that would pass the deadline, and requests
follows redirects outside it.) Errors are the classes of athoc_types, with one-line messages that never
carry the password, client secret or bearer token.

    >>> from athoc_client import AtHocClient
    >>> client = AtHocClient()          # reads .env and fetches a token
    >>> print("Connection successful!")
"""
import logging
import re
import ssl
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from athoc_types import (AtHocError, AuthenticationError, BadRequestError, ConnectionFailedError,
                         CredentialsRefusedError, DeadlineReachedError, IncompleteListingError, NotFoundError,
                         PermissionDeniedError, RateLimitedError, RedirectRefusedError, ServerError, SyncOutcome,
                         UnexpectedResponseError, ci_get, classify_result, parse_duty_value)
from config import Settings, load_settings, without_userinfo
from failpoints import backoff_scale
from tls import tls_context

__all__ = ["AtHocClient", "AtHocError", "AuthenticationError", "BadRequestError", "ConnectionFailedError",
           "CredentialsRefusedError", "DeadlineReachedError", "IncompleteListingError", "NotFoundError",
           "PermissionDeniedError", "RateLimitedError", "RedirectRefusedError", "ServerError", "SyncOutcome",
           "UnexpectedResponseError", "ci_get", "classify_result", "criteria_eq", "quote_value"]

log = logging.getLogger("bobosync.athoc")

PAGE_SIZE = 1000
TOKEN_PATH = "/AuthServices/Auth/connect/token"
RETRY_AFTER_CAP_SECONDS = 5.0
CONNECT_TIMEOUT_CAP_SECONDS = 10.0
CONNECT_RETRIES = 2  # a connection that failed before the request was sent
STATUS_RETRIES = 3  # 429, 500, 502, 503, 504
RETRY_STATUSES = (429, 500, 502, 503, 504)
BACKOFF_FACTOR = 0.5
BACKOFF_MAX_SECONDS = 4.0
MIN_ATTEMPT_SECONDS = 0.05  # less time than this left before the deadline: no request is started


class _TLSAdapter(HTTPAdapter):
    """HTTPAdapter whose connections use our SSL context (TLS 1.2 minimum)."""

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any):
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._ssl_context
        return super().proxy_manager_for(*args, **kwargs)


def retry_policy() -> Retry:
    """urllib3's own retries: none. `AtHocClient._send` retries (connection failures twice, 429/5xx three
    times, with backoff and Retry-After), so that every attempt and every pause fits the run's deadline."""
    return Retry(total=0, connect=0, read=False, status=0, other=0, redirect=False, raise_on_status=False)


def backoff_seconds(retry: int) -> float:
    """The pause before retry number `retry` (1, 2, ...): 0, then 1, 2, 4 s... (as urllib3's, factor 0.5)."""
    return 0.0 if retry <= 1 else min(BACKOFF_MAX_SECONDS, BACKOFF_FACTOR * 2 ** (retry - 1))


def _retry_after(response: requests.Response) -> Optional[float]:
    """Retry-After of a 429 or 503, in seconds (capped), or None."""
    value = response.headers.get("Retry-After")
    if response.status_code not in (429, 503) or not value:
        return None
    try:
        seconds = Retry().parse_retry_after(value)  # urllib3's: seconds, or an HTTP date
    except urllib3.exceptions.InvalidHeader:
        return None
    return min(RETRY_AFTER_CAP_SECONDS, max(0.0, seconds))


def _is_connect_failure(exc: BaseException) -> bool:
    """The request never reached AtHoc (DNS, refused, connect timeout): safe to repeat."""
    seen: Any = exc
    for _ in range(6):
        if isinstance(seen, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError)):
            return True
        inner = getattr(seen, "reason", None) or (seen.args[0] if getattr(seen, "args", None) else None)
        if not isinstance(inner, BaseException) or inner is seen:
            return False
        seen = inner
    return False


def _host_of(url: str) -> str:
    """The host[:port] of `url`, without any user information."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "(an address that does not parse)"
    return netloc.rpartition("@")[2][:200] or "(no host)"


def quote_value(value: str) -> str:
    """A value for a Criteria filter: in single quotes, a quote inside doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def criteria_eq(field: str, value: str) -> str:
    """Criteria matching users whose `field` equals `value`."""
    return f"{field} eq {quote_value(value)}"


def _short_reason(exc: BaseException) -> str:
    """The root cause of a requests exception, without object addresses."""
    reason: Any = exc
    for _ in range(5):
        inner = getattr(reason, "reason", None) or (reason.args[0] if getattr(reason, "args", None) else None)
        if isinstance(inner, BaseException) and inner is not reason:
            reason = inner
        else:
            break
    text = re.sub(r"<[^>]* object at 0x[0-9a-fA-F]+>:?\s*", "", str(reason))
    return f"{type(reason).__name__}: {text}".strip()[:300]


class AtHocClient:
    """Client of the AtHoc REST API, on one requests.Session."""

    def __init__(self, settings: Optional[Settings] = None, *, lazy: bool = False,
                 deadline: Optional[float] = None):
        self.settings = settings if settings is not None else load_settings()
        # a time.monotonic() value by which every call ends (None: no deadline); see _send
        self.deadline = deadline
        self._clock_offsets: List[float] = []  # AtHoc's Date minus this computer's clock, per reply
        s = self.settings
        self.base_url = s.athoc_server_url.rstrip("/")
        self.org = s.org_code
        self.chunk_size = s.sync_chunk_size
        self.timeout = (min(CONNECT_TIMEOUT_CAP_SECONDS, s.http_timeout_seconds), s.http_timeout_seconds)
        self._token: Optional[str] = None
        self._token_expiry = 0.0
        self.session = self._make_session()
        if s.disable_ssl_verify:  # the settings' warning says it once per run, not urllib3 once per request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if not lazy:
            self.authenticate()

    # --- session, TLS, proxies ---

    def _make_session(self) -> requests.Session:
        s = self.settings
        session = requests.Session()
        session.trust_env = False  # proxies come from the settings, which already merged the environment
        adapter = _TLSAdapter(tls_context(s, verify=not s.disable_ssl_verify), max_retries=retry_policy())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        if s.disable_ssl_verify:
            session.verify = False
        elif s.ssl_cert_path:
            session.verify = str(s.ssl_cert_path)
        session.proxies = self.proxies_for(self.base_url)
        session.headers["User-Agent"] = "bobosync"
        return session

    def proxies_for(self, url: str) -> Dict[str, str]:
        """The proxies requests should use for `url`, honouring NO_PROXY."""
        s = self.settings
        proxies = {k: v for k, v in (("http", s.http_proxy), ("https", s.https_proxy)) if v}
        if proxies and requests.utils.should_bypass_proxies(url, no_proxy=s.no_proxy or None):
            return {}
        return proxies

    @property
    def proxy_in_use(self) -> str:
        """The proxy URL used for AtHoc, or '' for a direct connection."""
        return self.session.proxies.get(urlsplit(self.base_url).scheme, "")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "AtHocClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- redaction and errors ---

    def redact(self, text: str) -> str:
        """`text` with the password, client secret and token replaced by ***."""
        for secret in [*self.settings.secrets, self._token or ""]:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _snippet(self, response: requests.Response) -> str:
        text = re.sub(r"\s+", " ", response.text[:200]).strip()
        return self.redact(text) or "(empty body)"

    def _error_for(self, response: requests.Response, what: str) -> AtHocError:
        code, path = response.status_code, urlsplit(response.url).path
        body = self._snippet(response)
        if code == 400:
            return BadRequestError(f"{what}: AtHoc refused the request as malformed (HTTP 400 from {path}): {body}")
        if code == 401:
            return AuthenticationError(f"{what}: AtHoc refused a fresh token (HTTP 401 from {path}); check that "
                                       f"APIUSER {self.settings.api_user} may use the API of org {self.org}")
        if code == 403:
            return PermissionDeniedError(
                f"{what}: the service account {self.settings.api_user} lacks the permission for this call "
                f"(HTTP 403 from {path}); ask the AtHoc administrator to grant it: {body}")
        if code == 404:
            return NotFoundError(f"{what}: HTTP 404 from {path}: check ATHOC_SERVER_URL ({self.base_url}) and "
                                 f"ORG_CODE ({self.org}); {body}")
        if code == 429:
            return RateLimitedError(f"{what}: AtHoc is rate limiting (HTTP 429 from {path}) after the retries; "
                                    f"the next run tries again")
        if code >= 500:
            return ServerError(f"{what}: AtHoc failed with HTTP {code} from {path} after the retries; "
                               f"the next run tries again: {body}")
        return UnexpectedResponseError(f"{what}: unexpected HTTP {code} from {path}: {body}")

    def _connection_error(self, exc: requests.RequestException, what: str, url: str) -> ConnectionFailedError:
        host = urlsplit(url).netloc
        reason = self.redact(_short_reason(exc))
        if isinstance(exc, requests.exceptions.SSLError):
            hint = ("the certificate is not trusted here: if a firewall inspects TLS or AtHoc uses a private CA, "
                    "set SSL_CERT_PATH to that CA's PEM file")
        elif isinstance(exc, requests.exceptions.ProxyError):
            hint = f"the proxy {without_userinfo(self.proxy_in_use)} refused or failed: check HTTPS_PROXY and NO_PROXY"
        elif "Connection broken" in reason or "Connection aborted" in reason:
            hint = "the connection broke before AtHoc's reply was complete; the next run tries again"
        elif isinstance(exc, requests.exceptions.Timeout) or "TimeoutError" in reason:  # urllib3 wraps timeouts
            hint = f"no answer within {self.settings.http_timeout_seconds:g} s (HTTP_TIMEOUT_SECONDS)"
        else:
            hint = "check ATHOC_SERVER_URL, DNS, the firewall and the proxy settings"
        return ConnectionFailedError(self.redact(f"{what}: cannot reach AtHoc at {host}: {hint} ({reason})"))

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            path = urlsplit(response.url).path
            raise UnexpectedResponseError(
                f"{what}: HTTP {response.status_code} from {path} is not JSON (a proxy's error page?): "
                f"{self._snippet(response)}") from None
        except RecursionError:
            path = urlsplit(response.url).path
            raise UnexpectedResponseError(
                f"{what}: HTTP {response.status_code} from {path} is JSON nested too deeply to read: AtHoc's "
                f"replies are never so deep; the reply is not AtHoc's") from None

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

    # --- one call ---

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """One request, never following a redirect, retried on connection failures and 429/5xx, every
        attempt's timeout and every pause within the deadline."""
        connect_left, status_left, retry = CONNECT_RETRIES, STATUS_RETRIES, 0
        while True:
            timeout = self._attempt_timeout(what)
            started = time.monotonic()
            try:
                response = self.session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
            except requests.RequestException as exc:
                if self._past_deadline():
                    raise self._deadline_error(what, "no answer before it") from None
                if not (connect_left and _is_connect_failure(exc)):
                    raise self._connection_error(exc, what, url) from None
                connect_left, retry = connect_left - 1, retry + 1
                self._pause(backoff_seconds(retry), what, "AtHoc could not be reached")
                continue
            log.debug("%s %s -> HTTP %s in %.2f s", method, urlsplit(url).path, response.status_code,
                      time.monotonic() - started)
            self._note_clock(response)
            if 300 <= response.status_code < 400:
                raise self._redirect_error(response, what)
            if response.status_code not in RETRY_STATUSES or not status_left:
                return response
            status_left, retry = status_left - 1, retry + 1
            wait = _retry_after(response)
            response.close()
            self._pause(backoff_seconds(retry) if wait is None else wait, what,
                        f"AtHoc answered HTTP {response.status_code}")

    def _attempt_timeout(self, what: str) -> Tuple[float, float]:
        """The (connect, read) timeout of the next attempt: at most the time left before the deadline."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left < MIN_ATTEMPT_SECONDS:
            raise self._deadline_error(what, "no time left for it")
        return (min(self.timeout[0], left), min(self.timeout[1], left))

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline - MIN_ATTEMPT_SECONDS

    def _pause(self, seconds: float, what: str, why: str) -> None:
        """Wait before a retry, unless the wait would end past the deadline (then no retry is made). The
        test hook failpoints.backoff_scale() scales the wait (1 in production)."""
        seconds *= backoff_scale()
        if self.deadline is not None and time.monotonic() + seconds + MIN_ATTEMPT_SECONDS > self.deadline:
            raise self._deadline_error(what, f"{why}, and a retry would not end before it")
        log.debug("%s: %s; retrying in %.1f s", what, why, seconds)
        if seconds > 0:
            time.sleep(seconds)

    def _deadline_error(self, what: str, why: str) -> DeadlineReachedError:
        return DeadlineReachedError(
            f"{what}: the run's deadline (RUN_DEADLINE_SECONDS={self.settings.run_deadline_seconds:g}) was "
            f"reached ({why}); the rest waits for the next run")

    def _redirect_error(self, response: requests.Response, what: str) -> RedirectRefusedError:
        code, path = response.status_code, urlsplit(response.url).path
        location = response.headers.get("Location", "")
        target = _host_of(urljoin(response.url, location)) if location else "(no Location given)"
        return RedirectRefusedError(self.redact(
            f"{what}: AtHoc answered HTTP {code} from {path}, a redirect to {target}; AtHoc's API never "
            f"redirects, so it was not followed (nothing was sent there): check ATHOC_SERVER_URL "
            f"({_host_of(self.base_url)}) and any proxy or gateway in between"))

    # --- AtHoc's clock ---

    def _note_clock(self, response: requests.Response) -> None:
        """Record the offset of AtHoc's clock (its reply's Date header) from this computer's."""
        value = response.headers.get("Date")
        if not value:
            return
        from email.utils import parsedate_to_datetime
        try:
            moment = parsedate_to_datetime(value)
            if moment.tzinfo is None:  # "-0000": UTC, but parsedate_to_datetime leaves it naive
                moment = moment.replace(tzinfo=timezone.utc)
            server = moment.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            log.debug("AtHoc's Date header %.60r is not an HTTP date; ignored", value)
            return
        # Date holds whole seconds, cut off: on average the reply was made half a second after it says
        self._clock_offsets = (self._clock_offsets + [server + 0.5 - time.time()])[-25:]

    @property
    def clock_offset_seconds(self) -> Optional[float]:
        """AtHoc's clock minus this computer's, in seconds (the median over the latest replies; None before
        the first reply with a Date header). Positive: AtHoc is ahead. Date has whole seconds only, so
        differences under about a second mean nothing."""
        if not self._clock_offsets:
            return None
        ordered = sorted(self._clock_offsets)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

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

    def clear_old_duty_status(self, field: str, hours: float, now: Optional[datetime] = None,
                              exclude: Iterable[str] = ()) -> List[str]:
        """Clear `field` where it holds a time older than `hours` (missed book-offs); the LOGIN_IDs cleared."""
        now = now or datetime.now()
        cutoff = now - timedelta(hours=hours)
        skip = set(exclude)
        stale: Dict[str, str] = {}
        for login, user in self.search_users(f"{field} pr", [field]).items():
            value = str(ci_get(user, field) or "").strip()
            if not value or login in skip:
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
