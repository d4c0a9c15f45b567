"""Alerts (issue 14): each problem opens, reminds at most once per ALERT_REPEAT_HOURS and clears, as messages a
real SMTP server on loopback (aiosmtpd) received; a broken mail server never fails a run; no secret in an
alert; a run killed while alerting neither loses nor re-decides one; the Windows event log through a stand-in
eventcreate; --check --test-alert.

Time passes by moving the times the database keeps back (the alert_state rows, the silence clock, a pending
event's first sighting), as test_athoc_runs moves a sync's time: no test sleeps.
"""
import base64
import json
import os
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mail_server import PASSWORD, USER, mail_env, mail_server, text_of
from testsite import UNMAPPED, Site

# aiosmtpd warns of a login over plain SMTP, and over TLS from the start, which it cannot tell from plain
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

STAMP = (datetime.now() - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")  # an event of an hour ago


def shift(site: Site, sql_table: str, columns, seconds: float, where: str = "1") -> None:
    """Time passes: the times in these columns move `seconds` into the past."""
    conn = sqlite3.connect(str(site.db))
    with conn:
        for column in columns:
            conn.execute(f"UPDATE {sql_table} SET {column} = datetime({column}, '-{int(seconds)} seconds') "
                         f"WHERE {column} IS NOT NULL AND {where}")
    conn.close()


def hours_pass(site: Site, hours: float) -> None:
    shift(site, "alert_state", ("since", "last_seen", "opened_at", "reminded_at"), hours * 3600)


def alert_rows(site: Site) -> list:
    return site.rows("SELECT problem, message_kind FROM alert_state ORDER BY problem")


# --- each problem: how a test makes it, and how it is fixed; the exit code of the run that makes it ---

def athoc_down(site, sim):
    sim.fail("connect/token", status=503, times=None)
    site.write("a.csv", [site.ev("BON", "10001", STAMP)])
    return 1


def credentials_wrong(site, sim):
    site.configure(PASSWORD="not-the-password")
    site.write("a.csv", [site.ev("BON", "10001", STAMP)])
    return 3


def file_set_aside(site, sim):
    site.write_text("bad.csv", "BON,10001,too,few,fields\r\n")
    return 3


def listing_shrinks(site, sim):
    for login in site.logins[1:]:
        sim.remove_user(login)
    conn = sqlite3.connect(str(site.db))
    with conn:  # the last good sync three days ago: this run syncs (SYNC_RETRY_DAYS=2) and holds the listing back
        conn.execute("UPDATE sync_tracking SET last_sync_time = datetime('now', 'localtime', '-3 days')")
    conn.close()
    return 3


def unmapped_event(site, sim):
    site.write("u.csv", [site.ev("BON", UNMAPPED, STAMP)])
    site.run()
    shift(site, "pending_events", ("first_seen",), 25 * 3600)  # pending for a day and more (ALERT_PENDING_HOURS=24)
    return 0


def bobo_stops(site, sim):
    site.run()  # the silence is counted from the first run that looks
    shift(site, "run_state", ("value",), 31 * 60, "key = 'last_bobo_file'")
    return 0


def fix_athoc(site, sim):
    sim.clear_faults()


def fix_credentials(site, sim):
    site.configure(PASSWORD=sim.password)


def fix_failed_folder(site, sim):
    (site.failed_dir / "bad.csv").unlink()


def fix_listing(site, sim):
    for i, login in enumerate(site.logins[1:], start=1):
        sim.add_user(login, **{"Collar-Number": str(10001 + i)})
    site.expire_backoffs()


def fix_unmapped(site, sim):
    site.add_mapped_user(UNMAPPED)
    site.run("--sync-mappings")  # the event is sent now that a user holds the number


def bobo_writes_again(site, sim):
    site.write("new.csv", [site.ev("BOF", "10002", STAMP)])
    os.utime(str(site.csv_dir / "new.csv"))  # written just now


CYCLES = {
    "athoc_unreachable": (athoc_down, fix_athoc),
    "credentials_refused": (credentials_wrong, fix_credentials),
    "failed_files": (file_set_aside, fix_failed_folder),
    "mapping_sync_failing": (listing_shrinks, fix_listing),
    "pending_events_old": (unmapped_event, fix_unmapped),
    "bobo_silent": (bobo_stops, bobo_writes_again),
}


@pytest.mark.parametrize("problem", list(CYCLES))
def test_each_problem_opens_reminds_at_most_once_per_repeat_hours_and_clears(sim, tmp_path, problem):
    """Rule: a problem that has lasted ALERT_AFTER_MINUTES sends one message, at most one reminder per
    ALERT_REPEAT_HOURS while it lasts, and one when it clears; the run's exit code is the one it has without
    alerts. Each message went to every ALERT_TO address."""
    make, fix = CYCLES[problem]
    with mail_server() as box:
        site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="0")
        site.configure(**mail_env(box, BOBO_SILENCE_MINUTES="30" if problem == "bobo_silent" else "0"))
        site.run()  # a good first run: the mappings synced
        code = make(site, sim)
        site.run(expect=(code,))
        assert box.kinds() == [f"open {problem}"], box.subjects()
        site.run(expect=(0, 1, 3))
        assert len(box.messages) == 1  # still there, but not yet ALERT_REPEAT_HOURS later
        hours_pass(site, 9)
        site.run(expect=(0, 1, 3))
        site.run(expect=(0, 1, 3))
        assert box.kinds() == [f"open {problem}", f"reminder {problem}"], box.subjects()
        fix(site, sim)
        site.run()
        site.run()
        assert box.kinds() == [f"open {problem}", f"reminder {problem}", f"clear {problem}"], box.subjects()
        assert alert_rows(site) == []
        assert all(rcpt == ["duty.desk@force.example", "it.oncall@force.example"] for _, rcpt in box.envelopes)
        assert len({m["Message-ID"] for m in box.messages}) == 3
    if problem in ("athoc_unreachable", "credentials_refused"):
        assert site.held(site.logins[0]) is not None  # the event waited, and went out once AtHoc took it


