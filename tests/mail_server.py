"""A real SMTP server on loopback (aiosmtpd), in a thread of the test process, that keeps every message it
accepts: plain, STARTTLS or TLS from the start, with or without a login. `down` makes it refuse every
message with a temporary error, as a mail server that is failing does."""
import email
import email.policy
import logging
import threading
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Iterator, List, Optional

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd (requirements-dev.txt) runs the test mail server")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

USER, PASSWORD = "bobosync-mailer", "m41l-s3cret-pw"


class MailServer:
    """What the server accepted (`messages`, parsed), and the switch `down`."""

    def __init__(self) -> None:
        self.messages: List[EmailMessage] = []
        self.envelopes: List[tuple] = []
        self.logins: List[str] = []
        self.down = False
        self.port = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.down:
            return "451 4.3.0 Mail server temporarily unable to accept messages"
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
            auth_data.password == PASSWORD.encode()
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    def subjects(self) -> List[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]

    def kinds(self) -> List[str]:
        """'open athoc_unreachable', ... of each message accepted, in order."""
        with self.lock:
            return [str(m["X-Bobosync-Alert"]) for m in self.messages]


class _Loopback(Controller):
    """aiosmtpd's controller on a free port of 127.0.0.1 (port 0: the one the system gave)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def mail_server(security: str = "none", login: bool = False, tls_context=None) -> Iterator[MailServer]:
    """A running server; `security` none, starttls or tls (then `tls_context` is the server's)."""
    box = MailServer()
    kwargs = {}
    if login:
        # (aiosmtpd knows of STARTTLS, not of TLS from the start: there the login is over TLS all the same)
        kwargs.update(authenticator=box.authenticate, auth_required=True, auth_require_tls=security == "starttls")
    if security == "starttls":
        kwargs.update(tls_context=tls_context, require_starttls=True)
    elif security == "tls":
        kwargs.update(ssl_context=tls_context)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's own lines stay out of the site's log
    logging.getLogger("mail.log").propagate = False
    controller = _Loopback(box, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


def mail_env(box: MailServer, security: str = "none", login: bool = False, **extra: str) -> dict:
    """The settings that send alerts to `box`, at once (ALERT_AFTER_MINUTES=0), with no silence alarm."""
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(box.port), "SMTP_SECURITY": security,
           "ALERT_FROM": "bobosync@force.example", "ALERT_TO": "duty.desk@force.example,it.oncall@force.example",
           "ALERT_AFTER_MINUTES": "0", "ALERT_REPEAT_HOURS": "8", "BOBO_SILENCE_MINUTES": "0"}
    if login:
        env.update(SMTP_USER=USER, SMTP_PASSWORD=PASSWORD)
    env.update(extra)
    return env


def text_of(message: EmailMessage) -> str:
    """Every header and the body of a message, as one text."""
    body: Optional[EmailMessage] = message.get_body(("plain",))  # type: ignore[assignment]
    return "\n".join(f"{k}: {v}" for k, v in message.items()) + "\n" + (body.get_content() if body else "")
