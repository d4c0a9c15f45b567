"""--report: one self-contained HTML page for an incident review (who was on duty, and why, over a period), built
from the database alone: no network, no AtHoc credentials. Jinja2 (autoescaping) writes the page, pygal the SVG
charts; both are imported only here. The data is read by report_data.py."""
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import report_data
from audit_query import QueryError, TrailUnavailable, open_trail, parse_when, trail_failure
from config import Settings
from results import EXIT_CONFIG, EXIT_OK

TEMPLATE = Path(__file__).with_name("report_page.html")


def period(day: Optional[str], since: Optional[str], until: Optional[str], now: datetime) -> Tuple[datetime, datetime]:
    """The period asked for: --day (a whole day), --since [--until] (until defaults to now), else today."""
    if day is not None:
        try:
            start = datetime.strptime(day.strip(), "%d/%m/%Y")
        except ValueError:
            raise QueryError(f"--day {day!r}: not a date; write it as DD/MM/YYYY (for example 01/10/2024)") from None
        return start, start + timedelta(days=1)
    if since is not None or until is not None:
        start = parse_when(since, "--since") if since else now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = parse_when(until, "--until") if until else now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if end <= start:
            raise QueryError(f"--until {until!r} is not after --since {since!r}: give a period that moves forward")
        return start, end
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _style() -> Any:
    from pygal.style import Style
    return Style(background="white", plot_background="white", foreground="#222", foreground_strong="#000",
                 foreground_subtle="#888", font_family="sans-serif", colors=("#1f4e99", "#555555", "#b00020", "#000"),
                 label_font_size=11, major_label_font_size=11, legend_font_size=12, value_label_font_size=10)


def _config(start: datetime, end: datetime, **extra: Any) -> Dict[str, Any]:
    """Settings shared by the charts: the period on the x axis, no script, labels printed beside their dots."""
    form = "%H:%M" if end - start <= timedelta(days=2) else "%d/%m %H:%M"
    return dict(style=_style(), js=[], disable_xml_declaration=True, explicit_size=False, width=1000,
                show_x_guides=False, x_value_formatter=lambda moment: moment.strftime(form), legend_at_bottom=True,
                truncate_legend=-1, truncate_label=-1, print_labels=True, margin_right=60,
                xrange=(start.timestamp(), end.timestamp()), x_labels=_time_ticks(start, end), **extra)


def _time_ticks(start: datetime, end: datetime) -> List[datetime]:
    """At most 12 labels on whole minutes, every 1, 2, 5, ... minutes or hours, within the period."""
    span = (end - start).total_seconds() / 60
    step = next((m for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440) if span / m <= 12), 1440 * 7)
    first = start.replace(second=0, microsecond=0)
    minutes = first.hour * 60 + first.minute
    moment = first + timedelta(minutes=(-minutes) % step)
    ticks = []
    while moment <= end:
        if moment >= start:
            ticks.append(moment)
        moment += timedelta(minutes=step)
    return ticks


