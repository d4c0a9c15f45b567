"""Alerts: a person is told when a problem has lasted ALERT_AFTER_MINUTES, reminded at most once every
ALERT_REPEAT_HOURS while it lasts, and told when it clears.

`after_run` ends every scheduled run, after the duty updates. It takes what the run saw of each problem
(alert_problems.observe), updates the problem's row of the alert_state table and decides the messages
due, in one transaction, then delivers them within ALERT_SECONDS. It never changes the run's exit code:
a message that could not be delivered is a WARNING and waits in the table for the next run.

Crash safety: a message is decided and stored (subject, body, Message-ID, the transports still to
deliver it) in the transaction that records the change of state, and leaves the table only in the
transaction after a transport accepted it. A run killed before delivering leaves it to the next run
(never lost), and a change of state is never announced twice (it is recorded with its message). A run
killed in the instant between the mail server's acceptance and that transaction leaves the message
marked sending_since: the next run sends it again, with the same Message-ID, so a mail system that
detects duplicates shows it once. Of losing an alert and sending it twice, that is the lesser harm.
"""
import logging
import sqlite3
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from alert_problems import PROBLEMS, observe
from alert_send import Message, Sender, message_id, redact
from alert_settings import alerts_on, transports
from failpoints import crash_point
from schedule import is_due, stamp

if TYPE_CHECKING:
    from bobo_db import BOBODatabase
    from config import Settings
    from engine import BOBOProcessor

log = logging.getLogger("bobosync")

ALERT_SECONDS = 10.0  # the alerts' own time budget in a run
PAST_DEADLINE_SECONDS = 5.0  # ... which ends at most this long after RUN_DEADLINE_SECONDS
SELECT_ROWS = ("SELECT problem, since, last_seen, detail, opened_at, reminded_at, cleared_at, message_kind, "
               "message_id, subject, body, transports_left, sending_since, attempts, last_error FROM alert_state")
SAVE_ROW = ("UPDATE alert_state SET since = ?, last_seen = ?, detail = ?, opened_at = ?, reminded_at = ?, "
            "cleared_at = ?, message_kind = ?, message_id = ?, subject = ?, body = ?, transports_left = ?, "
            "sending_since = ?, attempts = ?, last_error = ? WHERE problem = ?")
COLUMNS = tuple(SELECT_ROWS[len("SELECT "):SELECT_ROWS.index(" FROM")].split(", "))
WORDS = {"open": "PROBLEM", "reminder": "REMINDER", "clear": "CLEARED"}
Row = Dict[str, Any]


def after_run(processor: "BOBOProcessor", code: int) -> int:
    """The alerts of a scheduled run that ended with exit `code`; returns `code` unchanged."""
    settings = processor.settings
    if not alerts_on(settings):
        return code
    started = time.monotonic()
    run_end = (processor.link.deadline or started) + PAST_DEADLINE_SECONDS
    deadline = min(started + ALERT_SECONDS, max(run_end, started + 3))
    try:
        book = AlertBook(settings, processor.db, processor.clock())
        book.record(observe(processor))
        crash_point("alert_decided")
        book.deliver(deadline)
    except sqlite3.Error as exc:  # the database busy or refusing: the next run looks again
        log.warning("Alerts were not handled this run (database: %s); the next run tries again", exc)
    except Exception as exc:  # noqa: BLE001 - alerts never fail a run that did its duty updates
        log.warning("Alerts were not handled this run (%s: %s); the next run tries again", type(exc).__name__, exc,
                    exc_info=True)
    return code


