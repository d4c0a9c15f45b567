#!/usr/bin/env python3
"""Scale benchmark: the real entry point against the AtHoc simulator over loopback.

    python bench/bench.py            # full sizes: 50,000 users, 100,000-row shift change, 1M rows (minutes)
    python bench/bench.py --quick    # tiny sizes (seconds): correctness only, no target is judged

Each scenario runs `python bobosync/bobo_processor.py` as a subprocess (settings in its environment),
checks the outcome against the benchmark's own computation, and times it. The simulator runs in this
process and adds up its serving time, which is subtracted from the wall time to give the tool's own.
Peak memory is the tool process's VmHWM (Linux; "n/a" elsewhere), CPU time its user + system time (POSIX).
Exit 0: all correct and every target met; 1: a correctness check failed; 2: correct, a target missed.
"""
import argparse
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "bobosync" / "bobo_processor.py"
sys.path.insert(0, str(ROOT / "bobosync"))

from athoc_simulator import AtHocSimulator, connection_settings  # noqa: E402

FIELD = "On-Duty-DTG"
FIRST_COLLAR = 10001
CHUNK = 1000  # SYNC_CHUNK_SIZE
DOMAIN = "demo.example"
POLL_SECONDS = 0.002
SETTLED = 3600  # files are written with modification times this many seconds in the past

# The tool's own time is judged against these (seconds), and its peak memory (MB).
TRAIL_COST_RATIO = 1.25  # a shift change recording the audit trail, against one with the trail switched off
PERSON_QUERY_S = 0.2  # --history / --on-duty-at for one person, the whole command
FORCE_QUERY_S = 5.0  # --on-duty-at for the whole force, the whole command
REPORT_S = 5.0  # --report for one day of the whole force, the whole command
REPORT_MB = 5.0  # and the page it writes
MAPPING_TARGET_S = 3.0
SHIFT_TARGET_S = 5.0
SHIFT_MEMORY_MB = 200.0
# The idle run (nothing to do) is judged by its CPU time against that of `python -c "import requests"`, run by the
# same interpreter in the same environment, interleaved with it: at most half of what merely loading the HTTP client
# costs, the thing an idle run must not do (one that imported requests would be above 1.0x). Against `pass` or
# `import sqlite3` the ratio says more about the interpreter than about bobosync, since the interpreter's start-up,
# with whatever site-packages hook it runs, is most of those baselines: on one machine the same code measured 2.8x
# `import sqlite3` in a clean venv and 1.5x on an interpreter whose site-packages hook added 25 ms to every start,
# but 0.40x and 0.45x `import requests`. Python's own logging, pathlib and re, which any run that writes a log
# needs, already make 2x `import sqlite3`. CPU time, not wall time: on a shared machine wall time also counts the
# waits for a core. (Where CPU time cannot be measured, on Windows, wall time is judged.)
IDLE_BASELINES = ("pass", "import sqlite3", "import requests")  # each run as `python -c "<code>"`
IDLE_JUDGED_BY = "import requests"
IDLE_RATIO = 0.5
GROWTH_SLACK = 1.25  # time per row at the largest size may be at most this times that at the middle size
FLAT_MEMORY_MB = 20.0  # peak memory may grow at most this much from the smallest to the largest size


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is."""

    users: int
    shift_rows: int
    shift_files: int
    shift_employees: int
    growth_rows: Tuple[int, ...]
    growth_files: int
    growth_employees: int
    idle_runs: int
    trail_people: int = 50_000  # the synthetic audit trail: this many people booking on and off every day
    trail_days: int = 90
    audit_repeats: int = 3  # each audit measurement is the median of this many


FULL = Sizes(50_000, 100_000, 100, 30_000, (10_000, 100_000, 1_000_000), 100, 10_000, 30)
QUICK = Sizes(2_500, 3_000, 10, 1_000, (1_000, 2_000, 4_000), 5, 300, 3, 300, 5, 1)


@dataclass
class Run:
    """One run of the tool: its exit code, times, peak memory and the requests it made."""

    code: int
    wall: float
    sim_busy: float
    peak_mb: Optional[float]
    requests: list
    output: str
    cpu: Optional[float] = None  # user + system seconds of the tool's process (None where unknown)

    @property
    def tool(self) -> float:
        return self.wall - self.sim_busy

    @property
    def sync_calls(self) -> List:
        return [r for r in self.requests if r.path.lower().endswith("/syncbycommonnames")]


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    size: str
    run: Optional[Run] = None
    target: str = ""
    met: Optional[bool] = None  # None: not judged
    problems: List[str] = field(default_factory=list)
    note: str = ""
    rows: int = 0


# --- running the tool ---

def setting_names() -> List[str]:
    """Every setting name of .env_safe, plus the ones read from the environment only."""
    text = (ROOT / ".env_safe").read_text(encoding="utf-8")
    return re.findall(r"^([A-Z_]+)=", text, flags=re.M) + ["USERNAME", "http_proxy", "https_proxy", "no_proxy"]


def wait_with_peak(proc: subprocess.Popen) -> Tuple[int, Optional[float]]:
    """Wait for `proc`; its exit code and its peak resident memory in MB (None where unknown).

    Linux only: VmHWM, the kernel's high-water mark of the process's resident memory, is read every
    POLL_SECONDS until the process ends. (ru_maxrss of a child is no use: it starts from the size of
    the parent that forked it.)"""
    status = Path(f"/proc/{proc.pid}/status")
    peak = 0
    while proc.poll() is None:
        peak = max(peak, vm_hwm_kib(status))
        time.sleep(POLL_SECONDS)
    return proc.returncode, peak / 1024 if peak else None


def children_cpu() -> Optional[float]:
    """User + system seconds of the children this process has waited for (None where unknown): the difference
    around one run is that run's CPU time, since the benchmark runs one child at a time."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_since(before: Optional[float]) -> Optional[float]:
    after = children_cpu()
    return None if before is None or after is None else after - before


