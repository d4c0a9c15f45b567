#!/usr/bin/env python3
"""A simulated week under chaos: a seeded force's BOBO exports, AtHoc faults and crashes, every invariant
checked after every run.

    python bench/soak.py                                   # the quick day: 1 day, 2,000 people, seed 1
    python bench/soak.py --days 7 --people 2000 --seed 5   # a week
    python bench/soak.py --every 10 ...                    # coarser: also skip idle minutes (see below)

The clock: the scheduled run (cli.main, the real entry point, in this process) is started for each simulated
minute with the wall clock that minute would show. bobosync reads the time of day only through
bobosync/wall_clock.py, which the test hook BOBOSYNC_TEST_CLOCK_OFFSET shifts; the simulator's Date header is
shifted by the same amount (clock_skew_seconds), so AtHoc's clock agrees with the run's as it does on a good
site. Files get modification times from the simulated clock. Time still passes inside a run, and durations,
timeouts and deadlines are real (time.monotonic), so a slow AtHoc costs a run what it would cost it. Runs that
are killed (SIGKILL, at a crash point or at a random moment) are real processes with the same hook.
The database's busy timeout is cut from 15 s to 0.25 s in this process, and each fault's pauses to a fraction of a
second, so that a fault costs the week little time; the kinds of wait, and their order, stay.

Minutes: by default every simulated minute starts a run. `--every K` runs only minutes where something
happened (a file, a change in AtHoc, a fault starting, the last run asked for a retry) and every K-th minute
besides: the suite's quick day does that.

Exit 0: no violation; 1: a violation (printed with the seed, the minute, the person, their history and the
command that reproduces it).
"""
import argparse
import hashlib
import io
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "bobosync" / "bobo_processor.py"
sys.path.insert(0, str(ROOT / "bobosync"))

import bobo_db  # noqa: E402
import cli  # noqa: E402
from athoc_simulator import AtHocSimulator, connection_settings  # noqa: E402
from config import ENVIRONMENT_NAMES  # noqa: E402
from failpoints import BACKOFF_SCALE_VAR, FILE_FAULT_VAR  # noqa: E402
from failpoints import CRASH_EXIT_CODE, ENV_VAR as CRASH_VAR  # noqa: E402
from wall_clock import OFFSET_VAR  # noqa: E402

FIELD = "On-Duty-DTG"
DOMAIN = "demo.example"
START = datetime(2026, 6, 1)  # a Monday, far from any change of daylight-saving time
FIRST_COLLAR = 10001
AMBIGUOUS, UNMAPPED = "99998", "99999"  # outside the people's collar numbers (10001 up: at most 89,997 people)
ODD_USERS = (f"twin.a@{DOMAIN}", f"twin.b@{DOMAIN}", f"nocollar@{DOMAIN}")
CLEANUP_HOURS = 10.0  # AUTO_CLEANUP_HOURS: a missed book-off is cleared within the simulated day
SHIFTS = (7, 15, 23)  # early, late, night: the bursts
CRASH_POINTS = ("after_parse", "after_athoc", "after_commit", "during_mapping_replace", "random")


