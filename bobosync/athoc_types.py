"""What AtHoc's API answers, without the HTTP: error classes, per-user outcomes, the duty value's format.

The engine imports these without importing requests, so a run with nothing to send never
loads the HTTP stack, and the types are real types rather than `Any`.
"""
import logging
import re
from datetime import datetime
from typing import Any, Mapping, Optional

log = logging.getLogger("bobosync.athoc")

DUTY_FORMAT = "%d/%m/%Y %H:%M:%S"  # AtHoc's duty field: dd/MM/yyyy HH:mm:ss
GONE_MARKERS = ("does not exists in the organization", "does not exist in the organization")
# "User <LOGIN_ID> does not exist(s) in the Organization": the message about the user itself
_USER_GONE = re.compile(r"\buser\s+(\S+)\s+does not exists? in the organization", re.IGNORECASE)
# "Attribute <name> is not defined for the organization" / "... does not exist ...": an unknown field
_UNKNOWN_ATTRIBUTE = re.compile(r"\battribute\b.*\b(not defined|does not exists?|unknown|not found)\b", re.IGNORECASE)


class AtHocError(Exception):
    """Base of every error the AtHoc client raises. `unavailable` is True when AtHoc could not be
    reached or did not answer properly (an outage), False when it refused the request."""

    unavailable = False


class ConnectionFailedError(AtHocError):
    """AtHoc could not be reached: DNS, TCP, TLS, proxy, timeout, or a reply cut short."""

    unavailable = True


class ServerError(AtHocError):
    """AtHoc answered 5xx, still after the retries."""

    unavailable = True


class RateLimitedError(AtHocError):
    """AtHoc answered 429, still after waiting as Retry-After asked."""

    unavailable = True


class AuthenticationError(AtHocError):
    """The credentials or the token were refused."""


class CredentialsRefusedError(AuthenticationError):
    """The token endpoint refused the service account or the client: asking again with the same
    settings can only lock the account, so runs back off until the settings change."""


class PermissionDeniedError(AtHocError):
    """403: the service account lacks a right."""


class NotFoundError(AtHocError):
    """404: wrong server URL, path or organisation code."""


class BadRequestError(AtHocError):
    """400: AtHoc refused the request as malformed."""


class IncompleteListingError(AtHocError):
    """A user listing did not add up to TotalUsers: it must not replace what is held."""


class UnexpectedResponseError(AtHocError):
    """AtHoc's reply was not the shape the contract describes (not JSON, nested too deeply, wrong type)."""

    unavailable = True


class RedirectRefusedError(AtHocError):
    """AtHoc answered 3xx: its API never redirects, so the redirect was not followed (the credentials and
    the token must not go to another host). Not an outage: the address or something in between is wrong."""


class DeadlineReachedError(AtHocError):
    """The run's deadline (RUN_DEADLINE_SECONDS) came before the call could finish: no further request or
    retry is made in this run, and what is unfinished waits for the next run."""

    unavailable = True


class SyncOutcome:
    """What happened to one user's record in a SyncByCommonNames call, with AtHoc's details. `status` is
    - "ok": the record was applied;
    - "gone": AtHoc says the user itself (the record's own LOGIN_ID) does not exist in the organisation;
    - "unknown_field": AtHoc says an attribute of the record (the duty field) is not defined for the
      organisation: a configuration problem (DUTY_STATUS_FIELD) a person must fix; the run should stop
      sending and exit 3, keeping every event;
    - "failed": any other Error or Partial result, or an unknown :SyncStatus."""

    __slots__ = ("status", "details")

    def __init__(self, status: str, details: str = ""):
        self.status, self.details = status, details

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SyncOutcome) and (other.status, other.details) == (self.status, self.details)

    def __hash__(self) -> int:
        return hash((self.status, self.details))

    def __repr__(self) -> str:
        return f"SyncOutcome({self.status!r}, {self.details!r})"


def ci_get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """A key of a JSON object, matched case-insensitively (AtHoc's field names vary in case)."""
    if key in mapping:
        return mapping[key]
    lkey = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lkey:
            return v
    return default


def classify_result(result: Mapping[str, Any], login: Optional[str] = None,
                    field: Optional[str] = None) -> SyncOutcome:
    """ok, gone, unknown_field or failed (see SyncOutcome), from one SyncByCommonNames result for the record
    of `login` that set `field`. Gone only when the details are about the user itself: they name `login`
    (or, without `login`, read "User <id> does not exist in the Organization"); an attribute that does not
    exist is never "gone"."""
    status = str(ci_get(result, ":SyncStatus", "") or "")
    details = str(ci_get(result, ":SyncDetails", "") or "")
    if status.lower() == "ok":
        return SyncOutcome("ok", details)
    if status.lower() == "error" and _names_unknown_field(details, field):
        return SyncOutcome("unknown_field", details)
    if status.lower() == "error" and _says_user_gone(details, login):
        return SyncOutcome("gone", details)
    if status.lower() not in ("error", "partial"):
        log.warning("SyncByCommonNames: unknown :SyncStatus %r counted as a failure", status)
        details = f"unknown :SyncStatus {status!r}; {details}".strip("; ")
    return SyncOutcome("failed", details or status or "no :SyncStatus")


def _says_user_gone(details: str, login: Optional[str]) -> bool:
    """The details say the user `login` itself is not in the organisation."""
    lower = details.lower()
    if not any(m in lower for m in GONE_MARKERS) or "attribute" in lower:
        return False
    m = _USER_GONE.search(details)
    if login is None:
        return m is not None
    return login.lower() in lower


def _names_unknown_field(details: str, field: Optional[str]) -> bool:
    """The details say an attribute (the duty field, when `field` is given) is not defined."""
    if _UNKNOWN_ATTRIBUTE.search(details) is None:
        return False
    return field is None or field.lower() in details.lower()


def duty_value(event_time: str) -> str:
    """The duty field's value for a book-on at YYYYMMDDHHMMSS, in DUTY_FORMAT (sliced: rows are many)."""
    t = event_time
    return f"{t[6:8]}/{t[4:6]}/{t[:4]} {t[8:10]}:{t[10:12]}:{t[12:14]}"


def parse_duty_value(text: str) -> datetime:
    """A duty field value as a datetime; ValueError when it is not in DUTY_FORMAT."""
    return datetime.strptime(text.strip(), DUTY_FORMAT)
