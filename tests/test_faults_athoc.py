"""Fault suite, part B (issue 5): AtHoc misbehaving.

Every status code of the contract on the SyncByCommonNames call and on the mapping-sync search,
bodies that are not JSON or are cut short, a reply slower than the timeout, a connection reset, a
result array shorter than the request, an unknown `:SyncStatus`, and user listings whose pages
overlap, repeat or come back short.

Every test drives the real entry point (`bobo_processor.main([])` in-process, or
`python bobosync/bobo_processor.py` as a subprocess where runs go in parallel) against the AtHoc
simulator over HTTP, with real folders and a real SQLite file; nothing is mocked. Every fault test
checks the issue's three invariants on AtHoc's state, the files on disk and the database:

1. `assert_nothing_lost`: every generated event ends applied, stale, unmapped, or still in its file
   in the CSV or failed folder (files are found by their bytes, wherever they went).
2. `assert_requests_sound`: every SyncByCommonNames request the simulator recorded carried only
   mapped users, only LOGIN_ID and the duty field, syncExistingUsersOnly=true, and never an older
   event over a newer one.
3. `Scenario.run` / `Scenario.finish`: no traceback in the output or the log, a documented exit
   code; each test then runs again with the fault removed and checks the final AtHoc state
   (`assert_final_state`).

The helpers here are shared with tests/test_faults_input.py.
"""
import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pytest

import bobo_processor
from athoc_client import RETRY_AFTER_CAP_SECONDS
from athoc_simulator import AtHocSimulator
from bobo_csv import normalize_employee_id
from conftest import ENTRY, REAL_BACKOFF, ROOT, SETTING_NAMES, SiteFolders, env_for

FIELD = "On-Duty-DTG"
DOMAIN = "demo.example"
AMBIGUOUS = "20001"  # held by two AtHoc users: mapped to nobody
UNMAPPED = "99999"  # no AtHoc user
EXIT_CODES = (0, 1, 2)  # the documented ones
SYNC = r"/syncbycommonnames"
SEARCH = r"/search/basic"


# --- events and files ---

@dataclass(frozen=True)
class Ev:
    """One generated duty event: employee `eid` (as written) booked on or off at `stamp` (local)."""

    on: bool
    eid: str
    stamp: str  # YYYYMMDDHHMMSS
    created: str = ""  # YYYYMMDDHHMMSS, or '' (layout B has none)

    @property
    def key(self) -> Tuple[str, str]:
        """What orders two events of one employee across runs."""
        return self.stamp, self.created

    @property
    def norm(self) -> str:
        return normalize_employee_id(self.eid)

    @property
    def value(self) -> str:
        """The duty field's value in AtHoc once this event is applied."""
        if not self.on:
            return ""
        t = self.stamp
        return f"{t[6:8]}/{t[4:6]}/{t[:4]} {t[8:10]}:{t[10:12]}:{t[12:14]}"

    def row_a(self, tag: str = "P0000001") -> str:
        t = self.stamp
        return f"{'BON' if self.on else 'BOF'},{self.eid},{tag},{t[:8]},{t[8:]},{self.created},1,51.507200,-0.127600,8.0"

    def row_b(self, sep: str = " ") -> str:
        t = self.stamp
        return (f"{self.eid},{'On Duty' if self.on else 'Off Duty'},"
                f"{t[:4]}-{t[4:6]}-{t[6:8]}{sep}{t[8:10]}:{t[10:12]}:{t[12:14]}")


def on(eid: str, stamp: str, created: str = "") -> Ev:
    return Ev(True, eid, stamp, created or stamp)


def off(eid: str, stamp: str, created: str = "") -> Ev:
    return Ev(False, eid, stamp, created or stamp)


@dataclass
class FileRec:
    """A file the test wrote: its bytes' hash and the valid events in it, in row order."""

    name: str
    sha: str
    events: List[Ev]
    order: int  # processing order (files are read oldest first)
    removed: bool = False  # the test itself removed it (not the engine's doing)


