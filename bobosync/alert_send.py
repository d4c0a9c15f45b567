"""Delivering an alert: e-mail through SMTP (smtplib, imported only here, only when a message goes) and the
Windows Application event log (eventcreate.exe), each inside the alerts' own time budget.

A transport that fails says why in one line with no secret (the mail password, and any other secret
setting, is replaced by ***); it never raises, so a broken mail server is a WARNING of the run, not a
failure. One SMTP connection carries every message of a run.
"""
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple

from alert_settings import EMAIL, EVENT_LOG, eventcreate_program, smtp_port

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger("bobosync")

EVENT_SOURCE = "bobosync"  # the event log's source name
DESCRIPTION_LIMIT = 2000  # characters of an event's description


class Message(NamedTuple):
    """One alert as it is delivered; the same on every attempt (its Message-ID too)."""

    kind: str  # open, reminder, clear or test
    problem: str
    subject: str
    body: str
    message_id: str
    event_id: int


def redact(text: str, settings: "Settings") -> str:
    """`text` with every secret of the settings as ***."""
    for secret in settings.secrets:
        text = text.replace(secret, "***")
    return text


class Sender:
    """Delivers messages until `deadline` (time.monotonic()); a transport that failed is not tried again in
    the same run."""

    def __init__(self, settings: "Settings", deadline: float):
        self.settings, self.deadline = settings, deadline
        self.broken: List[str] = []
        self._smtp: Any = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def send(self, transport: str, message: Message) -> str:
        """Deliver `message` by `transport`: '' when it was accepted, else why not (one line, no secret)."""
        if transport in self.broken:
            return "it failed earlier in this run"
        if self.left() <= 0:
            return "the alerts' time in this run was used up"
        deliver: Callable[[Message], str] = self._email if transport == EMAIL else self._event_log
        try:
            why = deliver(message)
        except Exception as exc:  # noqa: BLE001 - any failure of a transport is a line, never a traceback
            why = self._why(exc)
            if transport == EMAIL:
                self.close()
        if why:
            self.broken.append(transport)
        return redact(why, self.settings)[:500]

    # --- e-mail ---

    def _email(self, message: Message) -> str:
        from email.message import EmailMessage
        from email.policy import default
        from email.utils import format_datetime, localtime
        s = self.settings
        mail = EmailMessage(policy=default.clone(max_line_length=998))  # no folding of a subject a little long
        mail["From"], mail["To"], mail["Subject"] = s.alert_from, ", ".join(s.alert_to), message.subject
        mail["Date"], mail["Message-ID"] = format_datetime(localtime()), message.message_id
        mail["X-Bobosync-Alert"] = f"{message.kind} {message.problem}"
        mail.set_content(redact(message.body, s))
        conn = self._connection()
        conn.sock.settimeout(max(0.5, self.left()))
        refused = conn.send_message(mail, s.alert_from, s.alert_to)
        if refused:
            log.warning("The mail server refused alert recipient(s) %s (the others got it): check ALERT_TO",
                        ", ".join(sorted(refused)))
        return ""

    def _connection(self) -> Any:
        """The SMTP connection of this run: connected, TLS as SMTP_SECURITY says, logged in if SMTP_USER is set."""
        if self._smtp is not None:
            return self._smtp
        import smtplib
        import socket
        from tls import tls_context
        s = self.settings
        s.read_stored_secrets()  # SMTP_PASSWORD=keyring
        host, port, timeout = s.smtp_host, smtp_port(s), max(0.5, self.left())
        me = socket.gethostname()  # not getfqdn(): a reverse DNS look-up can take longer than the budget
        if s.smtp_security == "tls":
            conn: Any = smtplib.SMTP_SSL(host, port, local_hostname=me, timeout=timeout, context=tls_context(s))
        else:
            conn = smtplib.SMTP(host, port, local_hostname=me, timeout=timeout)
        try:
            conn.ehlo()
            if s.smtp_security == "starttls":
                conn.starttls(context=tls_context(s))
                conn.ehlo()
            if s.smtp_user:
                conn.login(s.smtp_user, s.smtp_password)
        except BaseException:
            conn.close()
            raise
        self._smtp = conn
        return conn

    def _why(self, exc: BaseException) -> str:
        """A failure of a transport in words an operator reads."""
        import smtplib
        import ssl
        import subprocess
        s = self.settings
        if isinstance(exc, subprocess.TimeoutExpired):
            return "eventcreate did not finish in time"
        where = f"{s.smtp_host}:{smtp_port(s)}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"the mail server {where} refused SMTP_USER {s.smtp_user} and SMTP_PASSWORD ({_reply(exc)})"
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return f"the mail server {where} refused ALERT_FROM {s.alert_from} ({_reply(exc)})"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return f"the mail server {where} refused every address of ALERT_TO"
        if isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
            return f"the mail server {where} does not offer STARTTLS: use SMTP_SECURITY=tls or none"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return f"the mail server {where} offers no login (AUTH): unset SMTP_USER, or check the server"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"the mail server {where} answered {_reply(exc)}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return (f"the certificate of the mail server {where} is not trusted ({exc.verify_message}): put its CA "
                    f"in SSL_CERT_PATH")
        if isinstance(exc, TimeoutError) or type(exc).__name__ == "timeout":
            return f"the mail server {where} did not answer in time"
        if isinstance(exc, ConnectionRefusedError):
            return f"nothing accepts connections at {where}: check SMTP_HOST and SMTP_PORT"
        if isinstance(exc, (OSError, smtplib.SMTPException)):
            return f"the mail server {where} cannot be used: {type(exc).__name__}: {exc}"
        return f"{type(exc).__name__}: {exc}"  # e.g. ConfigError: SMTP_PASSWORD missing from the store

    # --- the Windows event log ---

    def _event_log(self, message: Message) -> str:
        import subprocess
        program = eventcreate_program()
        if not program:
            return "eventcreate.exe was not found"
        level = "INFORMATION" if message.kind in ("clear", "test") else "ERROR"
        text = " / ".join(line for line in redact(message.body, self.settings).splitlines() if line.strip())
        description = f"{message.subject}: {text}"[:DESCRIPTION_LIMIT]
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
        done = subprocess.run([program, "/L", "APPLICATION", "/T", level, "/SO", EVENT_SOURCE, "/ID",
                               str(message.event_id), "/D", description], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=max(0.5, self.left()), creationflags=flags)
        if done.returncode == 0:
            return ""
        said = (done.stdout + done.stderr).decode("utf-8", "replace").strip().splitlines()
        return (f"eventcreate exited {done.returncode}: {said[0] if said else 'no message'} (the first event of "
                f"source {EVENT_SOURCE} must be written by an administrator: see process.md)")

    def close(self) -> None:
        """End the SMTP connection, if any (a QUIT, within what is left of the budget)."""
        conn, self._smtp = self._smtp, None
        if conn is None:
            return
        try:
            if conn.sock is not None:
                conn.sock.settimeout(max(0.5, min(2.0, self.left())))
            conn.quit()
        except Exception:  # noqa: BLE001 - the messages were accepted; a QUIT that fails changes nothing
            conn.close()


