"""--report (issue 20): one self-contained HTML page of an incident review, built from the database alone.

A scenario with known history is driven through the real entry point against the AtHoc simulator, each run's
clock started at a chosen minute (the test hook BOBOSYNC_TEST_CLOCK, failpoints.py): a shift change, a run failed
by an AtHoc outage followed by minutes with no run, a stale event, a pending new starter, the cleanup of a book-on
with no book-off. The page is parsed (html.parser) and checked: the on-duty count at chosen minutes (and that it
agrees with --on-duty-at), the runs table, each person's events and decisions, the files; that every value from
AtHoc, BOBO or a file name is text, never markup; that bad input is one message and exit 2; and that a real
browser (Debian's chromium, headless) renders it.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from failpoints import CLOCK_VAR
from testsite import Site, off, on

DAY = "2024-06-17"
SINCE, UNTIL = "17/06/2024 03:00", "17/06/2024 03:10"
HOSTILE_LOGIN = "<script>alert(1)</script>@x"
# (Windows refuses < and > in a file name: there the name tries an attribute and an entity instead)
HOSTILE_FILE = "<img src=x onerror=alert(2)>.csv" if sys.platform != "win32" else "x' onerror='alert(2)' &amp;.csv"
HOSTILE_DETAIL = "<b onmouseover=alert(3)>refused</b>"
REQUIRE_BROWSER = os.environ.get("BOBOSYNC_REQUIRE_BROWSER") == "1"


class Page(HTMLParser):
    """The parsed page: every start tag with its attributes, the text of each table's rows (by the table's id or
    class), and the text of elements with an id."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: List[Tuple[str, Dict[str, Optional[str]]]] = []
        self.tables: Dict[str, List[List[str]]] = {}
        self.text_of: Dict[str, str] = {}
        self._table: List[str] = []
        self._row: Optional[List[str]] = None
        self._cell: Optional[List[str]] = None
        self._ids: List[Tuple[str, str, List[str]]] = []
        self.all_text: List[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            name = a.get("id") or a.get("class") or "table"
            self._table.append(name)
            self.tables.setdefault(name, [])
            if name in self.tables and self.tables[name] and a.get("class"):
                self.tables[name].append(["--"])  # a second table of the same class (the next person)
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        if a.get("id") and tag != "table":
            self._ids.append((tag, a["id"], []))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table[-1]].append(self._row)
            self._row = None
        elif tag == "table" and self._table:
            self._table.pop()
        elif self._ids and self._ids[-1][0] == tag:
            _, ident, parts = self._ids.pop()
            self.text_of[ident] = " ".join("".join(parts).split())

    def handle_data(self, data):
        self.all_text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        for _, _, parts in self._ids:
            parts.append(data)

    def rows(self, name: str) -> List[List[str]]:
        return self.tables[name][1:]  # without the header row


def at(sc: Site, moment: str, *argv: str, expect=(0,)) -> str:
    """One run of the real entry point, its clock started at `moment` (HH:MM:SS on the scenario's day)."""
    return sc.run(*argv, expect=expect, **{CLOCK_VAR: f"{DAY} {moment}"})


def report(sc: Site, tmp_path: Path, *argv: str) -> Tuple[Page, str, Path]:
    out = tmp_path / "review.html"
    code = sc.main("--report", "--out", str(out), *argv)
    assert code == 0, sc.output
    assert sc.output.strip() == str(out.resolve())
    html = out.read_text(encoding="utf-8")
    return Page(html), html, out


@pytest.fixture
def incident(sim, tmp_path):
    """The scenario's site, after its four runs (03:00:30, 03:01:30 in an outage, then none until 03:07:30)."""
    sc = Site(sim, tmp_path, users=5, odd_users=False, AUTO_CLEANUP_HOURS="24", CLEANUP_INTERVAL_MINUTES="0")
    sc.write("a.csv", [on("10001", "20240617025500"), on("10002", "20240617025800"), on("10003", "20240617025900"),
                       on("10004", "20240616010000"), on("99999", "20240617025700")])  # 10004: no book-off since
    at(sc, "03:00:30")
    sc.write("b.csv", [off("10001", "20240617030030"), on("10002", "20240617025000"),  # an older event: stale
                       off("10003", "20240617030500"), on("10005", "20240617030300"),  # the shift change,
                       on("10005", "20240617030400")])  # 10005 twice: the later one supersedes the first
    sim.fail(r"/syncbycommonnames", 503, times=None)
    at(sc, "03:01:30", expect=(1,))
    sim.faults.clear()
    at(sc, "03:07:30")
    return sc


