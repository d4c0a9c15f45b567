"""Settings: read from .env and the process environment, validated all at once.

The names are the ones sites already use in their .env files (see .env_safe).
Every bad or missing value is collected and reported together in one
ConfigError, so an operator fixes the whole file in one go.
"""
import codecs
import io
import os
import stat
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import urlsplit

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


_REQUIRED = object()


class Settings:
    """Every setting of bobosync, typed and validated.

    Declared like a dataclass, but not one: importing dataclasses (and the inspect module it
    loads) took a quarter of a run with nothing to do. `replace()` does what dataclasses.replace
    does; equality compares every setting; repr hides the password and the client secret."""

    athoc_server_url: str
    client_id: str
    client_secret: str
    api_user: str
    password: str
    org_code: str
    scope: str = "athoc.iws.web.api"
    disable_ssl_verify: bool = False
    ssl_cert_path: Optional[Path] = None
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    http_timeout_seconds: float = 30.0

    csv_directory: Path = BOBOSYNC_DIR.parent / "crown_files"
    processed_directory: Path = BOBOSYNC_DIR.parent / "processed_files"
    move_processed_files: bool = False
    processed_files_purge_days: int = 30
    failed_files_directory: Path = BOBOSYNC_DIR.parent / "failed_files"
    max_retry_attempts: int = 5
    batch_size: int = 10
    file_settle_seconds: float = 10.0

    duty_status_field: str = "On-Duty-DTG"
    collar_id_field: str = "Collar-Number"
    user_attributes: List[str] = ["Collar-Number", "FIRSTNAME", "LASTNAME"]
    sync_mappings: bool = True
    sync_hour: int = 20
    sync_retry_days: int = 2
    sync_chunk_size: int = 1000
    auto_cleanup_hours: float = 24.0
    cleanup_interval_minutes: float = 60.0

    db_path: Path = BOBOSYNC_DIR / "bobo_mapping.db"
    log_level: str = "INFO"
    log_directory: Path = BOBOSYNC_DIR.parent / "logs"
    log_purge_days: int = 10

    env_file: Optional[Path] = None
    warnings: List[str] = []

    def __init__(self, **values: Any):
        unknown = set(values) - set(self.__annotations__)
        if unknown:
            raise TypeError(f"Settings has no setting {', '.join(sorted(unknown))}")
        for name in self.__annotations__:
            value = values.get(name, type(self).__dict__.get(name, _REQUIRED))
            if value is _REQUIRED:
                raise TypeError(f"Settings needs {name}")
            setattr(self, name, list(value) if isinstance(value, list) else value)  # lists are never shared

    def _values(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__annotations__}

    def replace(self, **changes: Any) -> "Settings":
        """A copy with `changes` (as dataclasses.replace)."""
        return type(self)(**{**self._values(), **changes})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        shown = {k: ("***" if k in ("password", "client_secret") and v else v) for k, v in self._values().items()}
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def secrets(self) -> List[str]:
        """Values that must never appear in a log line, message or exception (proxy passwords too)."""
        proxy_passwords = [url_password(url) for url in (self.http_proxy, self.https_proxy)]
        return [s for s in (self.password, self.client_secret, *proxy_passwords) if s]

    @property
    def mapping_fields(self) -> List[str]:
        """USER_ATTRIBUTES with COLLAR_ID_FIELD always included."""
        wanted = list(self.user_attributes)
        if self.collar_id_field.lower() not in {f.lower() for f in wanted}:
            wanted.insert(0, self.collar_id_field)
        return wanted


def url_password(url: str) -> str:
    """The password in a proxy URL such as http://user:password@proxy:8080 ('' when none)."""
    try:
        return (urlsplit(url).password or "") if url else ""
    except ValueError:
        return ""


def without_password(url: str) -> str:
    """`url` with its password, if any, shown as ***."""
    password = url_password(url)
    return url.replace(f":{password}@", ":***@") if password else url


def find_env_file(explicit: Optional[str] = None) -> Optional[Path]:
    """The .env to read: --env-file if given, else bobosync/.env, else the project root's."""
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (BOBOSYNC_DIR / ".env", PROJECT_DIR / ".env"):
        if candidate.is_file():
            return candidate
    return None


