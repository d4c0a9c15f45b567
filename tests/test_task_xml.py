"""--task-xml (issue 15): the Task Scheduler definition, parsed and checked setting by setting.

What is checked here is the XML and its bytes; it was not imported into a real Task Scheduler (no
Windows here): windows_scheduler_setup.md says so."""
import codecs
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ENTRY, ROOT, SETTING_NAMES

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def task_xml(*argv: str, expect: int = 0, **env: str) -> str:
    """The output of the real entry point with --task-xml (no .env needed)."""
    full = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    full.update(env)
    result = subprocess.run([sys.executable, ENTRY, "--task-xml", *argv], cwd=str(ROOT), env=full,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == expect, output
    assert "Traceback" not in output
    return result.stdout if expect == 0 else output


def one(root: ET.Element, path: str) -> ET.Element:
    found = root.findall(path, NS)
    assert len(found) == 1, (path, found)
    return found[0]


def text(root: ET.Element, path: str) -> str:
    return (one(root, path).text or "").strip()


def test_every_minute_indefinitely_from_the_next_minute():
    """Rule: a TimeTrigger repeated every PT1M with no Duration (indefinitely), enabled, with a StartBoundary."""
    task = ET.fromstring(task_xml())
    trigger = one(task, "t:Triggers/t:TimeTrigger")
    assert text(trigger, "t:Repetition/t:Interval") == "PT1M"
    assert trigger.find("t:Repetition/t:Duration", NS) is None
    assert text(trigger, "t:Enabled") == "true"
    assert len(text(trigger, "t:StartBoundary")) == len("2024-06-01T07:00:00")
    assert len(task.findall("t:Triggers/*", NS)) == 1


def test_settings_no_new_instance_limit_above_the_deadline_no_restart():
    """Rule: MultipleInstancesPolicy IgnoreNew; ExecutionTimeLimit a little above RUN_DEADLINE_SECONDS (50 s:
    PT2M); no RestartOnFailure (the next minute is the retry); the task is enabled and can be started by hand."""
    settings = one(ET.fromstring(task_xml()), "t:Settings")
    assert text(settings, "t:MultipleInstancesPolicy") == "IgnoreNew"
    assert text(settings, "t:ExecutionTimeLimit") == "PT2M"
    assert settings.find("t:RestartOnFailure", NS) is None
    assert (text(settings, "t:Enabled"), text(settings, "t:AllowStartOnDemand")) == ("true", "true")
    assert text(settings, "t:DisallowStartIfOnBatteries") == "false"


@pytest.mark.parametrize("deadline, limit", [("50", "PT2M"), ("60", "PT2M"), ("61", "PT3M"), ("300", "PT6M")])
def test_the_time_limit_follows_run_deadline_seconds(deadline, limit):
    """Rule: the limit is the deadline's whole minutes plus one, so a run always reaches its own deadline."""
    task = ET.fromstring(task_xml(RUN_DEADLINE_SECONDS=deadline))
    assert text(task, "t:Settings/t:ExecutionTimeLimit") == limit


def test_runs_whether_logged_on_or_not_with_least_privilege_as_the_user_given():
    """Rule: LogonType Password (run whether the user is logged on or not), RunLevel LeastPrivilege; --user puts
    the account in Principal/UserId (without it, schtasks /RU gives it); the action runs as that principal."""
    task = ET.fromstring(task_xml("--user", r"FORCE\svc-bobosync"))
    principal = one(task, "t:Principals/t:Principal")
    assert text(principal, "t:UserId") == r"FORCE\svc-bobosync"
    assert text(principal, "t:LogonType") == "Password"
    assert text(principal, "t:RunLevel") == "LeastPrivilege"
    assert one(task, "t:Actions").get("Context") == principal.get("id")
    assert one(ET.fromstring(task_xml()), "t:Principals/t:Principal").find("t:UserId", NS) is None


def test_the_action_is_this_checkouts_wrapper_by_absolute_path_in_the_project_folder():
    """Rule: the PowerShell wrapper of this checkout with an absolute path, started in the project folder."""
    exec_ = one(ET.fromstring(task_xml()), "t:Actions/t:Exec")
    assert text(exec_, "t:Command") == "powershell.exe"
    arguments = text(exec_, "t:Arguments")
    assert arguments.startswith("-NoProfile -NonInteractive -ExecutionPolicy Bypass -File ")
    wrapper = Path(arguments.split("-File ", 1)[1].strip('"'))
    assert wrapper.is_absolute() and wrapper == ROOT.resolve() / "run_bobo_windows.ps1" and wrapper.is_file()
    assert Path(text(exec_, "t:WorkingDirectory")) == ROOT.resolve()


def test_out_writes_utf16_le_with_bom_and_a_matching_declaration(tmp_path):
    """Rule: --out FILE writes what schtasks /XML reads: UTF-16 LE with a byte-order mark, declared UTF-16,
    CRLF lines; the same task as printed. Printed, the declaration names no encoding."""
    out = tmp_path / "bobosync.xml"
    message = task_xml("--out", str(out), "--user", "FORCE\\svc")
    assert "schtasks /Create /TN bobosync /XML" in message and "/RU FORCE\\svc /RP *" in message
    data = out.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    body = data[2:].decode("utf-16-le")
    assert body.startswith('<?xml version="1.0" encoding="UTF-16"?>\r\n') and "\r\n" in body
    written = ET.fromstring(data)  # the parser reads the BOM and the declaration
    printed = task_xml("--user", "FORCE\\svc")
    assert printed.startswith('<?xml version="1.0"?>\n')
    assert _without_start(written) == _without_start(ET.fromstring(printed))


def _without_start(task: ET.Element) -> bytes:
    one(task, "t:Triggers/t:TimeTrigger/t:StartBoundary").text = ""  # the next minute: differs between two runs
    return ET.tostring(task)


@pytest.mark.parametrize("argv, env, named", [
    ((), {"RUN_DEADLINE_SECONDS": "five"}, "RUN_DEADLINE_SECONDS"),
    (("--out", "/no/such/folder/x.xml"), {}, "--out /no/such/folder/x.xml: cannot write it"),
], ids=["bad-deadline", "unwritable-out"])
def test_bad_input_is_a_message_and_exit_2(argv, env, named):
    """Rule: a bad RUN_DEADLINE_SECONDS or an --out that cannot be written is one message and exit 2."""
    assert named in task_xml(*argv, expect=2, **env)


def test_user_and_out_go_with_task_xml():
    result = subprocess.run([sys.executable, ENTRY, "--user", "x"], cwd=str(ROOT), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "--user and --out go with --task-xml" in result.stderr