def test_a_problem_shorter_than_alert_after_minutes_sends_nothing(sim, tmp_path):
    """Rule: nothing is sent for a problem that cleared before ALERT_AFTER_MINUTES; one that lasts that long
    opens, counted from the run that first saw it."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box, ALERT_AFTER_MINUTES="30"))
        file_set_aside(site, sim)
        site.run(expect=(3,))
        assert alert_rows(site) == [("failed_files", None)] and box.messages == []
        fix_failed_folder(site, sim)
        site.run()
        assert alert_rows(site) == [] and box.messages == []
        file_set_aside(site, sim)
        site.run(expect=(3,))
        shift(site, "alert_state", ("since",), 29 * 60)
        site.run()
        assert box.messages == []
        shift(site, "alert_state", ("since",), 2 * 60)
        site.run()
        assert box.kinds() == ["open failed_files"]


def test_a_broken_mail_server_is_a_warning_the_exit_code_is_unchanged_and_the_next_run_delivers(sim, tmp_path):
    """Rule: a mail server that refuses (451) or is not there is a WARNING, never a failed run: the exit code is
    the run's own, the run stays short, and the message waits in alert_state for the next run, which sends it
    once."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box))
        box.down = True
        file_set_aside(site, sim)
        site.run(expect=(3,))
        assert box.messages == [] and "WARNING Alert" in site.output and "451" in site.output
        assert "the duty updates are not affected" in site.output
        site.configure(SMTP_PORT=str(closed_port()))
        began = time.monotonic()
        site.run()
        assert time.monotonic() - began < 5 and "nothing accepts connections at 127.0.0.1:" in site.output
        assert alert_rows(site) == [("failed_files", "open")]
        box.down = False
        site.configure(SMTP_PORT=str(box.port))
        site.run()
        site.run()
        assert box.kinds() == ["open failed_files"]
        status = json.loads(site.run("--status", "--json"))
        assert [p["problem"] for p in status["alert_problems"]] == ["failed_files"]


def closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("security", ["starttls", "tls", "tls, CA not trusted"])
def test_alerts_over_starttls_and_tls_with_a_login_hold_no_secret(sim, tmp_path, security):
    """Rule: SMTP_SECURITY starttls and tls check the server's certificate (SSL_CERT_PATH) and log in with
    SMTP_USER; no alert and no log line holds SMTP_PASSWORD or AtHoc's PASSWORD; an untrusted certificate is a
    WARNING saying so, with the run's own exit code."""
    from private_ca import PrivateCA
    ca = PrivateCA(tmp_path)
    mode = security.split(",")[0]
    with mail_server(mode, login=True, tls_context=ca.server_context()) as box:
        site = Site(sim, tmp_path)
        trusted = {} if "not trusted" in security else {"SSL_CERT_PATH": str(ca.ca_file)}
        site.configure(**mail_env(box, mode, login=True, **trusted))
        site.run()
        credentials_wrong(site, sim)  # the alert is about AtHoc's credentials: its password must not show
        site.run(expect=(3,))
        if "not trusted" in security:
            assert box.messages == [] and "is not trusted" in site.output
        else:
            assert box.kinds() == ["open credentials_refused"] and box.logins == [USER]
            text = text_of(box.messages[0])
            assert "AtHoc refused" in text and "not-the-password" not in text and sim.password not in text
            assert PASSWORD not in text
    logs = site.log()
    for secret in (PASSWORD, base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(), "not-the-password"):
        assert secret not in logs