def resolve_path(value: str) -> Path:
    """A path from a setting: relative paths resolve against bobosync/; UNC paths are kept."""
    value = value.strip()
    if value.startswith(("\\\\", "//")):
        return Path(value)
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = BOBOSYNC_DIR / path
    return Path(os.path.normpath(str(path)))


class _Reader:
    """Reads raw values and collects problems instead of stopping at the first one."""

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw
        self.problems: List[str] = []

    def text(self, name: str, default: Optional[str] = None) -> str:
        value = (self.raw.get(name) or "").strip()
        if value:
            return value
        if default is None:
            self.problems.append(f"{name} is missing: set it in .env")
            return ""
        return default

    def boolean(self, name: str, default: bool) -> bool:
        value = (self.raw.get(name) or "").strip().lower()
        if not value:
            return default
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        self.problems.append(f"{name}={self.raw.get(name)!r} is not a yes/no value: use true or false")
        return default

    def number(self, name: str, default: float, low: float, high: float, whole: bool = True) -> float:
        text = (self.raw.get(name) or "").strip()
        if not text:
            return default
        kind = "a whole number" if whole else "a number"
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            self.problems.append(f"{name}={text!r} is not {kind}: expected {kind} from {low:g} to {high:g}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}={text!r} is out of range: expected {kind} from {low:g} to {high:g}")
            return default
        return value

    def path(self, name: str, default: str) -> Path:
        return resolve_path((self.raw.get(name) or "").strip() or default)

    def field_list(self, name: str, default: str) -> List[str]:
        text = (self.raw.get(name) or "").strip() or default
        items = [f.strip() for f in text.split(",") if f.strip()]
        if not items:
            self.problems.append(f"{name} is empty: list AtHoc field names separated by commas")
        return items


