"""run_bobo_windows.bat end to end (issue 19, finding 4), run by cmd.exe against the simulator: the engine's
exit code 0, 1, 2 or 3 comes back out of the wrapper, and the wrapper log says how each run ended. Before the
fix the log never did: in `echo ... END exit code 2>> "log"` cmd reads `2>>` as a redirection of handle 2.

The project is a copy (the .bat, bobosync/, and .venv\\Scripts\\python.exe: a copy of the running Python's
executable and DLLs, with PYTHONHOME and PYTHONPATH pointing at its library), so the wrapper finds the
.venv first, as on a site. Exit 3 ("a person must act") comes from a file set aside in the failed folder.
The wrapper log is wrapper_YYYY-MM-DD.log in LOG_DIRECTORY, the folder and the date from
`bobo_processor.py --wrapper-logs`, which also purges wrapper logs older than LOG_PURGE_DAYS; when that cannot
answer, <project>\\logs (and the date from PowerShell, which Wine has not: wrapper_undated.log).
PowerShell's run_bobo_windows.ps1 is not run anywhere: test_windows_wrappers.py checks its text only."""
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Optional

import pytest

from conftest import BOBOSYNC_DIR, ROOT, SETTING_NAMES, env_for

BAT = ROOT / "run_bobo_windows.bat"
ROW = "BON,10001,P0000001,20240617,065500,20240617070000,1,51.507200,-0.127600,8.0\r\n"

windows_only = pytest.mark.skipif(os.name != "nt", reason="cmd.exe runs the .bat (Windows)")


def test_every_redirection_in_the_bat_comes_first():
    """`echo ... %RC%>> file` loses the line when RC is one digit: each redirection must lead its line."""
    for number, line in enumerate(BAT.read_text().splitlines(), start=1):
        code = line.strip()
        if code.lower().startswith("rem ") or "for /f" in code:
            continue
        if re.search(r"\becho\b", code, re.I) and ">" in code.replace("^>", ""):
            assert code.startswith(">>\"%WRAPPER_LOG%\" echo "), f"line {number}: {line}"
        assert not re.search(r"\S>>", code), f"line {number}: {line}"  # ' >>', after a space, is never a handle


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    shutil.copyfile(BAT, root / BAT.name)  # copyfile, not copy2: Python 3.13's copy2 needs CopyFile2 (not in Wine 8)
    shutil.copytree(BOBOSYNC_DIR, root / "bobosync", copy_function=shutil.copyfile,
                    ignore=shutil.ignore_patterns("__pycache__", ".env"))
    scripts = root / ".venv" / "Scripts"
    scripts.mkdir(parents=True)
    base = Path(getattr(sys, "_base_executable", sys.executable)).parent  # not a venv's launcher
    for item in base.iterdir():
        if item.is_file() and item.suffix.lower() in (".exe", ".dll", ".pyd", ".zip"):
            shutil.copyfile(item, scripts / item.name)
    return root


def run_bat(project: Path, env: dict, *argv: str, log_dir: Optional[Path] = None):
    """Run the .bat; its result and the text of its one wrapper log, looked for in `log_dir` (default: the
    LOG_DIRECTORY of `env`)."""
    shutil.rmtree(project / "logs", ignore_errors=True)
    full = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    full.update(env)
    full["PYTHONHOME"] = sys.base_prefix
    full["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p.lower().endswith("site-packages"))
    result = subprocess.run([os.environ.get("COMSPEC", "cmd.exe"), "/c", str(project / BAT.name), *argv],
                            input="", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
                            env=full, cwd=str(project))
    folder = log_dir if log_dir is not None else Path(env["LOG_DIRECTORY"])
    written = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in folder.glob("wrapper_*.log")}
    logs = [name for name, text in written.items() if " START " in text]  # not an earlier day's, left in place
    assert len(logs) == 1 and re.fullmatch(r"wrapper_(\d{4}-\d\d-\d\d|undated)\.log", logs[0]), (written, result.stdout)
    return result, written[logs[0]]


def assert_ended(result, log: str, code: int) -> None:
    assert result.returncode == code, result.stdout + log
    assert f"bobosync exit code {code}" in result.stdout
    assert ".venv\\Scripts\\python.exe" in log.splitlines()[0] and " START " in log.splitlines()[0]
    assert log.rstrip().splitlines()[-1].endswith(f" END exit code {code}"), log


