"""The Windows wrappers (issue 4): cannot run here (no PowerShell or cmd), so their rules are checked
in the text: Python choice order, arguments passed through, the engine's exit code returned, one
wrapper log per day, no process-list scanning, CRLF endings, nothing newer than PowerShell 5.1."""
import re
from pathlib import Path

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
    assert "wrapper_' + (Get-Date -Format 'yyyy-MM-dd')" in ps1 and "Add-Content" in ps1
    assert "wrapper_%TODAY%.log" in bat and ">>\"%WRAPPER_LOG%\" echo" in bat
    for text in (ps1, bat):
        assert not re.search(r"Get-Process|tasklist|Get-CimInstance|wmic process", text, re.I)


def test_powershell_wrapper_uses_nothing_newer_than_windows_powershell_5_1():
    code = "\n".join(line for line in PS1.decode().splitlines() if not line.lstrip().startswith("#"))
    for ps7_only in (r"\?\?", r"\?\.", r"&&", r"\|\|", r"\s\?\s.*\s:\s", r"-Parallel", r"\$PSStyle"):
        assert not re.search(ps7_only, code), ps7_only
