"""--history and --on-duty-at: one person's story, and who AtHoc's duty field said was on duty at an instant,
answered from the audit trail alone (the database opened read-only: no network, no AtHoc credentials).

"On duty at T" is what AtHoc showed at T as bobosync set it: for each AtHoc user, the last value AtHoc confirmed
(a trail row whose answer is 'ok') recorded at or before T, and on duty when that value is not blank. The whole
force starts from the day's snapshot (audit_upkeep.take_snapshot) and replays that day up to T; one person is looked up
day by day backwards through the trail's index. Times are local; each answer also gives the BOBO clocking time.
"""
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from audit import DECISIONS, shown_time, superseded_events
from audit_upkeep import day_number, number_day, on_duty_rows, snapshot_state
from results import EXIT_CONFIG, EXIT_OK, EXIT_RETRY

WHEN_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
# the columns of a row in words (_row)
_ONE_DAY = ("SELECT t.id, t.at, p.employee_id, p.login, t.event, t.event_time, t.created, f.name, t.line, t.decision, "
            "t.sent, t.answer, t.detail, t.superseded FROM audit_trail t JOIN audit_people p ON p.id = t.person "
            "LEFT JOIN audit_files f ON f.id = t.file WHERE t.at / 1000000 = ? AND t.person = ? AND t.at >= ?")
_BY_ID = ("SELECT t.id, t.at, p.employee_id, p.login, t.event, t.event_time, t.created, f.name, t.line, t.decision, "
          "t.sent, t.answer, t.detail, t.superseded FROM audit_trail t JOIN audit_people p ON p.id = t.person "
          "LEFT JOIN audit_files f ON f.id = t.file WHERE t.id IN (SELECT id FROM temp.audit_wanted)")
_LAST_SET = ("SELECT id FROM audit_trail WHERE at / 1000000 = ? AND person = ? AND at <= ? AND answer = 'ok' "
             "ORDER BY id DESC LIMIT 1")


class QueryError(Exception):
    """Input the trail cannot answer (a date it cannot read, a person it has never seen): exit 2."""


class TrailUnavailable(Exception):
    """The database, or its audit trail, cannot be read: exit 1."""


def parse_when(text: str, option: str) -> datetime:
    """A local time as typed: DD/MM/YYYY HH:MM[:SS] (AtHoc's form), or YYYY-MM-DD HH:MM[:SS]; a date alone is
    its midnight."""
    value = " ".join(text.split())
    for form in WHEN_FORMATS:
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    raise QueryError(f"{option} {text!r}: not a date and time; write it as DD/MM/YYYY HH:MM[:SS] "
                     f"(for example \"01/10/2024 03:00\") or YYYY-MM-DD HH:MM[:SS]")


def open_trail(path: Path) -> sqlite3.Connection:
    """The database, read-only, with its audit trail; TrailUnavailable says why not."""
    if not path.is_file():
        raise TrailUnavailable(f"Database {path} does not exist yet: no run has happened, so there is no audit "
                               f"trail (check DB_PATH)")
    try:
        conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, timeout=5)
        conn.execute("SELECT 1 FROM audit_trail LIMIT 1").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise TrailUnavailable(f"Database {path} has no audit trail yet: it is recorded from this version of "
                                   f"bobosync on, by the first run that opens the database") from None
        raise TrailUnavailable(f"Database {path} cannot be read ({exc}): if another program holds it, close it "
                               f"and try again") from None
    except sqlite3.DatabaseError as exc:
        raise TrailUnavailable(f"Database {path} cannot be read ({exc})") from None
    return conn


# --- who is meant ---

class Person:
    """What a typed employee number or LOGIN_ID matched: audit_people ids, employee numbers and logins."""

    def __init__(self, text: str, rows: Sequence[Tuple[int, str, str]], by_employee: bool):
        self.text, self.by_employee = text, by_employee
        self.ids = [i for i, _, _ in rows]
        self.employees = sorted({e for _, e, _ in rows if e})
        self.logins = sorted({login for _, _, login in rows if login})

    @property
    def name(self) -> str:
        if self.by_employee:
            return f"{', '.join(self.employees)}" + (f" ({', '.join(self.logins)})" if self.logins else "")
        return f"{', '.join(self.logins)}" + (f" (employee {', '.join(self.employees)})" if self.employees else "")