def vm_hwm_kib(status: Path) -> int:
    try:
        text = status.read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", text, flags=re.M)
    return int(found.group(1)) if found else 0


class Site:
    """A bobosync installation in a temporary folder, pointed at the simulator."""

    def __init__(self, sim: AtHocSimulator, root: Path, **settings: str):
        self.sim, self.root = sim, root
        self.csv = root / "crown_files"
        self.processed = root / "processed_files"
        self.failed = root / "failed_files"
        self.db = root / "bobo_mapping.db"
        self.csv.mkdir(parents=True)
        values = {**connection_settings(sim),
                  "CSV_DIRECTORY": str(self.csv), "PROCESSED_DIRECTORY": str(self.processed),
                  "FAILED_FILES_DIRECTORY": str(self.failed), "DB_PATH": str(self.db),
                  "LOG_DIRECTORY": str(root / "logs"), "LOG_LEVEL": "INFO", "MOVE_PROCESSED_FILES": "true",
                  "BATCH_SIZE": "100", "SYNC_CHUNK_SIZE": str(CHUNK), "DUTY_STATUS_FIELD": FIELD}
        values.update(settings)
        # Settings come from the environment, every one of them (blank: the default), so a .env in the checkout
        # changes nothing; a scheduled run has no option. Bytecode is cached as on an installed server.
        hidden = set(setting_names()) | {"PYTHONDONTWRITEBYTECODE"}
        self.env = {k: v for k, v in os.environ.items() if k not in hidden and not k.startswith("BOBOSYNC_")}
        self.env.update({name: "" for name in setting_names() if name.isupper()})
        self.env.update(values)

    def command(self, *args: str, profile: Optional[Path] = None) -> List[str]:
        wrapper = ["-m", "cProfile", "-o", str(profile)] if profile else []
        return [sys.executable, *wrapper, str(ENTRY), *args]

    def run(self, *args: str, profile: Optional[Path] = None) -> Run:
        """One run of the real entry point; the simulator's serving time is measured alongside."""
        busy, seen = self.sim.busy_seconds, len(self.sim.requests)
        with tempfile.TemporaryFile() as out:
            cpu = children_cpu()
            started = time.perf_counter()
            proc = subprocess.Popen(self.command(*args, profile=profile), cwd=str(ROOT), env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT)
            code, peak = wait_with_peak(proc)
            wall = time.perf_counter() - started
            cpu = cpu_since(cpu)
            out.seek(0)
            output = out.read().decode("utf-8", "replace")
        with self.sim.lock:
            return Run(code, wall, self.sim.busy_seconds - busy, peak, self.sim.requests[seen:], output, cpu)

    def write_transactions(self) -> int:
        """SQLite's file change counter: it goes up by one per committed write transaction."""
        with open(self.db, "rb") as handle:
            handle.seek(24)
            return struct.unpack(">I", handle.read(4))[0]

    def query(self, sql: str) -> list:
        conn = sqlite3.connect(str(self.db))
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def file_count(self, folder: Path) -> int:
        return sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0


# --- input files and the expected outcome, computed independently of bobosync ---

def login_of(eid: int) -> str:
    return f"user{eid}@{DOMAIN}"


def clock(day: str, second: int) -> Tuple[str, str]:
    """('YYYYMMDD', 'HHMMSS') for a second of the day."""
    return day, f"{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}"


def duty_value(kind: str, date: str, hhmmss: str) -> str:
    """What AtHoc's duty field should hold after this event (docs/input-format.md)."""
    if kind == "BOF":
        return ""
    return f"{date[6:8]}/{date[4:6]}/{date[:4]} {hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}"


class Expected:
    """The newest event per employee: latest event time, then record created, then later file, then row."""

    def __init__(self) -> None:
        self.best: Dict[int, Tuple[Tuple[str, str, int, int], str]] = {}

    def add(self, eid: int, key: Tuple[str, str, int, int], value: str) -> None:
        held = self.best.get(eid)
        if held is None or key > held[0]:
            self.best[eid] = (key, value)

    def updates(self, applied: Dict[int, Tuple[str, str]]) -> Dict[str, str]:
        """LOGIN_ID -> value for winners newer than what an earlier run applied."""
        return {login_of(eid): value for eid, (key, value) in self.best.items()
                if eid not in applied or key[:2] > applied[eid]}


def write_files(folder: Path, prefix: str, files: int, rows: int, employees: int, seed: int,
                day: str = "20240617", stale_day: Optional[str] = None) -> Expected:
    """Layout A files with `rows` events of `employees` people in a shift change, oldest file first.

    Every employee has events in several files; some share an event time (record created decides) and,
    with `stale_day`, some are older than the previous shift's (so they are stale)."""
    rng = random.Random(seed)
    expected = Expected()
    last_second: Dict[int, int] = {}
    per_file, extra = divmod(rows, files)
    g = 0
    base = time.time() - SETTLED
    for index in range(files):
        lines = []
        for line in range(1, per_file + (index < extra) + 1):
            eid = FIRST_COLLAR + g % employees
            g += 1
            date, second = day, rng.randrange(5 * 3600 + 1800, 8 * 3600 + 1800)
            if eid in last_second and rng.random() < 0.05:
                second = last_second[eid]  # the same clocking time again: record created decides
            if stale_day and rng.random() < 0.05:
                date, second = stale_day, rng.randrange(8 * 3600, 12 * 3600)
            last_second[eid] = second
            _, hhmmss = clock(date, second)
            _, created = clock(date, second + rng.randrange(0, 90))
            kind = "BON" if rng.random() < 0.5 else "BOF"
            lines.append(f"{kind},{eid},P{eid:07d},{date},{hhmmss},{date}{created},1,51.507200,-0.127600,8.0")
            expected.add(eid, (date + hhmmss, date + created, index, line), duty_value(kind, date, hhmmss))
        path = folder / f"{prefix}{index:04d}.csv"
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        os.utime(path, (base + index, base + index))
    return expected