def test_report_shows_on_duty_counts_runs_people_and_files(incident, tmp_path):
    """Rule: the page gives the on-duty count at each minute as --on-duty-at answers it (AtHoc-confirmed time), the
    runs with the failed one and the gaps, each person's events with the decision in words, and the files."""
    sc = incident
    page, html, _ = report(sc, tmp_path, "--since", SINCE, "--until", UNTIL, "--person", "10001",
                           "--person", "10002", "--person", "99999", "--person", "10004", "--person", "10005")
    counts = {minute: int(n) for minute, n in page.rows("series")}
    assert len(counts) == 10
    assert counts["17/06/2024 03:00"] == 0
    assert [counts[f"17/06/2024 03:0{m}"] for m in range(1, 8)] == [4] * 7  # 10001-10004; the outage changed nothing
    assert counts["17/06/2024 03:08"] == counts["17/06/2024 03:09"] == 2  # 10002 (stale kept it) and 10005
    for minute in ("03:05", "03:09"):  # the same answer as --on-duty-at
        assert sc.main("--on-duty-at", f"17/06/2024 {minute}", "--json") == 0
        assert json.loads(sc.output)["count"] == counts[f"17/06/2024 {minute}"]

    runs = page.rows("runs")
    assert [(r[0], r[2]) for r in runs] == [("17/06/2024 03:00:30", "0"), ("17/06/2024 03:01:30", "1"),
                                            ("17/06/2024 03:07:30", "0")]
    assert runs[0][4] == "4" and runs[0][6] == "1"  # updated 4, pending 1 (the new starter)
    assert runs[1][3].startswith("1 (0,") and "503" in runs[1][9]  # the outage: b.csv waited, AtHoc's answer named
    assert runs[2][4] == "3" and runs[2][5] == "2"  # updated 3; stale 2: the stale one and the superseded one
    assert "17/06/2024 03:01:30 to 17/06/2024 03:07:30" in page.text_of["gaps"].replace("03:0", "17/06/2024 03:0") \
        or "03:01:30 to 03:07:30" in page.text_of["gaps"]
    assert page.text_of["health"].startswith("Health: degraded: 1 failed run(s)")
    assert "No alert problem was open in this period" in page.text_of["alerts"]  # alerts are off here
    assert [(r[0], r[1], "503" in r[2]) for r in page.rows("problems")] == [
        ("17/06/2024 03:01:30", "opened", True), ("17/06/2024 03:07:30", "cleared", True)]
    assert "On-Duty-DTG" in page.text_of["settings"] and "24" in page.text_of["settings"]
    assert "not seen" in html  # a change made by hand in AtHoc
    assert "@page { size: A4" in html and "@media print" in html

    lanes = _split(page.tables["person-rows"])
    decisions = [[row[4] for row in lane] for lane in lanes]
    assert decisions == [["applied", "applied"], ["applied", "stale"], ["pending"], ["applied", "cleared"],
                         ["superseded", "applied"]]
    first = lanes[0]
    assert first[0][1] == "book-on" and first[0][2] == "2024-06-17 02:55:00" and first[0][3] == "a.csv:1"
    assert first[1][1] == "book-off" and first[1][3] == "b.csv:1" and first[1][0].startswith("2024-06-17 03:07:3")
    assert "AtHoc applied it" in first[1][5]
    assert "not sent" in lanes[1][1][5] and "b.csv:2" in lanes[1][1][3]
    assert "kept as pending" in lanes[2][0][5]
    assert "cleanup" in lanes[3][1][5]
    assert "superseded by the book-on clocked 2024-06-17 03:04:00 (b.csv:5)" in lanes[4][0][5], lanes[4][0]
    lane_svgs = [a for tag, a in page.tags if tag == "div" and "lane" in (a.get("class") or "")]
    assert len(lane_svgs) == 5

    processed = page.rows("files-processed")
    assert [r[1] for r in processed] == ["a.csv", "b.csv"]
    assert page.rows("files-waiting") == [["none"]] and page.rows("files-failed") == [["none"]]
    _stands_alone(page, html)
    _charts_ok(page, runs=3)
    assert duty_dots(html) == 3


def _split(rows: List[List[str]]) -> List[List[List[str]]]:
    lanes: List[List[List[str]]] = [[]]
    for row in rows:
        if row == ["--"]:
            lanes.append([])
        elif row[0] != "recorded":
            lanes[-1].append(row)
    return lanes


