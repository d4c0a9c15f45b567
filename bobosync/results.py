"""What a run ends with: exit codes, the counts of a batch, and lists shortened for one log line."""
from typing import List, Sequence

EXIT_OK, EXIT_RETRY, EXIT_CONFIG = 0, 1, 2  # done or nothing to do; something left to retry; configuration
EXIT_ACTION = 3  # a person must act: credentials refused, a field unknown to AtHoc, a file set aside, ...
SHOWN_IDS = 20  # ids named in one aggregated warning


class BatchResult:
    """What one batch did; the run summary adds these up."""

    COUNTS = ("files", "rows", "rejected", "updated", "stale", "unmapped", "gone", "failed", "bad_files",
              "files_done", "files_retrying", "files_failed", "unreadable")

    def __init__(self, files: int = 0) -> None:
        self.files = files
        self.rows = self.rejected = self.updated = self.stale = self.unmapped = self.gone = self.failed = 0
        self.bad_files = self.files_done = self.files_retrying = self.files_failed = 0
        self.unreadable = 0  # files that could not be read: they stay, and the run exits 1
        self.outage = False
        self.logins_set: List[str] = []
        self.gone_ids: List[str] = []  # employees whose user AtHoc no longer knows: looked up again this run

    def add(self, other: "BatchResult") -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.outage = self.outage or other.outage
        self.logins_set.extend(other.logins_set)
        self.gone_ids.extend(other.gone_ids)

    def summary(self) -> str:
        return (f"{self.files} files, {self.rows} rows ({self.rejected} rejected), {self.updated} updated, "
                f"{self.stale} stale, {self.unmapped} pending (no AtHoc user yet), {self.gone} gone from AtHoc, "
                f"{self.failed} failed")


def shorten(ids: Sequence[str]) -> str:
    """The first SHOWN_IDS ids, sorted, and how many more."""
    shown = ", ".join(sorted(ids)[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")
