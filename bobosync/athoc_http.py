"""The HTTP side of the AtHoc client: one requests.Session, TLS 1.2+, proxies, retries inside a deadline,
no redirects, AtHoc's clock, and errors that never carry a secret.

Every request has a timeout; no redirect is ever followed (a 3xx is RedirectRefusedError); retries
(429, 5xx, connection failures) are made here, so one call's time is bounded, and with a deadline
(a time.monotonic() value) every attempt, retry and pause ends by it or the call raises
DeadlineReachedError. urllib3's Retry on the adapter did this before; it cannot shorten each
attempt's timeout to the time left nor refuse a pause that would pass the deadline, and requests
follows redirects outside it. Its Retry-After parser is still the one used.
"""
import logging
import re
import ssl
import time
from datetime import timezone
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from athoc_types import (AtHocError, AuthenticationError, BadRequestError, ConnectionFailedError,
                         DeadlineReachedError, NotFoundError, PermissionDeniedError, RateLimitedError,
                         RedirectRefusedError, ServerError, UnexpectedResponseError)
from config import Settings, without_userinfo
from failpoints import backoff_scale
from tls import tls_context
from wall_clock import wall_time

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


class AtHocHTTP:
    """Requests to one AtHoc server on one requests.Session; AtHocClient adds the API calls."""

    def __init__(self, settings: Settings, deadline: Optional[float] = None):
        self.settings = settings
        settings.read_stored_secrets()  # the credentials are needed now (ConfigError when the store has none)
        # a time.monotonic() value by which every call ends (None: no deadline); see _send
        self.deadline = deadline
        self._clock_offsets: List[float] = []  # AtHoc's Date minus this computer's clock, per reply
        s = self.settings
        self.base_url = s.athoc_server_url.rstrip("/")
        self.timeout = (min(CONNECT_TIMEOUT_CAP_SECONDS, s.http_timeout_seconds), s.http_timeout_seconds)
        self._token: Optional[str] = None
        self.session = self._make_session()
        if s.disable_ssl_verify:  # the settings' warning says it once per run, not urllib3 once per request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    # --- session, TLS, proxies ---

    def _make_session(self) -> requests.Session:
        s = self.settings
        session = requests.Session()
        session.trust_env = False  # proxies come from the settings, which already merged the environment
        session.proxies = self.proxies_for(self.base_url)
        if any(url.lower().startswith("https:") for url in (self.base_url, *session.proxies.values())):
            adapter: HTTPAdapter = _TLSAdapter(tls_context(s, verify=not s.disable_ssl_verify),
                                               max_retries=retry_policy())
        else:  # plain HTTP all the way (every URL is built on base_url; redirects are refused): a TLS context
            adapter = HTTPAdapter(max_retries=retry_policy())  # would cost ~40 ms (the CA bundle) for nothing
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        if s.disable_ssl_verify:
            session.verify = False
        elif s.ssl_cert_path:
            session.verify = str(s.ssl_cert_path)
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

    def __enter__(self) -> "AtHocHTTP":
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
                                       f"APIUSER {self.settings.api_user} may use the API of org "
                                       f"{self.settings.org_code}")
        if code == 403:
            return PermissionDeniedError(
                f"{what}: the service account {self.settings.api_user} lacks the permission for this call "
                f"(HTTP 403 from {path}); ask the AtHoc administrator to grant it: {body}")
        if code == 404:
            return NotFoundError(f"{what}: HTTP 404 from {path}: check ATHOC_SERVER_URL ({self.base_url}) and "
                                 f"ORG_CODE ({self.settings.org_code}); {body}")
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
        self._clock_offsets = (self._clock_offsets + [server + 0.5 - wall_time()])[-25:]

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
