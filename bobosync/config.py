"""Settings: read from .env and the process environment, validated all at once.

setting_table.SETTINGS is the one list of settings (their names are the ones sites already use in
their .env files, see .env_safe); the Settings class and its reading and validation here come from
it. Every bad or missing value is collected and reported together in one ConfigError, so an operator
fixes the whole file in one go.
"""
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

from setting_table import (  # noqa: F401 - what callers import from config
    BOBOSYNC_DIR, DEFAULTS, ENVIRONMENT_NAMES, KEYRING_WORD, PROJECT_DIR, PROXY, SETTINGS, _FALLBACK_WARNINGS, _KINDS,
    Setting, resolve_path)
from env_file import (  # noqa: F401 - what callers import from config
    ENV_DIRS_VAR, EnvFileError, env_file_candidates, find_env_file, no_env_file_source, read_env_file)
from alert_settings import alert_problems
from url_secrets import (  # noqa: F401 - what callers import from config
    secret_forms, service_name, unusable_proxy_url, url_password, user_info, without_password, without_userinfo)

_REQUIRED = object()  # a Settings value no one gave


class ConfigError(Exception):
    """One or more settings are missing or invalid; the message names each one."""

    def __init__(self, problems: List[str], source: str = ""):
        self.problems = list(problems)
        where = f" (read from {source})" if source else ""
        lines = [f"bobosync cannot start: {len(self.problems)} setting(s) need attention{where}:"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("Fix them in .env (see .env_safe for every setting and its default).")
        super().__init__("\n".join(lines))


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
        smtp_host: str
        smtp_port: int
        smtp_security: str
        smtp_user: str
        smtp_password: str
        alert_from: str
        alert_to: List[str]
        alert_after_minutes: float
        alert_repeat_hours: float
        alert_pending_hours: float
        alert_event_log: bool
        bobo_silence_minutes: float

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
        forms = {form for part in parts if part and part.lower() != KEYRING_WORD for form in secret_forms(part)}
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


def _masked(s: "Setting", value: str) -> str:
    """`value` with its secret part shown as ***."""
    secret = _secret_part(s, value)
    if not secret or s.kind != PROXY:
        return "***" if secret else value
    scheme, _, rest = value.rpartition("://")
    return f"{scheme + '://' if scheme else ''}{user_info(value).split(':', 1)[0]}:***@{rest.rpartition('@')[2]}"


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


class _Reader:
    """Reads each setting from the raw values, collecting problems and warnings instead of
    stopping at the first one."""

    def __init__(self, raw: Mapping[str, str], local: bool = False):
        self.raw = raw
        self.local = local  # only the settings of local work are needed: AtHoc's may be missing
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
        if self.local and s.required and not text:
            return ""
        try:
            value = s.parse(text)
            return s.check(s, text, value, self.warnings) if s.check else value
        except ValueError as exc:
            self.problems.append(str(exc))
            return DEFAULTS.get(s.attr, "")


def _read_environment(env_file: Optional[Path], environ: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """Values from the .env file, overridden by the process environment, and the .env file's warnings (names
    that are no setting, names set twice)."""
    raw: Dict[str, str] = {}
    warnings: List[str] = []
    if env_file is not None:
        try:
            raw, warnings = read_env_file(env_file, ENVIRONMENT_NAMES)
        except EnvFileError as exc:
            raise ConfigError([str(exc)]) from None
    raw.update(environ)
    return raw, warnings


def _env_file_warnings(env_file: Optional[Path], sources: Mapping[str, str]) -> List[str]:
    """A warning when other users may read the .env file and it holds a secret (POSIX only)."""
    if env_file is None or os.name != "posix" or not env_file.is_file():
        return []
    if not any(source.startswith("plain text in") for source in sources.values()):
        return []  # every secret is in the credential store (or the environment)
    mode = env_file.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{env_file} is readable by other users and holds a password: run chmod 600 {env_file}"]
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
    reader = _Reader(_read_environment(path, os.environ if environ is None else environ)[0])
    values = {s.name: reader.read(s) for s in SETTINGS if s.name in names}
    if reader.problems:
        raise ConfigError(reader.problems, str(path) if path else no_env_file_source())
    return values


def load_settings(env_file: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                  local: bool = False) -> Settings:
    """Read and validate every setting; raise ConfigError naming each bad or missing one. Secrets written as
    keyring are read from the credential store when first needed: Settings.read_stored_secrets. `local`: for
    work that never reaches AtHoc (--status), AtHoc's address and credentials may be missing."""
    path = _env_path(env_file)
    environ = os.environ if environ is None else environ
    raw, file_warnings = _read_environment(path, environ)
    reader = _Reader(raw, local)
    settings = Settings(**{s.attr: reader.read(s) for s in SETTINGS}, env_file=path)
    settings.secret_sources = _secret_sources(settings, environ)
    proxy_errors, proxy_warnings = proxy_problems(settings)
    settings.warnings = [*file_warnings, *reader.warnings, *proxy_warnings,
                         *_env_file_warnings(path, settings.secret_sources)]
    alert_errors, alert_warnings = alert_problems(settings)
    settings.warnings += alert_warnings
    reader.problems += proxy_errors + overlapping_folders(settings) + alert_errors
    if reader.problems:
        raise ConfigError(reader.problems, str(path) if path else no_env_file_source())
    return settings


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
