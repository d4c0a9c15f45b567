"""The CSV reader (docs/input-format.md) and the rule deciding which of two events wins, as pure functions:
every row shape of both layouts in a real file of its own, read by bobo_csv.CsvFile, without a run.
The fault suites' whole runs check the same paths end to end."""
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import bobo_csv
from bobo_csv import BOBOEntry, CsvFile, is_repeated_local_time, normalize_employee_id, supersedes
from strategies import UTF16_BOMS, file_with_garbage, is_text

GOOD = "BON,10001,P1,20240617,065500,20240617065510,1,51.5,-0.1,8.0"
GOOD_OFF = "BOF,10002,P2,20240617,170000,,1,,,"
E1 = ("10001", True, "20240617065500", "20240617065510")
E2 = ("10002", False, "20240617170000", "")
HEADER_B = "Employee_ID,Status,Timestamp"


def read(tmp_path: Path, data: bytes):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    report = CsvFile(path)
    events = [(e.employee_id, e.on_duty, e.event_time, e.record_created) for e in report.events()]
    return events, report


# (bytes, events, rejected [(line, part of the reason)])
LAYOUT_A = {
    "valid, CRLF": ((GOOD + "\r\n" + GOOD_OFF + "\r\n").encode(), [E1, E2], []),
    "valid, LF": ((GOOD + "\n" + GOOD_OFF + "\n").encode(), [E1, E2], []),
    "valid, bare CR": ((GOOD + "\r" + GOOD_OFF + "\r").encode(), [E1, E2], []),
    "no line end after the last row": ((GOOD + "\r\n" + GOOD_OFF).encode(), [E1, E2], []),
    "trailing commas": ((GOOD + ",,,\r\n").encode(), [E1], []),
    "trailing commas with a value after them": ((GOOD + ",,x\r\n").encode(), [], [(1, "expected 10 fields, found 12")]),
    "too few fields": (b"BON,10001,P1,20240617,065500,,1,51.5\r\n", [], [(1, "expected 10 fields, found 8")]),
    "unknown type": (GOOD.replace("BON", "BOX").encode(), [], [(1, "unknown transaction type 'BOX'")]),
    "lower-case type": (GOOD.lower().replace("p1", "P1").encode(), [E1], []),
    "lower-case bof": (GOOD_OFF.replace("BOF", "bof").encode(), [E2], []),
    "no such date": (GOOD.replace(",20240617,", ",20240230,").encode(), [], [(1, "is not a real date and time")]),
    "hour 25": (GOOD.replace(",065500,", ",250000,").encode(), [], [(1, "is not a real date and time")]),
    "minute 60": (GOOD.replace(",065500,", ",066000,").encode(), [], [(1, "is not a real date and time")]),
    "date with dashes": (GOOD.replace(",20240617,", ",2024-06-17,").encode(), [], [(1, "is not YYYYMMDD")]),
    "short time": (GOOD.replace(",065500,", ",0655,").encode(), [], [(1, "is not HHMMSS")]),
    "empty employee id": (GOOD.replace(",10001,", ",,").encode(), [], [(1, "empty employee id")]),
    "employee id not allowed": (GOOD.replace(",10001,", ",=1+1,").encode(), [], [(1, "is not 1-32 letters")]),
    "employee id of 33 characters": (GOOD.replace(",10001,", "," + "a" * 33 + ",").encode(), [],
                                     [(1, "is not 1-32 letters")]),
    "employee id in other digits": (GOOD.replace(",10001,", ",\u0661\u0660\u0660\u0660\u0661,").encode(), [],
                                    [(1, "is not 1-32 letters")]),
    "leading zeros": (GOOD.replace(",10001,", ",0010001,").encode(), [E1], []),
    "letters in the id are kept as written": (GOOD.replace(",10001,", ",AB-01,").encode(),
                                              [("AB-01",) + E1[1:]], []),
    "record created empty": (GOOD.replace("20240617065510", "").encode(), [E1[:3] + ("",)], []),
    "record created too short": (GOOD.replace("20240617065510", "2024061706").encode(), [],
                                 [(1, "record created '2024061706' is not YYYYMMDDHHMMSS")]),
    "record created not a real time": (GOOD.replace("20240617065510", "20240617256510").encode(), [],
                                       [(1, "record created 20240617 256510 is not a real date and time")]),
    "every field quoted": ((",".join(f'"{f}"' for f in GOOD.split(",")) + "\r\n").encode(), [E1], []),
    "spaces around fields": ((" , ".join(GOOD.split(",")) + " \r\n").encode(), [E1], []),
    "header only": (b"Type,Employee,Payroll,Date,Time,Created,Geo,Lat,Lon,Accuracy\r\n", [], []),
    "a header line": (("Type,Employee,Payroll,Date,Time,Created,Geo,Lat,Lon,Accuracy\r\n" + GOOD).encode(), [E1], []),
    "a header-like second line is a bad row": ((GOOD + "\r\nType,Employee\r\n").encode(), [E1],
                                                [(2, "expected 10 fields, found 2")]),
    "stray quote": ((GOOD + '\r\nBON,"10004,P1,20240617,065500,,1,,,\r\n' + GOOD_OFF + "\r\n").encode(), [E1, E2],
                    [(2, "a quote opened on this line is never closed")]),
    "blank lines keep the line numbers": (("\r\n\r\n" + GOOD + "\r\n  \r\nNOPE,1\r\n").encode(), [E1],
                                          [(5, "expected 10 fields, found 2")]),
    "a line of commas is blank": ((",,,,\r\n" + GOOD).encode(), [E1], []),
    "duplicate rows are all read": (((GOOD + "\n") * 3).encode(), [E1] * 3, []),
    "bad rows between good ones": ((GOOD + "\nNOPE,1\n" + GOOD_OFF + "\n").encode(), [E1, E2],
                                   [(2, "expected 10 fields, found 2")]),
}


