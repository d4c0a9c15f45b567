"""Every setting of bobosync in one table: name, attribute, kind (how its text is read), default, range,
whether it is secret, and any check beyond its kind. Loading (config.py), validation, the Settings
class, .env_safe's checks and the tests' list of names all come from SETTINGS.
"""
import os
from pathlib import Path
from typing import Any, Callable, List, Optional
from urllib.parse import unquote, urlsplit

from alert_settings import check_address, check_event_log, check_security, check_smtp_host, parse_addresses
from url_secrets import host_and_port_problem, url_password, user_info, without_password, without_userinfo

KEYRING_WORD = "keyring"  # a secret setting with this value is read from the credential store (credential_store.py)

BOBOSYNC_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BOBOSYNC_DIR.parent

TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def resolve_path(value: str) -> Path:
    """A path from a setting: relative paths resolve against bobosync/; UNC paths are kept."""
    value = value.strip()
    if value.startswith(("\\\\", "//")):
        return Path(value)
    return Path(os.path.normpath(os.path.join(BOBOSYNC_DIR, os.path.expanduser(value))))


# --- the kinds of setting: each turns the text of a value into the value, or raises ValueError ---

TEXT = "text"                    # any text; "" when not set
REQUIRED = "required text"       # text that must be set
PROXY = "proxy URL"              # text; the password inside the URL is the secret part
BOOL = "yes/no"
INT = "whole number"             # from low to high
FLOAT = "number"                 # from low to high
PATH = "path"                    # relative to bobosync/
OPTIONAL_PATH = "optional path"  # None when not set
LIST = "list"                    # comma-separated names
ADDRESSES = "e-mail addresses"   # comma-separated plain addresses; [] when not set


def _text(s: "Setting", text: str) -> str:
    if s.required and not text:
        raise ValueError(f"{s.name} is missing: set it{' to ' + s.help if s.help else ''} in .env")
    return text


def _boolean(s: "Setting", text: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"{s.name}={text!r} is not a yes/no value: use true or false")


def _number(s: "Setting", text: str) -> float:
    try:
        value = int(text) if s.kind == INT else float(text)
    except ValueError:
        raise ValueError(_number_problem(s, text, "is not {}")) from None
    if not s.low <= value <= s.high:
        raise ValueError(_number_problem(s, text, "is out of range"))
    return value


def _number_problem(s: "Setting", text: str, what: str) -> str:
    kind = "a whole number" if s.kind == INT else "a number"
    return f"{s.name}={text!r} {what.format(kind)}: expected {kind} from {s.low:g} to {s.high:g}"


def _path(s: "Setting", text: str) -> Optional[Path]:
    return resolve_path(text) if text else None


def _field_list(s: "Setting", text: str) -> List[str]:
    items = [f.strip() for f in text.split(",") if f.strip()]
    if not items:
        raise ValueError(f"{s.name} is empty: list AtHoc field names separated by commas")
    return items


_KINDS = {  # kind: (type of the value, parser)
    TEXT: (str, _text), REQUIRED: (str, _text), PROXY: (str, _text), BOOL: (bool, _boolean),
    INT: (int, _number), FLOAT: (float, _number), PATH: (Path, _path), OPTIONAL_PATH: (Optional[Path], _path),
    LIST: (List[str], _field_list), ADDRESSES: (List[str], parse_addresses),
}


# --- checks of single settings beyond their kind: (setting, text given, value, warnings) -> value ---

def _this_computer(host: str) -> bool:
    """Whether `host` is this computer: localhost or a loopback address (127.0.0.0/8, ::1 in any spelling)."""
    if host == "localhost":
        return True
    import ipaddress  # only for a plain http address
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_url(s: "Setting", text: str, url: str, warnings: List[str]) -> str:
    """An http(s) address with a host (and a valid port), without user information or the trailing /;
    plain http is warned unless it is this computer. No message shows user information."""
    url = url.rstrip("/")
    shown = without_userinfo(url)
    if user_info(url):
        raise ValueError(f"{s.name}={shown!r} holds a user name or password before its host: remove them "
                         f"(the service account belongs in APIUSER and PASSWORD)")
    lower = url.lower()
    if not lower.startswith(("https://", "http://")) or len(url.split("://", 1)[1]) == 0:
        raise ValueError(f"{s.name}={shown!r} is not a web address: expected https://your-athoc-server")
    problem = host_and_port_problem(url)
    if problem:
        raise ValueError(f"{s.name}={shown!r} {problem}: expected https://your-athoc-server[:port]")
    if lower.startswith("http://"):
        if not _this_computer((urlsplit(url).hostname or "").lower()):
            warnings.append(f"{s.name}={url} uses plain http to another computer: credentials travel unencrypted; "
                            f"use https://")
    return url


