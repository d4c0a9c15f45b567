"""Reading BOBO CSV files (docs/input-format.md): both layouts, bad rows, encodings.

Files are streamed row by row, so a file of any size costs memory only for the
events kept by the caller. A bad row is rejected with `file:line: reason` and the
file's other rows go on.
"""
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from athoc_types import duty_value
from failpoints import refuse_read
from file_names import readable_name
from text_encoding import READ_CHUNK, HashingReader, detect_encoding, without_bom  # noqa: F401 (callers)

LAYOUT_A_FIELDS = 10
TRAIL_REJECTIONS = 10_000  # rejected rows per file the audit trail records one by one (the rest: counted)
EMPLOYEE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
HEADER_WORD = re.compile(r"[A-Za-z][A-Za-z0-9 _./()#-]*")
TIMESTAMP_B = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
ON_WORDS = {"bon", "onduty"}
OFF_WORDS = {"bof", "offduty"}


@lru_cache(maxsize=4096)
def _repeated_minute(minute: str) -> bool:
    local = datetime(int(minute[:4]), int(minute[4:6]), int(minute[6:8]), int(minute[8:10]), int(minute[10:12]))
    first, second = local.replace(fold=0), local.replace(fold=1)
    if first.astimezone().utcoffset() == second.astimezone().utcoffset():
        return False
    # offsets differ both in the repeated hour and in the skipped one; only the repeated one round-trips
    return second.astimezone(timezone.utc).astimezone().replace(tzinfo=None) == local


def is_repeated_local_time(event_time: str) -> bool:
    """True when YYYYMMDDHHMMSS falls in the hour the clocks repeat (autumn's daylight-saving change).

    Local times there do not say which of two events came first, so arrival order decides."""
    try:
        return _repeated_minute(event_time[:12])
    except (ValueError, OverflowError, OSError):
        return False


def supersedes(incoming: Tuple, current: Tuple) -> bool:
    """Whether an event that arrived later, with order key `incoming`, replaces the one with `current`.

    Keys start with the event time. Normally the greater key wins; inside the repeated hour of a
    daylight-saving change, where local times cannot be ordered, the later arrival wins."""
    if incoming > current:
        return True
    if incoming == current or incoming[0][:10] != current[0][:10]:
        return False
    return is_repeated_local_time(incoming[0]) and is_repeated_local_time(current[0])


class RowError(ValueError):
    """A row that cannot become a duty event; the message says why."""


def normalize_employee_id(raw: str) -> str:
    """Trim; ids made only of digits lose their leading zeros ('01234' is '1234')."""
    value = raw.strip()
    if _is_digits(value):
        return value.lstrip("0") or "0"
    return value


def _check_employee_id(raw: str) -> str:
    value = raw.strip()
    if not (len(value) <= 32 and _is_digits(value)):  # the usual collar number needs no regular expression
        if not value:
            raise RowError("empty employee id")
        if not EMPLOYEE_ID.fullmatch(value):
            shown = value.encode("ascii", "backslashreplace").decode()[:40]
            raise RowError(f"employee id {shown!r} is not 1-32 letters, digits, '.', '_' or '-'")
    return normalize_employee_id(value)


def _is_digits(text: str) -> bool:
    return text.isdigit() and text.isascii()  # isdigit alone accepts other scripts' digits


@lru_cache(maxsize=4096)
def _is_real_date(date: str) -> bool:
    try:
        datetime(int(date[:4]), int(date[4:6]), int(date[6:]))
    except ValueError:
        return False
    return True


def _valid_stamp(stamp: str) -> bool:
    """A real date and time as 14 digits, YYYYMMDDHHMMSS (checked by slicing: rows are many)."""
    return (len(stamp) == 14 and _is_digits(stamp) and stamp[8:10] < "24" and stamp[10:12] < "60"
            and stamp[12:] < "60" and _is_real_date(stamp[:8]))


def _stamp_error(date: str, time: str, what: str) -> RowError:
    if not (len(date) == 8 and _is_digits(date)):
        return RowError(f"{what} date {date!r} is not YYYYMMDD")
    if not (len(time) == 6 and _is_digits(time)):
        return RowError(f"{what} time {time!r} is not HHMMSS")
    return RowError(f"{what} {date} {time} is not a real date and time")


def _stamp(date: str, time: str, what: str) -> str:
    """'YYYYMMDD' + 'HHMMSS' as a checked, sortable 'YYYYMMDDHHMMSS'."""
    stamp = date + time
    if len(date) == 8 and _valid_stamp(stamp):
        return stamp
    raise _stamp_error(date, time, what)


