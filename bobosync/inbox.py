"""The CSV folder as an inbox: which files are ready, which were already confirmed, and moving them.

A file is ready once it has been quiet for FILE_SETTLE_SECONDS. A file AtHoc already
confirmed is recognised by name, size and modification time, or by its content hash,
so it is never sent twice. Moves never overwrite: an existing name gets a numbered suffix.
"""
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bobo_db import BOBODatabase, ProcessedFile
from config import Settings
from failpoints import file_fault
from file_hold import is_held_open, move_error_hint
from file_names import readable_name
from wall_clock import wall_time

log = logging.getLogger("bobosync")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_remembered(path: Path, st: os.stat_result, known: Sequence[ProcessedFile]) -> bool:
    """Whether a file is one AtHoc already confirmed: same name (the caller's lookup) and size, and the same
    modification time or, failing that, the same SHA-256."""
    same_size = [k for k in known if k.size == st.st_size]
    return bool(same_size) and (any(k.mtime_ns == st.st_mtime_ns for k in same_size)
                                or file_sha256(path) in {k.sha256 for k in same_size})


def move_without_overwrite(src: Path, dest_dir: Path) -> Path:
    """Move `src` into `dest_dir`; an existing name gets a numbered suffix, never overwritten."""
    import shutil
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / src.name
    n = 1
    while target.exists():
        target = dest_dir / f"{src.stem}.{n}{src.suffix}"
        n += 1
    try:
        file_fault(src, target)
        shutil.move(str(src), str(target))
    except OSError:
        # Across drives shutil.move copies: a copy cut short (a full drive) or whose source could not be
        # removed must not stay as a second, maybe truncated, "processed" copy, one more on every run.
        if src.exists() and target.is_file():
            try:
                target.unlink()
            except OSError:
                pass
        raise
    return target


def _not_a_file(item: "os.DirEntry[str]") -> str:
    """'name (what it is)' for a folder entry with a .csv name that is not a file."""
    if item.is_symlink():
        return f"{item.name} (a link to nothing)"
    return f"{item.name} ({'a folder' if item.is_dir() else 'not a regular file'})"


