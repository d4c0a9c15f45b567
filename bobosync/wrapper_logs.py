"""What the Windows wrappers (run_bobo_windows.bat and .ps1) ask before each run: the folder of their own log,
wrapper_YYYY-MM-DD.log, and today's date for its name. They follow LOG_DIRECTORY and LOG_PURGE_DAYS as a run
reads them (bobosync/.env, the environment, --env-file), and write to <project>\\logs when this fails.

`python bobo_processor.py --wrapper-logs [the run's arguments]` prints LOG_DIRECTORY=<folder> and TODAY=<date>,
once the folder exists, today's wrapper log can be appended to, and wrapper logs older than LOG_PURGE_DAYS days
are deleted. Exit 2, printing nothing on standard output, when any of that fails.
"""
import os
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Optional

from config import ConfigError, read_some
from results import EXIT_CONFIG, EXIT_OK

_DATED = re.compile(r"wrapper_(\d{4}-\d{2}-\d{2})\.log$", re.IGNORECASE)


def wrapper_log_for(folder: Path, day: date) -> Path:
    """The wrapper log of `day` in `folder`."""
    return folder / f"wrapper_{day.isoformat()}.log"


def purge_wrapper_logs(folder: Path, today: date, purge_days: int) -> int:
    """Delete the wrapper logs dated more than `purge_days` days before `today` (0 keeps them all), as the run's
    own logs are purged; the number deleted. A file another program holds open is left for the next run."""
    if purge_days <= 0:
        return 0
    cutoff = (today - timedelta(days=purge_days)).isoformat()
    removed = 0
    for name in os.listdir(folder):
        match = _DATED.match(name)
        if match and match.group(1) < cutoff:
            try:
                os.remove(folder / name)
                removed += 1
            except OSError:
                pass
    return removed


def wrapper_logs_command(env_file: Optional[str], today: Optional[date] = None) -> int:
    """--wrapper-logs: make the wrapper log's folder ready and print where it is; 0, or 2 when it cannot be."""
    today = today or date.today()
    try:
        values = read_some(("LOG_DIRECTORY", "LOG_PURGE_DAYS"), env_file)
        folder = Path(values["LOG_DIRECTORY"])
        folder.mkdir(parents=True, exist_ok=True)
        with open(wrapper_log_for(folder, today), "ab"):
            pass  # the wrapper appends to it: a folder it cannot write to would lose the run's output
        purge_wrapper_logs(folder, today, values["LOG_PURGE_DAYS"])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"The wrapper cannot write its log in LOG_DIRECTORY: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return _print_for_the_wrapper(f"LOG_DIRECTORY={folder}{os.linesep}TODAY={today.isoformat()}{os.linesep}")


def _print_for_the_wrapper(text: str) -> int:
    """Write `text` in the code page cmd's `for /f` and PowerShell decode a program's output with, the console's
    output code page (the ANSI one where there is no console, as Wine runs them), so that a folder named with é
    or ü reaches the wrapper intact; 2 when the folder's name has no spelling in that code page."""
    encoding = sys.stdout.encoding or "utf-8"
    if sys.platform == "win32":
        import ctypes
        kernel32 = ctypes.WinDLL("kernel32")
        encoding = f"cp{kernel32.GetConsoleOutputCP() or kernel32.GetACP()}"
    try:
        data = text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        print(f"The folder's name cannot be written in the console's code page ({encoding}): the wrapper logs to "
              f"<project>\\logs", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return EXIT_OK
