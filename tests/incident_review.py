"""The incident review of README.md and process.md, played for real: one night of BOBO files sent by the real engine
to the AtHoc simulator over HTTP, into a real SQLite file, then the questions asked with --history and
--on-duty-at through the real entry point. The clock of the runs (and the simulator's Date header with it) is set
to the night of 30 September 2024 (an injected clock: the check of this server's clock against AtHoc's uses the
real one), so the output is the same every time:

    python tests/incident_review.py        # prints each question and its answer

tests/test_audit.py checks that README.md and process.md show exactly this output.

The night: 10234 books on at 21:52 and never books off (the cleanup clears it in the morning); 10235's collar
number sits on the wrong AtHoc account until an administrator fixes it at 23:31; 10236's terminal clock is two
hours fast, so its book-on is rejected, and the officer books on again at 07:04; 55555 is a new starter whose
account gets the number at 01:15.
"""
import io
import os
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bobosync"))

from athoc_simulator import AtHocSimulator, connection_settings  # noqa: E402
from config import load_settings  # noqa: E402
from engine import BOBOProcessor  # noqa: E402

FIELD = "On-Duty-DTG"
DOMAIN = "demo.example"
NIGHT: List[Tuple[str, str, List[str], str]] = [  # when the run starts, what it is, files that arrived, a change
    ("30/09/2024 21:58:05", "run", ["bobo_2155.csv"], ""),
    ("30/09/2024 22:06:10", "run", ["bobo_2205.csv"], ""),
    ("30/09/2024 23:31:00", "sync", [], "collar 10235 fixed"),
    ("01/10/2024 01:15:20", "sync", [], "new starter 55555"),
    ("01/10/2024 07:10:00", "run", ["bobo_0705.csv"], ""),
    ("01/10/2024 09:00:00", "run", [], ""),
]
FILES = {
    "bobo_2155.csv": ["BON,10234,P0045512,20240930,215210,20240930215214,1,51.5072,-0.1276,8.0",
                      "BON,10235,P0045513,20240930,215340,20240930215341,1,51.5073,-0.1277,8.0",
                      "BON,55555,P0099999,20240930,215430,20240930215433,1,,,"],
    "bobo_2205.csv": ["BON,10236,P0045514,20241001,000500,20241001000502,1,,,"],  # the terminal's clock: 2 h fast
    "bobo_0705.csv": ["BOF,10235,P0045513,20241001,070200,20241001070201,1,,,",
                      "BON,10236,P0045514,20241001,065000,20241001065001,1,,,",
                      "BON,10236,P0045514,20241001,070400,20241001070405,1,,,",
                      "BOF,55555,P0099999,20241001,070300,20241001070304,1,,,"],
}
QUESTIONS = [
    ["--on-duty-at", "01/10/2024 03:00"],
    ["--on-duty-at", "01/10/2024 03:00", "10236"],
    ["--history", "10236"],
    ["--history", "10235"],
    ["--on-duty-at", "30/09/2024 23:00", "10235"],
    ["--history", "10234"],
]


def _moment(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M:%S")


def _settings_env(sim: AtHocSimulator, work: Path) -> Dict[str, str]:
    return {**connection_settings(sim), "CSV_DIRECTORY": str(work / "crown_files"),
            "PROCESSED_DIRECTORY": str(work / "processed_files"), "FAILED_FILES_DIRECTORY": str(work / "failed_files"),
            "DB_PATH": str(work / "bobo_mapping.db"), "LOG_DIRECTORY": str(work / "logs"), "FILE_SETTLE_SECONDS": "0",
            "MOVE_PROCESSED_FILES": "true", "AUTO_CLEANUP_HOURS": "10", "DUTY_STATUS_FIELD": FIELD}


def _people(sim: AtHocSimulator) -> None:
    for collar in ("10234", "10236"):
        sim.add_user(f"user{collar}@{DOMAIN}", **{"Collar-Number": collar, "FIRSTNAME": "PC", "LASTNAME": collar})
    sim.add_user(f"user10235@{DOMAIN}", FIRSTNAME="PC", LASTNAME="10235")  # its number went on the wrong account
    sim.add_user(f"user10299@{DOMAIN}", **{"Collar-Number": "10235", "FIRSTNAME": "PC", "LASTNAME": "10299"})


def _change(sim: AtHocSimulator, what: str) -> None:
    """What an AtHoc administrator did before a run."""
    if what == "collar 10235 fixed":
        sim.users[f"user10299@{DOMAIN}"]["Collar-Number"] = "10299"
        sim.users[f"user10235@{DOMAIN}"]["Collar-Number"] = "10235"
    elif what == "new starter 55555":
        sim.add_user(f"user55555@{DOMAIN}", **{"Collar-Number": "55555", "FIRSTNAME": "New", "LASTNAME": "Starter"})


def play_the_night(sim: AtHocSimulator, work: Path) -> Dict[str, str]:
    """Run the night, then ask the questions; the command line of each -> its output."""
    env = _settings_env(sim, work)
    (work / "crown_files").mkdir(parents=True)
    settings = load_settings(None, environ=env)
    _people(sim)
    for at, kind, files, change in NIGHT:
        now = _moment(at)
        _change(sim, change)
        for offset, name in enumerate(files):
            path = work / "crown_files" / name
            # bytes: write_text on Windows would turn each \r\n into \r\r\n (two lines to the CSV reader)
            path.write_bytes(("\r\n".join(FILES[name]) + "\r\n").encode("utf-8"))
            os.utime(path, (now.timestamp() - 60 + offset,) * 2)
        processor = BOBOProcessor(settings, clock=lambda now=now: now)
        processor.lock_held = True
        try:
            processor.run() if kind == "run" else processor.sync_now()
        finally:
            processor.close()
    return {" ".join(_quoted(q)): ask(env, q) for q in QUESTIONS}


def _quoted(argv: List[str]) -> List[str]:
    return [f'"{a}"' if " " in a else a for a in argv]


def ask(env: Dict[str, str], argv: List[str]) -> str:
    """A question through the real entry point (main()), with the night's settings; its output."""
    import bobo_processor
    saved = dict(os.environ)
    os.environ.update(env)
    out = io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(out):
            code = bobo_processor.main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert code == 0, out.getvalue()
    return out.getvalue().rstrip("\n")


def transcript(answers: Dict[str, str]) -> str:
    """The questions and answers as the documents show them."""
    return "\n\n".join(f"$ python bobosync/bobo_processor.py {q}\n{a}" for q, a in answers.items())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bobosync-incident-") as tmp, AtHocSimulator(org="DEMO") as sim:
        print(transcript(play_the_night(sim, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