def _duty_word(raw: str) -> Optional[bool]:
    word = raw.strip().lower().replace(" ", "").replace("_", "")
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    return None


@dataclass(frozen=True)
class BOBOEntry:
    """One duty event: an employee booked on (on_duty) or off at event_time."""

    employee_id: str
    on_duty: bool
    event_time: str  # YYYYMMDDHHMMSS, local time: sorts as it happened
    record_created: str = ""  # YYYYMMDDHHMMSS or '' (tie-break only)
    source_file: str = ""
    line: int = 0

    @property
    def athoc_value(self) -> str:
        """The duty field's value: 'dd/MM/yyyy HH:mm:ss' for a book-on, '' for a book-off."""
        return duty_value(self.event_time) if self.on_duty else ""

    @classmethod
    def from_csv_row(cls, row: Sequence[str], source_file: str = "", line: int = 0) -> "BOBOEntry":
        """An event from a layout A row (the 10-field BOBO export); RowError if it is not one."""
        count = len(row)
        while count > LAYOUT_A_FIELDS and not row[count - 1].strip():
            count -= 1  # trailing commas
        if count != LAYOUT_A_FIELDS:
            raise RowError(f"expected {LAYOUT_A_FIELDS} fields, found {count}")
        kind = row[0].strip().upper()
        if kind != "BON" and kind != "BOF":
            raise RowError(f"unknown transaction type {row[0].strip()[:20]!r} (expected BON or BOF)")
        employee = _check_employee_id(row[1])
        event_time = _stamp(row[3].strip(), row[4].strip(), "clocking")
        created = row[5].strip()
        if created:
            if len(created) != 14:
                raise RowError(f"record created {created[:20]!r} is not YYYYMMDDHHMMSS")
            if not _valid_stamp(created):
                raise _stamp_error(created[:8], created[8:], "record created")
        return cls(employee, kind == "BON", event_time, created, source_file, line)

    @classmethod
    def from_simple_row(cls, row: Sequence[str], columns: Dict[str, int], source_file: str = "",
                        line: int = 0) -> "BOBOEntry":
        """An event from a layout B row (Employee_ID, Status, Timestamp)."""
        needed = max(columns.values()) + 1
        fields = [f.strip() for f in row]
        if len(fields) < needed:
            raise RowError(f"expected {needed} fields, found {len(fields)}")
        employee = _check_employee_id(fields[columns["employeeid"]])
        status = fields[columns["status"]]
        on_duty = _duty_word(status)
        if on_duty is None:
            raise RowError(f"unknown status {status[:20]!r} (expected On Duty, Off Duty, BON or BOF)")
        m = TIMESTAMP_B.fullmatch(fields[columns["timestamp"]])
        if not m:
            raise RowError(f"timestamp {fields[columns['timestamp']][:30]!r} is not YYYY-MM-DD HH:MM:SS")
        event_time = _stamp("".join(m.groups()[:3]), "".join(m.groups()[3:]), "timestamp")
        return cls(employee, on_duty, event_time, "", source_file, line)


def _header_columns(fields: List[str]) -> Optional[Dict[str, int]]:
    """Column positions if `fields` is a layout B header (names matched ignoring case, spaces, _)."""
    names = [f.strip().lower().replace(" ", "").replace("_", "") for f in fields]
    wanted = ("employeeid", "status", "timestamp")
    if all(w in names for w in wanted):
        return {w: names.index(w) for w in wanted}
    return None


def _looks_like_header(fields: List[str]) -> bool:
    values = [f.strip() for f in fields if f.strip()]
    return bool(values) and values[0].upper() not in ("BON", "BOF") and all(
        HEADER_WORD.fullmatch(v) for v in values)


class _Lines:
    """A file's lines, remembering those the csv reader took for the row it is reading."""

    def __init__(self, handle: Iterator[str]):
        self.handle = handle
        self.taken: List[str] = []
        self.first = True

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        text = next(self.handle)
        if self.first:  # a byte-order mark is never part of the first field, whatever the decoding
            self.first = False
            text = without_bom(text)
        self.taken.append(text)
        return text


def _one_line(text: str) -> Union[List[str], str]:
    """The fields of one line alone, or why it cannot be read."""
    try:
        row = next(csv.reader((text,), skipinitialspace=True), [])
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        return f"unreadable CSV: {exc}"
    if any("\n" in cell or "\r" in cell for cell in row):
        return "a quote opened on this line is never closed"
    return row


