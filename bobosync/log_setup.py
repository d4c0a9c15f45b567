"""Logging for a run: a daily-rotated file, the console, and no secret in either."""
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from config import Settings

LOG_FILE = "bobo_processor.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DST_MARGIN_SECONDS = 3600  # the standard handler's midnight moves by up to an hour on daylight-saving nights


def _next_midnight(now: float) -> float:
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, 0, 0, 0, 0, 0, -1))


class DailyLogHandler(logging.Handler):
    """The log file, rotated at midnight to <file>.YYYY-MM-DD with `backup_count` kept.

    The rotation is the standard TimedRotatingFileHandler's, but logging.handlers costs a run
    with nothing to do more than its work, so it is imported only when a rotation may be due:
    while the file was last written today and midnight is over an hour away, lines are appended."""

    def __init__(self, filename: str, backup_count: int):
        super().__init__()
        self.filename, self.backup_count = filename, backup_count
        now = time.time()
        self.plain_until = _next_midnight(now) - DST_MARGIN_SECONDS
        self.inner: logging.FileHandler
        if now < self.plain_until and self._written_today(now):
            self.inner = logging.FileHandler(filename, encoding="utf-8")
        else:
            self.inner = self._rotating()

    def _written_today(self, now: float) -> bool:
        try:
            mtime = os.stat(self.filename).st_mtime
        except FileNotFoundError:
            return True
        return time.localtime(mtime)[:3] == time.localtime(now)[:3]

    def _rotating(self) -> logging.FileHandler:
        from logging.handlers import TimedRotatingFileHandler
        return TimedRotatingFileHandler(self.filename, when="midnight", backupCount=self.backup_count,
                                        encoding="utf-8")

    @property
    def rotating(self) -> bool:
        return type(self.inner) is not logging.FileHandler

    def setFormatter(self, fmt: Optional[logging.Formatter]) -> None:
        super().setFormatter(fmt)
        self.inner.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.rotating and time.time() >= self.plain_until:
            try:
                rotating = self._rotating()  # it decides from the file's age, as if it had been there all along
            except Exception:  # a log problem must not stop the run; the lines go on into today's file
                self.plain_until = float("inf")
                self.handleError(record)
            else:
                self.inner.close()
                rotating.setFormatter(self.formatter)
                self.inner = rotating
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


def setup_logging(settings: Settings, console: bool = True) -> List[logging.Handler]:
    """Attach the file and console handlers to the root logger; return them for teardown."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, settings.log_level))
    secret_filter = SecretFilter(settings.secrets, settings)
    handlers: List[logging.Handler] = []
    problem = ""
    try:
        Path(settings.log_directory).mkdir(parents=True, exist_ok=True)
        file_handler = DailyLogHandler(str(Path(settings.log_directory) / LOG_FILE), settings.log_purge_days)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        handlers.append(file_handler)
    except OSError as exc:
        problem = f"cannot write the log in LOG_DIRECTORY {settings.log_directory}: {exc}; logging to the console only"
    if console or problem:
        console_handler = logging.StreamHandler(sys.stdout)
        console_handler.setFormatter(ConsoleFormatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
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
