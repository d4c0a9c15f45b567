"""Settings: read from .env and the process environment, validated all at once.

SETTINGS below is the one list of settings: their names (the ones sites already use in their .env
files, see .env_safe), kinds, defaults, ranges and which are secret. The Settings class, reading,
validation and the tests' checks of .env_safe all come from it. Every bad or missing value is
collected and reported together in one ConfigError, so an operator fixes the whole file in one go.
"""
import codecs
import io
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

KEYRING_WORD = "keyring"  # a secret setting with this value is read from the credential store (credential_store.py)

BOBOSYNC_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BOBOSYNC_DIR.parent

TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """One or more settings are missing or invalid; the message names each one."""

    def __init__(self, problems: List[str], source: str = ""):
        self.problems = list(problems)
        where = f" (read from {source})" if source else ""
        lines = [f"bobosync cannot start: {len(self.problems)} setting(s) need attention{where}:"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("Fix them in .env (see .env_safe for every setting and its default).")
        super().__init__("\n".join(lines))


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
    LIST: (List[str], _field_list),
}


# --- checks of single settings beyond their kind: (setting, text given, value, warnings) -> value ---

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
    problem = _host_and_port_problem(url)
    if problem:
        raise ValueError(f"{s.name}={shown!r} {problem}: expected https://your-athoc-server[:port]")
    if lower.startswith("http://"):
        host = (urlsplit(url).hostname or "").lower()
        if host not in ("127.0.0.1", "localhost", "::1"):
            warnings.append(f"{s.name}={url} uses plain http: credentials travel unencrypted; use https://")
    return url


