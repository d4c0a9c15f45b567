"""The daylight-saving rules of test_faults_process (the repeated hour of 27 October 2024 in London), with the
time zone injected into the CSV reader instead of set through TZ, so that they run on Windows too: Windows'
C runtime does not read a zone name such as TZ=Europe/London (it reads "GMT0BST" with US rules, or the
system's zone). The runs are bobo_processor.main() in this process, with Europe/London from zoneinfo
(tzdata on Windows) as the local zone of bobo_csv's datetime arithmetic."""
from datetime import datetime

import pytest

import bobo_csv
from test_faults_process import assert_final_state, check_all, dst_across_runs  # invariants by `real` (UTC)
from testsite import FIELD, fault_site


def _london():
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        return zoneinfo.ZoneInfo("Europe/London")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time-zone database for Europe/London (on Windows: pip install tzdata)")


@pytest.fixture
def london(monkeypatch):
    """Europe/London as the local time zone of bobo_csv, whatever this machine's zone."""
    zone = _london()

    def wrap(value: datetime) -> "LondonTime":
        return LondonTime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                          value.microsecond, value.tzinfo, fold=value.fold)

    class LondonTime(datetime):
        """A datetime whose naive values are London local times (astimezone() with no zone means London)."""

        def astimezone(self, tz=None):
            aware = self if self.tzinfo is not None else datetime.replace(self, tzinfo=zone)
            return wrap(datetime.astimezone(aware, tz or zone))

        def replace(self, *args, **kwargs):
            return wrap(datetime.replace(self, *args, **kwargs))

    bobo_csv._repeated_minute.cache_clear()
    monkeypatch.setattr(bobo_csv, "datetime", LondonTime)
    yield
    bobo_csv._repeated_minute.cache_clear()


def test_the_injected_zone_repeats_one_hour_in_autumn_and_skips_one_in_spring(london):
    assert bobo_csv.is_repeated_local_time("20241027013000") and bobo_csv.is_repeated_local_time("20241027010000")
    assert not bobo_csv.is_repeated_local_time("20241027020000")
    assert not bobo_csv.is_repeated_local_time("20241027003000")
    assert not bobo_csv.is_repeated_local_time("20240331013000")  # the skipped hour is not repeated


def test_dst_repeated_hour_across_runs_the_later_arrival_wins_with_the_zone_injected(london, sim, tmp_path,
                                                                                    monkeypatch, capsys):
    """27 Oct 2024, London: 01:00-01:59 happens twice. `real` is UTC."""
    sc = fault_site(sim, tmp_path)
    dst_across_runs(sc, sc.run)


def test_dst_repeated_hour_in_one_batch_the_later_file_and_row_win_with_the_zone_injected(london, sim, tmp_path,
                                                                                          monkeypatch, capsys):
    sc = fault_site(sim, tmp_path)
    sc.write("a.csv", [
        sc.ev("BON", "10001", "20241027013000", real="20241027003000"),
        sc.ev("BON", "10003", "20241027004000", real="20241026234000"),
    ])
    sc.write("b.csv", [
        sc.ev("BOF", "10001", "20241027011000", real="20241027011000"),
        sc.ev("BOF", "10003", "20241027002000", real="20241026232000"),  # older, outside the hour: loses
    ])
    sc.write("c.csv", [
        sc.ev("BON", "10002", "20241027014000", real="20241027004000"),
        sc.ev("BOF", "10002", "20241027010500", real="20241027010500"),
    ])
    sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert sim.attribute(sc.logins[0], FIELD) == ""
    assert sim.attribute(sc.logins[1], FIELD) == ""
    assert sim.attribute(sc.logins[2], FIELD) == "27/10/2024 00:40:00"