def previous_shift(folder: Path, employees: int, seed: int) -> Dict[int, Tuple[str, str, str]]:
    """One file booking every employee on the afternoon before; employee -> (event, created, value)."""
    rng = random.Random(seed)
    lines, applied = [], {}
    for eid in range(FIRST_COLLAR, FIRST_COLLAR + employees):
        second = rng.randrange(14 * 3600, 15 * 3600)
        date, hhmmss = clock("20240616", second)
        created = date + clock(date, second + 30)[1]
        lines.append(f"BON,{eid},P{eid:07d},{date},{hhmmss},{created},1,,,")
        applied[eid] = (date + hhmmss, created, duty_value("BON", date, hhmmss))
    path = folder / "previous_shift.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stamp = time.time() - 2 * SETTLED
    os.utime(path, (stamp, stamp))
    return applied


# --- checks ---

def check_exit(run: Run, problems: List[str]) -> None:
    if run.code != 0:
        tail = "\n".join(run.output.strip().splitlines()[-5:])
        problems.append(f"exit code {run.code}, expected 0:\n{tail}")
    if "Traceback" in run.output:
        problems.append("the output holds a traceback")


def check_sent(run: Run, want: Dict[str, str], problems: List[str]) -> None:
    """The SyncByCommonNames calls: ceil(updates / chunk) of them, carrying exactly the expected values."""
    calls = run.sync_calls
    if len(calls) != math.ceil(len(want) / CHUNK):
        problems.append(f"{len(calls)} SyncByCommonNames calls for {len(want)} updates, expected "
                        f"{math.ceil(len(want) / CHUNK)}")
    sent: Dict[str, str] = {}
    for call in calls:
        for record in call.body:
            if set(record) != {"LOGIN_ID", FIELD}:
                problems.append(f"a record carries {sorted(record)}, expected LOGIN_ID and {FIELD} only")
                return
            sent[record["LOGIN_ID"]] = record[FIELD]
    wrong = [login for login in set(want) | set(sent) if sent.get(login) != want.get(login)]
    if wrong:
        problems.append(f"{len(wrong)} users sent wrongly or not at all, e.g. {sorted(wrong)[:3]}")


def check_athoc(sim: AtHocSimulator, final: Dict[str, str], problems: List[str]) -> None:
    """Every employee holds the expected duty value in AtHoc."""
    with sim.lock:
        wrong = [login for login, value in final.items() if sim.users[login].get(FIELD, "") != value]
    if wrong:
        problems.append(f"{len(wrong)} users hold the wrong duty value in AtHoc, e.g. {sorted(wrong)[:3]}")


def check_files(site: Site, files: int, problems: List[str]) -> None:
    left, failed, done = site.file_count(site.csv), site.file_count(site.failed), site.file_count(site.processed)
    if left or failed or done != files:
        problems.append(f"files: {done} processed, {left} left, {failed} failed; expected all {files} processed")


def reset_duty_field(sim: AtHocSimulator) -> None:
    with sim.lock:
        for user in sim.users.values():
            user.pop(FIELD, None)


# --- the scenarios ---

def mapping_sync(sim: AtHocSimulator, root: Path, sizes: Sizes, args: argparse.Namespace) -> Tuple[List[Row], Path]:
    """Scenario 1: --sync-mappings of every AtHoc user, into a new database and again into a full one."""
    site = Site(sim, root / "mapping", AUTO_CLEANUP_HOURS="0")
    pages = sizes.users // 1000 + 1  # the listing ends on the first page short of 1,000 users
    rows = []
    for label in ("first", "daily"):
        before = site.write_transactions() if site.db.exists() else None
        run = site.run("--sync-mappings", profile=profile_path(args, f"mapping-{label}"))
        row = Row("1 mapping sync", f"{sizes.users:,} users, {label}", run, f"tool < {MAPPING_TARGET_S:g} s")
        check_exit(run, row.problems)
        if len(run.requests) != pages + 1:
            row.problems.append(f"{len(run.requests)} HTTP requests, expected a token and {pages} pages")
        mapped = dict(site.query("SELECT employee_id, username FROM worker_mapping"))
        want = {str(FIRST_COLLAR + i): login_of(FIRST_COLLAR + i) for i in range(sizes.users)}
        if mapped != want:
            row.problems.append(f"worker_mapping holds {len(mapped)} rows, not the {len(want)} expected")
        if before is not None:
            written = site.write_transactions() - before
            row.note = f"{written} write transaction(s)"
            if written != 1:
                row.problems.append(f"the mapping was written in {written} transactions, expected 1")
        row.met = run.tool < MAPPING_TARGET_S
        rows.append(row)
    return rows, site.db