def stamp_of(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def duty_value(stamp: str) -> str:
    return f"{stamp[6:8]}/{stamp[4:6]}/{stamp[:4]} {stamp[8:10]}:{stamp[10:12]}:{stamp[12:14]}"


@dataclass(frozen=True)
class Event:
    """One book-on/off row: clocking time `stamp` and record created `created` (YYYYMMDDHHMMSS, the terminal's
    clock); `valid` False for a row bobosync must reject (a typo in the year)."""

    collar: str
    on: bool
    stamp: str
    created: str
    valid: bool = True

    @property
    def key(self) -> Tuple[str, str]:
        return self.stamp, self.created

    @property
    def value(self) -> str:
        return duty_value(self.stamp) if self.on else ""

    def row(self) -> str:
        s = self.stamp
        return (f"{'BON' if self.on else 'BOF'},{self.collar},P{self.collar},{s[:8]},{s[8:]},{self.created},1,"
                f"51.507200,-0.127600,8.0\r\n")


@dataclass
class Person:
    collar: str
    login: str
    logins: List[str]
    joins: int = 0  # minute the person is added to AtHoc (0: there from the start)
    leaves: Optional[int] = None  # minute removed from AtHoc
    renamed: Optional[int] = None  # minute their LOGIN_ID changes
    fast: int = 0  # seconds their terminal is ahead


@dataclass
class Export:
    """A file the generator writes at `minute`: a new file, an append to an earlier one, a rename."""

    minute: int
    name: str
    events: List[Event]
    kind: str = "new"  # new | append | rename | bad
    new_name: str = ""
    data: bytes = b""


# --- the generator ---

class Week:
    """A seeded force: people, their shifts, and the exports BOBO writes, minute by minute."""

    def __init__(self, seed: int, days: float, people: int):
        self.rng = random.Random(seed)
        self.minutes = int(days * 24 * 60)
        self.people = [self._person(i) for i in range(people)]
        self.events: List[Event] = []
        self._real: Dict[Event, int] = {}  # event -> the minute it happened
        self.exports: Dict[int, List[Export]] = {}
        for person in self.people:
            self._shifts(person)
        self._ties_and_typos()
        self._plan_exports()

    def _person(self, i: int) -> Person:
        r, collar = self.rng, str(FIRST_COLLAR + i)
        login = f"user{collar}@{DOMAIN}"
        p = Person(collar, login, [login])
        roll = r.random()
        if roll < 0.02:
            p.joins = r.randrange(1, self.minutes)  # a new starter, added to AtHoc mid-week
        elif roll < 0.03:
            p.leaves = r.randrange(60, self.minutes)
        elif roll < 0.04:
            p.renamed = r.randrange(60, self.minutes)
            p.logins.append(f"officer{collar}@{DOMAIN}")
        if r.random() < 0.05:
            p.fast = r.randrange(60, 240)  # a terminal a few minutes fast
        return p

    def _at(self, person: Person, minute_f: float) -> Optional[Tuple[int, Event]]:
        """(the minute it happened, the event) for a clocking at `minute_f` minutes into the week."""
        if minute_f < 0 or minute_f >= self.minutes or (person.leaves is not None and minute_f >= person.leaves):
            return None
        real = START + timedelta(seconds=int(minute_f * 60))
        seen = real + timedelta(seconds=person.fast)
        created = seen + timedelta(seconds=self.rng.randrange(0, 20))
        return int(minute_f), Event(person.collar, True, stamp_of(seen), stamp_of(created))

    def _shifts(self, person: Person) -> None:
        r = self.rng
        for day in range(-1, self.minutes // 1440 + 1):
            if r.random() > 0.75:
                continue
            start = day * 1440 + r.choice(SHIFTS) * 60
            book_on = self._at(person, start - r.uniform(0, 20))
            if book_on:
                self.events.append(book_on[1])
                self._real[book_on[1]] = book_on[0]
            if r.random() < 0.03:
                continue  # a missed book-off: the cleanup's business
            book_off = self._at(person, start + 480 + r.uniform(0, 25))
            if book_off:
                ev = book_off[1]
                off = Event(ev.collar, False, ev.stamp, ev.created)
                self.events.append(off)
                self._real[off] = book_off[0]

    def _ties_and_typos(self) -> None:
        """Ties (a second row at the same clocking time, the other kind, another record created) and typos."""
        r = self.rng
        for ev in list(self.events):
            roll = r.random()
            if roll < 0.01:
                created = datetime.strptime(ev.created, "%Y%m%d%H%M%S") + timedelta(seconds=r.choice((-7, 5)))
                tie = Event(ev.collar, not ev.on, ev.stamp, stamp_of(created))
                self.events.append(tie)
                self._real[tie] = self._real[ev]
            elif roll < 0.012:
                typo = Event(ev.collar, ev.on, str(int(ev.stamp[:4]) + 10) + ev.stamp[4:], ev.created, valid=False)
                self.events.append(typo)
                self._real[typo] = self._real[ev]
        for minute in sorted(r.sample(range(self.minutes), k=max(1, self.minutes // 300))):
            moment = START + timedelta(minutes=minute)
            for collar in (UNMAPPED, AMBIGUOUS):
                ev = Event(collar, True, stamp_of(moment), stamp_of(moment))
                self.events.append(ev)
                self._real[ev] = minute

    def _plan_exports(self) -> None:
        """Group the events into the files BOBO writes, with late, duplicate, split, renamed, appended and bad
        files."""
        by_minute: Dict[int, List[Event]] = {}
        for ev in self.events:
            real = self._real[ev]
            late = self.rng.randrange(10, 180) if self.rng.random() < 0.02 else 0
            by_minute.setdefault(min(self.minutes - 1, real + 1 + late), []).append(ev)
        recent: List[Export] = []
        for minute in sorted(by_minute):
            events = sorted(by_minute[minute], key=lambda e: e.created)
            recent = [e for e in recent if e.minute >= minute - 30]
            self._export(minute, events, recent)
        for _ in range(max(1, self.minutes // 500)):
            minute = self.rng.randrange(self.minutes)
            self._add(Export(minute, f"BOBO_{minute:05d}_corrupt.csv", [], "bad", data=b"\x00\x01garbage\xff\r\n"))

    def _add(self, export: Export) -> Export:
        if export.minute < self.minutes:
            self.exports.setdefault(export.minute, []).append(export)
        return export

    def _export(self, minute: int, events: List[Event], recent: List[Export]) -> None:
        r = self.rng
        name = f"BOBO_{(START + timedelta(minutes=minute)):%Y%m%d_%H%M}.csv"
        roll = r.random()
        if roll < 0.04 and recent:
            self._add(Export(minute, r.choice(recent).name, events, "append"))
        elif roll < 0.07 and len(events) > 1:
            half = len(events) // 2
            self._add(Export(minute, name.replace(".csv", "_part1.csv"), events[:half]))
            self._add(Export(minute, name.replace(".csv", "_part2.csv"), events[half:]))
            self._add(Export(minute + r.randrange(5, 60), name.replace(".csv", "_full.csv"), events))
        else:
            recent.append(self._add(Export(minute, name, events)))
            if roll < 0.10:
                self._add(Export(minute + r.randrange(1, 90), name.replace(".csv", "_again.csv"), events))
            elif roll < 0.13:
                self._add(Export(minute + 1, name, [], "rename", new_name=name.replace("BOBO_", "BOBO_renamed_")))

    def world_changes(self) -> Dict[int, List[Tuple[str, Person]]]:
        """Minute -> AtHoc user changes: ('join'|'leave'|'rename', person)."""
        changes: Dict[int, List[Tuple[str, Person]]] = {}
        for p in self.people:
            for kind, minute in (("join", p.joins or None), ("leave", p.leaves), ("rename", p.renamed)):
                if minute is not None:
                    changes.setdefault(minute, []).append((kind, p))
        return changes


# --- faults ---

ATHOC_FAULTS = ("down", "slow", "too_slow", "429", "5xx", "401", "token_revoked", "partial", "truncated")
LOCAL_FAULTS = ("db_locked", "db_locked_long", "db_locked_mid_run", "processed_readonly", "disk_full", "sigkill")


@dataclass
class Faults:
    """The faults in force; each episode starts at random and lasts a few minutes (a kill: until a run with
    files to read is killed). `counts`: the episodes that met at least one run, by kind."""

    rng: random.Random
    rate: float
    until: Dict[str, int] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    fresh: Set[str] = field(default_factory=set)

    def step(self, minute: int) -> bool:
        """Start and end episodes at `minute`; True when one started."""
        started = False
        for kind in [k for k, end in self.until.items() if end <= minute]:
            del self.until[kind]
            self.fresh.discard(kind)
        for kind in ATHOC_FAULTS + LOCAL_FAULTS:
            rare = 0.1 if kind in ("too_slow", "db_locked_long") else 1.0
            if kind not in self.until and self.rng.random() < self.rate * rare:
                self.until[kind] = minute + (10 ** 9 if kind == "sigkill" else self.rng.randrange(1, 6))
                self.fresh.add(kind)
                started = True
        return started

    def active(self, kind: str) -> bool:
        return kind in self.until

    def met(self, kind: str) -> None:
        """A run met this episode (counted once per episode)."""
        if kind in self.fresh:
            self.fresh.discard(kind)
            self.counts[kind] += 1

    def end(self, kind: str) -> None:
        self.until.pop(kind, None)
        self.fresh.discard(kind)

    def stop(self) -> None:
        self.until.clear()
        self.fresh.clear()


# --- the harness ---

class Violation(Exception):
    """An invariant broken: what, and who."""

    def __init__(self, what: str, collar: str = ""):
        super().__init__(what)
        self.collar = collar


class Soak:
    """One simulated week: the site, the simulator, the generator, the runs and the checks."""

    def __init__(self, args: argparse.Namespace, work: Path, sim: AtHocSimulator):
        self.args, self.work, self.sim = args, work, sim
        self.week = Week(args.seed, args.days, args.people)
        self.faults = Faults(random.Random(args.seed * 7919 + 1), args.fault_rate)
        self.rng = random.Random(args.seed * 104729 + 2)  # each fault's details
        self.mtimes = random.Random(args.seed * 1299709 + 3)  # when in its minute each file was written
        self.changes = self.week.world_changes()
        self.by_collar: Dict[str, List[Event]] = {}
        self.login_owner: Dict[str, str] = {login: p.collar for p in self.week.people for login in p.logins}
        self.newest_sent: Dict[str, Tuple[str, str]] = {}  # the newest event AtHoc got, per person
        self.current: Dict[str, str] = {}  # the value AtHoc was last given, per person (the cleanup's too)
        self.history: Dict[str, List[str]] = {}
        self.expected: Dict[str, str] = {}  # content hash -> the file it was written as
        self.hashes: Dict[Tuple[str, int, int], str] = {}
        self.written: Dict[str, bytes] = {}  # name in the CSV folder -> bytes written
        self.runs = self.killed = 0
        self.codes: Counter = Counter()
        self.minute = 0
        self.last_code = 0
        self.log_seen: Dict[str, int] = {}
        self.lock_holder: Optional[sqlite3.Connection] = None
        # HTTP_TIMEOUT_SECONDS: short, so that a slow AtHoc costs little; longer for a large force, whose searches
        # the simulator (Python, scanning every user: 50,000 in 20-50 ms) answers slower on a busy machine
        self.timeout = 1.0 if args.people <= 5000 else 3.0
        for name in ("csv", "processed", "failed", "logs"):
            (work / name).mkdir()
        self._environment()
        self._seed_users()

    def _environment(self) -> None:
        """The site's settings in this process's environment (the runs started as processes inherit them)."""
        for name in ENVIRONMENT_NAMES + (CRASH_VAR, FILE_FAULT_VAR):
            os.environ.pop(name, None)
        w = self.work
        os.environ.update({
            **connection_settings(self.sim), "CSV_DIRECTORY": str(w / "csv"),
            "PROCESSED_DIRECTORY": str(w / "processed"), "FAILED_FILES_DIRECTORY": str(w / "failed"),
            "DB_PATH": str(w / "bobo.db"), "LOG_DIRECTORY": str(w / "logs"),
            "DUTY_STATUS_FIELD": FIELD, "AUTO_CLEANUP_HOURS": f"{CLEANUP_HOURS:g}",
            "HTTP_TIMEOUT_SECONDS": f"{self.timeout:g}", "RUN_DEADLINE_SECONDS": f"{10 * self.timeout:g}",
            "MOVE_PROCESSED_FILES": "true", "PROCESSED_FILES_PURGE_DAYS": "0",
            "LOG_LEVEL": "INFO", BACKOFF_SCALE_VAR: "0"})
        os.environ.setdefault("BOBOSYNC_TEST_ENV_DIRS", str(w / "no-env-here"))
        bobo_db.BUSY_TIMEOUT_SECONDS = 0.25  # a held lock costs a quarter of a second, not fifteen

    def _seed_users(self) -> None:
        for p in self.week.people:
            if not p.joins:
                self.sim.add_user(p.login, **{"Collar-Number": p.collar, "FIRSTNAME": "Officer", "LASTNAME": p.collar})
        self.sim.add_user(ODD_USERS[0], **{"Collar-Number": AMBIGUOUS})
        self.sim.add_user(ODD_USERS[1], **{"Collar-Number": AMBIGUOUS})
        self.sim.add_user(ODD_USERS[2], FIRSTNAME="No", LASTNAME="Collar")

    def clock(self, minute: int) -> datetime:
        return START + timedelta(minutes=minute, seconds=1.5)

    def note(self, collar: str, text: str) -> None:
        self.history.setdefault(collar, []).append(f"minute {self.minute}: {text}")

    # the world between two runs

    def change_athoc(self, minute: int) -> bool:
        """New starters, leavers and renamed logins at `minute`."""
        for kind, p in self.changes.get(minute, ()):
            attrs = {"Collar-Number": p.collar, "FIRSTNAME": "Officer", "LASTNAME": p.collar}
            if kind == "join":
                self.sim.add_user(p.login, **attrs)
            elif kind == "leave":
                self.sim.remove_user(p.login)
            else:
                with self.sim.lock:
                    user = self.sim.users.pop(p.login, None) or {"LOGIN_ID": p.login, **attrs}
                    p.login = p.logins[-1]
                    self.sim.users[p.login] = {**user, "LOGIN_ID": p.login}
            self.note(p.collar, f"AtHoc: {kind} ({p.login})")
        return minute in self.changes

    def write_files(self, minute: int) -> bool:
        """The exports of `minute`, written during the minute before its run (modification times to match)."""
        exports = self.week.exports.get(minute, ())
        for export in exports:
            self._write(export, self.clock(minute).timestamp() - self.mtimes.uniform(0.5, 59))
        return bool(exports)

    def _write(self, export: Export, mtime: float) -> None:
        folder = self.work / "csv"
        path = folder / export.name
        if export.kind == "rename":
            if path.exists():
                os.rename(path, folder / export.new_name)
                self.written[export.new_name] = self.written.pop(export.name, b"")
            return
        data = export.data or "".join(ev.row() for ev in export.events).encode("utf-8")
        if export.kind == "append":
            old = self.written.get(export.name, b"")
            if old and path.exists():
                self.expected.pop(hashlib.sha256(path.read_bytes()).hexdigest(), None)  # its rows stay, in it
                data = path.read_bytes() + data
            else:
                data = old + data  # the first version was taken: BOBO writes the whole file again
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        self.written[export.name] = data
        self.expected[hashlib.sha256(data).hexdigest()] = export.name
        for ev in export.events:
            self.by_collar.setdefault(ev.collar, []).append(ev)
            self.note(ev.collar, f"{'BON' if ev.on else 'BOF'} {ev.stamp} created {ev.created}"
                                 f"{'' if ev.valid else ' (invalid: typo)'} in {export.name} ({export.kind})")

    # faults

    def apply_faults(self) -> None:
        """Put the faults in force for the next run (AtHoc's are per run: `times` or until cleared)."""
        f, sim = self.faults, self.sim
        sim.clear_faults()
        for kind in list(f.until):
            if kind != "sigkill":
                f.met(kind)
        sim.short_results = self.rng.randrange(1, 4) if f.active("partial") else 0
        if f.active("down"):
            sim.fail("", drop=True, times=None)
        if f.active("slow"):
            sim.fail("syncbycommonnames|search", delay=self.rng.uniform(0.02, 0.25), times=None)
        if f.active("too_slow"):
            sim.fail("syncbycommonnames", delay=self.timeout + 0.3, times=self.rng.randrange(1, 3))
        if f.active("429"):
            sim.fail("syncbycommonnames|search", 429, times=self.rng.randrange(1, 4), retry_after=1)
        if f.active("5xx"):
            sim.fail("syncbycommonnames|search", self.rng.choice((500, 502, 503)), times=self.rng.randrange(1, 5))
        if f.active("401"):
            sim.fail("syncbycommonnames", 401, times=1)
        if f.active("truncated"):
            sim.fail("syncbycommonnames", truncate=True, times=1)
        sim.on_sync = self._mid_run if f.active("token_revoked") or f.active("db_locked_mid_run") else None
        hook = "ENOSPC" if f.active("disk_full") else "EACCES:processed" if f.active("processed_readonly") else ""
        if hook:
            os.environ[FILE_FAULT_VAR] = hook
        else:
            os.environ.pop(FILE_FAULT_VAR, None)
        self._database_lock()

    def _database_lock(self) -> None:
        """Another program holds the database's write lock: for a moment (the run waits) or for minutes."""
        db = self.work / "bobo.db"
        want = (self.faults.active("db_locked") or self.faults.active("db_locked_long")) and db.exists()
        if want and self.lock_holder is None:
            self.lock_holder = sqlite3.connect(str(db), timeout=5, check_same_thread=False, isolation_level=None)
            self.lock_holder.execute("BEGIN IMMEDIATE")
            if not self.faults.active("db_locked_long"):
                threading.Timer(self.rng.uniform(0.02, 0.4), self.release_lock).start()  # within the wait, or not
        elif not want:
            self.release_lock()

    def _mid_run(self, records: List[object]) -> None:
        """While AtHoc handles a run's first update (in the simulator's thread): the token is revoked, so the
        next call gets 401; or another program takes the database's write lock for longer than the run waits,
        so AtHoc has applied what the run cannot record."""
        self.sim.on_sync = None
        if self.faults.active("token_revoked"):
            self.sim.revoke_tokens()
        db = self.work / "bobo.db"
        if self.faults.active("db_locked_mid_run") and self.lock_holder is None and db.exists():
            self.lock_holder = sqlite3.connect(str(db), timeout=5, check_same_thread=False, isolation_level=None)
            self.lock_holder.execute("BEGIN IMMEDIATE")
            threading.Timer(0.6, self.release_lock).start()

    def release_lock(self) -> None:
        holder, self.lock_holder = self.lock_holder, None
        if holder is not None:
            holder.rollback()
            holder.close()

    # runs

    def run(self, minute: int, argv: Sequence[str] = ()) -> int:
        """The scheduled run of `minute` (in this process; killed runs in their own)."""
        self.minute = minute
        offset = self.clock(minute).timestamp() - time.time()
        os.environ[OFFSET_VAR] = repr(offset)
        self.sim.clock_skew_seconds = offset
        if self.faults.active("sigkill") and not argv and self.lock_holder is None and self._files_waiting():
            code = self._killed_run()
        else:
            out = io.StringIO()
            with redirect_stdout(out), redirect_stderr(out):
                code = cli.main(list(argv))
            self.output = out.getvalue()
        if self.faults.active("too_slow"):  # a minute passes before the next run: AtHoc applies what it held back
            self.sim.wait_idle(self.timeout + 5)
        self.runs += 1
        self.codes[code] += 1
        self.last_code = code
        self.check(code)
        return code

    def _files_waiting(self) -> bool:
        return any(True for _ in (self.work / "csv").iterdir())

    def _killed_run(self) -> int:
        self.faults.met("sigkill")
        self.faults.end("sigkill")
        point = self.rng.choice(CRASH_POINTS)
        env = dict(os.environ)
        if point != "random":
            env[CRASH_VAR] = point
        proc = subprocess.Popen([sys.executable, str(ENTRY)], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        killed = False
        if point == "random":
            try:
                proc.wait(self.rng.uniform(0.2, 1.0))
            except subprocess.TimeoutExpired:
                proc.kill()  # (on Windows TerminateProcess: exit code 1, not a signal)
                killed = True
        self.output = proc.communicate(timeout=60)[0].decode("utf-8", "replace")
        # a crash point on Windows, where there is no SIGKILL, ends the process with CRASH_EXIT_CODE
        killed = killed or proc.returncode < 0 or proc.returncode == CRASH_EXIT_CODE
        self.killed += killed
        return 0 if killed else proc.returncode  # (a crash point the run did not reach: it ended)

    # the invariants, after every run

    def check(self, code: int) -> None:
        if code not in (0, 1, 3):
            raise Violation(f"run exit code {code} (only 0, 1 and 3 are expected here):\n{self.output}")
        self._check_log()
        self._check_requests()
        self._check_updates()
        self._check_files()

    def _check_log(self) -> None:
        """No unexpected error (a traceback) in the log since the last run."""
        for path in sorted((self.work / "logs").glob("*.log")):
            seen = self.log_seen.get(path.name, 0)
            size = path.stat().st_size
            if size > seen:
                with open(path, "rb") as handle:
                    handle.seek(seen)
                    text = handle.read().decode("utf-8", "replace")
                self.log_seen[path.name] = size
                if "Traceback" in text or "Unexpected error" in text:
                    raise Violation(f"an unexpected error in {path.name}:\n{text[-3000:]}")

    def _check_requests(self) -> None:
        """Only mapped people's users, only LOGIN_ID and the duty field, existing users only."""
        with self.sim.lock:
            requests, self.sim.requests = self.sim.requests, []
        for request in requests:
            if "syncbycommonnames" not in request.path.lower():
                continue
            if request.query.get("syncexistingusersonly") != "true":
                raise Violation(f"SyncByCommonNames without syncExistingUsersOnly=true: {request.query}")
            for item in request.body if isinstance(request.body, list) else [request.body]:
                if not isinstance(item, dict) or set(item) != {"LOGIN_ID", FIELD}:
                    raise Violation(f"a record with other fields than LOGIN_ID and {FIELD}: {item!r}")
                if item["LOGIN_ID"] not in self.login_owner:
                    raise Violation(f"a record for {item['LOGIN_ID']}, a user outside the mapping: {item!r}")

    def _check_updates(self) -> None:
        """AtHoc never got an older event over a newer one for the same person (the cleanup aside)."""
        with self.sim.lock:
            updates, self.sim.updates = self.sim.updates, []
        for update in updates:
            if FIELD not in update.after:
                continue
            collar = self.login_owner.get(update.login, "")
            value, before = update.after[FIELD], update.before.get(FIELD)
            self.note(collar, f"AtHoc {update.login} {FIELD}: {before!r} -> {value!r}")
            if value == "" and self._cleared_by_cleanup(before, update.at):
                self.current[collar] = ""
                continue
            if collar in self.current and value == self.current[collar]:
                continue  # the person's current value again (a retry, or to a renamed login: collar_moves.py)
            newest = self.newest_sent.get(collar, ("", ""))
            candidates = [ev.key for ev in self.by_collar.get(collar, ()) if ev.valid and ev.value == value
                          and ev.key >= newest]
            if not candidates:
                raise Violation(f"{update.login} got {value!r}, from no valid event at least as new as the one "
                                f"applied before {newest}", collar)
            self.newest_sent[collar] = min(candidates)
            self.current[collar] = value

    def _cleared_by_cleanup(self, before: Optional[str], at: float) -> bool:
        if not before:
            return False
        held = datetime.strptime(before, "%d/%m/%Y %H:%M:%S")
        return datetime.fromtimestamp(at) - held > timedelta(hours=CLEANUP_HOURS)

    def _check_files(self) -> None:
        """No file lost: every file written is in the CSV, processed or failed folder (found by its bytes)."""
        found: Set[str] = set()
        for name in ("csv", "processed", "failed"):
            with os.scandir(self.work / name) as entries:
                for item in entries:
                    st = item.stat()
                    key = (item.path, st.st_size, st.st_mtime_ns)
                    if key not in self.hashes:
                        self.hashes[key] = hashlib.sha256(Path(item.path).read_bytes()).hexdigest()
                    found.add(self.hashes[key])
        lost = [name for digest, name in self.expected.items() if digest not in found]
        if lost:
            raise Violation(f"file(s) lost: {', '.join(sorted(lost))} (in none of the CSV, processed and failed "
                            f"folders)")

    # the end

    def truth(self, at: datetime) -> Dict[str, Tuple[str, ...]]:
        """Each person in AtHoc -> the duty values allowed now: the newest valid event's, '' once the cleanup
        cleared a book-on older than AUTO_CLEANUP_HOURS (either, within three minutes of that age)."""
        allowed: Dict[str, Tuple[str, ...]] = {}
        for p in self.week.people:
            if p.leaves is not None and p.leaves < self.minute:
                continue
            events = [ev for ev in self.by_collar.get(p.collar, ()) if ev.valid]
            if not events:
                allowed[p.collar] = ("",)
                continue
            newest = max(events, key=lambda ev: ev.key)
            if not newest.on:
                allowed[p.collar] = ("",)
                continue
            age = at - datetime.strptime(newest.stamp, "%Y%m%d%H%M%S")
            limit = timedelta(hours=CLEANUP_HOURS)
            allowed[p.collar] = ("",) if age > limit + timedelta(minutes=3) else \
                (newest.value,) if age < limit - timedelta(minutes=3) else (newest.value, "")
        return allowed

    def finish(self) -> None:
        """Faults stopped, an operator's --sync-mappings, a few clean runs, one an hour later (the cleanup is
        due): AtHoc holds the truth for everyone, nothing is left in the CSV folder."""
        self.faults.stop()
        self.apply_faults()
        end = self.week.minutes
        self.run(end, ["--sync-mappings"])
        for minute in (end, end + 1, end + 2, end + 70, end + 71):
            self.run(minute)
        left = [p.name for p in (self.work / "csv").iterdir()]
        if left:
            raise Violation(f"after the clean runs, still in the CSV folder: {', '.join(sorted(left))}")
        truth = self.truth(self.clock(end + 71))
        for p in self.week.people:
            if p.collar not in truth:
                continue
            held = self.sim.users.get(p.login, {}).get(FIELD) or ""
            if held not in truth[p.collar]:
                wanted = " or ".join(map(repr, truth[p.collar]))
                raise Violation(f"{p.login} holds {held!r} at the end; the truth is {wanted}", p.collar)
        for login in ODD_USERS:
            if self.sim.users[login].get(FIELD) is not None:
                raise Violation(f"{login} (outside the mapping) holds a duty value")
        problems = check_audit_trail(self)
        if problems:
            raise Violation("the audit trail does not explain: " + "; ".join(problems[:5]))

    def week_of_runs(self) -> None:
        every = self.args.every
        for minute in range(self.week.minutes):
            self.minute = minute
            busy = self.faults.step(minute) if self.args.fault_rate else False
            busy = self.change_athoc(minute) | self.write_files(minute) | busy
            if every > 1 and not busy and self.last_code == 0 and minute % every:
                continue
            self.apply_faults()
            self.run(minute)
            if minute % 1440 == 1439:
                print(f"day {minute // 1440 + 1} done: {self.runs} runs", file=sys.stderr, flush=True)
        self.release_lock()


def check_audit_trail(soak: Soak) -> List[str]:
    """At the end, the trail explains each person's value in AtHoc: it is the last value the trail says AtHoc
    applied (answer 'ok') for that employee number, on whichever login it then had (a renamed login keeps its
    value in AtHoc, and the trail names the login of the time); a person the trail never set holds none."""
    from audit import SETS_FIELD
    from bobo_csv import normalize_employee_id
    conn = sqlite3.connect(f"file:{soak.work / 'bobo.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT p.employee_id, t.sent FROM audit_trail t JOIN audit_people p ON p.id = t.person "
                            "WHERE t.answer = ? AND t.sent IS NOT NULL ORDER BY t.id", (SETS_FIELD,)).fetchall()
    finally:
        conn.close()
    last = dict(rows)  # the last row of each employee number wins
    problems = []
    for p in soak.week.people:
        user = soak.sim.users.get(p.login)
        if user is None:
            continue  # left the force: no longer in AtHoc
        held = user.get(FIELD) or ""
        explained = last.get(normalize_employee_id(p.collar), "")
        if held != explained:
            problems.append(f"{p.login} ({p.collar}) holds {held!r}, the trail's last value applied is {explained!r}")
    return problems


# --- the command ---

def report_violation(soak: Soak, exc: Violation) -> None:
    a = soak.args
    print(f"VIOLATION (seed {a.seed}, simulated minute {soak.minute}, "
          f"{soak.clock(soak.minute):%Y-%m-%d %H:%M}): {exc}")
    if exc.collar:
        print(f"Person {exc.collar}, the history that led there:")
        for line in soak.history.get(exc.collar, [])[-40:]:
            print("  " + line)
    print(f"Last run's output:\n{getattr(soak, 'output', '')[-2000:]}")
    print(f"Reproduce: python bench/soak.py --days {a.days:g} --people {a.people} --seed {a.seed} --every {a.every} "
          f"--fault-rate {a.fault_rate:g}")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A simulated week of BOBO exports and faults; every invariant "
                                                 "checked after every run.")
    parser.add_argument("--days", type=float, default=1, help="simulated days (0.34: midnight to past 8 am)")
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=int, default=1, help="run idle minutes only every K minutes (1: all)")
    parser.add_argument("--fault-rate", type=float, default=0.01,
                        help="chance per minute that an episode of each kind of fault starts")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.people <= int(AMBIGUOUS) - FIRST_COLLAR:
        print(f"--people must be 1 to {int(AMBIGUOUS) - FIRST_COLLAR}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bobosync-soak-"))
    saved, busy = dict(os.environ), bobo_db.BUSY_TIMEOUT_SECONDS
    started = time.monotonic()
    try:
        with AtHocSimulator(org="DEMO") as sim:
            soak = Soak(args, work, sim)
            try:
                soak.week_of_runs()
                soak.finish()
            except Violation as exc:
                soak.release_lock()
                out = io.StringIO()
                with redirect_stdout(out):
                    report_violation(soak, exc)
                (work / "violation.txt").write_text(out.getvalue(), encoding="utf-8")
                print(out.getvalue() + f"The work folder is kept for a look: {work} (violation.txt, the database, "
                      f"the logs, the folders)")
                args.keep = True
                return 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
        bobo_db.BUSY_TIMEOUT_SECONDS = busy
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    faults = ", ".join(f"{k} {v}" for k, v in sorted(soak.faults.counts.items())) or "none"
    print(f"soak: {args.days:g} day(s), {args.people} people, seed {args.seed}: {soak.runs} runs in {elapsed:.1f} s "
          f"({soak.runs / elapsed:.1f} runs/s), {len(soak.week.events)} events, "
          f"{sum(len(v) for v in soak.week.exports.values())} file operations; exit codes "
          f"{dict(sorted(soak.codes.items()))}; {soak.killed} run(s) killed")
    print(f"faults injected (episodes): {faults}")
    print("violations: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
