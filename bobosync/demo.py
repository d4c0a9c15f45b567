"""--demo: a rehearsal with no AtHoc and no .env.

Starts the AtHoc simulator on a free loopback port, writes sample BOBO files into a
temporary workspace, runs one real scheduled run through the real code, shows who is
on duty before and after and where every file went, then removes everything it made.
"""
import os
import tempfile
import time
from pathlib import Path
from typing import Dict

from athoc_simulator import AtHocSimulator, env_lines
from config import load_settings

FIELD = "On-Duty-DTG"

# Layout A, the BOBO export: 10234 books on then off, 10236 books on, 55555 is nobody in AtHoc,
# and one row has an impossible date.
EXPORT_A = """BON,10234,P0045512,20241001,065512,20241001065530,1,51.507200,-0.127600,8.0
BON,10235,P0045513,20241001,070102,20241001070110,1,51.507300,-0.127700,9.0
BON,55555,P0099999,20241001,070500,20241001070510,1,,,
BON,10237,P0045515,20241341,071000,20241001071010,1,,,
BOF,10234,P0045512,20241001,151003,20241001151020,1,51.507200,-0.127600,12.5
"""
# Layout B, with a header: 10235's book-off, and 10236 books on. Its older book-on for 10234
# is superseded: the export above already has a later book-off for 10234.
EXPORT_B = """Employee_ID,Status,Timestamp
10235,Off Duty,2024-10-01 16:00:00
10236,On Duty,2024-10-01 16:05:00
10234,On Duty,2024-10-01 06:00:00
"""


def _duty_table(sim: AtHocSimulator, logins: Dict[str, str]) -> str:
    rows = []
    for collar, login in logins.items():
        value = sim.attribute(login, FIELD) or ""
        rows.append(f"  {collar:>6}  {login:<28} {value or '(off duty)'}")
    return "\n".join(rows)


def _files_under(root: Path) -> str:
    lines = []
    for folder in ("crown_files", "processed_files", "failed_files"):
        names = sorted(p.name for p in (root / folder).glob("*")) if (root / folder).is_dir() else []
        lines.append(f"  {folder + '/':<17} {', '.join(names) or '(empty)'}")
    return "\n".join(lines)


def run_demo() -> int:
    """The rehearsal; returns the run's exit code."""
    from engine import BOBOProcessor, run_locked
    from log_setup import setup_logging, teardown_logging

    with tempfile.TemporaryDirectory(prefix="bobosync-demo-") as tmp, AtHocSimulator(org="DEMO") as sim:
        root = Path(tmp)
        logins = {str(c): f"user{c}@demo.example" for c in range(10234, 10238)}
        sim.seed_users(6, first_collar=10234)
        for collar, since in (("10234", "30/09/2024 22:00:00"), ("10235", "01/10/2024 05:00:00")):
            sim.add_user(f"user{collar}@demo.example", **{"Collar-Number": collar, FIELD: since})
        (root / "crown_files").mkdir()
        files = {"bobo_export_0700.csv": EXPORT_A, "bobo_simple_1600.csv": EXPORT_B}
        for offset, (name, text) in enumerate(files.items()):
            path = root / "crown_files" / name
            path.write_text(text, encoding="utf-8")
            stamp = time.time() - 120 + offset  # settled, and in export order
            os.utime(path, (stamp, stamp))
        env_file = root / ".env"
        env_file.write_text("\n".join([*env_lines(sim), "CSV_DIRECTORY=crown_files",
                                       "MOVE_PROCESSED_FILES=true", "AUTO_CLEANUP_HOURS=0"]) + "\n")
        env_file.chmod(0o600)
        settings = load_settings(str(env_file), environ={})
        for name in ("csv_directory", "processed_directory", "failed_files_directory", "log_directory"):
            setattr(settings, name, root / getattr(settings, name).name)
        settings.db_path = root / "bobo_mapping.db"
        settings.file_settle_seconds = 0

        print(f"bobosync demo: an AtHoc simulator at {sim.url} with {len(sim.users)} users, and a temporary "
              f"workspace {root}\n")
        print("Sample BOBO files:")
        for name, text in files.items():
            print(f"--- {name}\n{text.rstrip()}")
        print(f"\nWho is on duty in AtHoc ({FIELD}) before the run:\n{_duty_table(sim, logins)}\n")
        print("One real scheduled run (the same code Task Scheduler runs):")
        handlers = setup_logging(settings)
        try:
            code = run_locked(settings, BOBOProcessor.run)
        finally:
            teardown_logging(handlers)
        print(f"\nExit code {code}. Who is on duty in AtHoc after the run:\n{_duty_table(sim, logins)}\n")
        print(f"Where every file went:\n{_files_under(root)}\n")
        print("What to notice: 10234 booked off (its book-off is the latest event, so the older book-on in the "
              "second file was superseded and not sent); 10235 booked off; 10236 is on duty since 16:05; 55555 is "
              "nobody in AtHoc: its event is kept as pending (sent if a user gets that collar number), never "
              "created; the row with month 13 was rejected and the rest of its file went on.")
        print("The demo workspace and the simulator are removed now. Next: copy .env_safe to bobosync/.env, "
              "fill it in, and run --check.")
    return code