def _host_and_port_problem(url: str) -> str:
    """What is wrong with the host or port of `url` ('' when nothing is)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"does not parse ({_plain(exc)})"
    if not host:
        return "has no host name"
    if port == 0:
        return "has port 0"
    try:
        host.encode("idna")
    except UnicodeError:
        return "has a host name that is not a valid DNS name"
    if re.search(r"[\s<>\"{}|\\^`]", parts.netloc):
        return "has a space or a character no web address may hold in its host"
    return ""


def _plain(exc: BaseException) -> str:
    """The message of a urllib.parse ValueError in words an operator reads."""
    text = str(exc)
    if "Port" in text or "port" in text:
        return "the port is not a number from 1 to 65535"
    if "IPv6" in text or "[" in text:
        return "an unclosed or invalid [IPv6] address"
    return text[:80]


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
)
# Every variable load_settings reads: the settings and their fallbacks.
ENVIRONMENT_NAMES = tuple(s.name for s in SETTINGS) + tuple(s.fallback for s in SETTINGS if s.fallback)
_FALLBACK_WARNINGS = {
    "USERNAME": "APIUSER is not set, so USERNAME is used as the AtHoc service account; "
                "Windows sets USERNAME for every process, so set APIUSER in .env instead",
}
# The value of every setting that has a default (all but the REQUIRED ones).
DEFAULTS = {s.attr: s.parse("") for s in SETTINGS if not s.required}
_REQUIRED = object()


class Settings:
    """Every setting of bobosync, typed and validated: one attribute per row of SETTINGS, with its
    default, plus the .env file read and the warnings to log. A plain class rather than a dataclass,
    to keep start-up cheap: `replace()` copies with changes, `==` compares every setting, and repr
    hides the secrets."""

    env_file: Optional[Path] = None
    warnings: List[str] = []
    secret_sources: Dict[str, str] = {}  # where each secret set comes from, by setting name (for --check)
    stored: Dict[str, str] = {}  # the secrets still to be read from the credential store: setting name -> service

    if TYPE_CHECKING:  # what the table gives each instance, spelled out for mypy (a test checks they agree)
        athoc_server_url: str
        client_id: str
        client_secret: str
        api_user: str
        password: str
        org_code: str
        scope: str
        disable_ssl_verify: bool
        ssl_cert_path: Optional[Path]
        http_proxy: str
        https_proxy: str
        no_proxy: str
        http_timeout_seconds: float
        run_deadline_seconds: float
        lock_wait_seconds: float
        clock_skew_tolerance_minutes: float
        csv_directory: Path
        processed_directory: Path
        move_processed_files: bool
        processed_files_purge_days: int
        failed_files_directory: Path
        max_retry_attempts: int
        batch_size: int
        file_settle_seconds: float
        future_tolerance_minutes: float
        duty_status_field: str
        collar_id_field: str
        user_attributes: List[str]
        sync_mappings: bool
        sync_hour: int
        sync_retry_days: int
        sync_chunk_size: int
        mapping_drop_limit_percent: float
        unmapped_lookup_minutes: float
        pending_expiry_days: int
        auto_cleanup_hours: float
        cleanup_interval_minutes: float
        db_path: Path
        log_level: str
        log_directory: Path
        log_purge_days: int

    def __init__(self, **values: Any):
        unknown = set(values) - set(self.__annotations__)
        if unknown:
            raise TypeError(f"Settings has no setting {', '.join(sorted(unknown))}")
        for name in self.__annotations__:
            value = values.get(name, type(self).__dict__.get(name, _REQUIRED))
            if value is _REQUIRED:
                raise TypeError(f"Settings needs {name}")
            if isinstance(value, (list, dict)):
                value = type(value)(value)  # lists and dicts are never shared
            setattr(self, name, value)

    def _values(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__annotations__}

    def replace(self, **changes: Any) -> "Settings":
        """A copy with `changes` (as dataclasses.replace)."""
        return type(self)(**{**self._values(), **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and type(other) is type(self) and other._values() == self._values()

    def __repr__(self) -> str:
        shown = self._values()
        for s in _SECRET_SETTINGS:
            shown[s.attr] = _masked(s, shown[s.attr])
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def secrets(self) -> List[str]:
        """Values that must never appear in a log line, message or exception, longest first (so
        that a secret containing another is hidden whole): every secret setting (a proxy URL's password),
        and the user information of ATHOC_SERVER_URL and the proxy URLs, each as written, percent-decoded
        and percent-encoded."""
        parts = [_secret_part(s, getattr(self, s.attr)) for s in _SECRET_SETTINGS]
        for attr in _URL_ATTRS:
            url = getattr(self, attr)
            parts += [url_password(url)] + ([user_info(url)] if attr == "athoc_server_url" else [])
        # a secret still to be read from the store is the word keyring, no secret
        forms = {form for part in parts if part and part.lower() != KEYRING_WORD for form in _secret_forms(part)}
        return sorted(forms, key=len, reverse=True)

    def read_stored_secrets(self) -> None:
        """Read the secrets written as keyring from the credential store, once, when a secret is first needed (a
        run with nothing to do never imports keyring); ConfigError naming each one missing (exit 2)."""
        if not self.stored:
            return
        problems: List[str] = []
        for s in _SECRET_SETTINGS:
            if s.name in self.stored:
                _read_stored(self, s, self.stored[s.name], problems)
        self.stored = {}
        if problems:
            raise ConfigError(problems, str(self.env_file) if self.env_file else "the environment")

    @property
    def mapping_fields(self) -> List[str]:
        """USER_ATTRIBUTES with COLLAR_ID_FIELD always included."""
        wanted = list(self.user_attributes)
        if self.collar_id_field.lower() not in {f.lower() for f in wanted}:
            wanted.insert(0, self.collar_id_field)
        return wanted


# The attributes, their types and defaults come from SETTINGS (in its order, before env_file and warnings).
Settings.__annotations__ = {**{s.attr: _KINDS[s.kind][0] for s in SETTINGS}, **Settings.__annotations__}
for _attr, _default in DEFAULTS.items():
    setattr(Settings, _attr, _default)
_SECRET_SETTINGS = tuple(s for s in SETTINGS if s.secret)
_URL_ATTRS = ("athoc_server_url", "http_proxy", "https_proxy")  # URLs whose password (server: user info) is secret


def _secret_part(s: "Setting", value: str) -> str:
    """The part of a secret setting's value that is secret: a proxy URL's password, else all of it."""
    return url_password(value) if s.kind == PROXY else value


def _secret_forms(secret: str) -> List[str]:
    """`secret` as written, percent-decoded and percent-encoded (as a URL or a form body carries it)."""
    forms = {secret}
    try:
        forms.add(unquote(secret, errors="strict"))
    except UnicodeError:
        pass
    for encoded in (quote(secret, safe=""), quote(secret, safe="").replace("%20", "+")):
        forms.add(encoded)
    return [f for f in forms if f]


def _masked(s: "Setting", value: str) -> str:
    """`value` with its secret part shown as ***."""
    secret = _secret_part(s, value)
    if not secret or s.kind != PROXY:
        return "***" if secret else value
    scheme, _, rest = value.rpartition("://")
    return f"{scheme + '://' if scheme else ''}{user_info(value).split(':', 1)[0]}:***@{rest.rpartition('@')[2]}"


def user_info(url: str) -> str:
    """The user information of `url`: everything between :// and the last @ ('' when none). Taken by hand,
    not with urlsplit, which ends the host part at the first #, / or ? even inside a password."""
    if not url or "://" not in url:
        return url.rpartition("@")[0] if url and "@" in url else ""
    return url.split("://", 1)[1].rpartition("@")[0]


def url_password(url: str) -> str:
    """The password in a URL such as http://user:password@proxy:8080 ('' when none)."""
    info = user_info(url)
    return info.split(":", 1)[1] if ":" in info else ""


def without_userinfo(url: str) -> str:
    """`url` with its whole user information, if any, shown as *** (http://***@proxy:8080)."""
    info = user_info(url)
    if not info:
        return url
    if "://" not in url:
        return "***@" + url.rpartition("@")[2]
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def without_password(url: str) -> str:
    """`url` with its user information, if any, shown as *** (see without_userinfo)."""
    return without_userinfo(url)


def unusable_proxy_url(url: str) -> str:
    """Why proxy URL `url` cannot be used as written ('' when it can): its user information holds a
    character that ends the host part (#, /, ?, @) or a % that is not an escape, so requests would read
    another host or port, or the password cut short."""
    info = user_info(url)
    if info and (re.search(r"[#/?@]", info) or re.search(r"%(?![0-9A-Fa-f]{2})", info)):
        return ("its user name or password holds a character that must be percent-encoded in a URL "
                "(# as %23, / as %2F, ? as %3F, @ as %40, % as %25)")
    problem = _host_and_port_problem(url) if url else ""
    return problem


def proxy_problems(settings: "Settings") -> Tuple[List[str], List[str]]:
    """Problems and warnings for proxy URLs that cannot be used as written: a problem for the proxy of
    ATHOC_SERVER_URL's scheme (every run would fail or reach another host), a warning for the other one."""
    problems: List[str] = []
    warnings: List[str] = []
    used = "https_proxy" if settings.athoc_server_url.lower().startswith("https:") else "http_proxy"
    for name, attr in (("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy")):
        url = getattr(settings, attr)
        why = unusable_proxy_url(url) if url else ""
        if not why:
            continue
        line = f"{name}={without_userinfo(url)!r} cannot be used as written: {why}"
        if attr == used:
            problems.append(line)
        else:
            warnings.append(f"{line} (AtHoc's address does not use it)")
    return problems, warnings


def find_env_file(explicit: Optional[str] = None) -> Optional[Path]:
    """The .env to read: --env-file if given, else bobosync/.env, else the project root's."""
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (BOBOSYNC_DIR / ".env", PROJECT_DIR / ".env"):
        if candidate.is_file():
            return candidate
    return None


class _Reader:
    """Reads each setting from the raw values, collecting problems and warnings instead of
    stopping at the first one."""

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw
        self.problems: List[str] = []
        self.warnings: List[str] = []

    def given(self, s: Setting) -> str:
        """The text set for `s`, or for its fallback when that is empty ('' when neither is)."""
        text = (self.raw.get(s.name) or "").strip()
        if not text and s.fallback:
            text = (self.raw.get(s.fallback) or "").strip()
            if text and s.fallback in _FALLBACK_WARNINGS:
                self.warnings.append(_FALLBACK_WARNINGS[s.fallback])
        return text

    def read(self, s: Setting) -> Any:
        """The value of `s`; its default (or '' when required) when it is invalid, the problem noted."""
        text = self.given(s)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes the environment could not decode: never shown, may be a secret
            self.problems.append(f"{s.name} holds bytes that are not text in this computer's encoding: "
                                 f"set it again (in .env, saved as UTF-8)")
            return DEFAULTS.get(s.attr, "")
        try:
            value = s.parse(text)
            return s.check(s, text, value, self.warnings) if s.check else value
        except ValueError as exc:
            self.problems.append(str(exc))
            return DEFAULTS.get(s.attr, "")


def _read_environment(env_file: Optional[Path], environ: Mapping[str, str]) -> Dict[str, str]:
    """Values from the .env file, overridden by the process environment."""
    raw: Dict[str, str] = {}
    if env_file is not None:
        from dotenv import dotenv_values  # only when there is a file: a run's start-up is most of an idle run
        # interpolate=False: a value is taken as written (python-dotenv would turn ab${HOME}cd into ab/rootcd)
        values = dotenv_values(stream=io.StringIO(_env_file_text(env_file)), interpolate=False)
        raw.update({k: v for k, v in values.items() if v is not None})
    raw.update(environ)
    return raw


def _env_file_text(env_file: Path) -> str:
    """The .env file's text: UTF-8, with or without the byte-order mark Notepad and PowerShell 5.1 write."""
    try:
        data = env_file.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{env_file} cannot be read ({exc.strerror}): check the file's permissions"]) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{env_file} line {line} is not UTF-8 text: save the file as UTF-8 "
                           f"(Notepad: File, Save as, Encoding UTF-8)"]) from None