def shift_change(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path,
                 args: argparse.Namespace, name: str = "shift", scenario: str = "2 shift change",
                 db_from: Optional[Path] = None, settings: Optional[Dict[str, str]] = None) -> Row:
    """Scenario 2: a force-wide shift change, every file in one batch, after the previous shift was applied.
    (`db_from`: a database moved in and used instead of a copy of the template; `settings`: for the site.)"""
    reset_duty_field(sim)
    site = Site(sim, root / name, AUTO_CLEANUP_HOURS="0", **(settings or {}))
    if db_from is not None:
        os.replace(db_from, site.db)
    else:
        shutil.copy(template_db, site.db)
    applied = previous_shift(site.csv, sizes.shift_employees, seed=1)
    first = site.run()
    row = Row(scenario, f"{sizes.shift_rows:,} rows, {sizes.shift_files} files, "
                        f"{sizes.shift_employees:,} people")
    check_exit(first, row.problems)
    expected = write_files(site.csv, "shift_", sizes.shift_files, sizes.shift_rows, sizes.shift_employees,
                           seed=2, stale_day="20240616")
    before = site.write_transactions()
    run = site.run(profile=profile_path(args, name))
    row.run = run
    check_exit(run, row.problems)
    want = expected.updates({eid: held[:2] for eid, held in applied.items()})
    check_sent(run, want, row.problems)
    final = {login_of(eid): held[2] for eid, held in applied.items()}
    final.update(want)
    check_athoc(sim, final, row.problems)
    check_files(site, sizes.shift_files + 1, row.problems)
    stale = sizes.shift_employees - len(want)
    row.note = (f"{len(want):,} people updated, {stale} not (their newest event older than the previous shift's); "
                f"{site.write_transactions() - before} write transactions")
    row.target = f"tool < {SHIFT_TARGET_S:g} s, < {SHIFT_MEMORY_MB:g} MB"
    row.met = run.tool < SHIFT_TARGET_S and (run.peak_mb is None or run.peak_mb < SHIFT_MEMORY_MB)
    return row


def timed_command(command: Sequence[str], env: Dict[str, str]) -> Tuple[float, Optional[float]]:
    """Wall and CPU seconds of a command, measured as the tool's runs are."""
    cpu = children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    code, _ = wait_with_peak(proc)
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}")
    return wall, cpu_since(cpu)


class Timings:
    """The wall and CPU times of one command over the interleaved rounds."""

    def __init__(self) -> None:
        self.wall: List[float] = []
        self.cpu: List[float] = []
        self.cpu_known = True  # False where a run's CPU time cannot be measured (Windows)

    def add(self, wall: float, cpu: Optional[float]) -> None:
        self.wall.append(wall)
        if cpu is None:
            self.cpu_known = False
        else:
            self.cpu.append(cpu)

    def median(self) -> float:
        """The median CPU time where known, else the median wall time: what the idle target judges."""
        return statistics.median(self.cpu if self.cpu_known else self.wall)

    def spread(self) -> str:
        """Median and quartiles, in ms, of the CPU time (where known) and of the wall time."""
        def quartiles(values: List[float]) -> str:
            q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
            return f"{q2 * 1000:.1f} ms ({q1 * 1000:.1f}-{q3 * 1000:.1f})"
        return (f"CPU {quartiles(self.cpu)}, " if self.cpu_known else "") + f"wall {quartiles(self.wall)}"


def idle(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path) -> Row:
    """Scenario 3: nothing to do (no file, mapping synced, cleanup and purges done): no request, little time.
    Each round runs the baselines and the idle run in turn (the order rotating), so that the machine's load
    falls on all alike."""
    site = Site(sim, root / "idle")  # default cleanup and purge settings: the warm-up run does both
    shutil.copy(template_db, site.db)
    row = Row("3 idle run", f"median of {sizes.idle_runs}",
              target=f"0 requests, CPU <= {IDLE_RATIO:g}x `{IDLE_JUDGED_BY}`")
    warm = site.run()
    check_exit(warm, row.problems)
    baselines = {code: Timings() for code in IDLE_BASELINES}
    idle_times, runs = Timings(), []
    steps = [*IDLE_BASELINES, ""]  # "": the idle run
    for n in range(sizes.idle_runs):
        for step in steps[n % len(steps):] + steps[:n % len(steps)]:
            if step:
                baselines[step].add(*timed_command([sys.executable, "-c", step], site.env))
            else:
                runs.append(site.run())
                idle_times.add(runs[-1].wall, runs[-1].cpu)
    requests = check_idle_runs(site, runs, row.problems)
    median = statistics.median(run.wall for run in runs)
    row.run = min(runs, key=lambda r: abs(r.wall - median))
    row.run.wall = median
    ratios = {label: idle_times.median() / t.median() for label, t in baselines.items()}
    measure = "CPU" if idle_times.cpu_known else "wall"
    row.note = "\n".join([f"medians (quartiles) of runs interleaved with the baselines: {idle_times.spread()}",
                          *(f"    `python -c \"{code}\"`: {t.spread()}" for code, t in baselines.items()),
                          f"    idle run / baseline ({measure}): "
                          + ", ".join(f"{ratios[code]:.2f}x `{code}`" for code in baselines)])
    row.met = not requests and ratios[IDLE_JUDGED_BY] <= IDLE_RATIO
    return row


def check_idle_runs(site: Site, runs: List[Run], problems: List[str]) -> int:
    """Every idle run exits 0 saying 'Nothing to do', none makes a request or imports requests; the requests."""
    for run in runs:
        check_exit(run, problems)
        if "Nothing to do" not in run.output:
            problems.append("an idle run did not say 'Nothing to do'")
            break
    requests = sum(len(run.requests) for run in runs)
    if requests:
        problems.append(f"{requests} HTTP requests in {len(runs)} idle runs, expected 0")
    imported = subprocess.run([sys.executable, "-X", "importtime", *site.command()[1:]], cwd=str(ROOT),
                              env=site.env, capture_output=True, text=True).stderr
    if re.search(r"\|\s+requests$", imported, flags=re.M):
        problems.append("the idle run imports requests")
    return requests