@pytest.mark.parametrize("shape", sorted(LAYOUT_A))
def test_layout_a_row_shapes(tmp_path, shape):
    data, events, rejected = LAYOUT_A[shape]
    got, report = read(tmp_path, data)
    assert got == events
    assert [line for line, _ in report.rejected] == [line for line, _ in rejected]
    for (_, reason), (_, expected) in zip(report.rejected, rejected):
        assert expected in reason
    assert report.valid == len(events) and report.rejected_count == len(rejected)
    assert report.is_bad is (not events and bool(rejected))


LAYOUT_B = {
    "header and both status words": (f"{HEADER_B}\n10001,On Duty,2024-06-17 06:55:00\n10002,Off Duty,"
                                     f"2024-06-17 17:00:00\n", [("10001", True, "20240617065500", ""),
                                                                ("10002", False, "20240617170000", "")], []),
    "names in other case and spacing": ("employee id , STATUS,Time_Stamp\n10001,on duty,2024-06-17T06:55:00\n",
                                        [("10001", True, "20240617065500", "")], []),
    "columns reordered and an extra one": ("Timestamp,Name,Employee_ID,Status\n2024-06-17 06:55:00,X,010001,BON\n",
                                           [("10001", True, "20240617065500", "")], []),
    "BOF and off_duty": (f"{HEADER_B}\n10001,BOF,2024-06-17 06:55:00\n10002,off_duty,2024-06-17 06:56:00\n",
                         [("10001", False, "20240617065500", ""), ("10002", False, "20240617065600", "")], []),
    "unknown status": (f"{HEADER_B}\n10001,Sick,2024-06-17 06:55:00\n", [], [(2, "unknown status 'Sick'")]),
    "timestamp in another format": (f"{HEADER_B}\n10001,On Duty,17/06/2024 06:55\n", [],
                                    [(2, "is not YYYY-MM-DD HH:MM:SS")]),
    "timestamp not a real time": (f"{HEADER_B}\n10001,On Duty,2024-02-30 06:55:00\n", [],
                                  [(2, "is not a real date and time")]),
    "too few fields": (f"{HEADER_B}\n10001,On Duty\n", [], [(2, "expected 3 fields, found 2")]),
    "bad employee id": (f"{HEADER_B}\n<script>,On Duty,2024-06-17 06:55:00\n", [], [(2, "is not 1-32 letters")]),
    "header only": (f"{HEADER_B}\r\n", [], []),
}


@pytest.mark.parametrize("shape", sorted(LAYOUT_B))
def test_layout_b_row_shapes(tmp_path, shape):
    text, events, rejected = LAYOUT_B[shape]
    got, report = read(tmp_path, text.encode())
    assert got == events
    assert [(line, any(r in reason for _, r in rejected)) for line, reason in report.rejected] == \
        [(line, True) for line, _ in rejected]


@pytest.mark.parametrize("name, data, encoding, events", [
    ("utf-8", GOOD.encode(), "utf-8-sig", [E1]),
    ("utf-8 with BOM", b"\xef\xbb\xbf" + GOOD.encode(), "utf-8-sig", [E1]),
    ("utf-8 with BOM before a layout B header", b"\xef\xbb\xbf" + f"{HEADER_B}\n10001,BON,2024-06-17 06:55:00"
     .encode(), "utf-8-sig", [("10001", True, "20240617065500", "")]),
    ("Windows-1252", GOOD.replace("P1", "P\u00e9").encode("cp1252"), "cp1252", [E1]),
    ("empty", b"", "utf-8-sig", []),
    ("only blank lines", b"\r\n \r\n\r\n", "utf-8-sig", []),
])
def test_encodings_that_are_text(tmp_path, name, data, encoding, events):
    got, report = read(tmp_path, data)
    assert (got, report.encoding, report.not_text, report.is_bad) == (events, encoding, False, False)