def _stands_alone(page: Page, html: str) -> None:
    """No script, no external resource: nothing to fetch, nothing to run."""
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "img", "object", "embed")]
    for _, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, value)
            if name in ("src", "href", "xlink:href") and value:
                assert value.startswith("#"), value
    assert "@import" not in html and "url(http" not in html


def _charts_ok(page: Page, runs: int) -> None:
    assert [a for t, a in page.tags if t == "svg"], "no chart"


def duty_dots(html: str) -> int:
    """The dots of the on-duty chart: one per run (the count itself is a line)."""
    chart = html.split('id="duty-chart"', 1)[1].split("</div>", 1)[0]
    assert "<svg" in chart
    return chart.count("<circle")


def test_every_value_from_athoc_bobo_or_a_file_name_is_text(sim, tmp_path):
    """Rule: a hostile LOGIN_ID, file name and AtHoc detail text show as text: the parsed page has no element
    or attribute they could inject."""
    sc = Site(sim, tmp_path, users=1, odd_users=False)
    sim.add_user(HOSTILE_LOGIN, **{"Collar-Number": "10050"})
    sim.reject[HOSTILE_LOGIN] = ("Error", HOSTILE_DETAIL)
    sc.write(HOSTILE_FILE, [on("10050", "20240617025500"), on("10001", "20240617025600")])
    at(sc, "03:00:30", expect=(0, 1, 3))
    conn = sqlite3.connect(str(sc.db))  # an alert problem whose words came from AtHoc: shown as text
    with conn:
        conn.execute("INSERT INTO alert_state (problem, since, last_seen, detail) "
                     "VALUES ('athoc_unreachable', '2024-06-17 03:00:30', '2024-06-17 03:00:30', ?)", (HOSTILE_DETAIL,))
    conn.close()
    page, html, _ = report(sc, tmp_path, "--day", "17/06/2024", "--person", HOSTILE_LOGIN, "--person", "10001")
    assert page.rows("alerts") == [["athoc_unreachable", "2024-06-17 03:00:30", "", "", "", HOSTILE_DETAIL]]
    _stands_alone(page, html)
    assert not [t for t, _ in page.tags if t in ("b",)]
    text = "".join(page.all_text)
    assert HOSTILE_LOGIN in text and HOSTILE_FILE in text and HOSTILE_DETAIL in text
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "onerror='" not in html


@pytest.mark.parametrize("argv, named", [
    (("--day", "31/02/2024"), "--day '31/02/2024': not a date"),
    (("--since", "yesterday"), "--since 'yesterday': not a date and time"),
    (("--since", "17/06/2024 04:00", "--until", "17/06/2024 03:00"), "is not after --since"),
    (("--person", "nobody@nowhere"), "'nobody@nowhere' is in no audit trail row"),
    (("--out", "no-such-folder-here/r.html"), "The report cannot be written to"),
])
def test_bad_input_is_one_message_and_exit_2(sim, tmp_path, argv, named):
    """Rule: a bad date or an unknown person is one clear message and exit 2, no traceback, no page."""
    sc = Site(sim, tmp_path, users=1, odd_users=False)
    sc.write("a.csv", [on("10001", "20240617025500")])
    at(sc, "03:00:30")
    code = sc.main("--report", "--out", str(tmp_path / "r.html"), *argv)
    assert code == 2 and named in sc.output and "Traceback" not in sc.output, sc.output
    assert not (tmp_path / "r.html").exists()


def test_report_needs_no_athoc_credentials_and_writes_the_default_name(sim, tmp_path, monkeypatch):
    """Rule: --report is local: it runs with no AtHoc setting at all, and writes bobosync_report_<date>.html in the
    current folder."""
    sc = Site(sim, tmp_path, users=1, odd_users=False)
    sc.write("a.csv", [on("10001", "20240617025500")])
    at(sc, "03:00:30")
    sc.configure(ATHOC_SERVER_URL="", CLIENT_ID="", CLIENT_SECRET="", API_USER="", PASSWORD="", ORG_CODE="")
    monkeypatch.chdir(tmp_path)
    assert sc.main("--report", "--day", "17/06/2024") == 0, sc.output
    assert (tmp_path / "bobosync_report_2024-06-17.html").is_file()
    assert Path(sc.output.strip()) == (tmp_path / "bobosync_report_2024-06-17.html").resolve()


def _browser() -> Optional[str]:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome") for found in [shutil.which(name)]
                 if found), None)