def growth(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path, args: argparse.Namespace) -> List[Row]:
    """Scenario 4: more and more rows in one run, for the same people: time linear, memory flat."""
    rows = []
    for count in sizes.growth_rows:
        reset_duty_field(sim)
        site = Site(sim, root / f"growth-{count}", AUTO_CLEANUP_HOURS="0")
        shutil.copy(template_db, site.db)
        expected = write_files(site.csv, "g_", sizes.growth_files, count, sizes.growth_employees, seed=count)
        run = site.run(profile=profile_path(args, f"growth-{count}"))
        row = Row("4 growth", f"{count:,} rows", run)
        check_exit(run, row.problems)
        want = expected.updates({})
        check_sent(run, want, row.problems)
        check_athoc(sim, want, row.problems)
        check_files(site, sizes.growth_files, row.problems)
        row.note = f"{run.tool / count * 1e6:.1f} µs/row overall"
        if rows:
            previous = rows[-1]
            extra = run.tool - previous.run.tool
            row.note += f", {extra / (count - previous.rows) * 1e6:.1f} µs per row added since {previous.rows:,}"
        row.rows = count
        rows.append(row)
    judge_growth(rows)
    return rows


def judge_growth(rows: List[Row]) -> None:
    """Linear: time per row at the largest size no worse than GROWTH_SLACK x the middle one; memory flat."""
    small, middle, large = rows[0], rows[-2], rows[-1]
    per_row = [r.run.tool / r.rows for r in (middle, large)]
    large.target = f"µs/row <= {GROWTH_SLACK:g}x previous, memory +{FLAT_MEMORY_MB:g} MB at most"
    linear = per_row[1] <= GROWTH_SLACK * per_row[0]
    peaks = (small.run.peak_mb, large.run.peak_mb)
    flat = None in peaks or peaks[1] - peaks[0] <= FLAT_MEMORY_MB
    large.met = linear and flat


# --- scenario 5: the audit trail ---

TRAIL_SQL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1),
s AS (SELECT i, i / :block AS d, i % :block AS j FROM n),
k AS (SELECT i, d, CASE WHEN j < :p THEN 0 WHEN j < :p + :p10 THEN 1 ELSE 2 END AS part,
             CASE WHEN j < :p THEN j WHEN j < :p + :p10 THEN (j - :p) * 10 + d % 10 ELSE j - :p - :p10 END AS who
      FROM s),
t AS (SELECT i, d, part, who, (CASE part WHEN 2 THEN 17 ELSE 7 END) * 3600 + who * 3600 / :p AS clock,
             part = 2 AND (who + d) % 50 = 0 AS rejected FROM k),
u AS (SELECT t.*, clock + 20 + (CASE part WHEN 1 THEN 60 ELSE 0 END) AS secs, days.day, days.shown
      FROM t JOIN days ON days.d = t.d)
INSERT INTO audit_trail (id, at, person, event, event_time, created, file, line, decision, sent, answer, detail,
                         superseded)
SELECT i + 1, day * 1000000 + secs / 3600 * 10000 + secs / 60 % 60 * 100 + secs % 60, who + 1,
       CASE WHEN rejected THEN NULL WHEN part = 2 THEN 0 ELSE 1 END,
       CASE WHEN rejected THEN NULL ELSE day * 1000000 + clock / 3600 * 10000 + clock / 60 % 60 * 100 + clock % 60 END,
       CASE WHEN rejected THEN NULL ELSE day * 1000000 + (clock + 5) / 3600 * 10000 + (clock + 5) / 60 % 60 * 100
                                         + (clock + 5) % 60 END,
       d * 2 + (CASE part WHEN 2 THEN 2 ELSE 1 END), who % 1000 + 1,
       CASE WHEN rejected THEN 'rejected' WHEN part = 1 THEN 'stale' ELSE 'applied' END,
       CASE WHEN part = 0 THEN printf('%s %02d:%02d:%02d', shown, clock / 3600, clock / 60 % 60, clock % 60)
            WHEN part = 2 AND NOT rejected THEN '' END,
       CASE WHEN part = 1 OR rejected THEN NULL ELSE 'ok' END,
       CASE WHEN rejected THEN 'clocking time ahead of this server''s clock (synthetic)'
            WHEN part = 1 THEN 'the event already applied (its file was read again)' END,
       CASE WHEN part = 0 AND who % 10 = (d + 5) % 10 THEN
            printf('1' || char(9) || '%d' || char(9) || '%d' || char(9) || 'bobo_%d_0600.csv' || char(9) || '%d',
                   day * 1000000 + 60000 + who % 3600 / 60 * 100, day * 1000000 + 60005 + who % 3600 / 60 * 100,
                   day, who % 1000 + 1) END