class AlertBook:
    """The alert_state table: each problem's state, and the one message it still has to deliver."""

    def __init__(self, settings: "Settings", db: "BOBODatabase", now: datetime):
        self.settings, self.conn, self.now, self.text = settings, db.conn, now, stamp(now)

    def rows(self) -> Dict[str, Row]:
        cur = self.conn.execute(SELECT_ROWS)
        return {row[0]: dict(zip(COLUMNS, row)) for row in cur if row[0] in PROBLEMS}  # (not a newer version's)

    def record(self, seen: Dict[str, Optional[str]]) -> None:
        """What the run saw (problem -> detail, None: not there), and the messages it makes due, in one
        transaction."""
        rows = self.rows()
        with self.conn:
            for problem, detail in seen.items():
                row = rows.get(problem)
                if detail is not None:
                    self._there(problem, row, redact(detail, self.settings))
                elif row is not None:
                    self._gone(row)

    def _there(self, problem: str, row: Optional[Row], detail: str) -> None:
        s = self.settings
        if row is None:
            self.conn.execute("INSERT INTO alert_state (problem, since, last_seen, detail) VALUES (?, ?, ?, ?)",
                              (problem, self.text, self.text, detail))
            row = {**dict.fromkeys(COLUMNS), **_NO_MESSAGE, "problem": problem, "since": self.text}
            log.info("Alert problem noted: %s (a message goes once it has lasted ALERT_AFTER_MINUTES=%g)",
                     PROBLEMS[problem].title, s.alert_after_minutes)
        elif row["cleared_at"]:  # back before the message saying it cleared went out: it goes on
            row.update(cleared_at=None, **_NO_MESSAGE)
        self._set(row, last_seen=self.text, detail=detail)
        if row["opened_at"] is None:
            if is_due(row["since"], self.now, timedelta(minutes=s.alert_after_minutes)):
                self._decide("open", row)
        elif row["message_kind"] is None and s.alert_repeat_hours > 0 and \
                is_due(row["reminded_at"] or row["opened_at"], self.now, timedelta(hours=s.alert_repeat_hours)):
            self._decide("reminder", row)

    def _gone(self, row: Row) -> None:
        title = PROBLEMS[row["problem"]].title
        if row["opened_at"] is None:
            self.conn.execute("DELETE FROM alert_state WHERE problem = ?", (row["problem"],))
            log.info("Alert problem over before ALERT_AFTER_MINUTES, so no message: %s", title)
        elif row["cleared_at"] is None:
            row["cleared_at"] = self.text
            self._decide("clear", row)

    def _decide(self, kind: str, row: Row) -> None:
        """Store the message `kind` of `row` (it replaces one not yet delivered) and what it records."""
        subject, body = compose(kind, row, self.settings, self.text)
        changes: Dict[str, Any] = dict(message_kind=kind, message_id=message_id(self.settings), subject=subject,
                                       body=body, transports_left=",".join(transports(self.settings)),
                                       sending_since=None, attempts=0, last_error=None)
        if kind == "open":
            changes["opened_at"] = self.text
        elif kind == "reminder":
            changes["reminded_at"] = self.text
        self._set(row, **changes)

    def _set(self, row: Row, **changes: Any) -> None:
        """Change `row` and write it whole (the caller holds the transaction)."""
        row.update(changes)
        self.conn.execute(SAVE_ROW, (*(row[c] for c in COLUMNS[1:]), row["problem"]))

    # --- delivery ---

    def deliver(self, deadline: float) -> None:
        """Deliver every message waiting, by each transport still to deliver it, until `deadline`."""
        waiting = [row for row in self.rows().values() if row["message_kind"]]
        if not waiting:
            return
        sender = Sender(self.settings, deadline)
        try:
            for row in waiting:
                self._deliver(row, sender)
        finally:
            sender.close()

    def _deliver(self, row: Row, sender: Sender) -> None:
        configured = transports(self.settings)
        transports_left = row["transports_left"].split(",")
        left = [t for t in transports_left if t in configured]
        if row["sending_since"]:
            log.warning("The alert %r may have gone out already: a run stopped while sending it at %s. It is sent "
                        "again with the same Message-ID, so a mail system that detects duplicates shows it once",
                        row["subject"], row["sending_since"])
        message = Message(row["message_kind"], row["problem"], row["subject"], row["body"], row["message_id"],
                          PROBLEMS[row["problem"]].event_id)
        for transport in list(left):
            with self.conn:
                self._set(row, sending_since=self.text, attempts=row["attempts"] + 1)
            why = sender.send(transport, message)
            if why:
                with self.conn:
                    self._set(row, sending_since=None, last_error=f"{transport}: {why}")
                log.warning("Alert %r not sent by %s: %s. The next run tries again; the duty updates are not "
                            "affected", row["subject"], transport, why)
                continue
            crash_point("alert_sent")
            left.remove(transport)
            log.info("Alert sent by %s: %s", transport, row["subject"])
            self._delivered(row, left)
        if not any(t in configured for t in transports_left):
            self._delivered(row, [])  # its transports are no longer configured

    def _delivered(self, row: Row, left: List[str]) -> None:
        with self.conn:
            if left:
                self._set(row, transports_left=",".join(left), sending_since=None)
            elif row["cleared_at"]:
                self.conn.execute("DELETE FROM alert_state WHERE problem = ?", (row["problem"],))
            else:
                self._set(row, **_NO_MESSAGE)


_NO_MESSAGE: Dict[str, Any] = dict(message_kind=None, message_id=None, subject=None, body=None, transports_left="",
                                   sending_since=None, attempts=0, last_error=None)


def compose(kind: str, row: Row, settings: "Settings", now_text: str) -> Tuple[str, str]:
    """The subject and body of message `kind` (open, reminder, clear) about `row`'s problem; no secret."""
    import socket
    host = socket.gethostname()
    problem = PROBLEMS[row["problem"]]
    subject = f"bobosync {settings.org_code} on {host}: {WORDS[kind]} - {problem.title}"
    if kind == "clear":
        lines = [f"Cleared: {problem.title}.", "",
                 f"It was first seen by a run at {row['since']}, last seen at {row['last_seen']}; cleared at "
                 f"{now_text}.", f"Last detail: {row['detail']}"]
    else:
        repeat = settings.alert_repeat_hours
        lines = [f"{problem.title}.", "", f"Since: {row['since']} (first seen by a run); last seen {row['last_seen']}",
                 f"Detail: {row['detail']}", "", f"What to do: {problem.advice}", "",
                 f"A reminder follows every {repeat:g} h while it lasts, and a message when it clears."
                 if repeat > 0 else "A message follows when it clears."]
    lines += ["", f"bobosync on {host}, database {settings.db_path}.",
              "python bobosync/bobo_processor.py --status shows the whole state; the log says more."]
    return redact(subject, settings), redact("\n".join(lines) + "\n", settings)


def check_lines(settings: "Settings", send_test: bool) -> List[Tuple[str, str, str]]:
    """--check's lines about alerts, (verdict, name, detail): where they go, and with --test-alert, whether a test
    message went through each transport."""
    from alert_send import test_message, transport_line
    configured = transports(settings)
    if not configured:
        verdict = "FAIL" if send_test else "PASS"
        return [(verdict, "alerts", "off: SMTP_HOST and ALERT_EVENT_LOG are unset, so no one is told of problems")]
    if not send_test:
        return [("PASS", "alerts", f"{transport_line(settings, t)}; not tested (--check --test-alert sends a test "
                                   f"message)") for t in configured]
    import socket
    message = test_message(settings, stamp(datetime.now()), socket.gethostname())
    sender = Sender(settings, time.monotonic() + ALERT_SECONDS)
    lines = []
    try:
        for transport in configured:
            why = sender.send(transport, message)
            detail = why or f"test message sent: {transport_line(settings, transport)}"
            lines.append(("FAIL" if why else "PASS", f"test alert: {transport}", detail))
    finally:
        sender.close()
    return lines