def _ticks(top: int) -> List[int]:
    step = max(1, -(-top // 5))
    return list(range(0, top + step, step))


def duty_chart(points: List[Tuple[datetime, int]], runs: List[Dict[str, Any]],
               gaps: List[Tuple[datetime, datetime]]) -> str:
    """The on-duty count over the period, each run a dot on the baseline (failed or late ones labelled), and each
    gap a thick dashed stretch; an SVG element."""
    import pygal
    top = max([n for _, n in points] + [1])
    base = -top / 12  # the strip below zero where the runs and the gaps are drawn
    start, end = points[0][0], points[-1][0] + (points[-1][0] - points[-2][0] if len(points) > 1 else timedelta(1))
    chart = pygal.DateTimeLine(**_config(start, end, height=360, show_dots=False, allow_interruptions=True,
                                         range=(2 * base, top * 1.05), y_labels=_ticks(top),
                                         y_title="people on duty"))
    steps: List[Tuple[datetime, int]] = []
    for t, n in points:  # a step: the count holds until the minute it changes
        if steps and steps[-1][1] != n:
            steps.append((t, steps[-1][1]))
        steps.append((t, n))
    chart.add("People on duty (AtHoc's field as bobosync set it)", steps, stroke_style={"width": 2})
    ok = [(r["start"], base) for r in runs if not (r["failed_run"] or r["late"])]
    bad = [{"value": (r["start"], base), "label": f"exit {r['exit_code']}" + (" late" if r["late"] else "")}
           for r in runs if r["failed_run"] or r["late"]]
    chart.add("Scheduled run, exit 0 (small dot)", ok, show_dots=True, dots_size=2, stroke=False)
    chart.add("Run failed or late (large dot, labelled)", bad, show_dots=True, dots_size=6, stroke=False)
    stretches: List[Any] = []
    for a, b in gaps:
        stretches += [(a, base), (b, base), None]
    chart.add("No run (thick dashed line)", stretches, show_dots=False,
              stroke_style={"width": 6, "dasharray": "8, 6"})
    return _svg(chart)


def _svg(chart: Any) -> str:
    """The chart as an SVG element without pygal's script (its tooltips' configuration): the page runs nothing."""
    from xml.etree import ElementTree
    root = chart.render_tree()
    for parent in list(root.iter()):
        for child in [c for c in parent if str(c.tag).rsplit("}", 1)[-1] == "script"]:
            parent.remove(child)
    return ElementTree.tostring(root, encoding="unicode")


def lane_chart(rows: List[Dict[str, Any]], start: datetime, end: datetime) -> str:
    """One person's lane: BOBO's events at their clocking time (top), AtHoc's updates when AtHoc confirmed them
    (middle) and decisions that sent nothing (bottom), each event joined to its outcome by a dashed line."""
    import pygal
    moments = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for r in rows for t in (r["at"], r["clocking_time"]) if t]
    chart = pygal.DateTimeLine(**_config(min(moments + [start]), max(moments + [end]), height=220, show_dots=True,
                                         dots_size=4, range=(-0.5, 2.5),
                                         y_labels=[{"label": "not sent", "value": 0},
                                                   {"label": "AtHoc set", "value": 1},
                                                   {"label": "BOBO event", "value": 2}]))
    events: List[Any] = []
    sets: List[Any] = []
    unsent: List[Any] = []
    links: List[Any] = []
    for row in rows:
        at = datetime.strptime(row["at"], "%Y-%m-%d %H:%M:%S")
        if row["clocking_time"]:
            clocked = datetime.strptime(row["clocking_time"], "%Y-%m-%d %H:%M:%S")
            events.append({"value": (clocked, 2), "label": row["event"] or ""})
            links += [(clocked, 2), (at, 1 if row["answer"] == "ok" else 0), None]
        if row["answer"] == "ok":
            sets.append({"value": (at, 1), "label": "on" if row["sent"] else "blank"})
        else:
            unsent.append({"value": (at, 0), "label": row["decision"]})
    chart.add("BOBO event (clocking time)", events, stroke=False)
    chart.add("AtHoc updated (when it confirmed)", sets, stroke=False)
    chart.add("Not sent or not applied (decision)", unsent, stroke=False)
    chart.add("Event to outcome", links, show_dots=False, allow_interruptions=True,
              stroke_style={"width": 1, "dasharray": "3, 3"}, print_labels=False)
    return _svg(chart)


def health(runs: List[Dict[str, Any]], gaps: List[Tuple[datetime, datetime]]) -> str:
    """healthy / degraded / failing, from the period's runs."""
    if not runs:
        return "no run recorded in this period"
    failed = sum(1 for r in runs if r["failed_run"])
    if runs[-1]["failed_run"]:
        last = runs[-1]
        return f"failing: the last run of the period exited {last['exit_code']} ({last['problems'] or 'see the log'})"
    if failed or gaps or any(r["late"] for r in runs):
        return f"degraded: {failed} failed run(s), {len(gaps)} gap(s) with no run, then recovered"
    return "healthy: every run of the period exited 0"


def build(conn: sqlite3.Connection, settings: Settings, start: datetime, end: datetime, people: Sequence[str],
          now: datetime) -> str:
    """The page's HTML."""
    import jinja2
    from markupsafe import Markup
    step, points = report_data.on_duty_series(conn, start, end)
    runs = report_data.runs(conn, start, end)
    gaps = report_data.gaps(runs, start, min(end, now))
    lanes = []
    for text in people:
        person = report_data.person_rows(conn, text, start, end)
        lanes.append({"name": person["_name"], "rows": person["rows"],
                      "chart": Markup(lane_chart(person["rows"], start, end))
                      if person["rows"] else ""})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        start=start, end=end, now=now, step=step, points=points, runs=runs, gaps=gaps, lanes=lanes,
        idle=sum(1 for r in runs if r["idle"]), health=health(runs, gaps), settings=settings,
        problems=report_data.problem_changes(runs),
        zone=now.astimezone().tzname() or "local",
        alerts=report_data.alerts(conn, start, end), alert_columns=report_data.ALERT_COLUMNS,
        files=report_data.files(conn, start, end, settings.csv_directory, settings.failed_files_directory),
        chart=Markup(duty_chart(points, runs, gaps)), version=_version())


def _version() -> str:
    from version import VERSION
    return VERSION


def run_report(settings: Settings, day: Optional[str], since: Optional[str], until: Optional[str],
               people: Sequence[str], out: Optional[str]) -> int:
    """--report: write the page and print its path; exit 2 for bad input, 1 when the database cannot be read."""
    now = datetime.now()
    try:
        start, end = period(day, since, until, now)
        conn = open_trail(settings.db_path)
        try:
            html = build(conn, settings, start, end, people, now)
        finally:
            conn.close()
        path = Path(out) if out else Path.cwd() / f"bobosync_report_{start:%Y-%m-%d}.html"
        path.write_text(html, encoding="utf-8")
    except (QueryError, TrailUnavailable, sqlite3.Error) as exc:
        return trail_failure(exc, settings.db_path)
    except OSError as exc:
        print(f"The report cannot be written to {exc.filename or out}: {exc.strerror or exc}; choose another --out",
              file=sys.stderr)
        return EXIT_CONFIG
    print(path.resolve())
    return EXIT_OK