FROM u
"""


@dataclass
class TrailShape:
    """The synthetic trail: `people` book on at 07:xx and off at 17:xx on each of `days` days before today; each day
    one in ten has a book-on of 06:xx superseded by it, and one in ten has it read again a minute later (stale);
    a book-off in fifty is a rejected row, so its person stays on duty overnight."""

    people: int
    days: int
    today: date

    @property
    def block(self) -> int:
        return 2 * self.people + self.people // 10

    @property
    def rows(self) -> int:
        return self.block * self.days

    def day(self, d: int) -> date:
        return self.today - timedelta(days=self.days - d)

    def history_rows(self, who: int) -> int:
        """The events --history shows: two a day, a stale one a day in ten, a superseded one a day in ten."""
        return 2 * self.days + sum(1 for d in range(self.days) if who % 10 == d % 10) \
            + sum(1 for d in range(self.days) if who % 10 == (d + 5) % 10)

    @property
    def events(self) -> int:
        return self.rows + sum(1 for d in range(self.days) for who in range(self.people) if who % 10 == (d + 5) % 10)

    def overnight(self, d: int) -> int:
        """People on duty at 03:00 on day d: their book-off of the day before was rejected."""
        return sum(1 for who in range(self.people) if (who + d - 1) % 50 == 0)


def build_trail(db: Path, shape: TrailShape) -> float:
    """Write the synthetic trail into `db` (made by a run: the real schema) with SQL, then take its daily snapshots
    with the real code (audit_upkeep.take_snapshot); the seconds the snapshots took."""
    import audit_upkeep as audit
    conn = sqlite3.connect(str(db))
    with conn:
        conn.executemany("INSERT INTO audit_people (id, employee_id, login) VALUES (?, ?, ?)",
                         ((i + 1, str(FIRST_COLLAR + i), login_of(FIRST_COLLAR + i)) for i in range(shape.people)))
        conn.executemany("INSERT INTO audit_files (id, name, last_seen) VALUES (?, ?, ?)",
                         ((d * 2 + half, f"bobo_{shape.day(d):%Y%m%d}_{'0700' if half == 1 else '1700'}.csv",
                           int(f"{shape.day(d):%Y%m%d}") * 1000000) for d in range(shape.days) for half in (1, 2)))
        conn.execute("CREATE TEMP TABLE days (d INTEGER PRIMARY KEY, day INTEGER, shown TEXT)")
        conn.executemany("INSERT INTO days VALUES (?, ?, ?)", ((d, int(f"{shape.day(d):%Y%m%d}"),
                                                                f"{shape.day(d):%d/%m/%Y}") for d in range(shape.days)))
        conn.execute(TRAIL_SQL, {"rows": shape.rows, "block": shape.block, "p": shape.people,
                                 "p10": shape.people // 10})
    started = time.perf_counter()
    while audit.take_snapshot(conn, int(f"{shape.today:%Y%m%d}")):
        pass
    took = time.perf_counter() - started
    conn.close()
    return took


def best_run(site: Site, args: Sequence[str], repeats: int) -> Tuple[Run, float]:
    """The fastest of `repeats` runs of a command (other work on a shared machine only ever slows one), and the
    median wall time."""
    runs = [site.run(*args) for _ in range(repeats)]
    return min(runs, key=lambda r: r.wall), statistics.median(r.wall for r in runs)


def trail_cost(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path,
               args: argparse.Namespace) -> Tuple[List[Row], float]:
    """The shift change with the trail switched off (the test hook) and on, alternately (--quick: on only).
    Judged on the tool process's CPU time, the smallest of the repeats (other work on a shared machine only ever
    adds to a run)."""
    cpu: Dict[str, List[float]] = {"off": [], "on": []}
    tool: Dict[str, List[float]] = {"off": [], "on": []}
    checked: Dict[str, Row] = {}
    modes = ("on",) if args.quick else ("off", "on")
    for n in range(sizes.audit_repeats):
        for mode in modes:
            hook = {"BOBOSYNC_TEST_NO_AUDIT": "1"} if mode == "off" else {}
            row = shift_change(sim, root, sizes, template_db, args, name=f"trail-{mode}-{n}",
                               scenario=f"5 shift change, trail {mode}", settings=hook)
            # (where CPU time is unknown, on Windows, the tool's wall time stands in for it)
            cpu[mode].append((row.run.cpu if row.run.cpu is not None else row.run.tool) if row.run else math.inf)
            tool[mode].append(row.run.tool if row.run else math.inf)
            if mode not in checked or row.problems:
                checked[mode] = row
    for mode, row in checked.items():
        row.target, row.met = "", None
        row.note = (f"CPU s {', '.join(f'{t:.3f}' for t in cpu[mode])}; tool s "
                    f"{', '.join(f'{t:.3f}' for t in tool[mode])}")
    if args.quick:
        return [checked["on"]], min(cpu["on"])
    off, on = min(cpu["off"]), min(cpu["on"])
    ratio = on / off if off else math.inf
    wall = min(tool["on"]) / min(tool["off"]) if min(tool["off"]) else math.inf
    checked["on"].target = f"CPU on <= {TRAIL_COST_RATIO:g}x off"
    checked["on"].met = ratio <= TRAIL_COST_RATIO
    checked["on"].note += (f"; best CPU {on:.3f} s against {off:.3f} s without the trail: {ratio:.2f}x "
                           f"(+{(ratio - 1) * 100:.0f}%); best tool time {wall:.2f}x")
    return [checked["off"], checked["on"]], min(cpu["on"])


def audit_trail(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path,
                args: argparse.Namespace) -> List[Row]:
    """Scenario 5: what recording the trail costs a shift change, and --history / --on-duty-at on a trail of
    trail_people x trail_days (10 million rows at full size); then the purge, and a shift change on that trail."""
    rows, on_cpu = trail_cost(sim, root, sizes, template_db, args)
    site = Site(sim, root / "trail", AUTO_CLEANUP_HOURS="0")
    shutil.copy(template_db, site.db)
    shape = TrailShape(min(sizes.trail_people, sizes.users), sizes.trail_days, date.today())
    started = time.perf_counter()
    snapshots = build_trail(site.db, shape)
    built = Row("5 trail built", f"{shape.rows:,} rows ({shape.events:,} events), {shape.people:,} people, "
                                 f"{shape.days} days")
    size_mb = site.db.stat().st_size / 1e6
    built.note = (f"written by SQL in {time.perf_counter() - started - snapshots:.0f} s; the {shape.days} daily "
                  f"snapshots took {snapshots:.1f} s ({snapshots / shape.days * 1000:.0f} ms a day, the purge step "
                  f"takes one a day); database {size_mb:,.0f} MB, {size_mb * 1e6 / shape.rows:.0f} bytes a row")
    rows.append(built)
    rows += trail_queries(site, shape, sizes.audit_repeats)
    rows.append(trail_purge(site, shape))
    if args.quick:
        return rows
    big = shift_change(sim, root, sizes, template_db, args, name="trail-shift", db_from=site.db,
                       scenario="5 shift change, big trail")
    big.target, big.met = "", None
    if big.run and big.run.cpu is not None and on_cpu:
        big.note = (f"trail on, after the {shape.rows:,} rows: CPU {big.run.cpu:.3f} s, {big.run.cpu / on_cpu:.2f}x "
                    f"that on a new database")
    rows.append(big)
    return rows


def _when(day: date, clock: str) -> str:
    return f"{day:%d/%m/%Y} {clock}"


def trail_queries(site: Site, shape: TrailShape, repeats: int) -> List[Row]:
    """--history and --on-duty-at as a person types them, each the median of `repeats` commands."""
    d = shape.days - 30 if shape.days > 30 else shape.days - 2
    day, who = shape.day(d), shape.people // 2 + 7
    employee = str(FIRST_COLLAR + who)
    asks = [("history, one person", ["--history", employee], PERSON_QUERY_S,
             f"{shape.history_rows(who)} row(s)"),
            ("on-duty-at, one person", ["--on-duty-at", _when(day, "12:00"), employee], PERSON_QUERY_S,
             f"{employee} ({login_of(FIRST_COLLAR + who)}) was on duty"),
            ("on-duty-at, whole force 03:00", ["--on-duty-at", _when(day, "03:00")], FORCE_QUERY_S,
             f": {shape.overnight(d)} user(s)"),
            ("on-duty-at, whole force 12:00", ["--on-duty-at", _when(day, "12:00")], FORCE_QUERY_S,
             f": {shape.people} user(s)")]
    rows = []
    for label, argv, target, expected in asks:
        run, median = best_run(site, argv, repeats)
        row = Row("5 " + label, " ".join(argv[:1] + [repr(a) for a in argv[1:]]), run,
                  f"command < {target:g} s")
        check_exit(run, row.problems)
        if expected not in run.output:
            row.problems.append(f"expected {expected!r} in the output: {run.output[:300]!r}")
        cpu = f"CPU {run.cpu:.3f} s" if run.cpu is not None else "CPU not measured here"
        row.note = f"{len(run.output.splitlines()):,} lines printed; best of {repeats}, median {median:.3f} s, {cpu}"
        row.met = run.wall < target
        rows.append(row)
    return rows


def trail_purge(site: Site, shape: TrailShape) -> Row:
    """One purge step with AUDIT_RETENTION_DAYS one day short of the trail: bounded, and only old rows go."""
    import audit_upkeep as audit
    from bobo_db import BOBODatabase
    cutoff_day = int(f"{shape.day(1):%Y%m%d}")
    count = "SELECT COUNT(*) FROM audit_trail WHERE at / 1000000 {} " + str(cutoff_day)
    old, young = site.query(count.format("<"))[0][0], site.query(count.format(">="))[0][0]
    held = site.query(count.format("<") + " AND id IN (SELECT trail_id FROM audit_snapshot)")[0][0]  # in force
    db = BOBODatabase(site.db)
    started = time.perf_counter()
    audit.maintain(db, datetime.now(), shape.days - 1)
    took = time.perf_counter() - started
    db.close()
    gone = old - site.query(count.format("<"))[0][0]
    row = Row("5 purge step", f"AUDIT_RETENTION_DAYS={shape.days - 1}: {old:,} rows older")
    bound = audit.PURGE_CHUNK * audit.PURGE_CHUNKS
    if site.query(count.format(">="))[0][0] != young:
        row.problems.append("the purge deleted rows younger than AUDIT_RETENTION_DAYS")
    if gone != min(old - held, bound) and took < audit.PURGE_SECONDS:
        row.problems.append(f"the purge deleted {gone:,} old rows, expected {min(old - held, bound):,}")
    row.note = (f"{gone:,} rows deleted in {took:.2f} s (at most {bound:,} a step, {audit.PURGE_SECONDS:g} s); "
                f"{held:,} kept: their duty value was still in force")
    row.target, row.met = f"< {audit.PURGE_SECONDS + 1:g} s", took < audit.PURGE_SECONDS + 1
    return row


# --- scenario 6: the incident-review page ---

RUNS_SQL = """
WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < 1439)
INSERT INTO run_history (started, ended, duration_ms, exit_code, files, files_done, files_failed, updated, stale,
                         pending, rejected, failed, gone, problems)
