"""The Windows wrappers (issue 4): PowerShell runs nowhere here (and cmd only in the Windows leg,
tests/test_windows_wrapper_run.py), so their rules are checked in the text: Python choice order, arguments
passed through, the engine's exit code returned, one wrapper log per day in LOG_DIRECTORY as
`bobo_processor.py --wrapper-logs` gives it (<project>\\logs when it cannot), no process-list scanning, CRLF
endings, nothing newer than PowerShell 5.1. What --wrapper-logs answers and purges is run here, in-process."""
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

import cli
from conftest import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
PS1 = (ROOT / "run_bobo_windows.ps1").read_bytes()
BAT = (ROOT / "run_bobo_windows.bat").read_bytes()


def test_wrappers_have_crlf_line_endings():
    for data in (PS1, BAT):
        assert data.count(b"\n") == data.count(b"\r\n") > 10


def test_wrappers_prefer_the_venv_then_py_launcher_then_python():
    for text in (PS1.decode(), BAT.decode()):
        launcher = "py -3" if "py -3" in text else "'-3'"
        venv, py, python = text.index(".venv\\Scripts\\python.exe"), text.index(launcher), text.rindex("python")
        assert venv < py < python


def test_wrappers_pass_arguments_through_and_return_the_engine_exit_code():
    ps1, bat = PS1.decode(), BAT.decode()
    assert "'bobo_processor.py' @args" in ps1 and "exit $ExitCode" in ps1
    assert "bobo_processor.py %*" in bat and "exit /b %RC%" in bat


def test_wrappers_append_to_one_log_per_day_and_do_not_scan_processes():
    ps1, bat = PS1.decode(), BAT.decode()
    assert "$Today = Get-Date -Format 'yyyy-MM-dd'" in ps1 and "'wrapper_' + $Today + '.log'" in ps1
    assert "Add-Content -LiteralPath $WrapperLog" in ps1
    assert "wrapper_%TODAY%.log" in bat and ">>\"%WRAPPER_LOG%\" echo" in bat
    for text in (ps1, bat):
        assert not re.search(r"Get-Process|tasklist|Get-CimInstance|wmic process", text, re.I)


def test_powershell_wrapper_uses_nothing_newer_than_windows_powershell_5_1():
    code = "\n".join(line for line in PS1.decode().splitlines() if not line.lstrip().startswith("#"))
    for ps7_only in (r"\?\?", r"\?\.", r"&&", r"\|\|", r"\s\?\s.*\s:\s", r"-Parallel", r"\$PSStyle"):
        assert not re.search(ps7_only, code), ps7_only


# --- the wrapper log in LOG_DIRECTORY, purged after LOG_PURGE_DAYS ---

def test_wrappers_ask_the_run_where_their_log_goes_before_the_run_and_fall_back_to_the_project():
    """Rule: each wrapper asks `bobo_processor.py --wrapper-logs`, with the run's own arguments (--env-file) and
    from the engine's folder as the run, where LOG_DIRECTORY is and what day it is, before it writes a line; it
    takes the answer only when both are given, and logs to <project>\\logs otherwise."""
    ps1, bat = PS1.decode(), BAT.decode()
    asked = ps1.index("'bobo_processor.py' '--wrapper-logs' @args 2>$null")
    assert ps1.index("Push-Location -LiteralPath $EngineDir") < asked < ps1.index("$WrapperLog = ") \
        < ps1.index("Write-WrapperLog ('START")
    assert "$LogDir = Join-Path $ProjectDir 'logs'" in ps1 and "if ($LASTEXITCODE -eq 0)" in ps1
    assert "if ($Found['LOG_DIRECTORY'] -and $Found['TODAY'])" in ps1
    assert "$LogDir = $Found['LOG_DIRECTORY']" in ps1 and "$Today = $Found['TODAY']" in ps1
    asked = bat.index('bobo_processor.py --wrapper-logs %* 2>nul"`) do set "BOBO_WRAPPER_%%a=%%b"')
    assert bat.index('pushd "%ENGINE_DIR%"') < asked < bat.index('set "WRAPPER_LOG=') < bat.index(" START ")
    assert 'set "LOG_DIR=%PROJECT_DIR%logs"' in bat and 'set "BOBO_WRAPPER_LOG_DIRECTORY="' in bat
    assert "if defined BOBO_WRAPPER_LOG_DIRECTORY if defined BOBO_WRAPPER_TODAY (" in bat
    assert 'set "LOG_DIR=%BOBO_WRAPPER_LOG_DIRECTORY%"' in bat and 'set "TODAY=%BOBO_WRAPPER_TODAY%"' in bat
    # the engine's output is no longer UTF-8 only for the answer: the code page is the console's (wrapper_logs.py)
    assert bat.index('set "PYTHONIOENCODING=utf-8"') > asked and ps1.index("$env:PYTHONIOENCODING") > ps1.index(
        "'--wrapper-logs'")