def find_person(conn: sqlite3.Connection, text: str) -> Person:
    """The people an employee number (leading zeros ignored) or an AtHoc LOGIN_ID (any case) names."""
    typed = text.strip()
    if not typed:
        raise QueryError("no employee number or LOGIN_ID given")
    employee = _employee_number(typed)
    rows = conn.execute("SELECT id, employee_id, login FROM audit_people WHERE employee_id = ?", (employee,)).fetchall()
    if rows:
        return Person(typed, rows, True)
    rows = conn.execute("SELECT id, employee_id, login FROM audit_people WHERE login = ? COLLATE NOCASE",
                        (typed,)).fetchall()
    if rows:
        return Person(typed, rows, False)
    raise QueryError(f"{typed!r} is in no audit trail row: no event of that employee number, and no AtHoc LOGIN_ID "
                     f"of that name, was recorded (check the number or the login; the trail keeps "
                     f"AUDIT_RETENTION_DAYS days)")


def _employee_number(typed: str) -> str:
    """As bobo_csv.normalize_employee_id (a test checks they agree), without importing the CSV reader: ids made
    only of digits lose their leading zeros."""
    if typed.isdigit() and typed.isascii():
        return typed.lstrip("0") or "0"
    return typed


def _person_rows(conn: sqlite3.Connection, login: str) -> List[int]:
    return [i for (i,) in conn.execute("SELECT id FROM audit_people WHERE login = ?", (login,))]


# --- rows in words ---

def _event_words(event: Optional[int], clocking: Optional[int], file: Optional[str], line: Optional[int]) -> str:
    kind = {1: "book-on", 0: "book-off"}.get(event if event is not None else -1, "")
    where = f" ({file}:{line})" if file and line else f" ({file})" if file else ""
    if not kind:
        return f"row{where}" if where else "no event"
    return f"{kind} clocked {shown_time(clocking)}{where}"


def _value_words(value: Optional[str]) -> str:
    return "blank (off duty)" if value == "" else f"{value} (on duty)"


def describe(row: Dict[str, Any]) -> str:
    """One trail row in plain words."""
    d, login, detail, answer = row["decision"], row["login"], row["detail"], row["answer"]
    event = _event_words(row["_event"], row["_clocking"], row["file"], row["line"])
    sent = f"duty field set to {_value_words(row['sent'])}" if row["sent"] is not None else ""
    ref = row["superseded_by"]
    words = {
        "applied": f"sent: {sent}; AtHoc applied it" + (f" ({detail})" if detail else ""),
        "superseded": "not sent: superseded by the " + (_event_words(ref["_event"], ref["_clocking"], ref["file"],
                                                                     ref["line"]) if ref else "later event")
                      + " in the same batch" + (f" ({detail})" if detail else ""),
        "stale": f"not sent: {detail}",
        "pending": f"not sent: {detail}; kept as pending",
        "rejected": f"rejected: {detail}",
        "gone": f"sent to {login}, but AtHoc says that user does not exist ({answer}); kept as pending",
        "failed": f"sent to {login}, but AtHoc did not apply it ({answer}); its file is tried again",
        "dropped": f"pending event given up: {detail}",
        "expired": f"pending event given up: {detail}",
        "cleared": f"cleanup: {sent}: {detail}" if answer == "ok" else f"cleanup: {detail}",
        "moved": f"{detail}" + (f": {sent}" if sent else "") + (f"; AtHoc answered {answer}" if answer not in
                                                                 (None, "ok") else ""),
        "clear-future": f"--clear-future: {detail}",
    }.get(d, f"{d}: {DECISIONS.get(d, '')}")
    return f"{event}: {words}"