def _rows(handle: Iterator[str]) -> Iterator[Tuple[int, Union[List[str], str]]]:
    """(line number, fields) for each line, or (line number, reason) for a line that cannot be read.

    A BOBO record is one line. A stray quote would make the csv module read on into the next lines
    and swallow their records, so such lines are read again one by one."""
    lines = _Lines(handle)
    reader = csv.reader(lines, skipinitialspace=True)
    number = 0
    while True:
        lines.taken.clear()
        try:
            row: Union[List[str], str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = f"unreadable CSV: {exc}"
        if len(lines.taken) == 1:
            number += 1
            yield number, row
            continue
        for text in list(lines.taken):
            number += 1
            yield number, _one_line(text)


@dataclass
class CsvFile:
    """One BOBO file being read: `events()` yields its valid events and counts the rest."""

    path: Path
    rows: int = 0
    valid: int = 0
    rejected: List[Tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0
    encoding: Optional[str] = None
    not_text: bool = False
    max_kept_rejections: int = 50
    size: int = -1  # bytes read and their SHA-256, once events() has read the whole file
    sha256: str = ""
    not_after: str = ""  # YYYYMMDDHHMMSS: a later clocking time is a bad row (a wrong clock, a typo)
    # (line, reason, employee id as written, or '') of the first TRAIL_REJECTIONS rejected rows, for the audit trail
    trail_rejected: List[Tuple[int, str, str]] = field(default_factory=list)

    @property
    def is_bad(self) -> bool:
        """A bad file goes to the failed folder: not text, or rejected rows and no valid one."""
        return self.not_text or (self.valid == 0 and self.rejected_count > 0)

    def _reject(self, line: int, reason: str, employee: str = "") -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.max_kept_rejections:
            self.rejected.append((line, reason))
        if len(self.trail_rejected) < TRAIL_REJECTIONS:
            self.trail_rejected.append((line, reason, employee))

    def events(self) -> Iterator[BOBOEntry]:
        """The file's valid events, in file order. OSError (gone, locked) propagates."""
        refuse_read(self.path)
        self.encoding = detect_encoding(self.path)
        if self.encoding is None:
            self.not_text = True
            return
        hashing = HashingReader(open(self.path, "rb"))  # closed with the text wrapper
        with io.TextIOWrapper(io.BufferedReader(hashing, READ_CHUNK), encoding=self.encoding, newline="") as handle:
            yield from self._entries(handle)
            self.size, self.sha256 = hashing.size, hashing.digest.hexdigest()

    def _entries(self, handle: Iterator[str]) -> Iterator[BOBOEntry]:
        """The valid events of the decoded lines; the first line may be a header."""
        name = readable_name(self.path.name)
        columns: Optional[Dict[str, int]] = None
        first = True
        for line, row in _rows(handle):
            if isinstance(row, str):
                self.rows += 1
                self._reject(line, row)
                continue
            if not (row and row[0].strip()) and not any(cell.strip() for cell in row):
                continue  # blank line
            if first:
                first = False
                columns = _header_columns(row)
                if columns is not None or _looks_like_header(row):
                    continue
            self.rows += 1
            try:
                if columns is not None:
                    entry = BOBOEntry.from_simple_row(row, columns, name, line)
                else:
                    entry = BOBOEntry.from_csv_row(row, name, line)
            except RowError as exc:
                self._reject(line, str(exc), _written_id(row, columns))
                continue
            if self.not_after and entry.event_time > self.not_after:
                self._reject(line, _future_reason(entry), entry.employee_id)
                continue
            self.valid += 1
            yield entry

    def rejection_lines(self) -> List[str]:
        """'file:line: reason' for the kept rejections, plus a count of the rest."""
        name = readable_name(self.path.name)
        lines = [f"{name}:{line}: {reason}" for line, reason in self.rejected]
        if self.rejected_count > len(self.rejected):
            lines.append(f"{name}: and {self.rejected_count - len(self.rejected)} more rejected rows")
        return lines


def _written_id(row: Sequence[str], columns: Optional[Dict[str, int]]) -> str:
    """The employee id of a rejected row as the trail keeps it: normalized when it is a valid id, else ''."""
    at = columns["employeeid"] if columns is not None else 1
    try:
        return _check_employee_id(row[at])
    except (IndexError, RowError):
        return ""


def _future_reason(entry: BOBOEntry) -> str:
    t = entry.event_time
    return (f"employee {entry.employee_id}: clocking time {t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]} "
            f"is ahead of this server's clock by more than FUTURE_TOLERANCE_MINUTES (a terminal's clock, or a typo)")


def parse_csv_file(path: Path) -> Tuple[List[BOBOEntry], CsvFile]:
    """Every valid event of a file, and its reading report (for small files and the REPL)."""
    report = CsvFile(Path(path))
    return list(report.events()), report
