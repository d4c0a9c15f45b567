"""The log at midnight while a second process holds yesterday's file open (issue 19, finding 1).

On Windows the old rotation's rename failed with WinError 32 while another process (a log viewer, a
backup agent, a run that is still going) had the file open; every later line printed "--- Logging
error ---" and was written nowhere. Dated files (bobo_processor_YYYY-MM-DD.log) are never renamed, so
the second process's handle does not matter. Run on every platform; it proves the point on Windows."""
import logging
import time
from datetime import date, timedelta

from log_setup import DailyLogHandler, log_file_for
from other_process import held_open


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("bobosync", logging.INFO, __file__, 1, message, None, None)


def test_no_line_is_lost_at_midnight_while_another_process_holds_the_log(tmp_path, capsys):
    now = [time.time()]
    yesterday = log_file_for(tmp_path, date.fromtimestamp(now[0]))
    yesterday.write_text("yesterday\n", encoding="utf-8")
    with held_open(yesterday):
        handler = DailyLogHandler(str(tmp_path), purge_days=3, clock=lambda: now[0])
        handler.setFormatter(logging.Formatter("%(message)s"))
        now[0] = handler.until + 1  # midnight passes while the other process holds the file
        for message in ("first after midnight", "second", "third"):
            handler.handle(record(message))
        handler.close()
    assert "Logging error" not in capsys.readouterr().err
    assert yesterday.read_text(encoding="utf-8") == "yesterday\n"
    today = log_file_for(tmp_path, date.fromtimestamp(now[0] - 2) + timedelta(days=1))
    assert today.read_text(encoding="utf-8") == "first after midnight\nsecond\nthird\n"
