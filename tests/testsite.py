"""The one test site of the suite: a work folder with bobosync's folders, database and log file, an
AtHoc simulator's users, the CSV files a test wrote (with settled, known modification times) and
the events in them, and runs of the real entry point, in this process (`run`, `main`) or as
Task Scheduler starts it (`run_scheduled`, `start`/`finish`). Ev is the one generated duty event.

The invariants of the fault suites on AtHoc's state and the files on disk (files found by their
bytes wherever they went) are here too: `check_all`, `assert_nothing_lost`, `assert_final_state`.
"""
import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import bobo_processor
from athoc_simulator import AtHocSimulator
from bobo_csv import normalize_employee_id
from conftest import ENTRY, ROOT, SETTING_NAMES, env_for

FIELD = "On-Duty-DTG"
DOMAIN = "demo.example"
AMBIGUOUS = "20001"  # held by two AtHoc users: mapped to nobody
UNMAPPED = "99999"  # no AtHoc user
ODD_USERS = (f"twin.a@{DOMAIN}", f"twin.b@{DOMAIN}", f"nocollar@{DOMAIN}")  # never given a duty value
EXIT_CODES = (0, 1, 2, 3)  # the documented ones
KILLED = -signal.SIGKILL if hasattr(signal, "SIGKILL") else 137  # a run killed by the crash-point hook
RUN_VARS = SETTING_NAMES + ("TZ",)  # what a run takes from the site alone, never from the test's environment


# --- events ---

@dataclass(frozen=True)
class Ev:
    """One generated duty event: employee `eid` (as written) booked on or off at `stamp` (local).
    `real` orders the events of one employee as they really happened: by default the clocking time,
    then record created; the daylight-saving tests give UTC."""

    on: bool
    eid: str
    stamp: str  # YYYYMMDDHHMMSS
    created: str = ""  # YYYYMMDDHHMMSS, or '' (layout B has none)
    tag: str = ""  # payroll field; unique per event where a test finds rows by their text
    real: str = ""

    def __post_init__(self) -> None:
        if not self.real:
            object.__setattr__(self, "real", self.stamp + self.created)

    @property
    def kind(self) -> str:
        return "BON" if self.on else "BOF"

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

    def row_a(self, tag: Optional[str] = None) -> str:
        t = self.stamp
        return (f"{self.kind},{self.eid},{tag or self.tag or 'P0000001'},{t[:8]},{t[8:]},{self.created},1,"
                f"51.507200,-0.127600,8.0")

    @property
    def row(self) -> str:
        """The layout A row with the event's own tag."""
        return self.row_a()

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


# --- runs ---

@contextmanager
def environment(env: Dict[str, str]) -> Iterator[None]:
    """The process environment of one run: every bobosync setting from `env`, nothing else."""
    saved = {k: os.environ.get(k) for k in set(RUN_VARS) | set(env)}
    for name in RUN_VARS:
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
    """One run: the expected, documented exit code (or the crash hook's kill), no traceback anywhere."""
    assert code in EXIT_CODES or (code == KILLED and KILLED in expect), f"undocumented exit code {code}:\n{output}"
    assert code in expect, f"exit {code}, expected {tuple(expect)}:\n{output}"
    assert "Traceback" not in output, output
    assert "Traceback" not in log_text, log_text