@contextmanager
def environment(env: Dict[str, str]) -> Iterator[None]:
    """The process environment of one run: every bobosync setting from `env`, nothing else."""
    saved = {k: os.environ.get(k) for k in set(SETTING_NAMES) | set(env)}
    for name in SETTING_NAMES:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_run(output: str, code: int, expect: Sequence[int], log_text: str) -> None:
    """Invariant 3 on one run: a documented exit code, the expected one, no traceback anywhere."""
    assert code in EXIT_CODES, f"undocumented exit code {code}:\n{output}"
    assert code in expect, f"exit {code}, expected {tuple(expect)}:\n{output}"
    assert "Traceback" not in output, output
    assert "Traceback" not in log_text, log_text


class Scenario(SiteFolders):
    """A work folder, the simulator's users and every event and file a test generated."""

    def __init__(self, sim: AtHocSimulator, work: Path, users: int = 6, **env: str):
        self.sim, self.work = sim, Path(work)
        self.logins = sim.seed_users(users)
        self.mapped: Dict[str, str] = {login: str(10001 + i) for i, login in enumerate(self.logins)}
        sim.add_user(f"twin.a@{DOMAIN}", **{"Collar-Number": AMBIGUOUS})
        sim.add_user(f"twin.b@{DOMAIN}", **{"Collar-Number": AMBIGUOUS})
        sim.add_user(f"nocollar@{DOMAIN}", FIRSTNAME="No", LASTNAME="Collar")
        self.env = {**env_for(sim, self.work), "AUTO_CLEANUP_HOURS": "0", **env}
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        self.files: List[FileRec] = []
        self.gone: Set[str] = set()  # logins removed from AtHoc by the test
        self._mtime = time.time() - 3600

    @property
    def events(self) -> List[Ev]:
        return [e for f in self.files for e in f.events]

    def login_of(self, eid: str) -> Optional[str]:
        norm = normalize_employee_id(eid)
        return next((login for login, e in self.mapped.items() if e == norm), None)

    def add_mapped_user(self, eid: str) -> str:
        login = f"user{eid}@{DOMAIN}"
        self.sim.add_user(login, **{"Collar-Number": eid})
        self.mapped[login] = normalize_employee_id(eid)
        return login

    # files

    def write_bytes(self, name: str, data: bytes, events: Sequence[Ev] = (), folder: Optional[Path] = None) -> Path:
        """A file with these bytes holding these valid events; each new file is 1 s 'younger' than the
        last, so the oldest-first processing order is known."""
        path = (folder or self.csv_dir) / name
        path.write_bytes(data)
        self._mtime += 1
        os.utime(str(path), (self._mtime, self._mtime))
        self.files.append(FileRec(name, hashlib.sha256(data).hexdigest(), list(events), len(self.files)))
        return path

    def write(self, name: str, events: Sequence[Ev], layout: str = "A", newline: str = "\r\n",
              encoding: str = "utf-8") -> Path:
        if layout == "A":
            lines = [e.row_a(f"P{i:07d}") for i, e in enumerate(events)]
        else:
            lines = ["Employee_ID,Status,Timestamp"] + [e.row_b() for e in events]
        return self.write_bytes(name, "".join(line + newline for line in lines).encode(encoding), events)

    # runs

    def log(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted(self.log_dir.glob("*"))) if self.log_dir.is_dir() else ""

    def run(self, *argv: str, expect: Sequence[int] = (0,), **extra: str) -> str:
        """`bobo_processor.main()` in this process with this scenario's settings; invariant 3's first part."""
        out = io.StringIO()
        with environment({**self.env, **extra}), redirect_stdout(out), redirect_stderr(out):
            code = bobo_processor.main(list(argv))
        output = out.getvalue()
        check_run(output, code, expect, self.log())
        return output

    def start(self, *argv: str, **extra: str) -> subprocess.Popen:
        """A real scheduled run as Task Scheduler starts it: `python bobo_processor.py` in a new process."""
        env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        env.update(self.env)
        env.update(extra)
        return subprocess.Popen([sys.executable, ENTRY, *argv], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def finish(self, proc: subprocess.Popen, expect: Sequence[int] = (0,), timeout: float = 120) -> str:
        output, _ = proc.communicate(timeout=timeout)
        check_run(output, proc.returncode, expect, self.log())
        return output

    # state

    def rows(self, sql: str, args: Tuple = ()) -> List[Tuple]:
        conn = sqlite3.connect(str(self.db), timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def duty_state(self) -> Dict[str, Tuple[str, str, str]]:
        if not self.db.exists():
            return {}
        return {e: (t, c, v) for e, t, c, v in
                self.rows("SELECT employee_id, event_time, record_created, athoc_value FROM duty_state")}

    def mappings(self) -> List[Tuple[str, str]]:
        return sorted(self.rows("SELECT employee_id, username FROM worker_mapping")) if self.db.exists() else []

    def sync_requests(self) -> list:
        return self.sim.requests_to("SyncByCommonNames")

    def names(self, folder: Path) -> Set[str]:
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def csv_left(self) -> Set[str]:
        return {n for n in self.names(self.csv_dir) if n.lower().endswith(".csv")}

    def held(self, login: str) -> Optional[str]:
        try:
            return self.sim.attribute(login, FIELD)
        except KeyError:
            return None


# --- the three invariants ---

def _sha(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def where_files_are(sc: Scenario) -> Dict[str, Set[str]]:
    """Content hash -> the folders ('csv', 'processed', 'failed') holding a file with those bytes."""
    found: Dict[str, Set[str]] = {}
    for label, folder in (("csv", sc.csv_dir), ("processed", sc.processed_dir), ("failed", sc.failed_dir)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file():
                digest = _sha(path)
                if digest:
                    found.setdefault(digest, set()).add(label)
    return found


def assert_nothing_lost(sc: Scenario) -> Dict[Tuple[str, int], str]:
    """Invariant 1: each generated event is applied, stale, unmapped, gone from AtHoc, or still in its file
    in the CSV or failed folder. Returns each event's fate by (file name, index in file)."""
    where = where_files_are(sc)
    state = sc.duty_state()
    waiting = [e for f in sc.files if not f.removed and where.get(f.sha, set()) & {"csv", "failed"}
               for e in f.events]
    fates: Dict[Tuple[str, int], str] = {}
    for rec in sc.files:
        if rec.removed:
            continue
        labels = where.get(rec.sha, set())
        assert labels, f"{rec.name} is in none of the CSV, processed and failed folders: its events are lost"
        for i, ev in enumerate(rec.events):
            if labels & {"csv", "failed"}:
                fates[(rec.name, i)] = "waiting"
                continue
            login = sc.login_of(ev.eid)
            if login is None:
                fates[(rec.name, i)] = "unmapped"
                continue
            if login in sc.gone:
                fates[(rec.name, i)] = "gone"
                continue
            assert ev.norm in state, f"{rec.name}: {ev} is in a processed file but duty_state has no {ev.norm}"
            event_time, created, value = state[ev.norm]
            assert ev.key <= (event_time, created), \
                f"{rec.name}: {ev} is newer than the event recorded as applied ({event_time}, {created}): lost"
            held = sc.held(login)
            in_flight = [e for e in waiting if e.norm == ev.norm and e.value == held
                         and e.key >= (event_time, created)]  # sent, answered, not yet recorded
            assert held == value or in_flight, f"{ev.norm}: duty_state says {value!r} was applied, AtHoc holds {held!r}"
            fates[(rec.name, i)] = "applied" if (ev.key == (event_time, created) and ev.value == value) else "stale"
    return fates


def assert_requests_sound(sc: Scenario) -> None:
    """Invariant 2 over every SyncByCommonNames request the simulator recorded, in arrival order."""
    newest: Dict[str, Tuple[str, str]] = {}
    events = sc.events
    for request in sc.sync_requests():
        assert request.method == "POST"
        assert request.query.get("syncexistingusersonly") == "true", request.query
        assert isinstance(request.body, list) and request.body, request.body
        for item in request.body:
            assert isinstance(item, dict) and set(item) == {"LOGIN_ID", FIELD}, f"unexpected fields sent: {item}"
            login, value = item["LOGIN_ID"], item[FIELD]
            assert login in sc.mapped, f"{login} is outside the mapping"
            candidates = [e.key for e in events if e.norm == sc.mapped[login] and e.value == value
                          and e.key >= newest.get(login, ("", ""))]
            assert candidates, f"{login}: {value!r} is from no event newer than the one sent before ({newest.get(login)})"
            newest[login] = min(candidates)


def latest_values(sc: Scenario) -> Dict[str, Optional[str]]:
    """Each mapped user's duty value once every event is handled: the newest event wins (ties: the later
    file, then the later row, as when they arrive in one batch)."""
    best: Dict[str, Tuple] = {}
    for rec in sc.files:
        for i, ev in enumerate(rec.events):
            key = (ev.stamp, ev.created, rec.order, i)
            if ev.norm not in best or key > best[ev.norm][0]:
                best[ev.norm] = (key, ev.value)
    return {login: best[eid][1] if eid in best else None for login, eid in sc.mapped.items()}


def assert_final_state(sc: Scenario, expected: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Invariant 3's end: every file handled, AtHoc holds the newest event of every mapped user, and
    nothing for users outside the mapping."""
    assert not sc.csv_left(), sorted(sc.csv_left())
    fates = assert_nothing_lost(sc)
    assert "waiting" not in fates.values(), fates
    for login, value in (expected or latest_values(sc)).items():
        if login not in sc.gone:
            assert sc.held(login) == value, login
    for login in (f"twin.a@{DOMAIN}", f"twin.b@{DOMAIN}", f"nocollar@{DOMAIN}"):
        assert sc.held(login) is None


def check_all(sc: Scenario) -> Dict[Tuple[str, int], str]:
    assert_requests_sound(sc)
    return assert_nothing_lost(sc)


def standard_files(sc: Scenario) -> Tuple[List[Ev], List[Ev]]:
    """a.csv (three book-ons) and b.csv: a newer book-off, an older event (stale), a book-on and book-off
    in one file, a new book-on, an unmapped and an ambiguous employee."""
    first = [on("10001", "20240617065500"), on("10002", "20240617070000"), on("10003", "20240617071000")]
    second = [off("10001", "20240617150000"), on("10002", "20240617060000"), on("10004", "20240617080000"),
              off("10004", "20240617160000"), on("10005", "20240617090000"), on(UNMAPPED, "20240617091000"),
              on(AMBIGUOUS, "20240617092000")]
    return first, second


def b_fates_when_done(sc: Scenario) -> List[str]:
    fates = assert_nothing_lost(sc)
    return [fates[("b.csv", i)] for i in range(7)]


B_DONE = ["applied", "stale", "stale", "applied", "applied", "unmapped", "unmapped"]


def primed(sim: AtHocSimulator, tmp_path: Path, **env: str) -> Scenario:
    """A scenario after one clean run (mappings synced, a.csv applied) with b.csv waiting."""
    sc = Scenario(sim, tmp_path, **env)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    sc.write("b.csv", second)
    return sc


def mark_sync_due(sc: Scenario) -> None:
    """Make the next run's mapping sync due, as if the last good one were long ago."""
    conn = sqlite3.connect(str(sc.db))
    with conn:
        conn.execute("UPDATE sync_tracking SET last_sync_time = '2000-01-01 00:00:00', last_sync_date = '2000-01-01'")
    conn.close()


# --- faults on the SyncByCommonNames call, one run each ---

@dataclass
class Case:
    """A fault injected into one run. `done`: the run still finishes the batch (the client recovered)."""

    name: str
    status: Optional[int] = None
    times: Optional[int] = 1
    body: Optional[bytes] = None
    retry_after: Optional[float] = None
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    done: bool = False
    message: str = ""
    env: Dict[str, str] = field(default_factory=dict)

    def inject(self, sim: AtHocSimulator, path: str) -> None:
        sim.fail(path, self.status, times=self.times, body=self.body, retry_after=self.retry_after,
                 delay=self.delay, drop=self.drop, truncate=self.truncate)


HTML = b"<html><body><h1>502 Bad Gateway</h1>The proxy could not reach the server</body></html>"
CALL_CASES = [
    Case("400", 400, message="HTTP 400"),
    Case("401-once", 401, done=True, message="fetching a new one and repeating the call once"),
    Case("401-always", 401, times=None, message="AtHoc refused a fresh token"),
    Case("403", 403, message="lacks the permission"),
    Case("404", 404, message="check ATHOC_SERVER_URL"),
    Case("429-once", 429, retry_after=1, done=True, env=REAL_BACKOFF),  # the real wait, checked below
    Case("500-once", 500, done=True),
    Case("502-once-html", 502, body=HTML, done=True),
    Case("503-once", 503, done=True),
    Case("504-once", 504, done=True),
    Case("200-not-json", 200, body=HTML, message="is not JSON"),
    Case("200-json-not-a-list", 200, body=b'{"Message": "ok"}', message="not a list"),
    Case("200-truncated-json", 200, body=b'[{"LOGIN_ID": "user10001@demo.example", ":SyncStatus": "OK"}]',
         truncate=True, message="cannot reach AtHoc"),
    Case("real-reply-truncated", None, truncate=True, message="cannot reach AtHoc"),
    Case("connection-reset", None, drop=True, message="cannot reach AtHoc"),
    Case("slower-than-timeout", None, delay=1.6, message="no answer within 1 s", env={"HTTP_TIMEOUT_SECONDS": "1"}),
]


def _tokens_requested(sim: AtHocSimulator) -> int:
    return len(sim.requests_to("/connect/token"))


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.name)
def test_fault_on_the_update_call(sim, tmp_path, case):
    sc = primed(sim, tmp_path, **case.env)
    sent, tokens = len(sc.sync_requests()), _tokens_requested(sim)
    case.inject(sim, SYNC)
    started = time.monotonic()
    output = sc.run(expect=(0,) if case.done else (1,))
    elapsed = time.monotonic() - started
    assert case.message in output
    check_all(sc)
    calls = len(sc.sync_requests()) - sent
    if case.done:
        assert sc.csv_left() == set()
        assert b_fates_when_done(sc) == B_DONE
        assert calls == 2  # the failed call and its one repeat
    else:
        assert sc.csv_left() == {"b.csv"}  # the whole batch waits
        assert sc.rows("SELECT COUNT(*) FROM file_attempts")[0][0] == 0  # an outage is not the file's fault
        assert sc.rows("SELECT COUNT(*) FROM processing_log WHERE filename = 'b.csv'")[0][0] == 0
        assert calls <= 2  # no retry of what the contract says is not retried
    if case.status == 401:
        assert _tokens_requested(sim) - tokens == 2  # the run's token and one renewal, no more
    if case.retry_after:
        assert elapsed >= case.retry_after * 0.9  # Retry-After was honoured
    if case.delay:
        time.sleep(case.delay)  # let the slow reply land: AtHoc applied it after the client gave up
        assert sim.attribute(sc.logins[0], FIELD) == ""
        check_all(sc)

    sim.clear_faults()
    sc.run()
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)
    assert sc.names(sc.processed_dir) == {"a.csv", "b.csv"}
    last = sc.sync_requests()[-1].body
    assert {item["LOGIN_ID"] for item in last} <= {sc.logins[i] for i in (0, 3, 4)}


# --- per-record outcomes: a short result array, unknown or failed :SyncStatus ---

@pytest.mark.parametrize("kind", ["short-results", "unknown-status", "partial", "error"])
def test_a_record_without_a_good_result_is_retried_alone(sim, tmp_path, kind):
    sc = primed(sim, tmp_path, MAX_RETRY_ATTEMPTS="3")
    sent = len(sc.sync_requests())
    victim = sc.logins[4]  # 10005: the last record of b.csv's request
    if kind == "short-results":
        sim.short_results = 1
    else:
        sim.reject[victim] = {"unknown-status": ("Queued", "will be processed later"),
                              "partial": ("Partial", "field On-Duty-DTG not updated"),
                              "error": ("Error", "Invalid value for On-Duty-DTG")}[kind]
    output = sc.run(expect=(1,))
    request = sc.sync_requests()[sent]
    assert request.body[-1]["LOGIN_ID"] == victim
    assert "attempt 1 of 3" in output
    detail = {"short-results": "AtHoc returned no result", "unknown-status": "unknown :SyncStatus 'Queued'",
              "partial": "field On-Duty-DTG not updated", "error": "Invalid value for On-Duty-DTG"}[kind]
    assert f"b.csv: AtHoc did not apply 1 record(s): 10005 ({victim}): " in output and detail in output
    check_all(sc)
    assert sc.csv_left() == {"b.csv"}
    assert sc.rows("SELECT attempts FROM file_attempts WHERE filename = 'b.csv'") == [(1,)]
    assert sim.attribute(sc.logins[0], FIELD) == ""  # the other records were applied and recorded
    assert set(sc.duty_state()) == {"10001", "10002", "10003", "10004"}

    sim.short_results = 0
    sim.reject.clear()
    sc.run()
    retry = sc.sync_requests()[sent + 1:]
    assert [r.body for r in retry] == [[{"LOGIN_ID": victim, FIELD: "17/06/2024 09:00:00"}]]  # only what failed
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)
    assert sc.rows("SELECT COUNT(*) FROM file_attempts")[0][0] == 0


def test_a_record_failing_every_time_ends_in_the_failed_folder_and_can_be_replayed(sim, tmp_path):
    sc = primed(sim, tmp_path, MAX_RETRY_ATTEMPTS="2")
    victim = sc.logins[4]
    sim.reject[victim] = ("Error", "Invalid value for On-Duty-DTG")
    sc.run(expect=(1,))
    output = sc.run()  # attempt 2 of 2: the file is moved aside, nothing left to retry
    assert "moved to FAILED_FILES_DIRECTORY" in output
    assert sc.names(sc.failed_dir) == {"b.csv"}
    fates = check_all(sc)
    assert all(fates[("b.csv", i)] == "waiting" for i in range(7))
    sends = len(sc.sync_requests())
    sc.run()
    assert len(sc.sync_requests()) == sends  # no loop

    sim.reject.clear()  # fixed in AtHoc; the operator moves the file back, as process.md says
    (sc.failed_dir / "b.csv").rename(sc.csv_dir / "b.csv")
    sc.run()
    check_all(sc)
    assert b_fates_when_done(sc) == B_DONE
    assert_final_state(sc)


def test_a_user_gone_from_athoc_is_finished_and_its_mapping_dropped(sim, tmp_path):
    sc = primed(sim, tmp_path)
    victim = sc.logins[4]
    with sim.lock:
        del sim.users[victim]
    sc.gone.add(victim)
    output = sc.run()
    assert "is no longer in AtHoc; its mapping is dropped" in output
    assert "10005" not in dict(sc.mappings())
    check_all(sc)
    fates = b_fates_when_done(sc)
    assert fates == B_DONE[:4] + ["gone"] + B_DONE[5:]
    assert_final_state(sc)


# --- faults on the mapping sync's user search ---

SEARCH_CASES = [c for c in CALL_CASES if c.name not in ("200-json-not-a-list",)] + [
    Case("200-no-users-list", 200, body=b'{"Message": "ok"}', message="has no Users list"),
]


@pytest.mark.parametrize("when", ["first-sync", "resync"])
@pytest.mark.parametrize("case", SEARCH_CASES, ids=lambda c: c.name)
def test_fault_on_the_mapping_search(sim, tmp_path, case, when):
    sc = Scenario(sim, tmp_path, **case.env)
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    if when == "resync":
        sc.run()
        mark_sync_due(sc)
    held = sc.mappings()
    newcomer = sc.add_mapped_user("10007")  # only a good sync maps this user
    sc.write("b.csv", second + [on("10007", "20240617100000")])
    searches = len(sim.requests_to("search/basic"))
    case.inject(sim, SEARCH)
    output = sc.run(expect=(0,) if case.done else (1,))
    assert case.message in output
    check_all(sc)
    if case.done:
        assert sc.csv_left() == set()
        assert sim.attribute(newcomer, FIELD) == "17/06/2024 10:00:00"
    else:
        assert "User mapping sync failed" in output
        assert sc.mappings() == held  # kept as they were (none on a first sync)
        assert sc.rows("SELECT status FROM sync_tracking") == [("error",)]
        assert sc.csv_left() == ({"a.csv", "b.csv"} if when == "first-sync" else {"b.csv"})
        assert len(sim.requests_to("search/basic")) - searches <= 2
    if case.delay:
        time.sleep(case.delay)

    sim.clear_faults()
    sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert ("10007", newcomer) in sc.mappings()


# --- listings that do not add up: the mappings held are kept ---

def _unstable_order(users: list, page: int, limit: int) -> list:
    """Page 1 on repeats page 0's last 50 users in place of 50 it never serves (an unstable sort order)."""
    if page == 0:
        return users[:limit]
    return users[page * limit - 50:page * limit] + users[page * limit + 50:(page + 1) * limit]


def _repeat_first(users: list, page: int, limit: int) -> list:
    return users[:limit]  # Offset ignored, or read as a record offset rounded down


def _short_first(users: list, page: int, limit: int) -> list:
    return users[:limit - 10] if page == 0 else users[page * limit:(page + 1) * limit]


LISTINGS = {
    "total-one-more": (1, None, "TotalUsers="),
    "total-one-less": (-1, None, "TotalUsers="),
    "pages-overlap": (0, _unstable_order, "TotalUsers="),
    "page-0-repeated": (0, _repeat_first, "repeated users already listed"),
    "first-page-short": (0, _short_first, "TotalUsers="),
}


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_a_listing_that_does_not_add_up_keeps_the_mappings(sim, tmp_path, kind):
    bias, pages, message = LISTINGS[kind]
    sc = Scenario(sim, tmp_path, users=1100)  # two pages of 1000
    first, second = standard_files(sc)
    sc.write("a.csv", first)
    sc.run()
    held = sc.mappings()
    assert len(held) == 1100
    mark_sync_due(sc)
    newcomer = sc.add_mapped_user("30001")  # only a complete listing maps this user
    sc.write("b.csv", second)
    sim.total_users_bias, sim.page_rows = bias, pages
    for attempt in range(2):  # the listing stays wrong: AtHoc answers, it just does not add up
        output = sc.run(expect=(1,))
        assert message in output and "listing is incomplete" in output
        assert "The 1100 mappings held are kept" in output
        assert sc.mappings() == held
        assert sc.rows("SELECT status FROM sync_tracking") == [("error",)]
        check_all(sc)
        # duty updates go on with the mappings held, as between two syncs
        assert b_fates_when_done(sc) == B_DONE

    sim.total_users_bias, sim.page_rows = 0, None
    sc.write("c.csv", [on("30001", "20240617100000"), off("10002", "20240617170000")])
    sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert len(sc.mappings()) == 1101 and ("30001", newcomer) in sc.mappings()
    assert sim.attribute(newcomer, FIELD) == "17/06/2024 10:00:00"


# --- persistent outages: bounded time, in parallel subprocesses (each with its own simulator) ---

PERSISTENT = [
    ("sync", Case("500-always", 500, times=None, message="HTTP 500")),
    ("sync", Case("502-always", 502, times=None, body=HTML, message="HTTP 502")),
    ("sync", Case("503-always", 503, times=None, message="HTTP 503")),
    ("sync", Case("504-always", 504, times=None, message="HTTP 504")),
    ("sync", Case("429-always", 429, times=None, retry_after=1, message="rate limiting")),
    ("sync", Case("429-retry-after-3600-once", 429, retry_after=3600, done=True, env=REAL_BACKOFF)),
    ("sync", Case("timeout-always", None, times=None, delay=3, message="no answer within 2 s")),
    ("sync", Case("reset-always", None, times=None, drop=True, message="cannot reach AtHoc")),
    ("search", Case("500-always", 500, times=None, message="HTTP 500")),
    ("search", Case("502-always", 502, times=None, body=HTML, message="HTTP 502")),
    ("search", Case("503-always", 503, times=None, message="HTTP 503")),
    ("search", Case("504-always", 504, times=None, message="HTTP 504")),
    ("search", Case("429-always", 429, times=None, retry_after=1, message="rate limiting")),
    ("search", Case("timeout-always", None, times=None, delay=3, message="no answer within 2 s")),
]


def test_persistent_outages_end_the_run_in_bounded_time_and_lose_nothing(tmp_path):
    sims, scenarios, procs, started = [], [], [], []
    try:
        for i, (where, case) in enumerate(PERSISTENT):
            sim = AtHocSimulator(org="DEMO").start()
            sims.append(sim)
            sc = Scenario(sim, tmp_path / f"{where}-{case.name}", HTTP_TIMEOUT_SECONDS="2", BATCH_SIZE="1",
                          **case.env)
            first, second = standard_files(sc)
            sc.write("a.csv", first)
            if where == "sync":
                sc.run()
                sc.write("b.csv", second[:4])
                sc.write("c.csv", second[4:])  # a second batch: no AtHoc call is made for it
            scenarios.append(sc)
            case.inject(sim, SYNC if where == "sync" else SEARCH)
        for sc in scenarios:
            started.append(time.monotonic())
            procs.append(sc.start())
        outputs, elapsed = [], []
        for sc, proc, (where, case), t0 in zip(scenarios, procs, PERSISTENT, started):
            outputs.append(sc.finish(proc, expect=(0,) if case.done else (1,)))
            elapsed.append(time.monotonic() - t0)
        for sc, output, took, (where, case) in zip(scenarios, outputs, elapsed, PERSISTENT):
            label = f"{where} {case.name}"
            assert took < 40, f"{label}: the run took {took:.1f} s"
            if case.retry_after and case.env == REAL_BACKOFF:  # Retry-After honoured, up to its cap
                assert took >= min(case.retry_after, RETRY_AFTER_CAP_SECONDS) * 0.9, f"{label}: {took:.1f} s"
            assert case.message in output, label
            check_all(sc)
            path = "SyncByCommonNames" if where == "sync" else "search/basic"
            calls = len(sc.sim.requests_to(path)) - (1 if where == "sync" else 0)
            assert calls <= 4, f"{label}: {calls} calls (one and at most three retries)"
            if case.done:
                assert not sc.csv_left(), label
            elif where == "sync":
                assert sc.csv_left() == {"b.csv", "c.csv"}, label
                assert "1 file(s) left for the next run (AtHoc is unavailable)" in output, label
            else:
                assert sc.csv_left() == {"a.csv"} and not sc.sync_requests(), label
        for sc, (where, case) in zip(scenarios, PERSISTENT):
            if case.delay:
                time.sleep(case.delay)
                break
        for sc in scenarios:
            sc.sim.clear_faults()
            sc.run()
            check_all(sc)
            assert_final_state(sc)
    finally:
        for sim in sims:
            sim.stop()
