"""Logging for a run: one log file per day, the console, and no secret in either."""
import logging
import os
import re
import sys
import time
from datetime import date, timedelta
from errno import EINVAL  # how Windows reports a write to a pipe whose reader has gone
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from config import Settings
from wall_clock import wall_time

LOG_PREFIX = "bobo_processor"  # the log of day D is bobo_processor_D.log (D as YYYY-MM-DD)
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# one timestamp format in every output (the log, the console, --status, the database): schedule.stamp's
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATED = re.compile(r"bobo_processor(?:_|\.log\.)(\d{4}-\d{2}-\d{2})(?:\.log)?$")  # also older rotated names


def log_file_for(folder: Path, day: date) -> Path:
    """The log file of `day` in `folder`."""
    return folder / f"{LOG_PREFIX}_{day.isoformat()}.log"


def _next_midnight(now: float) -> float:
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, 0, 0, 0, 0, 0, -1))


class DailyLogHandler(logging.Handler):
    """One log file per local day, bobo_processor_YYYY-MM-DD.log, only ever appended to.

    No file is renamed: on Windows a rename fails while another process (a run still going at midnight,
    a log viewer, a backup agent) holds the file open, and every later line was lost. A run that passes
    midnight goes on in the new day's file. When a day's first file is made, files older than
    `purge_days` are deleted (0 keeps them all)."""

    def __init__(self, folder: str, purge_days: int, clock: Callable[[], float] = wall_time):
        super().__init__()
        self.folder, self.purge_days, self.clock = Path(folder), purge_days, clock
        self.inner = self._open(clock())

    def _open(self, now: float) -> logging.FileHandler:
        day = date.fromtimestamp(now)
        path = log_file_for(self.folder, day)
        first = not path.exists()
        inner = logging.FileHandler(str(path), encoding="utf-8", errors="backslashreplace")
        if self.formatter is not None:
            inner.setFormatter(self.formatter)
        self.until = _next_midnight(now)
        if first and self.purge_days > 0:
            self._purge(day)
        return inner

    def _purge(self, today: date) -> None:
        cutoff = (today - timedelta(days=self.purge_days)).isoformat()
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            match = _DATED.match(name)
            if match and match.group(1) < cutoff:
                try:
                    os.remove(self.folder / name)
                except OSError:
                    pass  # held open by a viewer, or already gone: the next day's purge tries again

    @property
    def filename(self) -> str:
        return self.inner.baseFilename

    def setFormatter(self, fmt: Optional[logging.Formatter]) -> None:
        super().setFormatter(fmt)
        self.inner.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        now = self.clock()
        if now >= self.until:
            try:
                fresh = self._open(now)
            except Exception:  # a log problem must not stop the run; the lines go on into the old day's file
                self.until = float("inf")
                self.handleError(record)
            else:
                self.inner.close()
                self.inner = fresh
        self.inner.emit(record)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
        super().close()


class SecretFilter(logging.Filter):
    """Replaces the password, client secret and any bearer token in a record with ***, and makes the
    message writable (see _printable)."""

    def __init__(self, secrets: Sequence[str], settings: Optional[Settings] = None):
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.settings = settings if settings is not None and settings.stored else None  # secrets yet to be read

    def filter(self, record: logging.LogRecord) -> bool:
        if self.settings is not None and not self.settings.stored:  # read from the credential store since
            self.secrets = [s for s in self.settings.secrets if s]
            self.settings = None
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if "Bearer " in redacted:
            redacted = _mask_bearer(redacted)
        redacted = _printable(redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _printable(text: str) -> str:
    """Surrogate escapes (a file name not valid in the file system's encoding) as \\xNN: no log file or
    console can write them, and a line that cannot be written is a line lost."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that no file system name decodes to
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _mask_bearer(text: str) -> str:
    return re.sub(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", r"\1***", text)


class ConsoleFormatter(logging.Formatter):
    """The console shows the message, never a traceback (the log file keeps it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


def output_closed(exc: BaseException) -> bool:
    """Whether `exc` says the reader of our output has gone: a broken pipe, which Windows reports as an
    invalid argument (EINVAL) when a write reaches a pipe whose reader closed it."""
    return isinstance(exc, BrokenPipeError) or (os.name == "nt" and isinstance(exc, OSError) and exc.errno == EINVAL)


class ConsoleHandler(logging.StreamHandler):
    """The console: once its reader has gone (`| head -2`), its lines are dropped quietly; the log file keeps
    them all and the run goes on."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and output_closed(exc):
            self.setLevel(logging.CRITICAL + 1)  # nothing more to a closed console
            return
        super().handleError(record)


def setup_logging(settings: Settings, console: bool = True, mode: str = "") -> List[logging.Handler]:
    """Attach the file and console handlers to the root logger; return them for teardown. `mode` (dry-run)
    marks every line of the log file, so that no line of a command that sends nothing reads like a run's."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, settings.log_level))
    secret_filter = SecretFilter(settings.secrets, settings)
    handlers: List[logging.Handler] = []
    problem = ""
    try:
        Path(settings.log_directory).mkdir(parents=True, exist_ok=True)
        file_handler = DailyLogHandler(str(settings.log_directory), settings.log_purge_days)
        shown = FORMAT.replace("%(name)s", f"[{mode}] %(name)s") if mode else FORMAT
        file_handler.setFormatter(logging.Formatter(shown, TIME_FORMAT))
        handlers.append(file_handler)
    except OSError as exc:
        problem = f"cannot write the log in LOG_DIRECTORY {settings.log_directory}: {exc}; logging to the console only"
    if console or problem:
        console_handler = ConsoleHandler(sys.stdout)
        console_handler.setFormatter(ConsoleFormatter("%(asctime)s %(levelname)-7s %(message)s", TIME_FORMAT))
        handlers.append(console_handler)
    for handler in handlers:
        handler.addFilter(secret_filter)
        root.addHandler(handler)
    if problem:
        logging.getLogger("bobosync").warning(problem)
    return handlers


def teardown_logging(handlers: Sequence[logging.Handler]) -> None:
    """Detach and close the handlers of setup_logging (tests run main() many times)."""
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