def rendered_rows(png: bytes) -> Tuple[int, int]:
    """(rows with more than one colour, all rows) of an 8-bit RGB(A) PNG: decoded with zlib, the rows left filtered
    (a row of one colour is filtered to at most two byte values whatever the filter)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
            assert data[8] == 8, "not 8 bits per channel"
            channels = {2: 3, 6: 4}[data[9]]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    assert len(raw) == stride * height
    busy = sum(1 for y in range(height) if len(set(raw[y * stride + 1:(y + 1) * stride])) > 2)
    return busy, height


def test_the_page_renders_in_a_real_browser(incident, tmp_path):
    """Rule: the page opens from disk in a real browser (headless chromium) with nothing to fetch: the screenshot
    is not blank, the DOM holds the chart's SVG with one dot per run, and the console logged nothing."""
    browser = _browser()
    if browser is None:
        if sys.platform == "win32":
            pytest.skip("the Windows leg runs under Wine, which has no browser")
        if REQUIRE_BROWSER:
            pytest.fail("BOBOSYNC_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium); CI requires it")
    _, _, out = report(incident, tmp_path, "--since", SINCE, "--until", UNTIL, "--person", "10001", "--person", "10002")
    shot = tmp_path / "shot.png"
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400",
                             "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--dump-dom",
                             out.resolve().as_uri()], capture_output=True, text=True, timeout=60)
    assert shot.is_file(), result.stderr[-2000:]
    busy, height = rendered_rows(shot.read_bytes())
    assert busy > height // 5, f"the screenshot is nearly blank: {busy} of {height} rows have anything drawn"
    dom = result.stdout
    assert duty_dots(dom) == 3, "the chart's SVG is not in the rendered page, or not with one dot per run"
    assert dom.count('class="chart lane"') == 2
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console


# --- the run history the page reads ---

def change_counter(db: Path) -> int:
    """SQLite's file change counter: one more per committed write transaction."""
    with open(db, "rb") as handle:
        handle.seek(24)
        return int.from_bytes(handle.read(4), "big")


def test_each_scheduled_run_writes_one_run_history_row_in_its_one_commit(sim, tmp_path):
    """Rule: every scheduled run ends with one run_history row (start, end, exit code, counts); an idle run still
    commits one write transaction only: the row rides in the one that records last_run."""
    sc = Site(sim, tmp_path, users=2, odd_users=False)
    sc.write("a.csv", [on("10001", "20240617025500"), on("10002", "20240617025600")])
    at(sc, "03:00:30")
    before = change_counter(sc.db)
    at(sc, "03:01:30")  # nothing to do: no file, sync, cleanup or purge due
    assert change_counter(sc.db) == before + 1
    rows = sc.rows("SELECT started, exit_code, files, updated, pending, problems FROM run_history ORDER BY id")
    assert rows[0][0] == 20240617030030 and rows[0][1:] == (0, 1, 2, 0, "")
    assert rows[1][0] == 20240617030130 and rows[1][1:] == (0, 0, 0, 0, "")
    assert sc.rows("SELECT value FROM run_state WHERE key = 'last_run'")[0][0].startswith("2024-06-17 03:01:3")


def test_run_history_is_purged_after_audit_retention_days(sim, tmp_path):
    """Rule: run_history rows older than AUDIT_RETENTION_DAYS go with the hourly purge, as the trail's do; 0 keeps
    them."""
    sc = Site(sim, tmp_path, users=1, odd_users=False, AUDIT_RETENTION_DAYS="0")
    at(sc, "03:00:30")
    sc.run(**{CLOCK_VAR: "2024-06-19 04:00:00"})
    assert len(sc.rows("SELECT id FROM run_history")) == 2  # 0: kept
    sc.configure(AUDIT_RETENTION_DAYS="1")
    sc.run(**{CLOCK_VAR: "2024-06-20 03:00:00"})  # a day back from here is after 06-19 04:00, not 06-17
    assert [r[0] for r in sc.rows("SELECT started FROM run_history ORDER BY id")] == [20240619040000, 20240620030000]


def test_a_runs_problems_keep_no_secret(sim, tmp_path):
    """Rule: no secret in the database's run history either: an AtHoc answer that echoes the password is kept,
    as in the log, with the password hidden."""
    sc = Site(sim, tmp_path, users=1, odd_users=False)
    sc.write("a.csv", [on("10001", "20240617025500")])
    sim.fail(r"/syncbycommonnames", 503, times=None, body=f'{{"Message": "bad {sim.password}"}}'.encode())
    at(sc, "03:00:30", expect=(1,))
    (problems,) = sc.rows("SELECT problems FROM run_history")[0]
    assert "503" in problems and sim.password not in problems, problems
