"""A first day at a real site: the suite on a machine set up for real, and what an operator sees from
--check, --status, --dry-run, --version and a misspelt .env (issue 16)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SETTING_NAMES

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
SLICE = ["tests/test_config.py", "tests/test_runs.py", "tests/test_operations.py",
         # it asks git whether the checkout is unchanged, and the copy is no git checkout
         "--deselect", "tests/test_operations.py::test_demo_exits_0_and_leaves_the_checkout_unchanged"]


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
    for env_file in (checkout / "bobosync" / ".env", checkout / ".env"):
        env_file.write_text(HOSTILE_ENV_FILE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("BOBOSYNC_TEST_ENV")}
    env.update(HOSTILE_ENVIRON)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                             "--basetemp", str(tmp_path / "pytest-tmp"), *SLICE],
                            cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert (checkout / "bobosync" / ".env").read_text(encoding="utf-8") == HOSTILE_ENV_FILE
    assert not (ROOT / "bobosync" / ".env").exists() or (ROOT / "bobosync" / ".env").read_text() != HOSTILE_ENV_FILE