@pytest.fixture
def log_env(monkeypatch, tmp_path):
    """No setting from the machine: only what each test sets."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def wrapper_logs(capsys, *args: str):
    """`bobo_processor.py --wrapper-logs ARGS` in-process: the exit code and the NAME=value lines it printed."""
    code = cli.main(["--wrapper-logs", *args])
    out = capsys.readouterr().out
    return code, dict(line.split("=", 1) for line in out.splitlines() if line)


def test_wrapper_logs_names_log_directory_and_today_and_purges_old_wrapper_logs(log_env, monkeypatch, capsys):
    """Rule: --wrapper-logs prints LOG_DIRECTORY (created) and today's date, and deletes the wrapper logs dated
    more than LOG_PURGE_DAYS days ago, by the date in their name, as the run's own logs are; other files stay."""
    folder = log_env / "site logs"
    folder.mkdir()
    today = date.today()
    names = {d: f"wrapper_{today - timedelta(days=d):%Y-%m-%d}.log" for d in (0, 1, 3, 4, 40)}
    others = ["wrapper_undated.log", "bobo_processor_2001-01-01.log", "wrapper_2001-01-01.log.txt", "notes.txt"]
    for name in [*names.values(), *others]:
        (folder / name).write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("LOG_DIRECTORY", str(folder))
    monkeypatch.setenv("LOG_PURGE_DAYS", "3")
    code, said = wrapper_logs(capsys, "--status")  # the run's other arguments are the run's business
    assert code == 0 and said == {"LOG_DIRECTORY": str(folder), "TODAY": today.isoformat()}
    left = {p.name for p in folder.iterdir()}
    assert left == {names[0], names[1], names[3], *others}


def test_wrapper_logs_reads_the_env_file_a_run_reads_and_keeps_every_log_with_purge_days_0(log_env, monkeypatch,
                                                                                           capsys):
    """Rule: the settings come from where a run finds them, the .env file (here in the folder the test hook names
    instead of bobosync/), or --env-file when the run is given it; LOG_PURGE_DAYS=0 keeps every log; a
    LOG_DIRECTORY that does not exist yet is created, with today's (empty) wrapper log."""
    from config import ENV_DIRS_VAR
    (log_env / "site").mkdir()
    (log_env / "site" / ".env").write_text(f"LOG_DIRECTORY={log_env / 'dotenv logs'}\n", encoding="utf-8")
    monkeypatch.setenv(ENV_DIRS_VAR, str(log_env / "site"))
    assert wrapper_logs(capsys)[1]["LOG_DIRECTORY"] == str(log_env / "dotenv logs")
    settings = log_env / "other.env"
    settings.write_text(f"LOG_DIRECTORY={log_env / 'new' / 'logs'}\nLOG_PURGE_DAYS=0\n", encoding="utf-8")
    code, said = wrapper_logs(capsys, "--env-file", str(settings))
    assert code == 0 and said["LOG_DIRECTORY"] == str(log_env / "new" / "logs")
    assert [p.name for p in (log_env / "new" / "logs").iterdir()] == [f"wrapper_{date.today():%Y-%m-%d}.log"]
    (log_env / "new" / "logs" / "wrapper_2001-01-01.log").write_text("x\n", encoding="utf-8")
    assert wrapper_logs(capsys, "--env-file", str(settings))[0] == 0
    assert (log_env / "new" / "logs" / "wrapper_2001-01-01.log").exists()


@pytest.mark.parametrize("problem", ["purge days not a number", "folder is a file"])
def test_wrapper_logs_answers_nothing_when_the_log_folder_cannot_be_used(log_env, monkeypatch, capsys, problem):
    """Rule: when LOG_DIRECTORY or LOG_PURGE_DAYS cannot be used, --wrapper-logs prints nothing on standard output,
    deletes nothing and exits 2, so the wrapper logs to <project>\\logs (where the run's exit 2 then shows why)."""
    old = log_env / "wrapper_2001-01-01.log"
    old.write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("LOG_DIRECTORY", str(log_env if problem != "folder is a file" else old))
    monkeypatch.setenv("LOG_PURGE_DAYS", "ten" if problem == "purge days not a number" else "1")
    code = cli.main(["--wrapper-logs"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and old.exists()
    assert ("LOG_PURGE_DAYS" if problem == "purge days not a number" else "LOG_DIRECTORY") in captured.err
    assert "Traceback" not in captured.err and os.listdir(log_env) == [old.name]