def _env_file_warnings(env_file: Optional[Path], sources: Mapping[str, str]) -> List[str]:
    """A warning when other users may read the .env file and it holds a secret (POSIX only)."""
    if env_file is None or os.name != "posix" or not env_file.is_file():
        return []
    if not any(source.startswith("plain text in") for source in sources.values()):
        return []  # every secret is in the credential store (or the environment)
    mode = env_file.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{env_file} is readable by other users and holds the AtHoc password: run chmod 600 {env_file}"]
    return []


def _env_path(env_file: Optional[str]) -> Optional[Path]:
    """The .env file to read (find_env_file); ConfigError when --env-file names no file."""
    path = find_env_file(env_file)
    if env_file and (path is None or not path.is_file()):
        raise ConfigError([f"--env-file {env_file}: {'not a file' if Path(env_file).exists() else 'no such file'}"])
    return path


def read_some(names: Tuple[str, ...], env_file: Optional[str] = None,
              environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The values of the settings `names` alone, by name, validated; ConfigError naming the bad ones. For the
    commands that need a few settings before the others can all be read (--store-secret, --task-xml)."""
    path = _env_path(env_file)
    reader = _Reader(_read_environment(path, os.environ if environ is None else environ))
    values = {s.name: reader.read(s) for s in SETTINGS if s.name in names}
    if reader.problems:
        raise ConfigError(reader.problems, str(path) if path else "the environment; no .env file found")
    return values


def load_settings(env_file: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming each bad or missing one. Secrets written as
    keyring are read from the credential store when first needed: Settings.read_stored_secrets."""
    path = _env_path(env_file)
    environ = os.environ if environ is None else environ
    reader = _Reader(_read_environment(path, environ))
    settings = Settings(**{s.attr: reader.read(s) for s in SETTINGS}, env_file=path)
    settings.secret_sources = _secret_sources(settings, environ)
    proxy_errors, proxy_warnings = proxy_problems(settings)
    settings.warnings = reader.warnings + proxy_warnings + _env_file_warnings(path, settings.secret_sources)
    reader.problems.extend(proxy_errors)
    reader.problems.extend(overlapping_folders(settings))
    if reader.problems:
        raise ConfigError(reader.problems, str(path) if path else "the environment; no .env file found")
    return settings


def service_name(org_code: str, server_url: str) -> str:
    """The credential store's service of one bobosync site: bobosync:<ORG_CODE>@<host[:port]> (the user name is
    the setting's name), so sites on one server keep their own secrets."""
    parts = urlsplit(server_url)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"bobosync:{org_code}@{host}{port}"


def uses_store(s: Setting, value: str) -> bool:
    """Rule: a secret setting whose value is the word keyring (a proxy URL: whose password is) is read from
    the credential store."""
    from_store = url_password(value) if s.kind == PROXY else value
    return from_store.strip().lower() == KEYRING_WORD


def _secret_sources(settings: Settings, environ: Mapping[str, str]) -> Dict[str, str]:
    """Where each secret set comes from, by name; the ones written as keyring are noted in settings.stored (the
    credential store's service: bobosync:<ORG_CODE>@<host[:port]>) and read when first needed."""
    sources: Dict[str, str] = {}
    for s in _SECRET_SETTINGS:
        value = getattr(settings, s.attr)
        if not _secret_part(s, value):
            continue
        if uses_store(s, value):
            if settings.org_code and settings.athoc_server_url:  # else the site is unknown, already a problem
                service = service_name(settings.org_code, settings.athoc_server_url)
                settings.stored = {**settings.stored, s.name: service}
                sources[s.name] = f"the credential store ({service})"
            continue
        given_here = (environ.get(s.name) or (environ.get(s.fallback) if s.fallback else "") or "").strip()
        sources[s.name] = "the process environment" if given_here else f"plain text in {settings.env_file}"
    return sources


def _read_stored(settings: Settings, s: Setting, service: str, problems: List[str]) -> None:
    """Put the credential store's value of `s` in `settings` (a problem when there is none or no store)."""
    from credential_store import StoreError, read_secret  # keyring only when a secret is needed
    try:
        stored = read_secret(service, s.name)
    except StoreError as exc:
        problems.append(f"{s.name} is to be read from the credential store, but {exc}")
        return
    if stored is None:
        written = f"{s.name}'s proxy password is keyring" if s.kind == PROXY else f"{s.name}=keyring"
        problems.append(f"{written}, but the credential store holds no {s.name} for this site ({service}): run "
                        f"python bobosync/bobo_processor.py --store-secret {s.name} as the account that runs bobosync")
        return
    if s.kind != PROXY:
        setattr(settings, s.attr, stored)
        return
    url = getattr(settings, s.attr)
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    info, _, host = rest.rpartition("@")
    url = f"{scheme + '://' if scheme else ''}{info.split(':', 1)[0]}:{quote(stored, safe='')}@{host}"
    try:  # the stored password as its URL's, percent-encoded, checked as a URL written in .env is
        setattr(settings, s.attr, s.check(s, url, url, []) if s.check else url)
    except ValueError as exc:
        problems.append(str(exc))


FOLDERS = (("CSV_DIRECTORY", "csv_directory"), ("PROCESSED_DIRECTORY", "processed_directory"),
           ("FAILED_FILES_DIRECTORY", "failed_files_directory"))


def overlapping_folders(settings: Settings) -> List[str]:
    """A problem for each two of the CSV, processed and failed folders that are the same or one inside the
    other (after resolving links): a run would re-read its own output, or the purge delete what it must keep."""
    real = [(name, os.path.normcase(os.path.realpath(getattr(settings, attr)))) for name, attr in FOLDERS]
    problems = []
    for i, (name, path) in enumerate(real):
        for other, other_path in real[i + 1:]:
            if path == other_path:
                problems.append(f"{name} and {other} are the same folder ({path}): give each its own folder")
            elif _inside(path, other_path) or _inside(other_path, path):
                inner, outer = (name, other) if _inside(path, other_path) else (other, name)
                problems.append(f"{inner} is inside {outer} ({path} and {other_path}): give each its own folder, "
                                f"side by side")
    return problems


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def settings_for_tests(**overrides: Any) -> Settings:
    """A Settings with placeholder credentials, for the Python API and tests."""
    base: Dict[str, Any] = dict(athoc_server_url="http://127.0.0.1:1", client_id="bobosync", client_secret="secret",
                                api_user="apiuser", password="password", org_code="DEMO")
    base.update(overrides)
    return Settings(**base)
