"""--status's health line (issue 14): healthy, degraded or failing and why, in text and JSON."""
import json
import sqlite3
from datetime import datetime, timedelta

from mail_server import mail_env, mail_server
from testsite import Site

STAMP = (datetime.now() - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")


def status_of(site: Site) -> tuple:
    text = site.run("--status")
    return text.splitlines()[0], json.loads(site.run("--status", "--json"))


def test_status_starts_with_one_health_line_in_text_and_json(sim, tmp_path):
    """Rule: --status starts with healthy, degraded or failing and why, and --json has it first: a file in the
    failed folder degrades; an open alert problem "AtHoc cannot be reached" or no run for ten minutes fails."""
    with mail_server() as box:
        site = Site(sim, tmp_path)
        site.configure(**mail_env(box))
        site.run()
        line, report = status_of(site)
        assert line.startswith("Health:              healthy") and report["health"] == {"level": "healthy",
                                                                                       "reasons": []}
        assert list(report)[0] == "health"
        site.write_text("bad.csv", "BON,10001,too,few\r\n")
        site.run(expect=(3,))
        line, report = status_of(site)
        assert line == "Health:              degraded: 1 file(s) in the failed folder"
        assert report["health"]["level"] == "degraded"
        sim.fail("connect/token", status=503, times=None)
        site.write("a.csv", [site.ev("BON", "10001", STAMP)])
        site.run(expect=(1,))
        line, report = status_of(site)
        assert line.startswith("Health:              failing: AtHoc cannot be reached or refuses bobosync's calls")
        assert report["health"]["reasons"][-1] == "1 file(s) in the failed folder"
        assert "Alert problem:       AtHoc cannot be reached" in site.run("--status")
    conn = sqlite3.connect(str(site.db))
    with conn:
        conn.execute("UPDATE run_state SET value = datetime('now', 'localtime', '-11 minutes') WHERE key = 'last_run'")
    conn.close()
    assert "no run for 11 min: is the scheduled task running?" in status_of(site)[0]
