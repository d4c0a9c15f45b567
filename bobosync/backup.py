"""--backup PATH: a consistent copy of the database, made while scheduled runs go on.

SQLite's online backup (sqlite3.Connection.backup) copies every page in one read transaction, so the copy
is the database as one moment saw it, never half a batch; a run that wants to write meanwhile waits for
it (the database's busy timeout, 15 s) and goes on. The copy is written beside its final name and renamed
only once it is whole and checked, so a backup cut short leaves no file that looks like one. It never
overwrites a file: not the live database, not an earlier backup. It takes no run lock.
"""
import os
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Optional, Tuple

from bobo_db import BUSY_TIMEOUT_SECONDS
from config import ConfigError, load_settings
from results import EXIT_CONFIG, EXIT_OK, EXIT_RETRY

LIVE_SUFFIXES = ("", "-journal", "-wal", "-shm", ".lock")  # the database's own files


def _fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"bobosync --backup: {message}", file=sys.stderr)
    return code


def _same(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def refused(source: Path, target: Path) -> str:
    """Why `target` may not receive the copy ('' when it may)."""
    for suffix in LIVE_SUFFIXES:
        if _same(target, source.with_name(source.name + suffix)):
            what = "the live database (DB_PATH)" if not suffix else f"a file of the live database ({suffix})"
            return f"{target} is {what}: --backup never writes over it; give another file name"
    if target.exists():
        return (f"{target} exists: --backup does not overwrite a file; give a new name, or a folder (a dated name is "
                f"made in it)")
    if not target.parent.is_dir():
        return f"the folder {target.parent} does not exist: create it, or give another path"
    return ""


def copy_database(source: Path, target: Path) -> Tuple[str, int, int]:
    """Copy `source` to `target` with the online backup; (quick_check's verdict, schema version, mappings)."""
    src = sqlite3.connect(str(source), timeout=BUSY_TIMEOUT_SECONDS)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)  # every page in one step: one read transaction, one moment
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
            version = dst.execute("PRAGMA user_version").fetchone()[0]
            tables = {name for (name,) in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            mappings = dst.execute("SELECT COUNT(*) FROM worker_mapping").fetchone()[0] \
                if "worker_mapping" in tables else 0
        finally:
            dst.close()
    finally:
        src.close()
    return verdict, version, mappings


def backup_command(path: str, env_file: Optional[str] = None) -> int:
    """Copy the database to `path` (a new file, or a folder for a dated name); the exit code."""
    try:
        settings = load_settings(env_file, local=True)  # no AtHoc credentials needed
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    source = settings.db_path
    if not source.is_file():
        return _fail(f"there is no database at DB_PATH {source} to copy: no run has happened yet, or DB_PATH is wrong")
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{source.stem}-{datetime.now():%Y-%m-%d-%H%M%S}{source.suffix}"
    problem = refused(source, target)
    if problem:
        return _fail(problem)
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    try:
        verdict, version, mappings = copy_database(source, partial)
        if verdict != "ok":
            return _fail(f"the copy does not pass SQLite's check ({verdict}): the database may be damaged; "
                         f"run --check", EXIT_RETRY)
        os.replace(partial, target)
    except sqlite3.OperationalError as exc:
        return _fail(f"the database {source} could not be read ({exc}): if it stays busy, try again in a minute",
                     EXIT_RETRY)
    except sqlite3.DatabaseError as exc:
        return _fail(f"the database {source} cannot be copied ({exc}): it may be damaged; run --check", EXIT_RETRY)
    except OSError as exc:
        return _fail(f"cannot write {target} ({exc.strerror or exc}): check the folder and its free space")
    finally:
        if partial.exists():
            partial.unlink()
    print(f"Backed up {source} to {target}: {target.stat().st_size / 1e6:.1f} MB, schema version {version}, "
          f"{mappings} user mappings, SQLite's check ok, in {time.monotonic() - started:.1f} s.")
    print("To restore it, follow process.md, 'Backup and restore' (disable the task, copy it back, --check, "
          "enable the task).")
    return EXIT_OK