class Site:
    """A work folder, the simulator's users and every event and file a test generated.

    `users` AtHoc users with collar numbers 10001 up are mapped; with `odd_users` also two users
    sharing collar number AMBIGUOUS and one without a collar number. `env` overrides settings.
    `monkeypatch`: the site's settings are also put in this process's environment (and kept there
    through `configure`), for tests that build a BOBOProcessor themselves or start their own process."""

    def __init__(self, sim: AtHocSimulator, work: Path, users: int = 6, odd_users: bool = True,
                 monkeypatch=None, **env: str):
        self.sim, self.work, self.monkeypatch = sim, Path(work), monkeypatch
        self.logins = sim.seed_users(users)
        self.mapped: Dict[str, str] = {login: str(10001 + i) for i, login in enumerate(self.logins)}
        if odd_users:
            sim.add_user(ODD_USERS[0], **{"Collar-Number": AMBIGUOUS})
            sim.add_user(ODD_USERS[1], **{"Collar-Number": AMBIGUOUS})
            sim.add_user(ODD_USERS[2], FIRSTNAME="No", LASTNAME="Collar")
        self.env: Dict[str, str] = {}
        self.configure(**env)
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        self.files: List[FileRec] = []
        self.gone: Set[str] = set()  # logins removed from AtHoc by the test
        self.extra_folders: List[Path] = []  # where a test put a folder aside
        self.output = ""  # the last in-process run's output
        self._mtime = time.time() - 3600
        self._tags = 0

    # folders, database and log file, where the site's settings put them

    @property
    def csv_dir(self) -> Path:
        return Path(self.env["CSV_DIRECTORY"])

    @property
    def processed_dir(self) -> Path:
        return Path(self.env["PROCESSED_DIRECTORY"])

    @property
    def failed_dir(self) -> Path:
        return Path(self.env["FAILED_FILES_DIRECTORY"])

    @property
    def db(self) -> Path:
        return Path(self.env["DB_PATH"])

    @property
    def log_dir(self) -> Path:
        return Path(self.env["LOG_DIRECTORY"])

    @property
    def log_file(self) -> Path:
        """Today's log file (bobo_processor_YYYY-MM-DD.log)."""
        from log_setup import log_file_for
        return log_file_for(self.log_dir, date.today())

    def configure(self, **overrides: str) -> None:
        """Change settings for the runs that follow."""
        self.env = {**(self.env or env_for(self.sim, self.work)), **overrides}
        if self.monkeypatch is not None:
            for name in RUN_VARS:
                self.monkeypatch.delenv(name, raising=False)
            for name, value in self.env.items():
                self.monkeypatch.setenv(name, value)

    @property
    def events(self) -> List[Ev]:
        return [e for f in self.files for e in f.events]

    def events_in(self, name: str) -> List[Ev]:
        return next(f.events for f in self.files if f.name == name)

    def login_of(self, eid: str) -> Optional[str]:
        norm = normalize_employee_id(eid)
        return next((login for login, e in self.mapped.items() if e == norm), None)

    def add_mapped_user(self, eid: str) -> str:
        login = f"user{eid}@{DOMAIN}"
        self.sim.add_user(login, **{"Collar-Number": eid})
        self.mapped[login] = normalize_employee_id(eid)
        return login

    def ev(self, kind: str, eid: str, stamp: str, created: str = "", real: str = "") -> Ev:
        """An event with a tag of its own, so that its row's text is unique on disk."""
        self._tags += 1
        return Ev(kind == "BON", eid, stamp, created or stamp, f"P{self._tags:05d}", real)

    # files

    def write_bytes(self, name: str, data: bytes, events: Sequence[Ev] = (), folder: Optional[Path] = None,
                    age: Optional[float] = None) -> Path:
        """A file with these bytes holding these valid events; each new file is 1 s 'younger' than the
        last, so the oldest-first processing order is known (or `age` seconds old)."""
        path = (folder or self.csv_dir) / name
        path.write_bytes(data)
        self._mtime += 1
        stamp = self._mtime if age is None else time.time() - age
        os.utime(str(path), (stamp, stamp))
        self.files.append(FileRec(name, hashlib.sha256(data).hexdigest(), list(events), len(self.files)))
        return path

    def write_text(self, name: str, text: str, age: Optional[float] = None) -> Path:
        return self.write_bytes(name, text.encode("utf-8"), age=age)

    def write(self, name: str, events: Sequence[Ev], layout: str = "A", newline: str = "\r\n",
              encoding: str = "utf-8") -> Path:
        if layout == "A":
            lines = [e.row_a(e.tag or f"P{i:07d}") for i, e in enumerate(events)]
        else:
            lines = ["Employee_ID,Status,Timestamp"] + [e.row_b() for e in events]
        return self.write_bytes(name, "".join(line + newline for line in lines).encode(encoding), events)

    # runs

    def log(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted(self.log_dir.glob("*"))) if self.log_dir.is_dir() else ""

    def main(self, *argv: str, **extra: str) -> int:
        """`bobo_processor.main()` in this process with the site's settings; its exit code (the output
        is in `self.output`)."""
        out = io.StringIO()
        with environment({**self.env, **extra}), redirect_stdout(out), redirect_stderr(out):
            code = bobo_processor.main(list(argv))
        self.output = out.getvalue()
        return code

    def run(self, *argv: str, expect: Sequence[int] = (0,), **extra: str) -> str:
        """An in-process run that must end with an expected exit code and no traceback; its output."""
        code = self.main(*argv, **extra)
        check_run(self.output, code, expect, self.log())
        return self.output

    def full_env(self, crash: Optional[str] = None, **extra: str) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in RUN_VARS}
        env.update(self.env)
        env.update(extra)
        if crash:
            env["BOBOSYNC_CRASH_AT"] = crash
        return env

    def start(self, *argv: str, crash: Optional[str] = None, **extra: str) -> subprocess.Popen:
        """A real scheduled run as Task Scheduler starts it: `python bobo_processor.py` in a new process."""
        return subprocess.Popen([sys.executable, ENTRY, *argv], cwd=str(ROOT), env=self.full_env(crash, **extra),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self, proc: subprocess.Popen, expect: Sequence[int] = (0,), timeout: float = 120) -> str:
        output, _ = proc.communicate(timeout=timeout)
        check_run(output, proc.returncode, expect, self.log())
        return output

    def run_scheduled(self, *argv: str, crash: Optional[str] = None, expect: Sequence[int] = (0,),
                      **extra: str) -> str:
        """`start` and `finish`; a run killed at a crash point is expected to die of it."""
        return self.finish(self.start(*argv, crash=crash, **extra), (KILLED,) if crash else expect)

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

    def pending_events(self) -> Dict[str, Tuple[str, str]]:
        """employee -> (event_time, record_created) of the event kept pending for them."""
        if not self.db.exists():
            return {}
        return {e: (t, c) for e, t, c in self.rows("SELECT employee_id, event_time, record_created FROM "
                                                   "pending_events")}

    def expire_backoffs(self) -> None:
        """Time passes: every back-off (mapping sync, refused credentials) is over."""
        if self.db.exists():
            conn = sqlite3.connect(str(self.db))
            with conn:
                conn.execute("DELETE FROM run_state WHERE key LIKE '%\\_until' ESCAPE '\\'")
            conn.close()

    def mappings(self) -> List[Tuple[str, str]]:
        return sorted(self.rows("SELECT employee_id, username FROM worker_mapping")) if self.db.exists() else []

    def sync_requests(self) -> list:
        return self.sim.requests_to("SyncByCommonNames")

    def sent(self) -> list:
        """Every record sent to SyncByCommonNames, in order."""
        return [record for r in self.sync_requests() for record in r.body]

    def names(self, folder: Path) -> Set[str]:
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def csv_left(self) -> Set[str]:
        return {n for n in self.names(self.csv_dir) if n.lower().endswith(".csv")}

    def held(self, login: str) -> Optional[str]:
        try:
            return self.sim.attribute(login, FIELD)
        except KeyError:
            return None