SELECT :day * 1000000 + i / 60 * 10000 + i % 60 * 100, :day * 1000000 + i / 60 * 10000 + i % 60 * 100 + 2,
       CASE WHEN i IN (420, 1020) THEN 9000 ELSE 60 END, CASE WHEN i BETWEEN 600 AND 604 THEN 1 ELSE 0 END,
       CASE WHEN i IN (420, 1020) THEN 1 ELSE 0 END, CASE WHEN i IN (420, 1020) THEN 1 ELSE 0 END, 0,
       CASE WHEN i IN (420, 1020) THEN :people ELSE 0 END, 0, 0, 0, 0, 0,
       CASE WHEN i BETWEEN 600 AND 604 THEN 'AtHoc cannot be reached (synthetic)' ELSE '' END
FROM m WHERE i NOT BETWEEN 605 AND 619
"""


def report_day(sim: AtHocSimulator, root: Path, sizes: Sizes, template_db: Path) -> Row:
    """Scenario 6: --report for one day of the whole force (about 100,000 trail rows) with a run every minute (five
    failed in an outage, then a quarter of an hour with none), and two people's lanes."""
    site = Site(sim, root / "report", AUTO_CLEANUP_HOURS="0")
    shutil.copy(template_db, site.db)
    shape = TrailShape(min(sizes.trail_people, sizes.users), 2, date.today())
    build_trail(site.db, shape)
    day = shape.day(1)
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute(RUNS_SQL, {"day": int(f"{day:%Y%m%d}"), "people": shape.people})
    conn.close()
    out = root / "report.html"
    argv = ["--report", "--day", f"{day:%d/%m/%Y}", "--out", str(out), "--person", str(FIRST_COLLAR + 7),
            "--person", login_of(FIRST_COLLAR + 8)]
    run, _ = best_run(site, argv, sizes.audit_repeats)
    row = Row("6 report, one day", f"{shape.block:,} trail rows, {shape.people:,} people, 1,425 runs", run,
              f"command < {REPORT_S:g} s, page < {REPORT_MB:g} MB")
    check_exit(run, row.problems)
    html = out.read_text(encoding="utf-8") if out.is_file() else ""
    for minute, want in (("12:00", shape.people), ("03:00", shape.overnight(1))):  # as --on-duty-at answers
        if f'<td>{day:%d/%m/%Y} {minute}</td><td class="n">{want}</td>' not in html:
            row.problems.append(f"the page does not give {want} on duty at {minute}")
    size = out.stat().st_size / 1e6 if out.is_file() else math.inf
    row.note = f"page {size:.2f} MB; {html.count('<circle'):,} chart dots, {html.count('<tr'):,} table rows"
    row.met = run.wall < REPORT_S and size < REPORT_MB
    return row