def test_a_run_killed_after_deciding_an_alert_leaves_it_for_the_next_run_which_sends_it_once(sim, tmp_path):
    """Rule: crash safety: an alert decided and stored by a run killed before sending it is sent by the next run,
    once, and never decided a second time."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box))
        file_set_aside(site, sim)
        site.run_scheduled(crash="alert_decided")
        assert box.messages == [] and alert_rows(site) == [("failed_files", "open")]
        site.run()
        site.run()
        assert box.kinds() == ["open failed_files"]


def test_a_run_killed_after_the_server_took_an_alert_resends_it_with_the_same_message_id(sim, tmp_path):
    """Rule: crash safety: a run killed between the mail server's acceptance and recording it leaves the message
    marked as being sent; the next run sends it again with the same Message-ID (mail programs show it once:
    an alert is never lost), says so, and nothing more goes out."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box))
        file_set_aside(site, sim)
        site.run_scheduled(crash="alert_sent")
        assert box.kinds() == ["open failed_files"]
        site.run()
        assert "may have gone out already" in site.output
        site.run()
        assert box.kinds() == ["open failed_files"] * 2
        assert box.messages[0]["Message-ID"] == box.messages[1]["Message-ID"]
        assert box.messages[0].get_content() == box.messages[1].get_content()


STAND_IN = """import json, sys
with open({record!r}, "a", encoding="utf-8") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
if {fail!r}:
    print("ERROR: Access is denied.")
    sys.exit(1)
print("SUCCESS: An event of type 'ERROR' was created in the 'APPLICATION' log with 'bobosync' as the source.")
"""


def stand_in_eventcreate(folder: Path, fail: bool = False) -> Path:
    """An `eventcreate` on PATH that records its arguments (one JSON list a line) in folder/calls.jsonl."""
    folder.mkdir(exist_ok=True)
    record = folder / "calls.jsonl"
    program = folder / "eventcreate"
    program.write_text(f"#!{sys.executable}\n" + STAND_IN.format(record=str(record), fail=fail), encoding="utf-8")
    program.chmod(0o755)
    return record


@pytest.mark.skipif(os.name == "nt", reason="the stand-in eventcreate is a script with a #! line (POSIX); on Windows "
                                            "bobosync runs System32\\eventcreate.exe, not run in this suite")