def _row(values: Sequence[Any]) -> Dict[str, Any]:
    (tid, at, employee, login, event, clocking, created, file, line, decision, sent, answer, detail,
     superseded) = values
    row = {"id": tid, "at": shown_time(at), "employee_id": employee, "login": login, "event": _kind(event),
           "clocking_time": shown_time(clocking) if clocking is not None else None,
           "record_created": shown_time(created) if created is not None else None, "file": file, "line": line,
           "decision": decision, "detail": detail, "sent": sent, "answer": answer, "superseded_by": None,
           "_event": event, "_clocking": clocking, "_superseded": superseded}
    row["text"] = describe(row)
    return row


def _superseded_rows(row: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The events a row's event superseded in its batch, each as a row of its own (decision 'superseded')."""
    by = {"id": row["id"], "event": row["event"], "clocking_time": row["clocking_time"], "file": row["file"],
          "line": row["line"], "_event": row["_event"], "_clocking": row["_clocking"]}
    rows = []
    for on, clocking, created, file, line, more in superseded_events(row["_superseded"]):
        lost = {**row, "id": None, "event": _kind(on), "clocking_time": shown_time(clocking),
                "record_created": shown_time(created) if created else None, "file": file, "line": line,
                "decision": "superseded", "sent": None, "answer": None, "superseded_by": by, "_event": on,
                "_clocking": clocking, "_superseded": None,
                "detail": f"the last of {more + 1} superseded events of this person in this batch; the {more} "
                          f"before it are not listed one by one" if more else None}
        lost["text"] = describe(lost)
        rows.append(lost)
    return rows


def _kind(event: Optional[int]) -> Optional[str]:
    return {1: "book-on", 0: "book-off"}.get(event) if event is not None else None


def _public(row: Dict[str, Any]) -> Dict[str, Any]:
    """A row for --json: without the raw values kept for the words."""
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    if out.get("decision") != "superseded":
        out["superseded_by"] = None
    if out.get("superseded_by"):
        out["superseded_by"] = {k: v for k, v in out["superseded_by"].items() if not k.startswith("_")}
    return out


# --- --history ---

def _trail_days(conn: sqlite3.Connection) -> Optional[Tuple[int, int]]:
    first = conn.execute("SELECT at / 1000000 FROM audit_trail ORDER BY at / 1000000 LIMIT 1").fetchone()
    last = conn.execute("SELECT at / 1000000 FROM audit_trail ORDER BY at / 1000000 DESC LIMIT 1").fetchone()
    return (first[0], last[0]) if first and last else None


def _days_between(first: int, last: int) -> List[int]:
    day, end, days = number_day(first), number_day(last), []
    while day <= end:
        days.append(day_number(day))
        day += timedelta(days=1)
    return days


def history(conn: sqlite3.Connection, text: str, since: Optional[datetime] = None) -> Dict[str, Any]:
    """A person's trail rows, newest first (since `since`): what --history prints and --history --json gives."""
    person = find_person(conn, text)
    span = _trail_days(conn)
    found: List[Tuple[Any, ...]] = []
    if span is not None:
        first = max(span[0], day_number(since.date())) if since else span[0]
        floor = int(since.strftime("%Y%m%d%H%M%S")) if since else 0
        for day in _days_between(first, span[1]):  # one index seek per day and person: the trail is kept by day
            for pid in person.ids:
                found += conn.execute(_ONE_DAY, (day, pid, floor)).fetchall()
    rows = []
    for values in sorted(found, key=lambda r: (r[1], r[0]), reverse=True):  # newest first
        row = _row(values)
        rows += [row] + _superseded_rows(row)
    return {"person": person.text, "employee_ids": person.employees, "logins": person.logins,
            "since": since.strftime("%Y-%m-%d %H:%M:%S") if since else None, "rows": rows, "_name": person.name}


def format_history(result: Dict[str, Any]) -> str:
    since = f" since {result['since']}" if result["since"] else ""
    lines = [f"History of {result['_name']}{since}, newest first ({len(result['rows'])} row(s); the time is when "
             f"bobosync recorded each decision, for a value sent once AtHoc had answered):"]
    for row in result["rows"]:
        who = f" [{row['employee_id']} {row['login']}]" if row["login"] else f" [{row['employee_id']}]"
        lines.append(f"  {row['at']}{who} {row['text']}")
    if not result["rows"]:
        lines.append("  (nothing recorded in that time)")
    return "\n".join(lines)


# --- --on-duty-at ---

def _rows_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> Dict[int, Dict[str, Any]]:
    """Trail rows by id, in one query (the ids in a temporary table: the database itself is opened read-only)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS audit_wanted (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.audit_wanted")
    conn.executemany("INSERT OR IGNORE INTO temp.audit_wanted (id) VALUES (?)", ((i,) for i in ids))
    return {values[0]: _row(values) for values in conn.execute(_BY_ID)}


def everyone_on_duty(conn: sqlite3.Connection, when: datetime) -> List[Dict[str, Any]]:
    """The rows that put each AtHoc user on duty as of `when`: the day's snapshot, then that day replayed."""
    until = int(when.strftime("%Y%m%d%H%M%S"))
    day = until // 1000000
    start = conn.execute("SELECT MAX(day) FROM audit_snapshot WHERE day <= ?", (day,)).fetchone()[0]
    state = snapshot_state(conn, start) if start is not None else {}
    on_duty_rows(conn, state, start if start is not None else 0, day, until)
    rows = _rows_by_id(conn, [tid for tid, value in state.values() if value])
    return sorted(rows.values(), key=lambda r: (r["employee_id"], r["login"]))


def _last_set(conn: sqlite3.Connection, ids: Sequence[int], until: int, first_day: int) -> Optional[int]:
    """The trail id of the last value AtHoc confirmed, at or before `until`, for these audit_people ids: the days
    are searched backwards from `until`'s."""
    day = number_day(until // 1000000)
    while day_number(day) >= first_day:
        found = [row[0] for pid in ids for row in conn.execute(_LAST_SET, (day_number(day), pid, until))]
        if found:
            return max(found)
        day -= timedelta(days=1)
    return None


def person_on_duty(conn: sqlite3.Connection, when: datetime, text: str) -> Dict[str, Any]:
    """Whether one person was on duty at `when`, per AtHoc user, and which trail row put each user so."""
    person = find_person(conn, text)
    until = int(when.strftime("%Y%m%d%H%M%S"))
    span = _trail_days(conn)
    users: List[Dict[str, Any]] = []
    for login in person.logins:
        tid = _last_set(conn, _person_rows(conn, login), until, span[0]) if span else None
        row = _rows_by_id(conn, [tid])[tid] if tid is not None else None
        theirs = row is not None and (not person.by_employee or row["employee_id"] in person.employees)
        users.append({"login": login, "on_duty": bool(theirs and row and row["sent"]), "row": row,
                      "theirs": theirs})
    on = any(u["on_duty"] for u in users)
    result = {"at": when.strftime("%Y-%m-%d %H:%M:%S"), "person": person.text, "employee_ids": person.employees,
              "logins": person.logins, "on_duty": on, "users": users, "_name": person.name}
    result["text"] = _person_words(result)
    return result


def _person_words(result: Dict[str, Any]) -> str:
    lines = [f"{result['_name']} {'was' if result['on_duty'] else 'was not'} on duty at {result['at']} by AtHoc's "
             f"duty field as bobosync set it."]
    if not result["users"]:
        lines.append("  No AtHoc user has held this employee number in the trail: nothing was ever set for it.")
    for user in result["users"]:
        row = user["row"]
        if row is None:
            lines.append(f"  {user['login']}: bobosync had set nothing in its duty field by then (in the trail).")
            continue
        held = "on duty" if user["on_duty"] else "blank (off duty)" if row["sent"] == "" else \
            f"{row['sent']}, for employee {row['employee_id']}"
        lines.append(f"  {user['login']}: {held} since {row['at']} (when AtHoc confirmed it), put there by the "
                     f"{row['text']}")
    return "\n".join(lines)


def _on_duty_line(row: Dict[str, Any]) -> str:
    where = f"{row['file']}:{row['line']}" if row["file"] else row["decision"]
    return (f"  {row['employee_id'] or '?':<10} {row['login']:<32} {row['clocking_time'] or '':<19}  {row['at']}  "
            f"{row['event'] or ''} {where} ({row['decision']})")


def format_everyone(when: datetime, rows: List[Dict[str, Any]]) -> str:
    lines = [f"On duty at {when:%Y-%m-%d %H:%M:%S} by AtHoc's duty field as bobosync set it (each update counted "
             f"from when AtHoc confirmed it): {len(rows)} user(s)",
             f"  {'employee':<10} {'login':<32} {'BOBO clocking time':<19}  {'set in AtHoc':<19}  by"]
    return "\n".join(lines + [_on_duty_line(row) for row in rows])


# --- the commands ---

def _on_duty_json(row: Dict[str, Any]) -> Dict[str, Any]:
    return {"employee_id": row["employee_id"], "login": row["login"], "value": row["sent"],
            "clocking_time": row["clocking_time"], "set_at": row["at"], "event": row["event"], "file": row["file"],
            "line": row["line"], "decision": row["decision"], "trail_id": row["id"]}


def run_query(db_path: Path, history_of: Optional[str], since: Optional[str], on_duty_at: Optional[Sequence[str]],
              as_json: bool) -> int:
    """--history / --on-duty-at: print the answer; exit 2 for bad input, 1 when the trail cannot be read."""
    import json
    try:
        since_time = parse_when(since, "--since") if since else None
        when = parse_when(on_duty_at[0], "--on-duty-at") if on_duty_at else None
        conn = open_trail(db_path)
        try:
            output = _answer(conn, history_of, since_time, when, on_duty_at, as_json)
        finally:
            conn.close()
    except (QueryError, TrailUnavailable, sqlite3.Error) as exc:
        return trail_failure(exc, db_path)
    print(json.dumps(output, indent=2) if as_json else output)
    return EXIT_OK


def trail_failure(exc: Exception, db_path: Path) -> int:
    """Say why a local command reading the trail stopped; exit 2 for bad input, 1 when the database cannot be
    read (--history, --on-duty-at and --report alike)."""
    import sys
    if isinstance(exc, QueryError):
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    if isinstance(exc, TrailUnavailable):
        print(exc, file=sys.stderr)
    else:
        print(f"Database {db_path} cannot be read ({exc}): if another program holds it, close it and try again",
              file=sys.stderr)
    return EXIT_RETRY


def _answer(conn: sqlite3.Connection, history_of: Optional[str], since: Optional[datetime],
            when: Optional[datetime], on_duty_at: Optional[Sequence[str]], as_json: bool) -> Any:
    if history_of is not None:
        result = history(conn, history_of, since)
        return _history_json(result) if as_json else format_history(result)
    assert when is not None and on_duty_at is not None
    if len(on_duty_at) > 1:
        one = person_on_duty(conn, when, on_duty_at[1])
        if as_json:
            return {"at": one["at"], "person": one["person"], "employee_ids": one["employee_ids"],
                    "logins": one["logins"], "on_duty": one["on_duty"], "text": one["text"],
                    "users": [{"login": u["login"], "on_duty": u["on_duty"],
                               "set_by": _public(u["row"]) if u["row"] else None} for u in one["users"]]}
        return one["text"]
    rows = everyone_on_duty(conn, when)
    if as_json:
        return {"at": f"{when:%Y-%m-%d %H:%M:%S}", "count": len(rows), "on_duty": [_on_duty_json(r) for r in rows]}
    return format_everyone(when, rows)


def _history_json(result: Dict[str, Any]) -> Dict[str, Any]:
    return {"person": result["person"], "employee_ids": result["employee_ids"], "logins": result["logins"],
            "since": result["since"], "rows": [_public(r) for r in result["rows"]]}