def _read_environment(env_file: Optional[Path], environ: Mapping[str, str]) -> Dict[str, str]:
    """Values from the .env file, overridden by the process environment."""
    raw: Dict[str, str] = {}
    if env_file is not None:
        from dotenv import dotenv_values  # only when there is a file: a run's start-up is most of an idle run
        values = dotenv_values(stream=io.StringIO(_env_file_text(env_file)))
        raw.update({k: v for k, v in values.items() if v is not None})
    raw.update(environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if not raw.get(name) and raw.get(name.lower()):
            raw[name] = raw[name.lower()]
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


def _check_server_url(url: str, problems: List[str], warnings: List[str]) -> str:
    url = url.strip().rstrip("/")
    if not url:
        return url
    lower = url.lower()
    if not lower.startswith(("https://", "http://")) or len(url.split("://", 1)[1]) == 0:
        problems.append(f"ATHOC_SERVER_URL={url!r} is not a web address: expected https://your-athoc-server")
    elif lower.startswith("http://"):
        host = lower[len("http://"):].split("/")[0].split(":")[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            warnings.append(f"ATHOC_SERVER_URL={url} uses plain http: credentials travel unencrypted; use https://")
    return url


def _env_file_warnings(env_file: Optional[Path]) -> List[str]:
    if env_file is None or os.name != "posix" or not env_file.is_file():
        return []
    mode = env_file.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{env_file} is readable by other users and holds the AtHoc password: run chmod 600 {env_file}"]
    return []


def load_settings(env_file: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming each bad or missing one."""
    path = find_env_file(env_file)
    problems: List[str] = []
    if env_file and (path is None or not path.is_file()):
        raise ConfigError([f"--env-file {env_file}: {'not a file' if Path(env_file).exists() else 'no such file'}"])
    raw = _read_environment(path, os.environ if environ is None else environ)
    r = _Reader(raw)
    warnings: List[str] = []

    api_user = (raw.get("APIUSER") or "").strip()
    if not api_user and (raw.get("USERNAME") or "").strip():
        api_user = raw["USERNAME"].strip()
        warnings.append("APIUSER is not set, so USERNAME is used as the AtHoc service account; "
                        "Windows sets USERNAME for every process, so set APIUSER in .env instead")
    if not api_user:
        r.problems.append("APIUSER is missing: set it to the AtHoc service account in .env")

    settings = Settings(
        athoc_server_url=_check_server_url(r.text("ATHOC_SERVER_URL"), r.problems, warnings),
        client_id=r.text("CLIENT_ID"),
        client_secret=r.text("CLIENT_SECRET"),
        api_user=api_user,
        password=r.text("PASSWORD"),
        org_code=r.text("ORG_CODE"),
        scope=r.text("SCOPE", "athoc.iws.web.api"),
        disable_ssl_verify=r.boolean("DISABLE_SSL_VERIFY", False),
        ssl_cert_path=None,
        http_proxy=r.text("HTTP_PROXY", ""),
        https_proxy=r.text("HTTPS_PROXY", ""),
        no_proxy=r.text("NO_PROXY", ""),
        http_timeout_seconds=r.number("HTTP_TIMEOUT_SECONDS", 30.0, 1, 300, whole=False),
        csv_directory=r.path("CSV_DIRECTORY", "../crown_files"),
        processed_directory=r.path("PROCESSED_DIRECTORY", "../processed_files"),
        move_processed_files=r.boolean("MOVE_PROCESSED_FILES", False),
        processed_files_purge_days=int(r.number("PROCESSED_FILES_PURGE_DAYS", 30, 0, 36500)),
        failed_files_directory=r.path("FAILED_FILES_DIRECTORY", "../failed_files"),
        max_retry_attempts=int(r.number("MAX_RETRY_ATTEMPTS", 5, 1, 1000)),
        batch_size=int(r.number("BATCH_SIZE", 10, 1, 10000)),
        file_settle_seconds=r.number("FILE_SETTLE_SECONDS", 10.0, 0, 3600, whole=False),
        duty_status_field=r.text("DUTY_STATUS_FIELD", "On-Duty-DTG"),
        collar_id_field=r.text("COLLAR_ID_FIELD", "Collar-Number"),
        user_attributes=r.field_list("USER_ATTRIBUTES", "Collar-Number,FIRSTNAME,LASTNAME"),
        sync_mappings=r.boolean("SYNC_MAPPINGS", True),
        sync_hour=int(r.number("SYNC_HOUR", 20, 0, 23)),
        sync_retry_days=int(r.number("SYNC_RETRY_DAYS", 2, 1, 365)),
        sync_chunk_size=int(r.number("SYNC_CHUNK_SIZE", 1000, 1, 1000)),
        auto_cleanup_hours=r.number("AUTO_CLEANUP_HOURS", 24.0, 0, 24 * 365, whole=False),
        cleanup_interval_minutes=r.number("CLEANUP_INTERVAL_MINUTES", 60.0, 0, 24 * 60, whole=False),
        db_path=r.path("DB_PATH", "bobo_mapping.db"),
        log_level=r.text("LOG_LEVEL", "INFO").upper(),
        log_directory=r.path("LOG_DIRECTORY", "../logs"),
        log_purge_days=int(r.number("LOG_PURGE_DAYS", 10, 0, 3650)),
        env_file=path,
    )
    if settings.log_level not in LOG_LEVELS:
        r.problems.append(f"LOG_LEVEL={settings.log_level!r} is not a log level: use one of {', '.join(LOG_LEVELS)}")
        settings.log_level = "INFO"
    cert = (raw.get("SSL_CERT_PATH") or "").strip()
    if cert:
        settings.ssl_cert_path = resolve_path(cert)
        if not settings.ssl_cert_path.exists():
            r.problems.append(f"SSL_CERT_PATH={cert!r}: no such file or folder (expected the CA bundle, PEM format)")
    if settings.disable_ssl_verify:
        warnings.append("DISABLE_SSL_VERIFY=true: AtHoc's certificate is not checked. Use this on test systems only")
    warnings.extend(_env_file_warnings(path))
    settings.warnings = warnings
    problems.extend(r.problems)
    if problems:
        raise ConfigError(problems, str(path) if path else "the environment; no .env file found")
    return settings


def settings_for_tests(**overrides: object) -> Settings:
    """A Settings with placeholder credentials, for the Python API and tests."""
    base = dict(athoc_server_url="http://127.0.0.1:1", client_id="bobosync", client_secret="secret",
                api_user="apiuser", password="password", org_code="DEMO")
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]
