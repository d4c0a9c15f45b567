"""The alert settings: their checks, whether alerts are on, and which transports carry them.

Alerts are off while SMTP_HOST and ALERT_EVENT_LOG are unset. E-mail goes through SMTP_HOST; the
Windows Application event log is written with Windows' own eventcreate.exe (System32), which exists
only on Windows: elsewhere ALERT_EVENT_LOG=true is a configuration error. The test hook
BOBOSYNC_TEST_EVENTCREATE_ON_PATH (failpoints.py) lets the suite use a stand-in found on PATH instead.
"""
import os
import re
from typing import TYPE_CHECKING, Any, List, Tuple
from url_secrets import valid_dns_name

if TYPE_CHECKING:
    from config import Settings
    from setting_table import Setting

SECURITY_CHOICES = ("none", "starttls", "tls")
USUAL_PORTS = {"none": 25, "starttls": 587, "tls": 465}
EMAIL, EVENT_LOG = "e-mail", "event log"  # the transports, as messages and alert_state name them
EVENTCREATE_HOOK = "BOBOSYNC_TEST_EVENTCREATE_ON_PATH"
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


def address_problem(name: str, address: str) -> str:
    """Why `address` is not a plain e-mail address ('' when it is one)."""
    if _ADDRESS.fullmatch(address):
        return ""
    return (f"{name}: {address!r} is not an e-mail address: write plain addresses such as "
            f"duty.desk@force.example (no display name, no <>)")


def check_address(s: "Setting", text: str, value: str, warnings: List[str]) -> str:
    """ALERT_FROM: empty, or one plain address."""
    if value and address_problem(s.name, value):
        raise ValueError(address_problem(s.name, value))
    return value


def parse_addresses(s: "Setting", text: str) -> List[str]:
    """ALERT_TO: comma-separated plain addresses ([] when unset); every bad one is named."""
    if ";" in text:
        raise ValueError(f"{s.name}={text!r}: separate the addresses with commas, not semicolons")
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    problems = [address_problem(s.name, a) for a in addresses if address_problem(s.name, a)]
    if problems:
        raise ValueError("; ".join(problems))
    return addresses


def check_smtp_host(s: "Setting", text: str, host: str, warnings: List[str]) -> str:
    """A host name or address alone: no scheme, no port (SMTP_PORT), no space."""
    if not host:
        return host
    if "://" in host or "/" in host or re.search(r"\s", host):
        raise ValueError(f"{s.name}={host!r} is not a host name: write the mail server's name or address alone "
                         f"(smtp.force.example); the port goes in SMTP_PORT, TLS in SMTP_SECURITY")
    if host.count(":") == 1:
        raise ValueError(f"{s.name}={host!r} holds a port: write the host alone and the port in SMTP_PORT")
    if not valid_dns_name(host.strip("[]")):
        raise ValueError(f"{s.name}={host!r} is not a valid host name")
    return host.strip("[]")


def check_security(s: "Setting", text: str, value: str, warnings: List[str]) -> str:
    """none, starttls or tls, in any case."""
    if value.lower() not in SECURITY_CHOICES:
        raise ValueError(f"{s.name}={value!r} is not a choice: use none (plain SMTP, an internal relay), starttls "
                         f"(port 587, upgraded to TLS) or tls (port 465, TLS from the start)")
    return value.lower()


def eventcreate_program() -> str:
    """The eventcreate.exe that writes the Application event log ('' when there is none): Windows' own, by full
    path (never one found on PATH), or with the test hook set, a stand-in on PATH on any system."""
    if os.environ.get(EVENTCREATE_HOOK):
        import shutil
        return shutil.which("eventcreate") or ""
    if os.name != "nt":
        return ""
    program = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "eventcreate.exe")
    return program if os.path.isfile(program) else ""


def check_event_log(s: "Setting", text: str, wanted: bool, warnings: List[str]) -> bool:
    """ALERT_EVENT_LOG=true needs Windows' eventcreate.exe: elsewhere it is a configuration error."""
    if wanted and not eventcreate_program():
        if os.name != "nt" and not os.environ.get(EVENTCREATE_HOOK):
            import platform
            raise ValueError(f"{s.name}=true: the Windows Application event log exists only on Windows, and this "
                             f"computer runs {platform.system() or os.name}: set {s.name}=false (e-mail alerts: "
                             f"SMTP_HOST)")
        raise ValueError(f"{s.name}=true, but eventcreate.exe (which writes the event log) was not found in "
                         f"Windows' System32 folder: set {s.name}=false, or restore eventcreate.exe")
    return wanted


def alerts_on(settings: "Settings") -> bool:
    """Alerts are on when at least one transport is configured."""
    return bool(settings.smtp_host or settings.alert_event_log)


def transports(settings: "Settings") -> List[str]:
    """The configured transports, in the order they are tried."""
    return ([EMAIL] if settings.smtp_host else []) + ([EVENT_LOG] if settings.alert_event_log else [])


def smtp_port(settings: "Settings") -> int:
    """SMTP_PORT, or when it is 0 the usual port of SMTP_SECURITY."""
    return settings.smtp_port or USUAL_PORTS[settings.smtp_security]


def alert_problems(settings: "Settings") -> Tuple[List[str], List[str]]:
    """(problems, warnings) of the alert settings taken together: e-mail needs a sender and recipients, a user
    needs a password; settings that only make sense with SMTP_HOST are warned when it is unset."""
    s: Any = settings
    problems: List[str] = []
    warnings: List[str] = []
    if s.smtp_host:
        if not s.alert_to:
            problems.append("SMTP_HOST is set but ALERT_TO is empty: list the addresses alerts go to, separated by "
                            "commas")
        if not s.alert_from:
            problems.append("SMTP_HOST is set but ALERT_FROM is empty: set the sender address your mail server "
                            "accepts from bobosync")
        if s.smtp_user and not s.smtp_password:
            problems.append("SMTP_USER is set but SMTP_PASSWORD is not: set it, or write SMTP_PASSWORD=keyring "
                            "after --store-secret SMTP_PASSWORD")
        if s.smtp_password and not s.smtp_user:
            warnings.append("SMTP_PASSWORD is set but SMTP_USER is not: bobosync does not log in to the mail server")
        if s.smtp_user and s.smtp_security == "none" and not _loopback(s.smtp_host):
            warnings.append(f"SMTP_SECURITY=none with SMTP_USER: the mail password travels unencrypted to "
                            f"{s.smtp_host}; use starttls or tls")
    else:
        named = [n for n, v in (("ALERT_TO", s.alert_to), ("ALERT_FROM", s.alert_from), ("SMTP_USER", s.smtp_user))
                 if v]
        if named:
            warnings.append(f"{', '.join(named)} set but SMTP_HOST is not: no e-mail alert is sent")
    return problems, warnings


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
