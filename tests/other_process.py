"""A second, real process that holds a file open or holds the run lock until the test lets it go (the Windows
tests: on Windows an open handle or a byte-range lock of another process is what bobosync must live with)."""
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

from conftest import BOBOSYNC_DIR, ENTRY, ROOT, SETTING_NAMES

HOLD_OPEN = """import sys
handle = open(sys.argv[1], "ab")  # as a writer holds it: no FILE_SHARE_DELETE, so no rename or move on Windows
print("holding", flush=True)
sys.stdin.read()
"""

HOLD_LOCK = """import os, sys
sys.path.insert(0, sys.argv[2])
from run_lock import RunLock
lock = RunLock(sys.argv[1])
if not lock.acquire():
    print("not acquired", flush=True)
    sys.exit(1)
if len(sys.argv) > 3:  # write the holder's line as a run started long ago would have
    os.lseek(lock._fd, 1, os.SEEK_SET)
    os.write(lock._fd, sys.argv[3].encode("ascii") + b"\\n")
print("holding", flush=True)
sys.stdin.read()
"""


def under_wine() -> bool:
    """Whether this is Windows CPython run by Wine (ntdll exports wine_get_version), not a real Windows."""
    if os.name != "nt":
        return False
    import ctypes
    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


@contextmanager
def _holding(script: str, *args: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "holding", line + proc.stdout.read()
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        proc.stdout.close()


@contextmanager
def held_open(path: Path) -> Iterator[subprocess.Popen]:
    """Another process has `path` open for writing while the block runs."""
    with _holding(HOLD_OPEN, str(path)) as proc:
        yield proc


@contextmanager
def run_lock_held(path: Path, holder_line: Optional[str] = None) -> Iterator[subprocess.Popen]:
    """Another process holds the run lock `path` (bobosync's RunLock) while the block runs; `holder_line`
    replaces the pid and start time it wrote."""
    with _holding(HOLD_LOCK, str(path), str(BOBOSYNC_DIR), *([holder_line] if holder_line else [])) as proc:
        yield proc


def run_bobosync(env: Dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """One real scheduled run, `python bobosync/bobo_processor.py`, with only the settings in `env`."""
    full = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    full.update(env)
    return subprocess.run([sys.executable, ENTRY, *argv], cwd=str(ROOT), env=full, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
