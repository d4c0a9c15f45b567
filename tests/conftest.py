"""Shared test set-up: bobosync/ on sys.path (as when users run it from that folder),
an AtHoc simulator on loopback, and settings pointing at it."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOBOSYNC_DIR = ROOT / "bobosync"
ENTRY = "bobosync/bobo_processor.py"  # the scheduled entry point, relative to ROOT

if str(BOBOSYNC_DIR) not in sys.path:
    sys.path.insert(0, str(BOBOSYNC_DIR))

# The client's waits between retries (back-off, Retry-After) scaled to nothing for every run of the suite,
# in this process and in the runs it starts (the test hook in bobosync/failpoints.py). Tests of the real
# timing set REAL_BACKOFF; BOBOSYNC_TEST_BACKOFF_SCALE=1 in the environment runs the whole suite with it.
from failpoints import BACKOFF_SCALE_VAR  # noqa: E402

REAL_BACKOFF = {BACKOFF_SCALE_VAR: "1"}
os.environ.setdefault(BACKOFF_SCALE_VAR, "0")

from athoc_simulator import AtHocSimulator, connection_settings  # noqa: E402
from config import ENVIRONMENT_NAMES, settings_for_tests  # noqa: E402
from failpoints import ENV_VAR as CRASH_AT  # noqa: E402

# Every variable bobosync reads (each setting and its fallback: USERNAME, the lower-case proxy
# variables), and the crash-point switch, removed from the inherited environment of a run so that
# only what a test gives counts.
SETTING_NAMES = ENVIRONMENT_NAMES + (CRASH_AT,)

# Rule: the suite gives the same result whatever the machine has. The operator's bobosync/.env (or the
# project root's) is never read: the test hook BOBOSYNC_TEST_ENV_DIRS points the lookup at a folder that
# holds none, in this process and in every run it starts; and no setting comes from the inherited
# environment (PASSWORD, HTTPS_PROXY, LOG_LEVEL, ...): each test gives its own.
from config import ENV_DIRS_VAR  # noqa: E402

NO_ENV_DIR = ROOT / "tests" / "no-env-file-here"  # never created: no .env is found there
os.environ[ENV_DIRS_VAR] = str(NO_ENV_DIR)
for _name in SETTING_NAMES:
    os.environ.pop(_name, None)


@pytest.fixture
def sim(tmp_path):
    """A running AtHoc simulator (HTTP on 127.0.0.1, a free port), stopped after the test.

    Afterwards every log the test wrote under tmp_path is searched for the simulator's password,
    client secret and every token it issued: the whole suite runs at DEBUG, so this checks the rule
    "no secret in any log, at any level" in every test that talks to AtHoc."""
    with AtHocSimulator(org="DEMO") as simulator:
        yield simulator
    assert_no_secret_in_logs(tmp_path, [simulator.password, simulator.client_secret, *simulator.issued_tokens])


def assert_no_secret_in_logs(folder: Path, secrets: list) -> None:
    """No secret in any log file under `folder` (bobo_processor_YYYY-MM-DD.log, wrapper logs)."""
    for path in folder.rglob("*.log*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for secret in secrets:
                assert secret not in text, f"{path}: a secret ({secret[:3]}...) is in the log"


def settings_for(simulator: AtHocSimulator, **overrides):
    """Settings whose AtHoc connection points at `simulator`."""
    values = dict(athoc_server_url=simulator.url, client_id=simulator.client_id,
                  client_secret=simulator.client_secret, api_user=simulator.username,
                  password=simulator.password, org_code=simulator.org, http_timeout_seconds=5.0)
    values.update(overrides)
    return settings_for_tests(**values)


@pytest.fixture
def settings(sim):
    """Settings for the running simulator (override fields with settings.replace(...))."""
    return settings_for(sim)


def env_for(simulator: AtHocSimulator, workdir: Path, **overrides: str) -> dict:
    """Environment variables for one real run of bobo_processor against `simulator`,
    with every folder, the database and the logs inside `workdir`."""
    env = {
        **connection_settings(simulator),
        "HTTP_TIMEOUT_SECONDS": "5",
        "LOG_LEVEL": "DEBUG",  # the whole suite logs everything, so the secret check sees everything
        "CSV_DIRECTORY": str(workdir / "crown_files"),
        "PROCESSED_DIRECTORY": str(workdir / "processed_files"),
        "FAILED_FILES_DIRECTORY": str(workdir / "failed_files"),
        "DB_PATH": str(workdir / "bobo_mapping.db"),
        "LOG_DIRECTORY": str(workdir / "logs"),
        "FILE_SETTLE_SECONDS": "0",
        "MOVE_PROCESSED_FILES": "true",
    }
    env.update(overrides)
    return env