def _proxy_url(s: "Setting", text: str, url: str, warnings: List[str]) -> str:
    """A proxy URL; its credentials must be usable (Latin-1, reserved characters percent-encoded).
    Whether a URL that cannot be used as written is an error or a warning is decided once every setting is
    read (see proxy_problems): an error for the proxy AtHoc's address uses, a warning for the other."""
    if url and user_info(url):
        password = url_password(url)
        try:
            unquote(password, errors="strict").encode("latin-1")
            unquote(user_info(url).split(":", 1)[0], errors="strict").encode("latin-1")
        except UnicodeError:
            raise ValueError(f"{s.name}={without_password(url)!r}: the proxy's user name or password holds a "
                             f"character outside Latin-1 (such as €), which proxies' Basic authentication "
                             f"cannot carry: choose a password of Latin-1 characters") from None
    return url


def _log_level(s: "Setting", text: str, level: str, warnings: List[str]) -> str:
    """One of LOG_LEVELS, in any case."""
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"{s.name}={level.upper()!r} is not a log level: use one of {', '.join(LOG_LEVELS)}")
    return level.upper()


def _existing_ca_bundle(s: "Setting", text: str, path: Optional[Path], warnings: List[str]) -> Optional[Path]:
    if path is not None and not path.exists():
        raise ValueError(f"{s.name}={text!r}: no such file or folder (expected the CA bundle, PEM format)")
    return path


def _warn_unverified(s: "Setting", text: str, disabled: bool, warnings: List[str]) -> bool:
    if disabled:
        warnings.append(f"{s.name}=true: AtHoc's certificate is not checked. Use this on test systems only")
    return disabled


class Setting:
    """One setting: its variable `name`, its Settings `attr`, its `kind` and `default` (the text
    .env_safe shows; none for REQUIRED), the range of a number, whether its value is `secret`, the
    variable read when `name` is empty (`fallback`), what to set it to (`help`), and an extra `check`."""

    __slots__ = ("name", "attr", "kind", "default", "low", "high", "secret", "fallback", "help", "check")

    def __init__(self, name: str, attr: str, kind: str, default: str = "", low: float = 0, high: float = 0,
                 secret: bool = False, fallback: str = "", help: str = "",
                 check: "Optional[Callable[[Setting, str, Any, List[str]], Any]]" = None):
        self.name, self.attr, self.kind, self.default = name, attr, kind, default
        self.low, self.high, self.secret = low, high, secret
        self.fallback, self.help, self.check = fallback, help, check

    @property
    def required(self) -> bool:
        return self.kind == REQUIRED

    def __repr__(self) -> str:
        return f"Setting({self.name!r}, {self.attr!r}, {self.kind!r}, {self.default!r})"

    def parse(self, text: str) -> Any:
        """The value of `text` ('' takes the default); ValueError names what is wrong with it."""
        return _KINDS[self.kind][1](self, text or self.default)


