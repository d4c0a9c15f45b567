"""Time and order: events ahead of the clock, files dated in the future, and ties between events.

Each test runs the real entry point in a new process against the simulator over HTTP, with
real folders and a real SQLite file.
"""
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import ENTRY, ROOT, SETTING_NAMES, env_for

FIELD = "On-Duty-DTG"


class Site:
    """Folders, database and settings of one site, run as Task Scheduler runs it."""

    def __init__(self, sim, root: Path, **settings: str):
        self.sim, self.root = sim, root
        self.logins = sim.seed_users(3)
        self.env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        self.env.update(env_for(sim, root, **{"AUTO_CLEANUP_HOURS": "0", **settings}))
        self.csv_dir = root / "crown_files"
        self.processed_dir = root / "processed_files"
        self.csv_dir.mkdir()
        self._age = 600

    def write(self, name: str, text: str, mtime: float = None) -> Path:
        """A settled file, each a little newer than the one before unless `mtime` is given."""
        path = self.csv_dir / name
        path.write_text(text, encoding="utf-8")
        self._age -= 10
        stamp = time.time() - self._age if mtime is None else mtime
        os.utime(path, (stamp, stamp))
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, ENTRY, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=60)

    def duty(self, index: int) -> str:
        return self.sim.attribute(self.logins[index], FIELD) or ""


def row(kind: str, collar: int, when: datetime, created: str = "") -> str:
    created = created or when.strftime("%Y%m%d%H%M%S")
    return f"{kind},{collar},P1,{when:%Y%m%d},{when:%H%M%S},{created},1,,,\n"


def test_an_event_far_ahead_of_the_clock_is_a_bad_row_and_never_blocks_real_events(sim, tmp_path):
    """Rule: a clocking time more than FUTURE_TOLERANCE_MINUTES ahead of the run's clock is rejected with a
    WARNING naming file, line and person; it never enters the duty state, so real events go on."""
    site = Site(sim, tmp_path)
    now = datetime.now().replace(microsecond=0)
    site.write("typo.csv", row("BON", 10001, now.replace(year=2099)) + row("BON", 10002, now + timedelta(hours=2)))
    site.write("drift.csv", row("BON", 10003, now + timedelta(minutes=3)))  # a terminal a few minutes fast
    first = site.run()
    assert first.returncode == 3, first.stdout  # typo.csv has no valid row: set aside for a person
    assert "typo.csv:1: employee 10001: clocking time 2099-" in first.stdout
    assert "typo.csv:2: employee 10002" in first.stdout
    assert site.duty(0) == "" and site.duty(1) == ""
    assert site.duty(2) == (now + timedelta(minutes=3)).strftime("%d/%m/%Y %H:%M:%S")
    assert (tmp_path / "failed_files" / "typo.csv").exists()  # no valid row: a bad file, kept for a person
    site.write("real.csv", row("BON", 10001, now - timedelta(minutes=5))
               + row("BOF", 10003, now + timedelta(minutes=4)))
    assert site.run().returncode == 0
    assert site.duty(0) == (now - timedelta(minutes=5)).strftime("%d/%m/%Y %H:%M:%S") and site.duty(2) == ""


def test_a_file_dated_in_the_future_is_read_with_a_warning_instead_of_waiting_forever(sim, tmp_path):
    """Rule: a file whose modification time is more than the tolerance in the future is treated as settled."""
    site = Site(sim, tmp_path)
    site.write("skewed.csv", row("BON", 10001, datetime(2024, 10, 1, 7, 0)), mtime=time.time() + 86400 * 365)
    # a minute ahead, within the tolerance: still settling when the run lists it, however slowly the run starts
    # (Windows CPython under Wine takes over 2 s to start a run)
    site.write("just_written.csv", row("BON", 10002, datetime(2024, 10, 1, 7, 0)), mtime=time.time() + 60)
    result = site.run()
    assert result.returncode == 0, result.stdout
    assert "modification time more than FUTURE_TOLERANCE_MINUTES in the future" in result.stdout
    assert "skewed.csv" in result.stdout
    assert site.duty(0) == "01/10/2024 07:00:00"
    assert site.duty(1) == "" and (site.csv_dir / "just_written.csv").exists()  # a normal settling file waits