def _reply(exc: Any) -> str:
    """An SMTP reply as 'code text'."""
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text.strip()}"[:200]


def message_id(settings: "Settings") -> str:
    """A new Message-ID in the domain of ALERT_FROM (no DNS look-up)."""
    from email.utils import make_msgid
    domain = settings.alert_from.rpartition("@")[2] if settings.alert_from else "bobosync.invalid"
    return make_msgid("bobosync", domain=domain)


def transport_line(settings: "Settings", transport: str) -> str:
    """Where `transport` delivers, for --check and the log."""
    s = settings
    if transport == EVENT_LOG:
        return f"the Windows Application event log (source {EVENT_SOURCE}, {eventcreate_program() or 'no eventcreate'})"
    login = f", as {s.smtp_user}" if s.smtp_user else ""
    return f"e-mail to {', '.join(s.alert_to)} via {s.smtp_host}:{smtp_port(s)} ({s.smtp_security}{login})"


def test_message(settings: "Settings", now_text: str, host: str) -> Message:
    """The message of --check --test-alert."""
    subject = f"bobosync {settings.org_code or ''} on {host}: TEST - alerts reach you".replace("  ", " ")
    body = (f"This is a test message of bobosync on {host}, sent by --check --test-alert at {now_text}.\n"
            f"Alerts about real problems come the same way. Nothing needs to be done.\n")
    from alert_problems import TEST_EVENT_ID
    return Message("test", "test", subject, body, message_id(settings), TEST_EVENT_ID)

