"""A first day at a real site, the documents' side: --version and the changelog, installing (a virtual
environment, the lock file), and the words users read (issue 16)."""
import re
import shutil
import subprocess

from config import load_settings
from conftest import ROOT, env_for
from test_first_day import clean_environ, cli, log_lines


def test_version_prints_the_version_pyproject_and_the_changelog_name():
    """Rule: --version prints bobosync's version, the one in pyproject.toml, and CHANGELOG.md has a section
    for it."""
    result = cli("--version")
    assert result.returncode == 0
    version = result.stdout.strip().split()[-1]
    assert result.stdout.strip() == f"bobosync {version}"
    assert f'version = "{version}"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


# --- installing ---

def test_the_readme_starts_with_a_virtual_environment_and_its_windows_equivalent_in_two_commands():
    """Rule: README's first command creates and uses a virtual environment (Debian 12's Python refuses
    pip install), with the Windows equivalent beside it; "Try it" stays two commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Try it", 1)[1].split("## Set up", 1)[0]
    blocks = [block.split("\n", 1)[1] for block in text.split("```")[1::2]]  # each without its language line
    posix, windows = [b.strip().splitlines() for b in blocks[:2]]
    assert len(posix) == 2 and len(windows) == 2
    assert posix[0].startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert windows[0].startswith("py -3 -m venv .venv && .venv\\Scripts\\pip install")
    assert posix[1].startswith(".venv/bin/python ") and windows[1].startswith(".venv\\Scripts\\python ")


def test_the_lock_file_pins_every_requirement_with_hashes():
    """Rule: requirements.lock (pip-compile --generate-hashes) pins each package of requirements.txt, and every
    package it holds, to one version with hashes, so pip install --require-hashes installs the same everywhere."""
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, flags=re.M)
    entries = [e for e in re.split(r"\n(?=[A-Za-z0-9])", lock) if re.match(r"[A-Za-z0-9]", e)]  # one per package
    assert pins and len(entries) == len(pins) and all("--hash=sha256:" in e for e in entries)
    wanted = re.findall(r"^([A-Za-z0-9_.-]+)[<>=]", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    names = {name.lower().replace("_", "-") for name, _ in pins}
    assert {w.lower().replace("_", "-") for w in wanted} <= names
    assert "pip-tools" not in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    if (ROOT / ".git").exists() and shutil.which("git"):  # shipped: not hidden by .gitignore's *.lock (the run lock)
        ignored = subprocess.run(["git", "check-ignore", "-q", "requirements.lock"], cwd=ROOT)
        assert ignored.returncode == 1


# --- words ---

def _site_environ(**values: str) -> dict:
    return {**dict(ATHOC_SERVER_URL="https://athoc.example", CLIENT_ID="c", CLIENT_SECRET="s", APIUSER="u",
                   PASSWORD="p", ORG_CODE="DEMO"), **values}


def test_plain_http_to_this_computer_in_any_spelling_is_not_warned_as_remote():
    """Rule: plain http is warned only for another computer: http://[::1], 127.0.0.2 and localhost are this one."""
    for url in ("http://[::1]:8080", "http://[0:0:0:0:0:0:0:1]", "http://127.0.0.2:81", "http://LOCALHOST:1"):
        assert load_settings(environ=_site_environ(ATHOC_SERVER_URL=url)).warnings == [], url
    remote = load_settings(environ=_site_environ(ATHOC_SERVER_URL="http://athoc.example")).warnings
    assert remote and "plain http to another computer" in remote[0]


def test_no_env_file_found_names_the_paths_searched(tmp_path):
    """Rule: a settings error with no .env file says which paths were searched for one."""
    result = cli(env={**clean_environ(), "BOBOSYNC_TEST_ENV_DIRS": str(tmp_path)})
    assert result.returncode == 2
    assert f"no .env file found at {tmp_path / '.env'}" in result.stderr, result.stderr


def test_an_idle_run_says_nothing_to_do_without_counting_zero_settling_files(sim, tmp_path):
    """Rule: "Nothing to do" alone when no file is settling; with one, it says it is still being written."""
    sim.seed_users(3)
    env = {**clean_environ(), **env_for(sim, tmp_path, FILE_SETTLE_SECONDS="600")}
    (tmp_path / "crown_files").mkdir()
    assert cli(env=env).returncode == 0
    assert log_lines(tmp_path)[-1].endswith("Nothing to do")
    (tmp_path / "crown_files" / "new.csv").write_text("Employee_ID,Status,Timestamp\n", encoding="utf-8")
    assert cli(env=env).returncode == 0
    assert log_lines(tmp_path)[-1].endswith("Nothing to do: 1 file still being written (modified in the last "
                                             "600 s), for the next run")


def test_the_demo_points_at_bobosync_env_and_says_superseded_as_process_md_defines_stale():
    """Rule: the demo's words match the README and process.md: bobosync/.env; "stale" counts superseded events
    too, and process.md says so."""
    result = cli("--demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "copy .env_safe to bobosync/.env" in result.stdout and "was stale" not in result.stdout
    process = (ROOT / "process.md").read_text(encoding="utf-8")
    assert "superseded by a newer one in the same batch" in process and "counts both" in process


def test_user_documents_cite_no_issue_numbers():
    """Rule: README, process.md, fault_results.md, .env_safe and the messages cite no "issue N" users cannot
    look up."""
    for path in [ROOT / n for n in ("README.md", "process.md", "fault_results.md", ".env_safe")] + \
            sorted((ROOT / "bobosync").glob("*.py")):
        assert not re.search(r"\bissue \d+", path.read_text(encoding="utf-8"), flags=re.I), path