# (UTF-16 with its byte-order mark is text: test_windows_text.py)
@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", GOOD.encode("utf-16-le"), b"BON,1\x00"],
                         ids=["png", "utf-16-le", "nul"])
def test_bytes_that_are_not_text_make_a_bad_file(tmp_path, data):
    got, report = read(tmp_path, data)
    assert got == [] and report.not_text and report.is_bad and report.encoding is None


def test_a_nul_far_into_a_large_file_is_found(tmp_path):
    data = ((GOOD + "\n") * 30000).encode() + b"\x00"  # past the first read chunk of 1 MiB
    assert len(data) > bobo_csv.READ_CHUNK
    got, report = read(tmp_path, data)
    assert got == [] and report.not_text


def test_only_the_first_rejections_are_kept_and_the_rest_counted(tmp_path):
    got, report = read(tmp_path, b"NOPE,1\n" * 60)
    assert report.rejected_count == 60 and len(report.rejected) == 50
    assert report.rejection_lines()[-1] == "f.csv: and 10 more rejected rows"
    assert report.rejection_lines()[0] == "f.csv:1: expected 10 fields, found 2"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_with_garbage())
def test_property_any_bytes_never_raise_and_every_valid_row_is_read_in_order(tmp_path, content):
    """The reader's part of test_faults_input's whole-run property, on many more files."""
    data, events = content
    got, report = read(tmp_path, data)
    if is_text(data) and data[:2] not in UTF16_BOMS:  # (read as UTF-16, one-byte rows are not rows)
        assert got == [(e.norm, e.on, e.stamp, e.created) for e in events]
        assert report.valid == len(events) and not report.not_text
    elif is_text(data):
        assert not report.not_text
    else:
        assert got == [] and report.not_text and report.is_bad


@pytest.mark.parametrize("raw, norm", [("0010001", "10001"), (" 10001 ", "10001"), ("000", "0"), ("AB01", "AB01"),
                                       ("007X", "007X"), ("\uff11\uff10", "\uff11\uff10")])
def test_normalize_employee_id(raw, norm):
    assert normalize_employee_id(raw) == norm


def test_athoc_value_of_a_book_on_and_a_book_off():
    assert BOBOEntry("1", True, "20241001070500").athoc_value == "01/10/2024 07:05:00"
    assert BOBOEntry("1", False, "20241001070500").athoc_value == ""


# --- which event wins ---

@pytest.mark.parametrize("incoming, current, wins", [
    (("20240617150000", ""), ("20240617070000", ""), True),  # newer
    (("20240617070000", ""), ("20240617150000", ""), False),  # older: stale
    (("20240617070000", ""), ("20240617070000", ""), False),  # the same event again
    (("20240617070000", "20240617070002"), ("20240617070000", "20240617070001"), True),  # later record created
    (("20240617070000", "20240617070001"), ("20240617070000", "20240617070002"), False),
    (("20240617070000", "20240617070001"), ("20240617070000", ""), True),
    (("20240617070000", "", 2, 1), ("20240617070000", "", 1, 9), True),  # longer keys: the next part decides
])
def test_supersedes_outside_a_daylight_saving_change(incoming, current, wins):
    assert supersedes(incoming, current) is wins


@pytest.fixture
def london():
    """This process in Europe/London (the local time the reader judges repeated hours in)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/London"
    time.tzset()
    bobo_csv._repeated_minute.cache_clear()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()
    bobo_csv._repeated_minute.cache_clear()


@pytest.mark.parametrize("stamp, repeated", [
    ("20241027010000", True), ("20241027013000", True), ("20241027015959", True),  # 27 Oct 2024: 01:xx twice
    ("20241027005959", False), ("20241027020000", False),
    ("20240331013000", False),  # the spring hour that never happens is not a repeated one
    ("20240617013000", False), ("garbage", False), ("", False),
])
def test_the_repeated_hour_of_autumn(london, stamp, repeated):
    assert is_repeated_local_time(stamp) is repeated


@pytest.mark.parametrize("incoming, current, wins", [
    (("20241027011000", "20241027011020"), ("20241027013000", "20241027013010"), True),  # in the hour: arrival
    (("20241027013000", ""), ("20241027011000", ""), True),  # and newer local time too
    (("20241027002000", ""), ("20241027013000", ""), False),  # before the hour: older
    (("20241027020000", ""), ("20241027013000", ""), True),  # after the hour: newer
    (("20241027005000", ""), ("20241027004000", ""), True),
    (("20241027011000", ""), ("20241027011000", ""), False),  # the same event again
])
def test_supersedes_in_the_repeated_hour_the_later_arrival_wins(london, incoming, current, wins):
    assert supersedes(incoming, current) is wins
