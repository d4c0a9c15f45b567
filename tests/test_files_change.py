"""Files that change under a run: what is remembered and moved is what was read and sent.

Each test runs the real entry point (`python bobosync/bobo_processor.py`) in a new process
against the simulator over HTTP; the simulator's `on_sync` hook changes the file on disk while
the SyncByCommonNames call is in flight, as BOBO (or a person) would.
"""
import os
import sqlite3
import time
from pathlib import Path

import pytest

from test_time_and_order import Site

FIELD = "On-Duty-DTG"


def bon(collar: int, hhmmss: str) -> str:
    return f"BON,{collar},P1,20241001,{hhmmss},20241001{hhmmss},1,,,\n"


def bof(collar: int, hhmmss: str) -> str:
    return f"BOF,{collar},P1,20241001,{hhmmss},20241001{hhmmss},1,,,\n"


def test_rows_appended_during_the_athoc_call_are_sent_by_the_next_run_not_moved_unsent(sim, tmp_path):
    """Rule: nothing that was never sent is moved to processed/: a file that grew after it was read stays."""
    site = Site(sim, tmp_path)
    path = site.write("a.csv", bon(10001, "070000"))

    def append_once(records):
        sim.on_sync = None
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(bon(10002, "071500"))

    sim.on_sync = append_once
    first = site.run()
    assert first.returncode == 1, first.stdout  # something is left: the new row
    assert "a.csv changed after it was read" in first.stdout
    assert site.duty(0) == "01/10/2024 07:00:00" and site.duty(1) == ""
    assert path.exists() and not (site.processed_dir / "a.csv").exists()
    os.utime(path, (time.time() - 60, time.time() - 60))
    second = site.run()
    assert second.returncode == 0, second.stdout
    assert site.duty(1) == "01/10/2024 07:15:00"
    assert (site.processed_dir / "a.csv").read_text(encoding="utf-8").count("\n") == 2  # both rows, both sent
    assert not path.exists()


def test_same_size_replacement_during_the_call_is_not_remembered_as_confirmed(sim, tmp_path):
    """Rule: with MOVE_PROCESSED_FILES=false the identity remembered is the bytes sent, not what is there after."""
    site = Site(sim, tmp_path, MOVE_PROCESSED_FILES="false")
    path = site.write("a.csv", bon(10001, "070000"))
    replacement = bof(10001, "080000")
    assert len(replacement) == len(bon(10001, "070000"))

    def replace_once(records):
        sim.on_sync = None
        path.write_text(replacement, encoding="utf-8")

    sim.on_sync = replace_once
    assert site.run().returncode == 1
    assert site.duty(0) == "01/10/2024 07:00:00"
    os.utime(path, (time.time() - 60, time.time() - 60))
    second = site.run()
    assert second.returncode == 0, second.stdout
    assert site.duty(0) == ""  # the new export's book-off was read and sent
    assert path.exists()  # and, being confirmed now, it stays and is not sent again:
    requests = len(sim.requests_to("syncbycommonnames"))
    assert site.run().returncode == 0 and len(sim.requests_to("syncbycommonnames")) == requests


def test_file_deleted_during_the_call_has_its_answers_recorded_and_is_a_warning(sim, tmp_path):
    """Rule: AtHoc's answers are recorded whatever happens to the file afterwards; later, older events are stale."""
    site = Site(sim, tmp_path)
    path = site.write("a.csv", bof(10001, "090000"))

    def delete_once(records):
        sim.on_sync = None
        path.unlink()

    sim.on_sync = delete_once
    first = site.run()
    assert "Traceback" not in first.stdout + first.stderr
    assert first.returncode == 0, first.stdout
    assert "a.csv was removed or moved away" in first.stdout
    site.write("older.csv", bon(10001, "080000"))  # older than the book-off AtHoc applied
    sim.add_user(site.logins[0], **{**sim.users[site.logins[0]], FIELD: ""})
    assert site.run().returncode == 0
    assert site.duty(0) == ""  # the older book-on was stale: the recorded book-off still wins


def test_a_file_that_cannot_be_read_is_left_and_the_run_exits_1(sim, tmp_path):
    """Rule: "something is left" is exit 1: a file that cannot be read (refused, as Windows refuses a file another
    program locks) stays for the next run, and the other files go on."""
    site = Site(sim, tmp_path)
    site.write("locked.csv", bon(10001, "070000"))
    site.write("fine.csv", bon(10002, "070000"))
    site.env["BOBOSYNC_UNREADABLE"] = "locked.csv"
    first = site.run()
    assert first.returncode == 1, first.stdout
    assert "Cannot read locked.csv" in first.stdout
    assert site.duty(1) == "01/10/2024 07:00:00" and site.duty(0) == ""
    assert (site.csv_dir / "locked.csv").exists()
    del site.env["BOBOSYNC_UNREADABLE"]
    assert site.run().returncode == 0
    assert site.duty(0) == "01/10/2024 07:00:00"


@pytest.mark.skipif(os.name == "nt", reason="needs a file name that is not valid UTF-8: POSIX names are bytes")
def test_a_file_name_not_valid_in_the_file_systems_encoding_never_stops_the_other_files(sim, tmp_path):
    """Rule: one odd name must never stop the others; the database stores a name it can store."""
    site = Site(sim, tmp_path)
    odd = os.fsdecode(os.fsencode(str(site.csv_dir)) + b"/caf\xe9.csv")  # Latin-1 bytes on a UTF-8 host
    Path(odd).write_text(bon(10001, "070000"), encoding="utf-8")
    settled = time.time() - 60
    os.utime(odd, (settled, settled))
    site.write("z_later.csv", bon(10002, "070000"))
    first = site.run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Logging error" not in first.stderr and "Traceback" not in first.stdout + first.stderr
    assert site.duty(0) == "01/10/2024 07:00:00" and site.duty(1) == "01/10/2024 07:00:00"
    assert sorted(os.listdir(os.fsencode(str(site.processed_dir)))) == [b"caf\xe9.csv", b"z_later.csv"]
    conn = sqlite3.connect(str(tmp_path / "bobo_mapping.db"))
    names = {row[0] for row in conn.execute("SELECT filename FROM processing_log")}
    conn.close()
    assert names == {"caf\\xe9.csv", "z_later.csv"}
    assert "caf\\xe9.csv" in "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "logs").glob("*.log"))


def test_a_bom_is_never_part_of_the_first_field_even_when_the_file_falls_back_to_windows_1252(sim, tmp_path):
    """Rule: the byte-order mark is never part of the first field, in every decoding path."""
    site = Site(sim, tmp_path)
    a_row = bon(10001, "070000").encode() + "BON,10002,P\xe9,20241001,070000,20241001070000,1,,,\n".encode("cp1252")
    (site.csv_dir / "layout_a.csv").write_bytes(b"\xef\xbb\xbf" + a_row)
    b_rows = "Employee_ID,Status,Timestamp\n10003,On Duty,2024-10-01 07:00:00\n10003,On Duty,2024-10-01 07:0\xe9\n"
    (site.csv_dir / "layout_b.csv").write_bytes(b"\xef\xbb\xbf" + b_rows.encode("cp1252"))
    settled = time.time() - 60
    for name in ("layout_a.csv", "layout_b.csv"):
        os.utime(site.csv_dir / name, (settled, settled))
    result = site.run()
    assert result.returncode == 0, result.stdout
    assert [site.duty(i) for i in range(3)] == ["01/10/2024 07:00:00"] * 3
    assert not any((tmp_path / "failed_files").iterdir())
