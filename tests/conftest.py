"""Shared test set-up: bobosync/ on sys.path (as when users run it from that folder),
an AtHoc simulator on loopback, and settings pointing at it."""
import sys
from pathlib import Path

import pytest

BOBOSYNC_DIR = Path(__file__).resolve().parent.parent / "bobosync"
if str(BOBOSYNC_DIR) not in sys.path:
    sys.path.insert(0, str(BOBOSYNC_DIR))

from athoc_simulator import AtHocSimulator  # noqa: E402
from config import settings_for_tests  # noqa: E402


@pytest.fixture
def sim():
    """A running AtHoc simulator (HTTP on 127.0.0.1, a free port), stopped after the test."""
    with AtHocSimulator(org="DEMO") as simulator:
        yield simulator


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
        "ATHOC_SERVER_URL": simulator.url,
        "CLIENT_ID": simulator.client_id,
        "CLIENT_SECRET": simulator.client_secret,
        "APIUSER": simulator.username,
        "PASSWORD": simulator.password,
        "ORG_CODE": simulator.org,
        "HTTP_TIMEOUT_SECONDS": "5",
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