def test_the_event_log_gets_the_open_and_the_clear_through_eventcreate(sim, tmp_path):
    """Rule: ALERT_EVENT_LOG=true writes each alert to the Application log with eventcreate (source bobosync, an
    id per problem, ERROR when it opens, INFORMATION when it clears); eventcreate failing is a WARNING and the
    message is tried again by the next run."""
    record = stand_in_eventcreate(tmp_path / "bin", fail=True)
    site = Site(sim, tmp_path, ALERT_EVENT_LOG="true", ALERT_AFTER_MINUTES="0", BOBO_SILENCE_MINUTES="0")
    hook = {"BOBOSYNC_TEST_EVENTCREATE_ON_PATH": "1", "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    file_set_aside(site, sim)
    site.run(expect=(3,), **hook)
    assert "eventcreate exited 1: ERROR: Access is denied." in site.output
    stand_in_eventcreate(tmp_path / "bin", fail=False)
    site.run(**hook)
    fix_failed_folder(site, sim)
    site.run(**hook)
    calls = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert len(calls) == 3 and calls[0] == calls[1]
    for call, kind in ((calls[1], "ERROR"), (calls[2], "INFORMATION")):
        assert call[:9] == ["/L", "APPLICATION", "/T", kind, "/SO", "bobosync", "/ID", "103", "/D"]
        assert "A file was set aside in the failed folder" in call[9] and "\n" not in call[9]
    assert "PROBLEM" in calls[1][9] and "CLEARED" in calls[2][9]


@pytest.mark.skipif(os.name == "nt", reason="on Windows ALERT_EVENT_LOG=true is allowed")
def test_alert_event_log_is_refused_off_windows_with_a_clear_message(sim, tmp_path):
    """Rule: ALERT_EVENT_LOG=true on a system that is not Windows is a configuration error (exit 2) that says
    why and what to set instead."""
    site = Site(sim, tmp_path, ALERT_EVENT_LOG="true")
    site.run(expect=(2,))
    assert "ALERT_EVENT_LOG=true: the Windows Application event log exists only on Windows" in site.output


def test_check_test_alert_sends_a_test_message_and_says_pass_or_fail(sim, tmp_path, capsys):
    """Rule: --check --test-alert sends a test message through each configured transport and reports PASS or
    FAIL in --check's style; without --test-alert --check names where alerts go; --test-alert needs --check."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box))
        site.run("--check", "--test-alert")
        assert "PASS  test alert: e-mail" in site.output and box.kinds() == ["test test"]
        assert "TEST - alerts reach you" in box.subjects()[0]
        site.run("--check")
        assert "PASS  alerts" in site.output and "not tested" in site.output and len(box.messages) == 1
        box.down = True
        site.run("--check", "--test-alert", expect=(1,))
        assert "FAIL  test alert: e-mail" in site.output and "451" in site.output
    import cli
    with pytest.raises(SystemExit) as caught:
        cli.parse_args(["--test-alert"])
    assert caught.value.code == 2 and "--test-alert goes with --check" in capsys.readouterr().err
    site.configure(SMTP_HOST="", ALERT_TO="", ALERT_FROM="")
    site.run("--check", "--test-alert", expect=(1,))
    assert "FAIL  alerts" in site.output and "off: SMTP_HOST and ALERT_EVENT_LOG are unset" in site.output


def test_alert_settings_are_checked_together_with_clear_messages():
    """Rule: a bad port, security value or address, and e-mail without a sender or recipients, are each named
    in the one configuration error; alerts are off while SMTP_HOST and ALERT_EVENT_LOG are unset."""
    from config import ConfigError, load_settings
    from alert_settings import alerts_on
    base = {"ATHOC_SERVER_URL": "https://athoc.example", "CLIENT_ID": "c", "CLIENT_SECRET": "s", "APIUSER": "u",
            "PASSWORD": "p", "ORG_CODE": "O"}
    assert not alerts_on(load_settings(environ=base))
    bad = {**base, "SMTP_HOST": "smtp://mail.force.example:25", "SMTP_PORT": "70000", "SMTP_SECURITY": "ssl",
           "ALERT_TO": "duty.desk@force.example, Duty Desk <desk@force>", "ALERT_FROM": "bobosync"}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=bad)
    text = str(caught.value)
    for part in ("SMTP_HOST='smtp://mail.force.example:25' is not a host name", "SMTP_PORT='70000' is out of range",
                 "SMTP_SECURITY='ssl' is not a choice", "ALERT_TO: 'Duty Desk <desk@force>' is not an e-mail",
                 "ALERT_FROM: 'bobosync' is not an e-mail address"):
        assert part in text
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**base, "SMTP_HOST": "mail.force.example", "SMTP_USER": "me"})
    text = str(caught.value)
    assert "ALERT_TO is empty" in text and "ALERT_FROM is empty" in text and "SMTP_PASSWORD is not" in text
    ok = load_settings(environ={**base, "SMTP_HOST": "mail.force.example", "ALERT_FROM": "b@force.example",
                                "ALERT_TO": "a@force.example,c@force.example", "SMTP_PASSWORD": "mail-pw"})
    assert alerts_on(ok) and ok.alert_to == ["a@force.example", "c@force.example"]
    assert "mail-pw" in ok.secrets and "mail-pw" not in repr(ok)
    assert any("SMTP_USER is not" in w for w in ok.warnings)


def test_smtp_password_from_the_credential_store(sim, tmp_path, monkeypatch):
    """Rule: SMTP_PASSWORD=keyring is read from the credential store (--store-secret SMTP_PASSWORD), as AtHoc's
    secrets are, and the alert logs in with it."""
    pytest.importorskip("keyrings.alt")
    from test_secrets import store_env, store_secret
    for name, value in store_env(tmp_path / "keyring").items():
        monkeypatch.setenv(name, value)
    import keyring.core
    keyring.core.init_backend()
    try:
        with mail_server(login=True) as box:
            site = Site(sim, tmp_path / "site")
            site.configure(**mail_env(box, login=True, SMTP_PASSWORD="keyring"))
            assert "SMTP_PASSWORD stored in the credential store" in store_secret(site, "SMTP_PASSWORD", PASSWORD)
            file_set_aside(site, sim)
            site.run(expect=(3,))
            assert box.kinds() == ["open failed_files"] and box.logins == [USER]
    finally:
        keyring.core.init_backend()


def test_alerts_off_write_no_alert_state(sim, tmp_path):
    """Rule: with SMTP_HOST and ALERT_EVENT_LOG unset nothing about alerts is done: no row, no message."""
    site = Site(sim, tmp_path)
    file_set_aside(site, sim)
    site.run(expect=(3,))
    assert alert_rows(site) == [] and "Alert" not in site.log()
