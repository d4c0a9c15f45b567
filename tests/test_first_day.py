"""A first day at a real site: the suite on a machine set up for real, and what an operator sees from
--check, --status, --dry-run, --version and a misspelt .env (issue 16)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from config import load_settings
from conftest import ENTRY, ROOT, SETTING_NAMES, env_for

HOSTILE_ENV_FILE = """\
ATHOC_SERVER_URL=https://athoc.force.invalid
CLIENT_ID=real-client
CLIENT_SECRET=real-client-secret
APIUSER=svc-bobosync
PASSWORD=real-password
ORG_CODE=FORCE
CSV_DIRECTORY=/nonexistent/bobo
DB_PATH=/nonexistent/bobo_mapping.db
LOG_DIRECTORY=/nonexistent/logs
DUTY_STATUS_FIELD=On-Duty-Date
COLLAR_ID_FIELD=Collar-Id
LOG_LEVEL=ERROR
MOVE_PROCESSED_FILES=false
HTTPS_PROXY=http://proxy.invalid:8080
"""
HOSTILE_ENVIRON = {"PASSWORD": "env-password", "HTTPS_PROXY": "http://proxy.invalid:3128",
                   "HTTP_PROXY": "http://proxy.invalid:3128", "LOG_LEVEL": "ERROR", "DUTY_STATUS_FIELD": "On-Duty-Date",
                   "CSV_DIRECTORY": "/nonexistent/csv", "BATCH_SIZE": "1", "FILE_SETTLE_SECONDS": "3600",
                   "ORG_CODE": "FORCE", "USERNAME": "someone"}
# settings read in-process and whole runs through main(): the tests an operator's .env and environment broke
SLICE = ["tests/test_config.py", "tests/test_runs.py"]


def _copy_checkout(dest: Path) -> Path:
    """bobosync/, tests/, pyproject.toml and the documents copied to `dest`: a checkout of its own, so that its .env
    files touch no other test running at the same time."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".env")
    for folder in ("bobosync", "tests"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    for name in ("pyproject.toml", ".env_safe", "README.md", "process.md"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_suite_ignores_the_operators_env_file_and_environment(tmp_path):
    """Rule: the suite gives the same result whatever .env, environment variables or folders the machine has:
    a slice of it passes in a checkout whose bobosync/.env and root .env are a real site's, with PASSWORD,
    HTTPS_PROXY, LOG_LEVEL, DUTY_STATUS_FIELD, ... set in the environment."""
    checkout = _copy_checkout(tmp_path / "checkout")
    env_files = (checkout / "bobosync" / ".env", checkout / ".env")
    for env_file in env_files:
        env_file.write_text(HOSTILE_ENV_FILE, encoding="utf-8")
    # the folders and database of the default settings, as a site running from its checkout has them
    (checkout / "crown_files").mkdir()
    (checkout / "crown_files" / "bobo_0700.csv").write_text("BON,10001,P1,20241001,070000,,1,,,\n", encoding="utf-8")
    (checkout / "logs").mkdir()
    (checkout / "bobosync" / "bobo_mapping.db").write_bytes(b"not a database")
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("BOBOSYNC_TEST_ENV")}
    env.update(HOSTILE_ENVIRON)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                             "--basetemp", str(tmp_path / "pytest-tmp"), *SLICE],
                            cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    try:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert (checkout / "bobosync" / "bobo_mapping.db").read_bytes() == b"not a database"  # nobody used it
        assert (checkout / "crown_files" / "bobo_0700.csv").exists() and not list((checkout / "logs").iterdir())
    finally:
        for env_file in env_files:  # no .env left behind
            env_file.unlink()


# --- mistakes in .env are named ---

def clean_environ() -> dict:
    """This process's environment without any bobosync setting."""
    return {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}


def site_env_file(sim, work: Path, *extra: str) -> Path:
    """A .env file in `work` for a site whose AtHoc is `sim`, its folders and database inside `work`, with
    the lines `extra` after the settings."""
    lines = [f"{k}={v}" for k, v in env_for(sim, work).items()] + list(extra)
    env_file = work / "site.env"
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env_file