# Every setting, in the order of .env_safe: Setting(name, attr, kind, default, low, high, ...).
SETTINGS = (
    # AtHoc API authentication
    Setting("ATHOC_SERVER_URL", "athoc_server_url", REQUIRED, check=_server_url),
    Setting("CLIENT_ID", "client_id", REQUIRED),
    Setting("CLIENT_SECRET", "client_secret", REQUIRED, secret=True),
    Setting("APIUSER", "api_user", REQUIRED, fallback="USERNAME", help="the AtHoc service account"),
    Setting("PASSWORD", "password", REQUIRED, secret=True),
    Setting("ORG_CODE", "org_code", REQUIRED),
    Setting("SCOPE", "scope", TEXT, "athoc.iws.web.api"),
    # SSL and network
    Setting("DISABLE_SSL_VERIFY", "disable_ssl_verify", BOOL, "false", check=_warn_unverified),
    Setting("SSL_CERT_PATH", "ssl_cert_path", OPTIONAL_PATH, check=_existing_ca_bundle),
    Setting("HTTP_PROXY", "http_proxy", PROXY, secret=True, fallback="http_proxy", check=_proxy_url),
    Setting("HTTPS_PROXY", "https_proxy", PROXY, secret=True, fallback="https_proxy", check=_proxy_url),
    Setting("NO_PROXY", "no_proxy", TEXT, fallback="no_proxy"),
    Setting("HTTP_TIMEOUT_SECONDS", "http_timeout_seconds", FLOAT, "30", 1, 300),
    Setting("RUN_DEADLINE_SECONDS", "run_deadline_seconds", FLOAT, "50", 10, 3600),
    Setting("LOCK_WAIT_SECONDS", "lock_wait_seconds", FLOAT, "60", 1, 3600),
    Setting("CLOCK_SKEW_TOLERANCE_MINUTES", "clock_skew_tolerance_minutes", FLOAT, "5", 1, 24 * 60),
    # Files
    Setting("CSV_DIRECTORY", "csv_directory", PATH, "../crown_files"),
    Setting("PROCESSED_DIRECTORY", "processed_directory", PATH, "../processed_files"),
    Setting("MOVE_PROCESSED_FILES", "move_processed_files", BOOL, "false"),
    Setting("PROCESSED_FILES_PURGE_DAYS", "processed_files_purge_days", INT, "30", 0, 36500),
    Setting("FAILED_FILES_DIRECTORY", "failed_files_directory", PATH, "../failed_files"),
    Setting("MAX_RETRY_ATTEMPTS", "max_retry_attempts", INT, "5", 1, 1000),
    Setting("BATCH_SIZE", "batch_size", INT, "10", 1, 10000),
    Setting("FILE_SETTLE_SECONDS", "file_settle_seconds", FLOAT, "10", 0, 3600),
    Setting("FUTURE_TOLERANCE_MINUTES", "future_tolerance_minutes", FLOAT, "10", 5, 60),
    # AtHoc fields and user mapping
    Setting("DUTY_STATUS_FIELD", "duty_status_field", TEXT, "On-Duty-DTG"),
    Setting("COLLAR_ID_FIELD", "collar_id_field", TEXT, "Collar-Number"),
    Setting("USER_ATTRIBUTES", "user_attributes", LIST, "Collar-Number,FIRSTNAME,LASTNAME"),
    Setting("SYNC_MAPPINGS", "sync_mappings", BOOL, "true"),
    Setting("SYNC_HOUR", "sync_hour", INT, "20", 0, 23),
    Setting("SYNC_RETRY_DAYS", "sync_retry_days", INT, "2", 1, 365),
    Setting("SYNC_CHUNK_SIZE", "sync_chunk_size", INT, "1000", 1, 1000),
    Setting("MAPPING_DROP_LIMIT_PERCENT", "mapping_drop_limit_percent", FLOAT, "10", 0, 100),
    Setting("UNMAPPED_LOOKUP_MINUTES", "unmapped_lookup_minutes", FLOAT, "30", 1, 24 * 60),
    Setting("PENDING_EXPIRY_DAYS", "pending_expiry_days", INT, "7", 1, 365),
    Setting("AUTO_CLEANUP_HOURS", "auto_cleanup_hours", FLOAT, "24", 0, 24 * 365),
    Setting("CLEANUP_INTERVAL_MINUTES", "cleanup_interval_minutes", FLOAT, "60", 0, 24 * 60),
    # Storage and logs
    Setting("DB_PATH", "db_path", PATH, "bobo_mapping.db"),
    Setting("LOG_LEVEL", "log_level", TEXT, "INFO", check=_log_level),
    Setting("LOG_DIRECTORY", "log_directory", PATH, "../logs"),
    Setting("LOG_PURGE_DAYS", "log_purge_days", INT, "10", 0, 3650),
    # Alerts (alert_settings.py): off while SMTP_HOST and ALERT_EVENT_LOG are unset
    Setting("SMTP_HOST", "smtp_host", TEXT, check=check_smtp_host),
    Setting("SMTP_PORT", "smtp_port", INT, "0", 0, 65535),
    Setting("SMTP_SECURITY", "smtp_security", TEXT, "starttls", check=check_security),
    Setting("SMTP_USER", "smtp_user", TEXT),
    Setting("SMTP_PASSWORD", "smtp_password", TEXT, secret=True),
    Setting("ALERT_FROM", "alert_from", TEXT, check=check_address),
    Setting("ALERT_TO", "alert_to", ADDRESSES),
    Setting("ALERT_AFTER_MINUTES", "alert_after_minutes", FLOAT, "15", 0, 7 * 24 * 60),
    Setting("ALERT_REPEAT_HOURS", "alert_repeat_hours", FLOAT, "8", 0, 30 * 24),
    Setting("ALERT_PENDING_HOURS", "alert_pending_hours", FLOAT, "24", 0, 30 * 24),
    Setting("ALERT_EVENT_LOG", "alert_event_log", BOOL, "false", check=check_event_log),
    Setting("BOBO_SILENCE_MINUTES", "bobo_silence_minutes", FLOAT, "240", 0, 7 * 24 * 60),
)
# Every variable load_settings reads: the settings and their fallbacks.
ENVIRONMENT_NAMES = tuple(s.name for s in SETTINGS) + tuple(s.fallback for s in SETTINGS if s.fallback)
_FALLBACK_WARNINGS = {
    "USERNAME": "APIUSER is not set, so USERNAME is used as the AtHoc service account; "
                "Windows sets USERNAME for every process, so set APIUSER in .env instead",
}
# The value of every setting that has a default (all but the REQUIRED ones).
DEFAULTS = {s.attr: s.parse("") for s in SETTINGS if not s.required}


