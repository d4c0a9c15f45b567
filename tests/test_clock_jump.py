"""A server clock that jumps: AtHoc's Date header is the reference, and no one is cleared or rejected by it.

Each test runs the real entry point in a new process against the simulator over HTTP; the
simulator's Date header is skewed, which to bobosync is the same as its own clock being off.
"""
import json
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