TIES = [  # (file, rows): equal clocking and record-created times across files
    ("a.csv", row("BON", 10001, datetime(2024, 10, 1, 8, 0), "20241001080005")
     + row("BOF", 10002, datetime(2024, 10, 1, 8, 0), "20241001080005")),
    ("b.csv", row("BOF", 10001, datetime(2024, 10, 1, 8, 0), "20241001080005")
     + row("BON", 10002, datetime(2024, 10, 1, 8, 0), "20241001080005")),
    ("c.csv", row("BON", 10003, datetime(2024, 10, 1, 8, 0))),
    ("d.csv", row("BOF", 10003, datetime(2024, 10, 1, 8, 0)) + row("BON", 10003, datetime(2024, 10, 1, 8, 0))),
    ("e.csv", row("BON", 10001, datetime(2024, 10, 1, 8, 0), "20241001080005")),
]


@pytest.mark.parametrize("batch_size", ["1", "2", "3", "10"])
def test_ties_end_the_same_whatever_the_batch_size(sim, tmp_path, batch_size):
    """Rule: one total order of events (clocking time, record created, then a file order that is the same
    whichever batch or run reads the file, then the line), so any batching gives the same AtHoc state."""
    site = Site(sim, tmp_path, BATCH_SIZE=batch_size)
    for name, text in TIES:
        site.write(name, text)
    result = site.run()
    assert result.returncode == 0, result.stdout
    # the later file wins each tie, and within a file the later line
    assert [site.duty(i) for i in range(3)] == ["01/10/2024 08:00:00", "01/10/2024 08:00:00",
                                                "01/10/2024 08:00:00"]
    states = sqlite3.connect(str(tmp_path / "bobo_mapping.db")).execute(
        "SELECT employee_id, source_file, line FROM duty_state ORDER BY employee_id").fetchall()
    assert states == [("10001", "e.csv", 1), ("10002", "b.csv", 2), ("10003", "d.csv", 2)]


def test_the_same_ties_spread_over_several_runs_end_the_same(sim, tmp_path):
    """The same files, one per run (an export arriving each minute), end as in one batch."""
    site = Site(sim, tmp_path)
    for name, text in TIES:
        site.write(name, text)
        for path in site.csv_dir.glob("*.csv"):
            if path.name != name:
                path.rename(tmp_path / path.name)  # only this file is there for this run
        assert site.run().returncode == 0
        for path in tmp_path.glob("*.csv"):
            path.rename(site.csv_dir / path.name)
    assert [site.duty(i) for i in range(3)] == ["01/10/2024 08:00:00"] * 3


def test_a_duty_state_ahead_of_the_clock_is_shown_by_status_and_cleared_by_clear_future(sim, tmp_path):
    """An older bobosync accepted events from 2099: --status names those people, --clear-future forgets their
    state and clears their duty field, and their next real event is applied."""
    site = Site(sim, tmp_path)
    site.write("first.csv", row("BON", 10001, datetime(2024, 10, 1, 7, 0)))
    assert site.run().returncode == 0  # builds the database and the mappings
    conn = sqlite3.connect(str(tmp_path / "bobo_mapping.db"))
    with conn:
        conn.execute("UPDATE duty_state SET event_time = '20990101070000', athoc_value = '01/01/2099 07:00:00'")
    conn.close()
    sim.users[site.logins[0]][FIELD] = "01/01/2099 07:00:00"
    status = json.loads(site.run("--status", "--json").stdout)
    assert status["ahead_of_the_clock"] == ["10001"]
    assert "--clear-future" in site.run("--status").stdout
    cleared = site.run("--clear-future")
    assert cleared.returncode == 0, cleared.stdout
    assert "Cleared the duty state of 10001" in cleared.stdout and site.duty(0) == ""
    site.write("next.csv", row("BON", 10001, datetime(2024, 10, 2, 7, 0)))
    assert site.run().returncode == 0
    assert site.duty(0) == "02/10/2024 07:00:00"
    assert json.loads(site.run("--status", "--json").stdout)["ahead_of_the_clock"] == []
