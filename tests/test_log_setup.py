"""The daily log file: appended to on the day it was written, rotated to <file>.YYYY-MM-DD by the standard
handler once a day has passed (issue 6 made that handler's import lazy)."""
import logging
import os
import time
from datetime import date, timedelta

from log_setup import LOG_FILE, DailyLogHandler


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("bobosync", logging.INFO, __file__, 1, message, None, None)


def write_with(handler: DailyLogHandler, *messages: str) -> None:
    handler.setFormatter(logging.Formatter("%(message)s"))
    for message in messages:
        handler.handle(record(message))
    handler.close()


def last_written_yesterday(path) -> float:
    """Set the file's modification time back a day (as if the clock had passed midnight); return it."""
    yesterday = time.time() - 86400
    os.utime(path, (yesterday, yesterday))
    return yesterday


def assert_rotated(path, yesterday: float, old: str, new: str) -> None:
    """`path` holds `new`; yesterday's lines, `old`, went to <file>.YYYY-MM-DD of yesterday."""
    rotated = path.with_name(f"{LOG_FILE}.{date.fromtimestamp(yesterday).isoformat()}")
    assert rotated.read_text(encoding="utf-8") == old
    assert path.read_text(encoding="utf-8") == new


def test_a_log_written_today_is_appended_to_without_the_rotating_handler(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_text("earlier\n", encoding="utf-8")
    handler = DailyLogHandler(str(path), backup_count=3)
    plain = not handler.rotating
    write_with(handler, "now")
    if time.time() < handler.plain_until:  # not in the last hour before midnight
        assert plain
    assert path.read_text(encoding="utf-8") == "earlier\nnow\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOG_FILE]


def test_a_log_last_written_yesterday_is_rotated_to_yesterdays_name_on_the_first_line(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_text("yesterday\n", encoding="utf-8")
    yesterday = last_written_yesterday(path)
    handler = DailyLogHandler(str(path), backup_count=3)
    assert handler.rotating
    write_with(handler, "today")
    assert_rotated(path, yesterday, "yesterday\n", "today\n")


def test_a_run_reaching_midnight_hands_over_to_the_rotating_handler(tmp_path):
    path = tmp_path / LOG_FILE
    handler = DailyLogHandler(str(path), backup_count=3)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(record("before"))
    yesterday = last_written_yesterday(path)
    handler.plain_until = 0
    write_with(handler, "after")
    assert_rotated(path, yesterday, "before\n", "after\n")


def test_rotated_logs_beyond_the_backup_count_are_deleted(tmp_path):
    path = tmp_path / LOG_FILE
    for days in range(1, 6):
        (tmp_path / f"{LOG_FILE}.{(date.today() - timedelta(days=days + 1)).isoformat()}").write_text("old\n")
    path.write_text("yesterday\n", encoding="utf-8")
    last_written_yesterday(path)
    write_with(DailyLogHandler(str(path), backup_count=2), "today")
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(LOG_FILE + ".")]) == 2