def fault_site(sim: AtHocSimulator, work: Path, users: int = 6, **env: str) -> Site:
    """The fault suites' site: the odd users too, and no cleanup of old duty values unless asked for."""
    return Site(sim, work, users=users, **{"AUTO_CLEANUP_HOURS": "0", **env})


# --- the invariants, with files found by their bytes ---

def _sha(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def where_files_are(sc: Site) -> Dict[str, Set[str]]:
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


def assert_nothing_lost(sc: Site) -> Dict[Tuple[str, int], str]:
    """Invariant 1: each generated event is applied, stale, unmapped, kept pending, gone from AtHoc, or still in
    its file in the CSV or failed folder. Returns each event's fate by (file name, index in file)."""
    where = where_files_are(sc)
    state = sc.duty_state()
    pending = sc.pending_events()
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
            if ev.norm in pending and ev.key <= pending[ev.norm] and (
                    ev.norm not in state or state[ev.norm][:2] < pending[ev.norm]):
                fates[(rec.name, i)] = "pending"  # kept in the database until bobosync maps the person
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


def assert_requests_sound(sc: Site) -> None:
    """Invariant 2 over every SyncByCommonNames request the simulator recorded, in arrival order: only
    mapped users, only LOGIN_ID and the duty field, syncExistingUsersOnly=true, never an older event
    over a newer one."""
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
            assert candidates, \
                f"{login}: {value!r} is from no event newer than the one sent before ({newest.get(login)})"
            newest[login] = min(candidates)


def latest_values(sc: Site) -> Dict[str, Optional[str]]:
    """Each mapped user's duty value once every event is handled: the newest event wins (ties: the later
    file, then the later row, as when they arrive in one batch)."""
    best: Dict[str, Tuple] = {}
    for rec in sc.files:
        for i, ev in enumerate(rec.events):
            key = (ev.stamp, ev.created, rec.order, i)
            if ev.norm not in best or key > best[ev.norm][0]:
                best[ev.norm] = (key, ev.value)
    return {login: best[eid][1] if eid in best else None for login, eid in sc.mapped.items()}


def assert_final_state(sc: Site, expected: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Invariant 3's end: every file handled, AtHoc holds the newest event of every mapped user, and
    nothing for users outside the mapping."""
    assert not sc.csv_left(), sorted(sc.csv_left())
    fates = assert_nothing_lost(sc)
    assert "waiting" not in fates.values(), fates
    for login, value in (expected or latest_values(sc)).items():
        if login not in sc.gone:
            assert sc.held(login) == value, login
    for login in ODD_USERS:
        assert sc.held(login) is None


def check_all(sc: Site) -> Dict[Tuple[str, int], str]:
    assert_requests_sound(sc)
    return assert_nothing_lost(sc)
