"""--check: will bobosync work on this machine? One line per check: PASS, WARN or FAIL, and the fix.

Checks in order: settings, folders, database, DNS, TCP, TLS, proxy, token, AtHoc's clock, one
page of users, the duty and collar fields, then where alerts go (--test-alert: a test message through
each transport). Later network checks are skipped once an earlier one failed; a network check that
breaks is a FAIL line, never a traceback. Prints no secret.
"""
import os
import socket
import sqlite3
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional
from urllib.parse import urlsplit

from config import ConfigError, Settings, load_settings, without_userinfo

if TYPE_CHECKING:
    from athoc_client import AtHocClient


@dataclass
class Check:
    verdict: str  # PASS, WARN, FAIL or SKIP
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.verdict:<4}  {self.name:<22} {self.detail}"


class Preflight:
    """Runs the checks and keeps their results."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.results: List[Check] = []

    def add(self, verdict: str, name: str, detail: str) -> None:
        check = Check(verdict, name, detail)
        self.results.append(check)
        print(check.line(), flush=True)

    def summary(self) -> str:
        """The closing line: how many PASS, WARN and FAIL, and what they mean."""
        count = {v: sum(c.verdict == v for c in self.results) for v in ("PASS", "WARN", "FAIL")}
        counts = f"{count['PASS']} PASS, {count['WARN']} WARN, {count['FAIL']} FAIL"
        if count["FAIL"]:
            return f"Preflight: {counts}. Fix the FAIL lines above: runs cannot work until then."
        if count["WARN"]:
            return f"Preflight: {counts}. Runs can work; read the WARN lines above."
        return f"Preflight: {counts}. All checks passed."

    @property
    def failed(self) -> bool:
        return any(c.verdict == "FAIL" for c in self.results)

    # --- local ---

    def secrets(self) -> None:
        """Where each secret comes from, never its value: PASS for the credential store or the process environment,
        WARN (recommending the store) for plain text in a file."""
        for name, source in self.settings.secret_sources.items():
            if not source.startswith("plain text in"):  # the credential store, or the process environment
                self.add("PASS", name, f"read from {source}" + ("" if "store" in source else " (in no file)"))
                continue
            what = "the proxy's password" if name.endswith("_PROXY") else name
            fix = ("write it as keyring in the URL (http://user:keyring@proxy:8080)" if name.endswith("_PROXY")
                   else f"then set {name}=keyring")
            self.add("WARN", name, f"{what} is in {source}: keep it in the credential store instead: "
                     f"python bobosync/bobo_processor.py --store-secret {name}, {fix}")

    def folders(self) -> None:
        s = self.settings
        if s.csv_directory.is_dir() and os.access(s.csv_directory, os.R_OK | os.X_OK):
            self.add("PASS", "CSV_DIRECTORY", f"{s.csv_directory} is readable")
        else:
            self.add("FAIL", "CSV_DIRECTORY", f"{s.csv_directory} is missing or unreadable: create it or fix the path; "
                     f"the service account needs read and modify rights on it")
        for name, folder in (("PROCESSED_DIRECTORY", s.processed_directory),
                             ("FAILED_FILES_DIRECTORY", s.failed_files_directory),
                             ("LOG_DIRECTORY", s.log_directory), ("DB_PATH folder", s.db_path.parent)):
            self._writable(name, folder)

    def _writable(self, name: str, folder: Path) -> None:
        """PASS when `folder` is writable, or when it is missing and a run could create it (the nearest folder
        that exists is writable); nothing is created: a check changes nothing."""
        if folder.is_dir():
            if os.access(folder, os.W_OK | os.X_OK):
                self.add("PASS", name, f"{folder} is writable")
            else:
                self.add("FAIL", name, f"{folder} is not writable: give the service account modify rights, or "
                         f"change {name.split()[0]}")
            return
        parent = _nearest_existing(folder)
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            self.add("PASS", name, f"{folder} does not exist yet: a run creates it (in {parent}, which is writable)")
        else:
            self.add("FAIL", name, f"{folder} does not exist and a run cannot create it ({parent or 'no parent'} is "
                     f"not a writable folder): create it with modify rights for the service account, or change "
                     f"{name.split()[0]}")

    def database(self) -> None:
        """The database opened read-only: a check neither creates, upgrades nor sets aside a file."""
        path = self.settings.db_path
        if not path.exists():
            self.add("PASS", "database", f"{path} does not exist yet: the first run creates it and syncs the mappings")
            return
        try:
            conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, timeout=5)
            try:
                conn.execute("PRAGMA schema_version").fetchone()
                tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                count = conn.execute("SELECT COUNT(*) FROM worker_mapping").fetchone()[0] if "worker_mapping" in \
                    tables else 0
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            self.add("FAIL", "database", f"{path} cannot be read ({exc}): if another program holds it, close it; "
                     f"check DB_PATH and the folder's permissions")
            return
        except sqlite3.DatabaseError as exc:
            self.add("WARN", "database", f"{path} is damaged ({exc}): the next run sets it aside and builds a new one, "
                     f"then re-syncs the mappings (duty state starts empty)")
            return
        self.add("PASS", "database", f"{path} opens; {count} user mappings held")

    def alerts(self, send_test: bool) -> None:
        """Where alerts go; with `send_test`, a test message through each transport (PASS or FAIL)."""
        from alerts import check_lines
        for verdict, name, detail in check_lines(self.settings, send_test):
            self.add(verdict, name, self._redact(detail))

    # --- network ---

    def network(self) -> None:
        """DNS, TCP, TLS, proxy, token, clock, users, fields; each step only when the one before passed. Any
        error a step meets is its FAIL line (with no secret), never a traceback."""
        try:
            self._network()
        except Exception as exc:  # noqa: BLE001 - --check reports every problem as a line
            self.add("FAIL", "network", self._redact(f"the network checks stopped: {type(exc).__name__}: {exc}"))

    def _redact(self, text: str) -> str:
        for secret in self.settings.secrets:
            text = text.replace(secret, "***")
        return text[:500]

    def _network(self) -> None:
        url = urlsplit(self.settings.athoc_server_url)
        host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        from athoc_client import AtHocClient
        client = AtHocClient(self.settings, lazy=True)
        proxy = client.proxy_in_use
        try:
            if proxy:
                self.add("PASS", "proxy", f"AtHoc is reached through {without_userinfo(proxy)} "
                         f"(HTTPS_PROXY/HTTP_PROXY); DNS, TCP and TLS are the proxy's, checked by the token step")
            else:
                self.add("PASS", "proxy", "none: AtHoc is reached directly (set HTTPS_PROXY if a proxy is required)")
                if not (self._dns(host, port) and self._tcp(host, port)):
                    return
                if url.scheme == "https" and not self._tls(host, port):
                    return
            if self._token(client):
                self._clock(client)
                if self._users(client):
                    self._fields(client)
        finally:
            client.close()

    def _dns(self, host: str, port: int) -> bool:
        try:
            addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
        except OSError as exc:
            self.add("FAIL", "DNS", f"{host} does not resolve ({exc}): check ATHOC_SERVER_URL and the DNS servers")
            return False
        self.add("PASS", "DNS", f"{host} -> {', '.join(addresses[:4])}")
        return True

    def _tcp(self, host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=min(10.0, self.settings.http_timeout_seconds)):
                pass
        except OSError as exc:
            self.add("FAIL", "TCP connect", f"{host}:{port} does not accept connections ({exc}): check the "
                     f"firewall, or whether a proxy is required (HTTPS_PROXY)")
            return False
        self.add("PASS", "TCP connect", f"{host}:{port} accepts connections")
        return True

    def _tls(self, host: str, port: int) -> bool:
        s = self.settings
        from tls import tls_context
        context = tls_context(s)  # verified even with DISABLE_SSL_VERIFY: the check says what is skipped
        try:
            with socket.create_connection((host, port), timeout=min(10.0, s.http_timeout_seconds)) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    cert = tls.getpeercert() or {}
                    version = tls.version()
        except ssl.SSLCertVerificationError as exc:
            verdict = "WARN" if s.disable_ssl_verify else "FAIL"
            self.add(verdict, "TLS", f"the certificate of {host} is not trusted ({exc.verify_message}): if a firewall "
                     f"inspects TLS or AtHoc uses a private CA, set SSL_CERT_PATH to that CA's PEM file"
                     + (" (DISABLE_SSL_VERIFY=true lets the run go on: test systems only)" if s.disable_ssl_verify
                        else ""))
            return s.disable_ssl_verify
        except (ssl.SSLError, OSError) as exc:
            self.add("FAIL", "TLS", f"TLS handshake with {host}:{port} failed ({exc}): AtHoc must offer TLS 1.2 or "
                     f"newer")
            return False
        self.add("PASS", "TLS", f"{version}; certificate subject {_name(cert.get('subject'))}, "
                 f"issuer {_name(cert.get('issuer'))}")
        return True

    def _token(self, client: "AtHocClient") -> bool:
        from athoc_types import AtHocError
        try:
            client.authenticate()
        except AtHocError as exc:
            self.add("FAIL", "token", str(exc))
            return False
        self.add("PASS", "token", f"AtHoc issued a token to {self.settings.api_user} for org {self.settings.org_code}")
        return True

    def _clock(self, client: "AtHocClient") -> None:
        """AtHoc's clock (its replies' Date) against this computer's."""
        offset = client.clock_offset_seconds
        tolerance = self.settings.clock_skew_tolerance_minutes
        if offset is None:
            self.add("WARN", "clock", "AtHoc's replies carry no Date header: its clock cannot be compared")
            return
        ahead = "ahead of" if offset > 0 else "behind"
        detail = f"AtHoc's clock is {abs(offset):.0f} s {ahead} this computer's"
        if abs(offset) > tolerance * 60:
            self.add("WARN", "clock", f"{detail}, more than CLOCK_SKEW_TOLERANCE_MINUTES={tolerance:g}: duty "
                     f"times, the cleanup of old values and events dated in the future are judged by this "
                     f"computer's clock; set the clocks right (time service)")
        else:
            self.add("PASS", "clock", f"{detail} (tolerance {tolerance:g} min)")

    def _users(self, client: "AtHocClient") -> bool:
        from athoc_types import AtHocError, ci_get
        s = self.settings
        try:
            users, total = client.sample_users([s.collar_id_field, s.duty_status_field])
        except AtHocError as exc:
            self.add("FAIL", "user search", f"{exc} (the service account needs the right to search users)")
            return False
        with_collar = sum(1 for u in users if str(ci_get(u, s.collar_id_field) or "").strip())
        on_duty = sum(1 for u in users if str(ci_get(u, s.duty_status_field) or "").strip())
        detail = (f"{len(users)} of {total if total is not None else '?'} users read; {with_collar} have "
                  f"{s.collar_id_field}, {on_duty} have {s.duty_status_field} set")
        if users and with_collar == 0:
            # every user read and none has one: the mapping would be empty and nothing ever sent
            everyone = total is not None and len(users) >= total
            self.add("FAIL" if everyone else "WARN", "user search",
                     f"{detail}. No user has a {s.collar_id_field}: the field name is "
                     f"{'wrong' if everyone else 'probably wrong'}, and bobosync maps a person only through it; "
                     f"check COLLAR_ID_FIELD against AtHoc's user attributes")
        elif not users:
            self.add("WARN", "user search", "AtHoc listed no users: check that the service account may see the "
                     "organisation's users")
        else:
            self.add("PASS", "user search", detail)
        return True

    def _fields(self, client: "AtHocClient") -> None:
        """Does AtHoc know DUTY_STATUS_FIELD and COLLAR_ID_FIELD? FAIL when AtHoc says it does not; when no
        user holds a value the API cannot tell, which is a WARN for the duty field (the collar field's case
        is the user search's line)."""
        from athoc_types import AtHocError
        s = self.settings
        for name, field in (("DUTY_STATUS_FIELD", s.duty_status_field), ("COLLAR_ID_FIELD", s.collar_id_field)):
            try:
                exists = client.field_exists(field)
            except AtHocError as exc:
                self.add("FAIL", name, f"cannot tell whether AtHoc knows {field}: {exc}")
                continue
            if exists:
                self.add("PASS", name, f"AtHoc knows {field}: users hold values of it")
            elif exists is False:
                self.add("FAIL", name, f"AtHoc does not know the user attribute {field}: check {name} against "
                         f"AtHoc's user attributes (the name, not the display name)")
            elif name == "DUTY_STATUS_FIELD":
                self.add("WARN", name, f"no user holds a value of {field}, so the API cannot tell whether AtHoc "
                         f"knows it: check {name} against AtHoc's user attributes; if it is wrong, the first "
                         f"update says so and the run stops (exit 3)")


