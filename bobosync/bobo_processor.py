"""bobosync: `python bobo_processor.py` is one scheduled run, from BOBO CSV files to AtHoc.

Windows Task Scheduler starts it every minute. A run takes the one-run-at-a-time lock,
syncs user mappings when due, sends every ready CSV file's newest duty events to AtHoc,
clears stale duty values when due, and exits 0 (done or nothing to do), 1 (something left
for the next run) or 2 (configuration error). `python bobo_processor.py --help` lists the
other commands. From a Python prompt in this folder:

    >>> from bobo_processor import BOBOProcessor
    >>> processor = BOBOProcessor()
    >>> processor.sync_worker_mappings()
"""
import sys
from typing import Any

from bobo_db import BOBODatabase
from cli import build_parser, entry, main, parse_args
from engine import BOBOProcessor

__all__ = ["BOBOProcessor", "BOBOEntry", "BOBODatabase", "main", "build_parser", "parse_args"]  # noqa: F822 (BOBOEntry: __getattr__)


def __getattr__(name: str) -> Any:
    """`bobo_processor.BOBOEntry`, imported on first use (the CSV reader is not needed by an idle run)."""
    if name == "BOBOEntry":
        from bobo_csv import BOBOEntry
        return BOBOEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(entry())
