"""The log: one file per local day, bobo_processor_YYYY-MM-DD.log, appended to and never renamed, so no line
is lost while another process holds yesterday's file (a rename fails on Windows then); old days purged."""
import logging
import time
from datetime import date, timedelta

from log_setup import DailyLogHandler, log_file_for


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("bobosync", logging.INFO, __file__, 1, message, None, None)


def write_with(handler: DailyLogHandler, *messages: str) -> None:
    handler.setFormatter(logging.Formatter("%(message)s"))
    for message in messages:
        handler.handle(record(message))
    handler.close()


def test_todays_file_is_appended_to_and_no_other_file_is_made(tmp_path):
    today = log_file_for(tmp_path, date.today())
    today.write_text("earlier\n", encoding="utf-8")
    write_with(DailyLogHandler(str(tmp_path), purge_days=3), "now")
    assert today.read_text(encoding="utf-8") == "earlier\nnow\n"
    assert [p.name for p in tmp_path.iterdir()] == [today.name]


def test_a_run_passing_midnight_goes_on_in_the_next_days_file_renaming_nothing(tmp_path):
    now = [time.time()]
    handler = DailyLogHandler(str(tmp_path), purge_days=3, clock=lambda: now[0])
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(record("before midnight"))
    now[0] = handler.until + 1  # the clock passes midnight during the run
    write_with(handler, "after midnight")
    today = date.fromtimestamp(now[0] - 2)
    assert log_file_for(tmp_path, today).read_text(encoding="utf-8") == "before midnight\n"
    assert log_file_for(tmp_path, today + timedelta(days=1)).read_text(encoding="utf-8") == "after midnight\n"


def test_files_older_than_log_purge_days_are_deleted_with_the_older_rotated_names(tmp_path):
    today = date.today()
    for days in range(1, 6):
        log_file_for(tmp_path, today - timedelta(days=days)).write_text("old\n")
        (tmp_path / f"bobo_processor.log.{(today - timedelta(days=days)).isoformat()}").write_text("older\n")
    (tmp_path / "wrapper_2020-01-01.log").write_text("not ours to purge\n")
    write_with(DailyLogHandler(str(tmp_path), purge_days=2), "today")
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted([log_file_for(tmp_path, today - timedelta(days=d)).name for d in (0, 1, 2)]
                          + [f"bobo_processor.log.{(today - timedelta(days=d)).isoformat()}" for d in (1, 2)]
                          + ["wrapper_2020-01-01.log"])


def test_log_purge_days_0_keeps_every_day(tmp_path):
    old = log_file_for(tmp_path, date.today() - timedelta(days=400))
    old.write_text("old\n")
    write_with(DailyLogHandler(str(tmp_path), purge_days=0), "today")
    assert old.exists()
