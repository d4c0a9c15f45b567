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


WRITER = """import logging, sys
sys.path.insert(0, sys.argv[1])
from log_setup import DailyLogHandler
now = [float(sys.argv[3])]
handler = DailyLogHandler(sys.argv[2], purge_days=3, clock=lambda: now[0])
handler.setFormatter(logging.Formatter("%(message)s"))
handler.handle(logging.LogRecord("bobosync", logging.INFO, "", 1, "B before midnight", None, None))
print("written", flush=True)
sys.stdin.readline()  # the other process has passed midnight, and holds the new day's file open
now[0] = handler.until + 1
handler.handle(logging.LogRecord("bobosync", logging.INFO, "", 1, "B after midnight", None, None))
handler.close()
"""


def test_two_processes_writing_across_midnight_each_go_on_in_the_new_days_file(tmp_path, capsys):
    """Done when: dated logs across midnight with two processes writing. A run and a second process (a run
    that started before the lock, a --dry-run) both write to the day's log as midnight passes, each holding the
    files open in turn: every line lands in the file of its day, in order, and no line is lost."""
    import subprocess
    import sys
    from conftest import BOBOSYNC_DIR
    now = [time.time()]
    handler = DailyLogHandler(str(tmp_path), purge_days=3, clock=lambda: now[0])
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(record("A before midnight"))
    other = subprocess.Popen([sys.executable, "-c", WRITER, str(BOBOSYNC_DIR), str(tmp_path), str(now[0])],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert other.stdout.readline().strip() == "written"
        now[0] = handler.until + 1  # midnight passes for this process while the other still has yesterday's open
        handler.handle(record("A after midnight"))
        other.stdin.write("go on\n")
        other.stdin.flush()
        rest, _ = other.communicate(timeout=60)
    finally:
        if other.poll() is None:
            other.kill()
    handler.handle(record("A once more"))
    handler.close()
    assert other.returncode == 0 and "Logging error" not in rest, rest
    assert "Logging error" not in capsys.readouterr().err
    day = date.fromtimestamp(now[0] - 2)
    assert log_file_for(tmp_path, day).read_text(encoding="utf-8") == "A before midnight\nB before midnight\n"
    assert log_file_for(tmp_path, day + timedelta(days=1)).read_text(encoding="utf-8") == \
        "A after midnight\nB after midnight\nA once more\n"
