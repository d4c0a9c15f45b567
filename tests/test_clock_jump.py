"""A server clock that jumps: AtHoc's Date header is the reference, and no one is cleared or rejected by it.

Each test runs the real entry point in a new process against the simulator over HTTP; the
simulator's Date header is skewed, which to bobosync is the same as its own clock being off.
"""
import json
import time
from datetime import datetime, timedelta

from test_time_and_order import FIELD, Site, row

TWO_DAYS = 2 * 86400


def test_a_clock_two_days_ahead_does_not_clear_everyone_on_duty(sim, tmp_path):
    """Rule: when this server's clock and AtHoc's differ by more than CLOCK_SKEW_TOLERANCE_MINUTES, the run skips
    the cleanup, says so in one WARNING naming both clocks, and exits 3; --status shows the difference."""
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24")
    sim.clock_skew_seconds = -TWO_DAYS  # AtHoc's clock two days behind: ours jumped two days ahead
    booked_on = datetime.now().replace(microsecond=0) - timedelta(hours=50)  # 2 hours ago by the true clock
    site.write("a.csv", row("BON", 10001, booked_on))
    result = site.run()
    assert result.returncode == 3, result.stdout
    assert "This server's clock says" in result.stdout and "AtHoc's says" in result.stdout
    assert "Cleanup: cleared" not in result.stdout
    assert sim.attribute(site.logins[0], FIELD) == booked_on.strftime("%d/%m/%Y %H:%M:%S")  # still on duty
    status = json.loads(site.run("--status", "--json").stdout)
    assert abs(status["athoc_clock_minus_ours_seconds"] + TWO_DAYS) < 60
    assert "fix this server's clock" in site.run("--status").stdout
    sim.clock_skew_seconds = 0  # the clocks agree again: the cleanup runs as before (here: a 50-hour book-on)
    again = site.run()
    assert again.returncode == 0, again.stdout
    assert "Cleanup: cleared" in again.stdout


def test_a_clock_two_days_behind_does_not_reject_real_events_as_future(sim, tmp_path):
    """Rule: while the clocks differ, no event is judged against this server's clock: a real book-on, which looks
    two days in the future to a clock set back, is sent in its own order."""
    site = Site(sim, tmp_path)
    sim.clock_skew_seconds = TWO_DAYS  # AtHoc's clock two days ahead: ours was set back
    real_now = datetime.now().replace(microsecond=0) + timedelta(days=2)
    site.write("a.csv", row("BON", 10001, real_now))
    result = site.run()
    assert result.returncode == 3, result.stdout
    assert "ahead of this server's clock" not in result.stdout  # not rejected as a future event
    assert sim.attribute(site.logins[0], FIELD) == real_now.strftime("%d/%m/%Y %H:%M:%S")


def test_the_soak_tests_shifted_clock_is_the_one_every_reading_of_the_time_of_day_comes_from(sim, tmp_path):
    """Rule (what makes bench/soak.py's compressed time faithful): the test hook BOBOSYNC_TEST_CLOCK_OFFSET shifts
    every reading of the time of day of a run, in a process of its own too. With it and AtHoc's Date 30 days
    ahead: a book-on dated 30 days ahead is sent, not rejected as ahead of the clock; the clocks agree (no skew
    warning); a file modified at the shifted "now" is still being written; the log file is named by the shifted
    day. An hour later by the shifted clock the cleanup is due and clears a book-on 40 hours old by it."""
    from wall_clock import OFFSET_VAR
    shift = 30 * 86400
    site = Site(sim, tmp_path, AUTO_CLEANUP_HOURS="24", FILE_SETTLE_SECONDS="10")
    site.env[OFFSET_VAR] = str(shift)
    sim.clock_skew_seconds = shift
    then = datetime.now().replace(microsecond=0) + timedelta(seconds=shift)
    site.write("a.csv", row("BON", 10001, then - timedelta(minutes=1)) + row("BON", 10002, then - timedelta(hours=40)),
               mtime=time.time() + shift - 120)
    site.write("b.csv", row("BOF", 10001, then), mtime=time.time() + shift)  # being written "now"
    result = site.run()
    assert result.returncode == 0, result.stdout
    assert "AtHoc's says" not in result.stdout and "ahead of" not in result.stdout, result.stdout
    assert site.duty(0) == (then - timedelta(minutes=1)).strftime("%d/%m/%Y %H:%M:%S")
    assert (site.csv_dir / "b.csv").exists()  # settling by the shifted clock
    assert (tmp_path / "logs" / f"bobo_processor_{then:%Y-%m-%d}.log").exists()
    site.env[OFFSET_VAR] = str(shift + 3700)
    sim.clock_skew_seconds = shift + 3700
    result = site.run()
    assert result.returncode == 0, result.stdout
    assert site.duty(0) == "" and site.duty(1) == ""  # b.csv's book-off; the cleanup, by the shifted clock
    assert "Cleanup: cleared" in result.stdout