@windows_only
def test_exit_0_a_run_that_sent_its_file_logged_in_log_directory_old_wrapper_logs_purged(project, sim, tmp_path):
    """Rule: the wrapper logs to wrapper_<today>.log in LOG_DIRECTORY, beside the run's own log, and deletes
    wrapper logs dated more than LOG_PURGE_DAYS days ago (as the run's logs are purged); nothing in <project>.
    The folder's name has a space and an é, which reaches cmd in the code page it reads (wrapper_logs.py)."""
    sim.seed_users(1)
    logs = tmp_path / "journaux du site \u00e9"
    env = env_for(sim, tmp_path, LOG_DIRECTORY=str(logs), LOG_PURGE_DAYS="3")
    (tmp_path / "crown_files").mkdir()
    (tmp_path / "crown_files" / "rota.csv").write_bytes(ROW.encode())
    logs.mkdir()
    today = date.today()
    old, kept = (logs / f"wrapper_{today - timedelta(days=d):%Y-%m-%d}.log" for d in (4, 3))
    for path in (old, kept):
        path.write_text("an earlier day\n", encoding="utf-8")
    result, log = run_bat(project, env)
    assert_ended(result, log, 0)
    assert "Run done" in log and (tmp_path / "processed_files" / "rota.csv").is_file()
    assert (logs / f"wrapper_{today:%Y-%m-%d}.log").is_file() and (logs / f"bobo_processor_{today}.log").is_file()
    assert not old.exists() and kept.exists()
    assert not (project / "logs").exists()


@windows_only
def test_the_wrapper_logs_in_the_project_when_the_log_settings_cannot_be_read(project, sim, tmp_path):
    """Rule: when bobo_processor.py cannot say where LOG_DIRECTORY is (here LOG_PURGE_DAYS is no number), the
    wrapper logs to <project>\\logs and the run's exit code 2 and its message are there; nothing is purged."""
    env = env_for(sim, tmp_path, LOG_PURGE_DAYS="ten")
    (tmp_path / "logs").mkdir()
    old = tmp_path / "logs" / "wrapper_2001-01-01.log"
    old.write_text("an earlier day\n", encoding="utf-8")
    result, log = run_bat(project, env, log_dir=project / "logs")
    assert_ended(result, log, 2)
    assert "LOG_PURGE_DAYS" in log and old.exists()


@windows_only
def test_exit_1_athoc_unavailable_leaves_the_file_for_the_next_run(project, sim, tmp_path):
    sim.seed_users(1)
    sim.fail("connect/token", 503, times=None)
    env = env_for(sim, tmp_path, MAX_RETRY_ATTEMPTS="1")
    (tmp_path / "crown_files").mkdir()
    (tmp_path / "crown_files" / "rota.csv").write_bytes(ROW.encode())
    result, log = run_bat(project, env)
    assert_ended(result, log, 1)
    assert (tmp_path / "crown_files" / "rota.csv").is_file()


@windows_only
def test_exit_2_a_configuration_error_and_the_arguments_passed_through(project, sim, tmp_path):
    """Rule: the wrapper passes its arguments to the run, and to the question of where its log goes: here
    --env-file (in a folder with a space in its name) names the file that sets LOG_DIRECTORY."""
    env = {k: v for k, v in env_for(sim, tmp_path).items() if k not in ("ATHOC_SERVER_URL", "LOG_DIRECTORY")}
    settings = tmp_path / "site settings" / "site.env"
    settings.parent.mkdir()
    logs = tmp_path / "from the env file"
    settings.write_text(f"LOG_DIRECTORY={logs}\n", encoding="utf-8")
    result, log = run_bat(project, env, "--dry-run", "--env-file", str(settings), log_dir=logs)
    assert_ended(result, log, 2)
    assert "bobo_processor.py --dry-run --env-file" in log.splitlines()[0] and "ATHOC_SERVER_URL" in log


@windows_only
def test_exit_3_a_file_set_aside_for_a_person(project, sim, tmp_path):
    sim.seed_users(1)
    env = env_for(sim, tmp_path)
    (tmp_path / "crown_files").mkdir()
    (tmp_path / "crown_files" / "junk.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result, log = run_bat(project, env)
    assert_ended(result, log, 3)
    assert "junk.csv" in log and (tmp_path / "failed_files" / "junk.csv").is_file()