class Inbox:
    """The CSV folder of one run: listing, settling, identity, remembering, moves and the purge."""

    def __init__(self, settings: Settings, db: BOBODatabase):
        self.settings, self.db = settings, db
        self.settling = 0  # files modified too recently to read, at the last listing
        self.failed_moves = 0  # moves that failed: retried by the next run, so the run exits 1
        self.changed = 0  # files that changed after they were read: read again by the next run (exit 1)
        self.newest_mtime = 0.0  # the newest modification time of a *.csv file listed (alerts: is BOBO writing?)
        self._stats: Dict[Path, os.stat_result] = {}

    def ready_files(self) -> Tuple[List[Path], List[Path]]:
        """(files to send, oldest first; files AtHoc already confirmed). Nothing is moved."""
        listed = self._settled()
        if not listed:
            return [], []
        known = self.db.processed_files()
        ready: List[Path] = []
        done: List[Path] = []
        for path in listed:
            (done if self._remembered(path, known.get(readable_name(path.name), ())) else ready).append(path)
        return ready, done

    def _settled(self) -> List[Path]:
        """The folder's settled *.csv files, oldest first; warns about entries that are not files."""
        s = self.settings
        now = wall_time()
        found: List[Tuple[float, str, Path]] = []
        not_files: List[str] = []
        ahead: List[str] = []
        self.settling = 0
        with os.scandir(s.csv_directory) as entries:
            for item in entries:
                if not item.name.lower().endswith(".csv"):
                    continue
                try:
                    if not item.is_file():
                        not_files.append(_not_a_file(item))
                        continue
                    st = item.stat()
                except OSError:
                    continue  # gone since the listing
                self.newest_mtime = max(self.newest_mtime, st.st_mtime)
                if st.st_mtime - now > s.future_tolerance_minutes * 60:
                    ahead.append(item.name)  # a share's clock, or this server's set back: waiting would be forever
                elif now - st.st_mtime < s.file_settle_seconds:
                    self.settling += 1
                    continue
                if is_held_open(item.path):  # Windows: its writer still has it open, so it is not settled
                    log.info("%s is open in another program (BOBO may still be writing it); it waits for the next "
                             "run", readable_name(item.name))
                    continue
                path = Path(item.path)
                self._stats[path] = st
                found.append((st.st_mtime, item.name, path))
        found.sort()
        self._report_listing(not_files)
        if ahead:
            log.warning("%d file(s) in %s have a modification time more than FUTURE_TOLERANCE_MINUTES in the future "
                        "(the share's clock or this server's is off): read as settled: %s", len(ahead),
                        s.csv_directory, ", ".join(readable_name(n) for n in sorted(ahead)))
        return [path for _, _, path in found]

    def settling_note(self) -> str:
        """': 2 files still being written (...), for the next run', or '' when none is settling."""
        n = self.settling
        return (f": {n} file{'s' if n > 1 else ''} still being written (modified in the last "
                f"{self.settings.file_settle_seconds:g} s), for the next run" if n else "")

    def _report_listing(self, not_files: List[str]) -> None:
        s = self.settings
        if not_files:
            one = len(not_files) == 1
            log.warning("Skipped %d entr%s in %s named *.csv that %s not a file to read: %s; move %s away",
                        len(not_files), "y" if one else "ies", s.csv_directory, "is" if one else "are",
                        ", ".join(sorted(not_files)), "it" if one else "them")
        if self.settling:
            log.info("%d file(s) modified in the last %g s wait for the next run (BOBO may still be writing)",
                     self.settling, s.file_settle_seconds)

    def _remembered(self, path: Path, known: Sequence[ProcessedFile]) -> bool:
        return is_remembered(path, self._stats[path], known)

    def order_of(self, path: Path) -> str:
        """A file's place in the order of events with equal times: modification time, then name."""
        st = self._stats.get(path)
        return f"{st.st_mtime_ns if st else 0:020d} {readable_name(path.name)}"

    def identity(self, path: Path, size: int, sha256: str) -> ProcessedFile:
        """What the database remembers of a confirmed file: the bytes that were read and sent."""
        st = self._stats.get(path)
        return ProcessedFile(readable_name(path.name), size, st.st_mtime_ns if st else 0, sha256)

    def still_as_read(self, path: Path, size: int, sha256: str, listed: Optional[Path] = None) -> Optional[bool]:
        """True when the file still holds the bytes read, False when it changed, None when it is gone. A file
        not written since it was listed (`listed`: its path then; same size and modification time to the
        nanosecond) holds what was read: a settled file's time moves with any write, so no hash is needed."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if st.st_size != size:
            return False
        before = self._stats.get(listed or path)
        if before is not None and before.st_mtime_ns == st.st_mtime_ns and before.st_size == size:
            return True
        return file_sha256(path) == sha256

    def move_confirmed(self, path: Path, size: int, sha256: str) -> bool:
        """Move a confirmed file (checked with `unchanged` before its outcome was recorded) to the processed folder.

        The bytes are checked again after the move: a file written to between the check and the move is
        put back for the next run, so no row that was never sent ends up in the processed folder."""
        folder = self.settings.processed_directory
        try:
            target = move_without_overwrite(path, folder)
        except OSError as exc:
            self._move_failed(path, folder, "done", exc)
            return False
        if self.still_as_read(target, size, sha256, listed=path) is False:
            log.warning("%s changed while it was moved; it is put back for the next run", path.name)
            self.changed += 1
            self.move(target, self.settings.csv_directory, "changed while it was moved")
            return False
        log.info("Moved %s to %s (done: each event applied by AtHoc, stale, or kept as pending)", path.name, target)
        return True

    def unchanged(self, path: Path, size: int, sha256: str) -> bool:
        """Whether a file still holds the bytes that were read and sent; says why not (changed, or gone)."""
        state = self.still_as_read(path, size, sha256)
        if state is None:
            log.warning("%s was removed or moved away before bobosync finished with it; AtHoc's answers for it are "
                        "recorded", path.name)
        elif not state:
            log.warning("%s changed after it was read (rows added, or a new export with the same name): it stays "
                        "for the next run, which sends what is new", path.name)
            self.changed += 1
        return bool(state)

    def move(self, path: Path, folder: Path, why: str) -> bool:
        """Move a file into `folder`; a failure is logged and counted, never raised."""
        try:
            target = move_without_overwrite(path, folder)
        except OSError as exc:
            self._move_failed(path, folder, why, exc)
            return False
        log.info("Moved %s to %s (%s)", path.name, target, why)
        return True

    def _move_failed(self, path: Path, folder: Path, why: str, exc: OSError) -> None:
        if isinstance(exc, FileNotFoundError) and not path.exists():
            log.warning("%s was removed or moved away before it could be moved to %s (%s)", path.name, folder, why)
            return
        log.error("Cannot move %s to %s (%s): %s. Its records are recorded, so the next run only retries the "
                  "move; %s", path.name, folder, why, exc, move_error_hint(exc))
        self.failed_moves += 1

    def settle_confirmed(self, paths: List[Path]) -> None:
        """Files AtHoc already confirmed: moved to the processed folder when MOVE_PROCESSED_FILES is on."""
        if self.settings.move_processed_files:
            for path in paths:
                self.move(path, self.settings.processed_directory, "already confirmed by AtHoc")

    def purge_processed(self, now: datetime) -> int:
        """Delete processed files older than PROCESSED_FILES_PURGE_DAYS, and forget them."""
        s = self.settings
        cutoff = wall_time() - s.processed_files_purge_days * 86400
        removed = 0
        if s.processed_directory.is_dir():
            for path in s.processed_directory.iterdir():
                try:
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except OSError as exc:
                    log.warning("Cannot delete old processed file %s: %s", path, exc)
        self.db.forget_processed_before(now - timedelta(days=s.processed_files_purge_days))
        if removed:
            log.info("Deleted %d processed file(s) older than %d days", removed, s.processed_files_purge_days)
        return removed
