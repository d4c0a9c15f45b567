"""Logging for a run: a daily-rotated file, the console, and no secret in either."""
import logging
import re
import sys
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import List, Sequence

from config import Settings

LOG_FILE = "bobo_processor.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SecretFilter(logging.Filter):
    """Replaces the password, client secret and any bearer token in a record with ***."""

    def __init__(self, secrets: Sequence[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if "Bearer " in redacted:
            redacted = _mask_bearer(redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


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
    logging.getLogger("filelock").setLevel(logging.INFO)  # its per-run acquire/release lines are noise at DEBUG
    secret_filter = SecretFilter(settings.secrets)
    handlers: List[logging.Handler] = []
    problem = ""
    try:
        Path(settings.log_directory).mkdir(parents=True, exist_ok=True)
        file_handler = TimedRotatingFileHandler(str(Path(settings.log_directory) / LOG_FILE), when="midnight",
                                                backupCount=settings.log_purge_days, encoding="utf-8")
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