def log_lines(work: Path) -> list:
    """Every line of the site's log files (one per day: bobo_processor_YYYY-MM-DD.log), oldest first."""
    return [line for path in sorted((work / "logs").glob("bobo_processor*.log"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def cli(*args: str, env: Optional[dict] = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real entry point as Task Scheduler or a person starts it, from the project root."""
    return subprocess.run([sys.executable, ENTRY, *args], cwd=ROOT, env=env or clean_environ(),
                          capture_output=True, text=True, timeout=timeout)


def test_misspelt_and_duplicate_names_in_env_are_warned_with_the_line_and_the_closest_setting(tmp_path):
    """Rule: a name in .env that is no setting, or a name set twice, is a warning naming the line (and the
    closest setting's name), never silently ignored."""
    env_file = tmp_path / ".env"
    env_file.write_text("ATHOC_SERVER_URL=http://127.0.0.1:1\nCLIENT_ID=c\nCLIENT_SECRET=s\nAPIUSER=u\n"
                        "PASSWORD=p\nORG_CODE=DEMO\n# a comment\n\nMOVE_PROCESSED_FILE=true\nLOGLEVEL=DEBUG\n"
                        "BATCH_SIZE=5\nBATCH_SIZE=7\nWHATEVER_THIS_IS=1\n", encoding="utf-8")
    settings = load_settings(str(env_file), environ={})
    text = "\n".join(settings.warnings)
    assert f"{env_file} line 9: MOVE_PROCESSED_FILE is not a bobosync setting and is ignored; did you mean " \
           f"MOVE_PROCESSED_FILES?" in text
    assert "line 10: LOGLEVEL is not a bobosync setting and is ignored; did you mean LOG_LEVEL?" in text
    assert "line 12 sets BATCH_SIZE again (first set at line 11): the value at line 12 is used" in text
    assert "WHATEVER_THIS_IS is not a bobosync setting and is ignored\n" in text + "\n"
    assert settings.batch_size == 7 and settings.move_processed_files is False
    assert "p" not in [w.rsplit(" ", 1)[-1] for w in settings.warnings]  # no value is shown


def test_check_shows_a_misspelt_setting_as_a_warn_line(sim, tmp_path):
    """Rule: --check shows each .env warning as a WARN line."""
    env_file = site_env_file(sim, tmp_path, "MOVE_PROCESSED_FILE=true")
    result = cli("--check", "--env-file", str(env_file))
    warn = [line for line in result.stdout.splitlines() if "MOVE_PROCESSED_FILE " in line]
    assert warn and warn[0].startswith("WARN") and "did you mean MOVE_PROCESSED_FILES?" in warn[0], result.stdout


# --- --status a monitoring script can trust ---

STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def local_env(work: Path, **overrides: str) -> dict:
    """The environment of a site with its folders in `work` and no AtHoc credentials at all."""
    env = clean_environ()
    env.update(CSV_DIRECTORY=str(work / "in"), PROCESSED_DIRECTORY=str(work / "done"),
               FAILED_FILES_DIRECTORY=str(work / "failed"), DB_PATH=str(work / "bobo.db"),
               LOG_DIRECTORY=str(work / "logs"), **overrides)
    return env


def test_status_reports_a_missing_csv_folder_as_a_configuration_error_and_exits_2(tmp_path):
    """Rule: --status with CSV_DIRECTORY missing says so as a configuration error and exits 2, as every run
    does; it does not print 'Files waiting: 0'. It needs no AtHoc credentials (it is local)."""
    result = cli("--status", env=local_env(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Configuration error: CSV_DIRECTORY {tmp_path / 'in'} does not exist" in result.stdout
    assert "Files waiting:       unknown" in result.stdout and "Files waiting:       0" not in result.stdout
    report = json.loads(cli("--status", "--json", env=local_env(tmp_path)).stdout)
    assert report["files_waiting"] is None and report["problems"]


def test_status_works_without_athoc_credentials(tmp_path):
    """Rule: --status is local: no ATHOC_SERVER_URL, CLIENT_ID, ... needed; exit 0 when all is well."""
    (tmp_path / "in").mkdir()
    result = cli("--status", env=local_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Files waiting:       0 to send" in result.stdout


def test_status_does_not_count_confirmed_files_that_stay_with_move_processed_files_false(sim, tmp_path):
    """Rule: with MOVE_PROCESSED_FILES=false, files AtHoc already confirmed stay in the folder but are not
    counted as waiting: --status counts only what a run would still send."""
    sim.seed_users(5)
    env = {**clean_environ(), **env_for(sim, tmp_path, MOVE_PROCESSED_FILES="false")}
    inbox = tmp_path / "crown_files"
    inbox.mkdir()
    (inbox / "a.csv").write_text("Employee_ID,Status,Timestamp\n10001,On Duty,2024-10-01 07:00:00\n",
                                 encoding="utf-8")
    assert cli(env=env).returncode == 0
    assert (inbox / "a.csv").exists()
    (inbox / "b.csv").write_text("Employee_ID,Status,Timestamp\n10002,On Duty,2024-10-01 07:00:00\n",
                                 encoding="utf-8")
    report = json.loads(cli("--status", "--json", env=env).stdout)
    assert report["files_waiting"] == 1, report
    page = cli("--status", env=env).stdout
    assert "Files waiting:       1 to send" in page


def test_every_timestamp_in_the_log_the_console_and_status_has_one_format(sim, tmp_path):
    """Rule: one timestamp format, YYYY-MM-DD HH:MM:SS, in the log file, on the console and in --status."""
    sim.seed_users(5)
    env = {**clean_environ(), **env_for(sim, tmp_path)}
    (tmp_path / "crown_files").mkdir()
    run = cli(env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    for line in run.stdout.splitlines() + log_lines(tmp_path):
        assert STAMP.match(line) and not re.match(r"\S+ \S+,\d{3} ", line), line
    page = cli("--status", env=env).stdout
    last_run = [line for line in page.splitlines() if line.startswith("Last run:")][0]
    assert STAMP.search(last_run), page


# --- commands that keep their word ---

def test_check_changes_nothing_and_its_closing_line_counts_pass_warn_and_fail(sim, tmp_path):
    """Rule: --check creates no folder and no database, even when it fails, and says what a run would create;
    its closing line counts PASS, WARN and FAIL and never says 'all checks passed' next to a WARN or FAIL."""
    sim.seed_users(3)
    env_file = site_env_file(sim, tmp_path, "LOGLEVEL=DEBUG", f"ATHOC_SERVER_URL=http://127.0.0.1:{_closed_port()}")
    (tmp_path / "crown_files").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("--check", "--env-file", str(env_file))
    assert result.returncode == 1, result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no folder, no database, no log
    assert "a run creates it" in result.stdout and "the first run creates it" in result.stdout
    verdicts = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    last = result.stdout.splitlines()[-1]
    assert last.startswith(f"Preflight: {verdicts.count('PASS')} PASS, {verdicts.count('WARN')} WARN, "
                           f"{verdicts.count('FAIL')} FAIL."), result.stdout
    assert "all checks passed" not in result.stdout.lower()


def test_check_with_a_warn_and_no_fail_does_not_claim_all_passed(sim, tmp_path):
    """Rule: a WARN is counted in the closing line, which then tells to read the WARN lines."""
    sim.seed_users(3)
    env_file = site_env_file(sim, tmp_path, "LOGLEVEL=DEBUG")
    (tmp_path / "crown_files").mkdir()
    result = cli("--check", "--env-file", str(env_file))
    assert result.returncode == 0, result.stdout
    last = result.stdout.splitlines()[-1]
    assert " 0 FAIL" in last and " 0 WARN" not in last and "read the WARN lines" in last, result.stdout
    assert "all checks passed" not in result.stdout.lower()


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_two_lines_then_close(args: list, env: dict) -> subprocess.CompletedProcess:
    """The entry point with its output read as `| head -2` reads it: two lines, then the pipe closed."""
    process = subprocess.Popen([sys.executable, ENTRY, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    head = [process.stdout.readline(), process.stdout.readline()]
    process.stdout.close()
    stderr = process.stderr.read()
    code = process.wait(timeout=60)
    return subprocess.CompletedProcess(args, code, "".join(head), stderr)


def test_no_command_prints_a_traceback_when_its_output_is_closed_early(sim, tmp_path):
    """Rule: `--check | head -2` (and a run's console read the same way) ends without a traceback; a run
    goes on and its log file gets every line."""
    sim.seed_users(3)
    sim.fail("search/basic", None, delay=0.5, times=None)  # the output goes on after the reader has gone
    env = {**clean_environ(), **env_for(sim, tmp_path)}
    (tmp_path / "crown_files").mkdir()
    check = _read_two_lines_then_close(["--check"], env)
    assert "Traceback" not in check.stderr and "Exception ignored" not in check.stderr, check.stderr
    assert check.returncode == 1 and check.stdout.startswith("bobosync preflight")
    run = _read_two_lines_then_close([], env)
    assert "Traceback" not in run.stderr and "Logging error" not in run.stderr, run.stderr
    assert run.returncode == 0
    last = log_lines(tmp_path)[-1]
    assert "Nothing to do" in last or "Run done" in last, last  # the run went on to its end


def test_dry_run_lines_in_the_production_log_are_marked(sim, tmp_path):
    """Rule: every line --dry-run writes to the log file is marked [dry-run], so none reads like a real run's;
    a real run's lines are not marked."""
    sim.seed_users(3)
    env = {**clean_environ(), **env_for(sim, tmp_path)}
    (tmp_path / "crown_files").mkdir()
    (tmp_path / "crown_files" / "a.csv").write_text("Employee_ID,Status,Timestamp\n10001,On Duty,"
                                                    "2024-10-01 07:00:00\n", encoding="utf-8")
    dry = cli("--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    dry_lines = log_lines(tmp_path)
    assert dry_lines and all(" [dry-run] " in line for line in dry_lines), dry_lines
    assert cli(env=env).returncode == 0
    run_lines = log_lines(tmp_path)[len(dry_lines):]
    assert run_lines and not any("[dry-run]" in line for line in run_lines)


# --- the Python recipe in README ---

def _readme_recipe() -> str:
    """The first Python block of README's "From Python", as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("### From Python", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def _recipe_env(sim, work: Path, **overrides: str) -> dict:
    env = {**clean_environ(), **env_for(sim, work, **overrides)}
    (work / "crown_files").mkdir(exist_ok=True)
    return env


def test_the_readme_python_recipe_works_when_there_is_nothing_to_do_and_logs_as_a_run(sim, tmp_path):
    """Rule: README's Python recipe, run as written with no file ready, works (no IndexError); its steps
    log as a run does and --status sees the batch as the last run."""
    sim.seed_users(3)
    env = _recipe_env(sim, tmp_path)
    result = subprocess.run([sys.executable, "-c", _readme_recipe()], cwd=ROOT / "bobosync", env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    log_text = "\n".join(log_lines(tmp_path))
    assert "sync_worker_mappings() called by hand" in log_text and "process_file_batch() called by hand" in log_text
    assert "Last run:            never" not in cli("--status", env=env).stdout


def test_a_batch_sent_by_hand_waits_for_the_run_lock_and_sends_nothing_while_a_run_holds_it(sim, tmp_path):
    """Rule: manual engine calls take the same lock as a run: while another process holds it, the call waits
    LOCK_WAIT_SECONDS, then raises RunLockHeldError having sent nothing."""
    from filelock import FileLock
    sim.seed_users(3)
    env = _recipe_env(sim, tmp_path, LOCK_WAIT_SECONDS="1")
    (tmp_path / "crown_files" / "a.csv").write_text("Employee_ID,Status,Timestamp\n10001,On Duty,"
                                                    "2024-10-01 07:00:00\n", encoding="utf-8")
    code = ("from bobo_processor import BOBOProcessor\nfrom manual_run import RunLockHeldError\n"
            "p = BOBOProcessor()\ntry:\n    p.process_file_batch(p.collect_csv_files())\n"
            "except RunLockHeldError as exc:\n    print('HELD', exc)\n")
    with FileLock(str(tmp_path / "bobo_mapping.db.lock")):
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "bobosync", env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("HELD Another bobosync run still holds the lock"), result.stdout + result.stderr
    assert "LOCK_WAIT_SECONDS" in result.stdout and "Traceback" not in result.stderr
    assert sim.requests == [] and (tmp_path / "crown_files" / "a.csv").exists()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "bobosync", env=env,
                            capture_output=True, text=True, timeout=60)
    assert "HELD" not in result.stdout and not (tmp_path / "crown_files" / "a.csv").exists(), result.stderr


def test_times_inside_messages_have_the_same_format(sim, tmp_path):
    """Rule: a time inside a message (when a backed-off mapping sync tries again) is written as every other
    timestamp, YYYY-MM-DD HH:MM:SS, not HH:MM alone."""
    env = {**clean_environ(), **env_for(sim, tmp_path)}  # no users in AtHoc: the mapping sync backs off
    (tmp_path / "crown_files").mkdir()
    run = cli(env=env)
    assert run.returncode == 1
    line = [line for line in log_lines(tmp_path) if "the next attempt is at" in line][0]
    assert re.search(r"the next attempt is at \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b", line), line


def test_a_line_of_env_that_is_no_setting_is_warned_without_showing_its_text(tmp_path):
    """Rule: no secret in any output: a line that is not NAME=value (a password pasted on a line of its own)
    is warned by its line number alone."""
    env_file = tmp_path / ".env"
    env_file.write_text("PASSWORD=p\nhunter2-secret\nS3cr3t!=x\n", encoding="utf-8")
    settings = load_settings(str(env_file), environ=_minimal_site())
    text = "\n".join(settings.warnings)
    assert "line 2 is not NAME=value" in text and "line 3 is not NAME=value" in text
    assert "hunter2" not in text and "S3cr3t" not in text


def _minimal_site() -> dict:
    return dict(ATHOC_SERVER_URL="https://athoc.example", CLIENT_ID="c", CLIENT_SECRET="s", APIUSER="u",
                ORG_CODE="DEMO")
