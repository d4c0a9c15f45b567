"""Fault suite, part C (issue 5): bad input, odd folders, and security.

Property-based tests (`hypothesis`) throw any bytes and random valid event sets at the real entry
point; hand-written cases cover encodings, line endings, quoting, both layouts, a 1,000,000-row
file, 10,000 files, odd file names, a directory named `x.csv`, symlinks and a file deleted between
listing and reading. The security tests look for secrets in every log and output at DEBUG, check
that ids outside a conservative pattern never reach AtHoc, and check statically that all SQL is
parameterised.

Every run goes through `bobo_processor.main()` (or `python bobo_processor.py` in a subprocess)
against the AtHoc simulator over HTTP, with real folders and a real SQLite file, and the invariants
of tests/testsite.py are checked on AtHoc's state and the files on disk.
"""
import ast
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import inbox
from athoc_simulator import AtHocSimulator
from conftest import ENTRY, ROOT
from strategies import EVENT_IDS, EVENTS, SIX, STAMPS, UTF16_BOMS, file_with_garbage, is_text
from testsite import (DOMAIN, FIELD, RUN_VARS, UNMAPPED, Ev, Site, assert_final_state, check_all, fault_site, off,
                      on)

A_ROW = on("10001", "20240617065500").row_a()


def processed_ok(sc: Site, expected: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Invariants 1 and 2, then every file handled and AtHoc holding the newest event per user."""
    check_all(sc)
    assert_final_state(sc, expected)


# --- any bytes, and random valid event sets (hypothesis) ---

def _fresh_scenario(work: Path, **env: str) -> Tuple[AtHocSimulator, Site]:
    sim = AtHocSimulator(org="DEMO").start()
    return sim, fault_site(sim, work, **env)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_with_garbage())
def test_property_any_bytes_never_crash_the_run_nor_lose_a_valid_row(content):
    """25 whole runs; the reader alone gets 300 such files in test_bobo_csv.py."""
    data, events = content
    with tempfile.TemporaryDirectory() as work:
        sim, sc = _fresh_scenario(Path(work))
        try:
            sc.write_bytes("any.csv", data, events)
            sc.run(expect=(0, 3))  # a bad file is reported and set aside (exit 3), not retried
            check_all(sc)
            if events and is_text(data) and data[:2] not in UTF16_BOMS:  # one-byte rows are not UTF-16 rows
                assert sc.names(sc.processed_dir) == {"any.csv"}, sc.log()
                assert_final_state(sc)
            elif not is_text(data):
                assert sc.names(sc.failed_dir) == {"any.csv"}
                assert not sc.sync_requests()
            else:  # no valid row: nothing sent, and the file is kept in one of the two folders
                assert not sc.sync_requests()
                assert sc.names(sc.processed_dir) | sc.names(sc.failed_dir) == {"any.csv"}
        finally:
            sim.stop()


def expected_after_runs(runs: Sequence[Sequence[Sequence[Ev]]]
                        ) -> Tuple[Dict[str, Tuple[Tuple[str, str, int, int], str]], List[str]]:
    """The rule of "which event wins", computed on its own: one total order of events (clocking time,
    record created, then the file's place in the order files were written, then the row), the same
    whichever run reads a file; in each run the newest event per employee wins, and it is applied only
    when it comes after the event applied before, else it is stale. Returns what is applied, and to whom
    each run sent a record."""
    applied: Dict[str, Tuple[Tuple[str, str, int, int], str]] = {}
    sends: List[str] = []
    order = 0
    for files in runs:
        best: Dict[str, Tuple[Tuple[str, str, int, int], str]] = {}
        for events in files:
            order += 1
            for row, ev in enumerate(events):
                key = (ev.stamp, ev.created, order, row)
                if ev.norm not in best or key > best[ev.norm][0]:
                    best[ev.norm] = (key, ev.value)
        for norm, (key, value) in best.items():
            if norm not in applied or key > applied[norm][0]:
                applied[norm] = (key, value)
                sends.append(norm)
    return applied, sends


LAYOUT_B_EVENTS = st.builds(Ev, st.booleans(), EVENT_IDS, STAMPS, st.just(""))
A_FILE = st.tuples(st.just("A"), st.lists(EVENTS, min_size=1, max_size=8))
B_FILE = st.tuples(st.just("B"), st.lists(LAYOUT_B_EVENTS, min_size=1, max_size=8))
RUNS = st.lists(st.lists(st.one_of(A_FILE, B_FILE), min_size=1, max_size=3), min_size=1, max_size=3)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RUNS)
def test_property_random_valid_events_always_end_in_the_latest_event_wins_state(runs):
    with tempfile.TemporaryDirectory() as work:
        sim, sc = _fresh_scenario(Path(work), BATCH_SIZE="50")
        try:
            number = 0
            for files in runs:
                for layout, events in files:
                    number += 1
                    sc.write(f"f{number:02d}.csv", events, layout=layout)
                sc.run()
                check_all(sc)
            applied, sends = expected_after_runs([[events for _, events in files] for files in runs])
            expected = {login: applied[eid][1] if eid in applied else None for login, eid in sc.mapped.items()}
            processed_ok(sc, expected)
            sent = [sc.mapped[item["LOGIN_ID"]] for r in sc.sync_requests() for item in r.body]
            assert sorted(sent) == sorted(e for e in sends if e in sc.mapped.values())  # stale events never sent
        finally:
            sim.stop()


def test_a_stray_quote_does_not_swallow_the_rows_after_it(sim, tmp_path):
    """Found by this suite: the csv module read on past a line with an unclosed quote, and the
    records of every line after it were lost in one rejected row. Each line is one record now."""
    sc = fault_site(sim, tmp_path)
    good = [on("10001", "20240617065500"), off("10002", "20240617070000"), on("10003", "20240617071000")]
    rows = [good[0].row_a(), 'BON,"10004,P1,20240617,065500,20240617065500,1,,,', good[1].row_a(), good[2].row_a()]
    sc.write_bytes("stray.csv", ("\r\n".join(rows) + "\r\n").encode(), good)
    output = sc.run()
    assert "stray.csv:2: a quote opened on this line is never closed" in output
    processed_ok(sc)
    assert sc.held(sc.logins[3]) is None


# --- by hand: encodings, line endings, quoting, both layouts ---

def _rows_a(events: Sequence[Ev], end: str = "\r\n") -> str:
    return "".join(e.row_a(f"P{i:07d}") + end for i, e in enumerate(events))


BASE = [on("10001", "20240617065500"), off("10002", "20240617070000"), on("10003", "20240617071000")]
BASE_B = [Ev(e.on, e.eid, e.stamp, "") for e in BASE]  # layout B has no record-created time
LATER_ON = on("10002", "20240617140000")
# Whole runs for a few shapes; every shape of both layouts is read row by row in test_bobo_csv.py.
SHAPES = {
    "utf-8 with BOM, CRLF": (b"\xef\xbb\xbf" + _rows_a(BASE).encode(), BASE, ""),
    "Windows-1252 (a payroll id with e-acute)": (
        _rows_a(BASE).replace("P0000001", "P\u00e9001").encode("cp1252"), BASE, "read as Windows-1252"),
    "duplicate rows": ((_rows_a(BASE) * 3).encode(), BASE * 3, ""),
    "header only (layout B)": (b"Employee_ID,Status,Timestamp\r\n", [], ""),
    "empty file": (b"", [], ""),
    "layout B": (("Employee_ID,Status,Timestamp\r\n" + "".join(e.row_b() + "\r\n" for e in BASE_B)).encode(),
                 BASE_B, ""),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_input_shapes_are_read_as_bobo_csv_md_says(sim, tmp_path, shape):
    data, events, message = SHAPES[shape]
    sc = fault_site(sim, tmp_path)
    sc.write("first.csv", [LATER_ON])  # an earlier file: a stale event in the file below stays stale
    sc.write_bytes("shape.csv", data, events)
    output = sc.run()
    assert message in output
    assert "Rejected" not in output
    processed_ok(sc)
    assert sc.names(sc.processed_dir) == {"first.csv", "shape.csv"}
    assert sc.held(sc.logins[1]) == LATER_ON.value  # the older book-off was stale
    if events:
        assert sc.held(sc.logins[0]) == "17/06/2024 06:55:00" and sc.held(sc.logins[2]) == "17/06/2024 07:10:00"
        sent = [item["LOGIN_ID"] for r in sc.sync_requests() for item in r.body]
        assert sorted(sent) == sorted([sc.logins[1], sc.logins[0], sc.logins[2]])  # duplicates sent once


BAD_ROWS = [
    ("BON,10004,P1,20240617,065500,20240617065500,1,51.5", "expected 10 fields, found 8"),
    ("BOX,10004,P1,20240617,065500,20240617065500,1,51.5,-0.1,8.0", "unknown transaction type 'BOX'"),
    ("BON,10004,P1,20240230,065500,20240617065500,1,51.5,-0.1,8.0", "is not a real date and time"),
    ("BON,10004,P1,20240617,250000,20240617065500,1,51.5,-0.1,8.0", "is not a real date and time"),
    ("BON,10004,P1,2024-06-17,065500,20240617065500,1,51.5,-0.1,8.0", "is not YYYYMMDD"),
    ("BON,,P1,20240617,065500,20240617065500,1,51.5,-0.1,8.0", "empty employee id"),
    ("BON,10004,P1,20240617,065500,2024061706,1,51.5,-0.1,8.0", "record created"),
]


def test_bad_rows_are_rejected_by_line_and_the_good_rows_go_on(sim, tmp_path):
    sc = fault_site(sim, tmp_path)
    lines = [BASE[0].row_a()] + [row for row, _ in BAD_ROWS] + [BASE[1].row_a(), BASE[2].row_a()]
    sc.write_bytes("mixed.csv", ("\r\n".join(lines) + "\r\n").encode(), BASE)
    output = sc.run()
    for number, (_, reason) in enumerate(BAD_ROWS, start=2):
        assert f"Rejected mixed.csv:{number}: " in output and reason in output
    assert f"({len(BAD_ROWS)} rejected)" in output
    processed_ok(sc)
    assert sc.held(sc.logins[3]) is None  # 10004 was only in rejected rows


@pytest.mark.parametrize("kind", ["only bad rows", "binary"])  # UTF-16 with its BOM is read: test_windows_text.py
def test_a_bad_file_goes_to_the_failed_folder_at_once(sim, tmp_path, kind):
    sc = fault_site(sim, tmp_path)
    data = {"only bad rows": "\r\n".join(row for row, _ in BAD_ROWS).encode(),
            "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))}[kind]
    sc.write_bytes("bad.csv", data, [])
    sc.write("good.csv", [on("10005", "20240617080000")])
    output = sc.run(expect=(3,))  # a file set aside in the failed folder: a person must act
    assert "bad.csv" in output and "FAILED_FILES_DIRECTORY" in output
    assert sc.names(sc.failed_dir) == {"bad.csv"} and sc.names(sc.processed_dir) == {"good.csv"}
    assert (sc.failed_dir / "bad.csv").read_bytes() == data  # kept as it was, never deleted
    check_all(sc)
    assert sc.held(sc.logins[4]) == "17/06/2024 08:00:00"
    assert [item["LOGIN_ID"] for r in sc.sync_requests() for item in r.body] == [sc.logins[4]]


# --- by hand: size, many files, odd names and folder entries ---

def _peak_rss_kib(sc: Site, *argv: str) -> Tuple[int, str]:
    """Run the real entry point in a child process; its peak resident memory (KiB) and output."""
    probe = ("import resource, subprocess, sys\n"
             "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)\n"
             "print(done.stdout)\n"
             "print('EXIT', done.returncode, 'PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    env = {k: v for k, v in os.environ.items() if k not in RUN_VARS}
    env.update(sc.env)
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, ENTRY, *argv], cwd=str(ROOT), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    *output, last = done.stdout.rstrip().splitlines()
    _, code, _, peak = last.split()
    assert code == "0" and "Traceback" not in done.stdout, done.stdout
    return int(peak), "\n".join(output)


def _big_file(sc: Site, name: str, rows: int) -> None:
    """`rows` rows over 1,000 employees (six of them mapped), a new minute every 1,000 rows, on and
    off in turn."""
    start = 20240617000000
    lines = []
    for i in range(rows):
        minute, employee = divmod(i, 1000)
        stamp = f"{start + (minute // 60) * 10000 + (minute % 60) * 100}"
        lines.append(f"{'BON' if minute % 2 == 0 else 'BOF'},{10001 + employee},P1,{stamp[:8]},{stamp[8:]},"
                     f"{stamp},1,51.507200,-0.127600,8.0\n")
    sc.write_bytes(name, "".join(lines).encode(), [])


@pytest.mark.skipif(sys.platform == "win32", reason="peak memory read with resource (POSIX)")
def test_a_million_row_file_is_streamed_in_bounded_memory(sim, tmp_path):
    small = fault_site(sim, tmp_path / "small")
    _big_file(small, "small.csv", 20_000)
    small_peak, _ = _peak_rss_kib(small)
    big = fault_site(sim, tmp_path / "big")
    _big_file(big, "big.csv", 1_000_000)
    big_peak, output = _peak_rss_kib(big)
    assert "1000000 rows (0 rejected), 6 updated" in output
    # 50 times the rows, about the same memory: the file (about 70 MB) is never held whole
    assert big_peak < small_peak + 20 * 1024, (small_peak, big_peak)
    assert big_peak < 150 * 1024
    assert big.names(big.processed_dir) == {"big.csv"}
    minutes = (1_000_000 - 1) // 1000  # the last minute's events win
    for login, eid in big.mapped.items():
        stamp = str(20240617000000 + (minutes // 60) * 10000 + (minutes % 60) * 100)
        assert big.held(login) == (Ev(True, eid, stamp).value if minutes % 2 == 0 else ""), login


def test_ten_thousand_files_are_worked_through_within_the_run_budget(sim, tmp_path):
    sc = fault_site(sim, tmp_path, BATCH_SIZE="500")
    lines = [f"{'BON' if i % 2 else 'BOF'},{10001 + i % 6},P1,20240617,{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d},"
             f",1,,,\r\n" for i in range(10_000)]
    for i, line in enumerate(lines):
        (sc.csv_dir / f"bobo_{i:05d}.csv").write_text(line, encoding="ascii")
    old = time.time() - 600
    for path in sc.csv_dir.iterdir():
        os.utime(str(path), (old, old))
    started = time.monotonic()
    proc = sc.start()
    output = sc.finish(proc, expect=(0, 1))
    took = time.monotonic() - started
    assert took < 60, f"one run took {took:.0f} s"
    while sc.csv_left():
        sc.run(expect=(0, 1))
    assert len(sc.names(sc.processed_dir)) == 10_000
    for i, login in enumerate(sc.logins):
        last = max(n for n in range(10_000) if n % 6 == i)
        stamp = f"20240617{last // 3600:02d}{last // 60 % 60:02d}{last % 60:02d}"
        assert sc.held(login) == (Ev(True, "", stamp).value if last % 2 else "")
    assert "Traceback" not in output
    requests = len(sc.sync_requests())
    assert requests <= 10_000 / 500 + 1  # one call per batch, not per file


ODD_NAMES = ["rota 17 June.csv", "\u00e9quipe de nuit \u6771\u4eac.csv", "UPPER.CSV", "a,b;c.csv",
             "it's \"quoted\".csv", "-leading-dash.csv", "dots.in.name.csv", "x" * 200 + ".csv"]
if os.name == "nt":  # Windows forbids " in a file name
    ODD_NAMES.remove("it's \"quoted\".csv")


def test_odd_file_names_are_read_and_moved_without_overwriting(sim, tmp_path):
    sc = fault_site(sim, tmp_path)
    events = [on(eid, f"2024061707{i:02d}00") for i, eid in enumerate(SIX)]
    for name, event in zip(ODD_NAMES, events + events[:2]):
        sc.write(name, [event])
    sc.processed_dir.mkdir(parents=True)
    (sc.processed_dir / "UPPER.CSV").write_bytes(b"an older file of the same name")
    output = sc.run()
    processed_ok(sc)
    assert not sc.csv_left()
    moved = sc.names(sc.processed_dir)
    assert set(ODD_NAMES) - {"UPPER.CSV"} < moved and len(moved) == len(ODD_NAMES) + 1
    assert (sc.processed_dir / "UPPER.CSV").read_bytes() == b"an older file of the same name"
    assert "Traceback" not in output


@pytest.mark.skipif(os.name == "nt", reason="symbolic links (POSIX; on Windows creating one needs a privilege)")
def test_folder_entries_that_are_not_plain_files(sim, tmp_path):
    sc = fault_site(sim, tmp_path)
    folder = sc.csv_dir / "x.csv"  # a directory with a .csv name, holding a file of its own
    folder.mkdir()
    (folder / "inner.csv").write_text(on("10003", "20240617080000").row_a() + "\n")
    (tmp_path / "elsewhere").mkdir()
    linked = [on("10001", "20240617090000")]
    outside = sc.write_bytes("target.csv", (linked[0].row_a() + "\r\n").encode(), linked, tmp_path / "elsewhere")
    (sc.csv_dir / "link.csv").symlink_to(outside)
    (sc.csv_dir / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    (sc.csv_dir / "notes.txt").write_text(on("10002", "20240617090000").row_a() + "\n")
    sc.write("real.csv", [off("10004", "20240617090000")])
    output = sc.run()
    check_all(sc)
    assert "Traceback" not in output
    assert sc.held(sc.logins[0]) == linked[0].value  # the symlinked file was read
    assert sc.held(sc.logins[3]) == ""
    assert sc.held(sc.logins[2]) is None and sc.held(sc.logins[1]) is None  # the folder and the .txt: not read
    assert outside.read_bytes() == (linked[0].row_a() + "\r\n").encode()  # the link moved, its target untouched
    assert (sc.processed_dir / "link.csv").is_symlink()
    assert sorted(sc.names(sc.csv_dir)) == ["dangling.csv", "notes.txt", "x.csv"]
    assert (folder / "inner.csv").is_file()
    assert "dangling.csv (a link to nothing), x.csv (a folder)" in output  # the operator is told, once per run
    assert sc.run() and not sc.sync_requests()[1:]  # nothing more to do, nothing sent again


def test_a_file_deleted_between_listing_and_reading(sim, tmp_path, monkeypatch):
    sc = fault_site(sim, tmp_path)
    sc.write("kept.csv", [on("10001", "20240617070000")])
    sc.write("vanishing.csv", [on("10002", "20240617070000")])
    sc.files[-1].removed = True
    listed = inbox.Inbox.ready_files

    def list_then_delete(self):  # BOBO (or an operator) removes a file just after the listing
        ready = listed(self)
        (sc.csv_dir / "vanishing.csv").unlink()
        return ready

    monkeypatch.setattr(inbox.Inbox, "ready_files", list_then_delete)
    output = sc.run()
    assert "vanishing.csv disappeared before it was read; skipped" in output
    monkeypatch.undo()
    processed_ok(sc, {sc.logins[0]: "17/06/2024 07:00:00", sc.logins[1]: None})
    assert sc.names(sc.processed_dir) == {"kept.csv"}


# --- security ---

HOSTILE_IDS = ["=1+1", "+441234", "-10001", "@SUM(A1)", "10\x0701", "10001\x1b[2J", "\u0661\u0660\u0660\u0660\u0661",
               "\uff11\uff10\uff10\uff10\uff11", "a" * 33, "10 001", "<script>", "10001;DROP TABLE worker_mapping",
               "'10001", "..", "10001\u200b"]


def test_employee_ids_outside_a_conservative_pattern_never_reach_athoc(sim, tmp_path):
    sc = fault_site(sim, tmp_path)
    for i, hostile in enumerate(HOSTILE_IDS):  # even when some AtHoc user holds that very value
        sim.add_user(f"hostile{i}@{DOMAIN}", **{"Collar-Number": hostile})
    good = on("10001", "20240617070000")
    rows = [good.row_a()] + [f"BON,{eid},P1,20240617,070000,20240617070000,1,,," for eid in HOSTILE_IDS]
    rows += [f"{eid},On Duty,2024-06-17 07:00:00" for eid in HOSTILE_IDS]
    sc.write_bytes("hostile.csv", ("\r\n".join(rows[:len(HOSTILE_IDS) + 1]) + "\r\n").encode("utf-8"), [good])
    sc.write_bytes("hostile_b.csv", ("Employee_ID,Status,Timestamp\r\n" + "\r\n".join(rows[len(HOSTILE_IDS) + 1:])
                                     ).encode("utf-8"), [])
    output = sc.run(expect=(3,))  # a file set aside in the failed folder: a person must act
    for line in range(2, len(HOSTILE_IDS) + 2):
        assert f"hostile.csv:{line}: " in output and f"hostile_b.csv:{line}: " in output
    assert "is not 1-32 letters, digits" in output
    assert "\x07" not in output and "\x1b" not in output and "\x07" not in sc.log()  # shown escaped
    sent = [item for r in sc.sync_requests() for item in r.body]
    assert sent == [{"LOGIN_ID": sc.logins[0], FIELD: good.value}]
    assert all(sim.attribute(f"hostile{i}@{DOMAIN}", FIELD) is None for i in range(len(HOSTILE_IDS)))
    assert sc.names(sc.failed_dir) == {"hostile_b.csv"}  # only rejected rows: a bad file
    check_all(sc)


def _secret_sim() -> AtHocSimulator:
    return AtHocSimulator(org="DEMO", client_secret="cs-Zq8!secret-1", password="pw-Vx3#secret-2").start()


def test_no_secret_in_any_output_or_log_at_debug(tmp_path):
    """Every command, a wrong password and a token renewal, all at DEBUG, with a proxy password set:
    neither the password, the client secret, the proxy password nor any token the simulator issued
    appears in any output or log file."""
    sim = _secret_sim()
    try:
        sc = fault_site(sim, tmp_path, LOG_LEVEL="DEBUG", HTTPS_PROXY="http://proxyuser:px-Kw5$secret-3@127.0.0.1:9",
                      HTTP_PROXY="http://proxyuser:px-Kw5$secret-3@127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
        sc.write("a.csv", [on("10001", "20240617070000"), on(UNMAPPED, "20240617070000")])
        outputs = [sc.finish(sc.start("--check"), expect=(0,)), sc.finish(sc.start("--dry-run")),
                   sc.finish(sc.start("--sync-mappings"))]
        sim.fail("syncbycommonnames", 401)  # a token refused once: renewed
        outputs.append(sc.finish(sc.start()))
        sc.write("b.csv", [off("10001", "20240617150000")])
        outputs += [sc.finish(sc.start("--status")), sc.finish(sc.start("--status", "--json"))]
        outputs.append(sc.finish(sc.start(PASSWORD="wrong-" + sim.password), expect=(3,)))
        outputs.append(sc.finish(sc.start("--check", CLIENT_SECRET="x" + sim.client_secret), expect=(1, 2)))
        outputs.append(sc.finish(sc.start()))
        assert sim.attribute(sc.logins[0], FIELD) == ""  # the runs did their work
        secrets = [sim.password, sim.client_secret, "px-Kw5$secret-3", "wrong-" + sim.password,
                   "x" + sim.client_secret, *sim.tokens]
        assert len(sim.tokens) >= 4
        texts = outputs + [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                           if p.is_file() and not p.name.endswith(".db")]
        assert any("DEBUG" in t for t in texts)
        for secret in secrets:
            for text in texts:
                assert secret not in text, f"a secret ({secret[:3]}...) leaked"
    finally:
        sim.stop()


SQL_CALLS = {"execute", "executemany", "executescript"}


def _sql_argument_is_static(node: ast.expr, constants: Dict[str, object]) -> bool:
    """A literal string, a name bound to one, a parameter named sql or sql_* (its callers pass literals), or an
    f-string of module-level integer constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.Name):
        return isinstance(constants.get(node.id), str) or node.id == "sql" or node.id.startswith("sql_")
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(part, ast.Constant) or (
            isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name)
            and isinstance(constants.get(part.value.id), int)) for part in node.values)
    return False


def test_all_sql_is_parameterised():
    """Values reach SQLite only as parameters: no SQL text is built from data, anywhere."""
    found = 0
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "bobosync").glob("*.py"))}
    constants = {t.id: n.value.value for tree in trees.values() for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}  # and imported
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                found += 1
                assert node.args and _sql_argument_is_static(node.args[0], constants), \
                    f"{path.name}:{node.lineno}: SQL built at run time; pass values as parameters"
    assert found > 20