def profile_path(args: argparse.Namespace, name: str) -> Optional[Path]:
    return Path(args.profile).resolve() / f"{name}.prof" if args.profile else None


# --- the report ---

def machine() -> str:
    """CPU model and count, Python and OS of this machine."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    import platform
    return (f"{os.cpu_count()} CPUs ({model or platform.processor() or 'unknown model'}), Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}")


def print_table(rows: List[Row], judged: bool) -> None:
    header = ("scenario", "size", "wall s", "AtHoc s", "tool s", "peak MB", "HTTP", "Sync", "target", "result")
    lines = [header]
    for r in rows:
        run = r.run
        verdict = "FAIL" if r.problems else ("-" if r.met is None or not judged else ("ok" if r.met else "MISS"))
        lines.append((r.scenario, r.size,
                       f"{run.wall:.3f}" if run else "", f"{run.sim_busy:.3f}" if run else "",
                       f"{run.tool:.3f}" if run else "",
                       (f"{run.peak_mb:.0f}" if run.peak_mb is not None else "n/a") if run else "",
                       str(len(run.requests)) if run else "", str(len(run.sync_calls)) if run else "",
                       r.target if judged else "", verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if r.note:
            print(f"  {r.scenario}, {r.size}: {r.note}")
        for problem in r.problems:
            print(f"  FAIL {r.scenario}, {r.size}: {problem}")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="bobosync scale benchmark (see README, Performance).")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds; checks correctness only")
    parser.add_argument("--only", default="mapping,shift,idle,growth,audit,report",
                        help="comma-separated scenarios to run (mapping always runs: the others need its database)")
    parser.add_argument("--profile", metavar="DIR", help="run the tool under cProfile, writing DIR/<scenario>.prof "
                                                         "(times are then not representative)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders and print where they are")
    return parser.parse_args(argv)


def run_scenarios(sim: AtHocSimulator, root: Path, sizes: Sizes, args: argparse.Namespace) -> List[Row]:
    only = set(args.only.split(","))
    rows, template_db = mapping_sync(sim, root, sizes, args)
    if "shift" in only:
        rows.append(shift_change(sim, root, sizes, template_db, args))
    if "idle" in only:
        rows.append(idle(sim, root, sizes, template_db))
    if "growth" in only:
        rows.extend(growth(sim, root, sizes, template_db, args))
    if "audit" in only:
        rows.extend(audit_trail(sim, root, sizes, template_db, args))
    if "report" in only:
        rows.append(report_day(sim, root, sizes, template_db))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the scenarios, print the table; the exit code says whether all was correct and fast enough."""
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bobosync-bench-"))
    print(f"bobosync benchmark{' (quick)' if args.quick else ''} on {machine()}", flush=True)
    try:
        with AtHocSimulator(org="DEMO") as sim:
            sim.seed_users(sizes.users, domain=DOMAIN)
            rows = run_scenarios(sim, root, sizes, args)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    judged = not args.quick and not args.profile
    print_table(rows, judged)
    failed = any(r.problems for r in rows)
    missed = judged and any(r.met is False for r in rows)
    print(f"correctness: {'FAIL' if failed else 'PASS'}" + (f"; targets: {'MISS' if missed else 'all met'}"
                                                           if judged else "; targets not judged"))
    return 1 if failed else 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