def _nearest_existing(folder: Path) -> Optional[Path]:
    """`folder` or the nearest of its parents that exists (None when none does)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return None


def _name(parts: Any) -> str:
    """An X.509 name from getpeercert() as 'CN=x, O=y'."""
    try:
        return ", ".join(f"{k}={v}" for rdn in parts for k, v in rdn) or "(none)"
    except (TypeError, ValueError):
        return "(unknown)"


def run_checks(env_file: Optional[str] = None, test_alert: bool = False) -> int:
    """The whole preflight; exit code 0 only when nothing failed (2 for invalid settings). `test_alert`
    (--test-alert): send a test message through each alert transport."""
    print("bobosync preflight: each line is PASS, WARN or FAIL, with what to do")
    try:
        settings = load_settings(env_file)
        settings.read_stored_secrets()  # now, so that a secret missing from the store is a FAIL line here
    except ConfigError as exc:
        for problem in exc.problems:
            print(Check("FAIL", "settings", problem).line())
        print(f"Preflight: 0 PASS, 0 WARN, {len(exc.problems)} FAIL. Fix the settings first (see .env_safe), "
              f"then run --check again.")
        return 2
    checks = Preflight(settings)
    checks.add("PASS", "settings", f"read from {settings.env_file or 'the environment'}")
    for warning in settings.warnings:
        checks.add("WARN", "settings", warning)
    checks.secrets()
    checks.folders()
    checks.database()
    checks.network()
    checks.alerts(test_alert)
    print(checks.summary())
    return 1 if checks.failed else 0
