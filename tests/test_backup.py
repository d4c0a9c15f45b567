"""--backup (issue 14): a consistent copy of the database while runs go on, never over a file."""
import hashlib
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from other_process import run_lock_held
from testsite import Site

STAMP = (datetime.now() - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_backup_copies_the_database_while_a_run_holds_the_lock_and_writes(sim, tmp_path):
    """Rule: --backup makes a consistent copy with SQLite's online backup while a run holds the lock and writes
    to the database; the copy passes SQLite's check and holds what the database held."""
    site = Site(sim, tmp_path)
    site.write("a.csv", [site.ev("BON", "10001", STAMP)])
    site.run()
    stop = threading.Event()

    def a_run_writing() -> None:
        conn = sqlite3.connect(str(site.db), timeout=15)
        n = 0
        while not stop.is_set():
            with conn:
                conn.execute("INSERT OR REPLACE INTO run_state (key, value) VALUES ('writer', ?)", (str(n),))
            n += 1
            stop.wait(0.002)
        conn.close()

    writer = threading.Thread(target=a_run_writing)
    with run_lock_held(Path(str(site.db) + ".lock")):
        writer.start()
        try:
            out = site.run("--backup", str(tmp_path / "copy.db"))
        finally:
            stop.set()
            writer.join()
    copy = tmp_path / "copy.db"
    assert f"Backed up {site.db} to {copy}" in out and "6 user mappings" in out and "process.md" in out
    conn = sqlite3.connect(str(copy))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM worker_mapping").fetchone()[0] == 6
        assert conn.execute("SELECT employee_id FROM duty_state").fetchall() == [("10001",)]
    finally:
        conn.close()
    assert not list(tmp_path.glob("*.partial"))


def test_backup_never_overwrites_the_live_database_or_any_file(sim, tmp_path):
    """Rule: --backup refuses the live database, its journal and lock files and any existing file (exit 2, the
    file untouched, saying what to do); a folder gets a dated name; with no database it says so."""
    site = Site(sim, tmp_path)
    site.run("--backup", str(tmp_path / "x.db"), expect=(2,))
    assert "there is no database at DB_PATH" in site.output
    site.run()
    before = digest(site.db)
    for target in (site.db, Path(str(site.db) + "-journal"), Path(str(site.db) + ".lock")):
        site.run("--backup", str(target), expect=(2,))
        assert "--backup never writes over it" in site.output
    (tmp_path / "old.db").write_bytes(b"an earlier backup")
    site.run("--backup", str(tmp_path / "old.db"), expect=(2,))
    assert "exists: --backup does not overwrite a file" in site.output
    assert (tmp_path / "old.db").read_bytes() == b"an earlier backup" and digest(site.db) == before
    (tmp_path / "backups").mkdir()
    site.run("--backup", str(tmp_path / "backups"))
    made = list((tmp_path / "backups").iterdir())
    assert len(made) == 1 and made[0].name.startswith("bobo_mapping-") and made[0].suffix == ".db"
    site.run("--backup", str(tmp_path / "no-such-folder" / "x.db"), expect=(2,))
    assert "does not exist" in site.output
