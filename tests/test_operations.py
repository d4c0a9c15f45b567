"""The operator commands end to end (issue 4): --dry-run, --check, --status [--json], --demo,
--help, --env-file and --sync-mappings, each run through the real entry point against the
AtHoc simulator on loopback. Assertions are on AtHoc's state, the files and the database."""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from athoc_simulator import AtHocSimulator
from conftest import ENTRY, ROOT, SETTING_NAMES, env_for
from private_ca import PrivateCA

FIELD = "On-Duty-DTG"
U1, U2, U3 = "user10001@demo.example", "user10002@demo.example", "user10003@demo.example"


def clean_environ() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}


def cli(env: Optional[Dict[str, str]], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python bobosync/bobo_processor.py ARGS` from the repository root, as Task Scheduler would."""
    full_env = {**clean_environ(), **(env or {})}
    return subprocess.run([sys.executable, ENTRY, *args], cwd=str(ROOT), env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines_with(output: str, verdict: str) -> List[str]:
    return [line for line in output.splitlines() if line.startswith(verdict + " ")]


def write_csv(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(db: Path, sql: str) -> List[Tuple]:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def listing(folder: Path) -> List[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "crown_files").mkdir()
    return tmp_path


@pytest.fixture
def tls_ca(tmp_path_factory):
    return PrivateCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_sim(tls_ca):
    """The simulator over HTTPS, with a certificate from a private CA nobody trusts by default."""
    with AtHocSimulator(org="DEMO", ssl_context=tls_ca.server_context()) as simulator:
        simulator.seed_users(3)
        yield simulator


# --- --dry-run ---

def test_dry_run_sends_nothing_moves_nothing_changes_no_duty_state_and_a_real_run_then_applies_everything(
        sim, work):
    sim.seed_users(5)
    env = env_for(sim, work)
    db = work / "bobo_mapping.db"
    write_csv(work / "crown_files", "first.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")
    assert cli(env).returncode == 0  # a real run: mappings synced, 10001 on duty, duty_state holds it
    assert sim.attribute(U1, FIELD) == "01/01/2024 08:00:00"

    write_csv(work / "crown_files", "second.csv",
              "BOF,10001,P1,20240101,160000,20240101160010,1,,,\n"
              "BON,10002,P2,20240101,090000,20240101090010,1,,,\n"
              "BON,10003,P3,20240101,093000,20240101093010,1,,,\n")
    sent_before = len(sim.requests_to("SyncByCommonNames"))
    searches_before = len(sim.requests_to("search/basic"))
    values_before = {login: sim.attribute(login, FIELD) for login in (U1, U2, U3)}
    duty_before = rows(db, "SELECT * FROM duty_state ORDER BY employee_id")
    files_before = listing(work / "crown_files"), listing(work / "processed_files"), listing(work / "failed_files")
    log_before = rows(db, "SELECT COUNT(*) FROM processing_log")

    dry = cli(env, "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert len(sim.requests_to("SyncByCommonNames")) == sent_before  # nothing written to AtHoc
    assert len(sim.requests_to("search/basic")) == searches_before  # mappings held: no mapping sync
    assert {login: sim.attribute(login, FIELD) for login in (U1, U2, U3)} == values_before
    assert rows(db, "SELECT * FROM duty_state ORDER BY employee_id") == duty_before
    assert rows(db, "SELECT COUNT(*) FROM processing_log") == log_before
    assert rows(db, "SELECT COUNT(*) FROM file_attempts") == [(0,)]
    assert (listing(work / "crown_files"), listing(work / "processed_files"),
            listing(work / "failed_files")) == files_before
    # the plan names each login, its new value and the source file
    for login in (U1, U2, U3):
        assert login in dry.stdout
    assert "01/01/2024 09:00:00" in dry.stdout and "second.csv" in dry.stdout
    assert str(work / "processed_files") in dry.stdout  # where the file would go

    real = cli(env)

    assert real.returncode == 0, real.stdout + real.stderr
    assert sim.attribute(U1, FIELD) == ""  # booked off
    assert sim.attribute(U2, FIELD) == "01/01/2024 09:00:00"
    assert sim.attribute(U3, FIELD) == "01/01/2024 09:30:00"
    assert listing(work / "crown_files") == []
    assert listing(work / "processed_files") == ["first.csv", "second.csv"]
    assert rows(db, "SELECT employee_id, on_duty, source_file FROM duty_state ORDER BY employee_id") == [
        ("10001", 0, "second.csv"), ("10002", 1, "second.csv"), ("10003", 1, "second.csv")]


def test_dry_run_on_a_new_install_only_reads_from_athoc(sim, work):
    sim.seed_users(3)
    env = env_for(sim, work)
    write_csv(work / "crown_files", "a.csv", "BON,10002,P2,20240101,090000,20240101090010,1,,,\n")

    dry = cli(env, "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert sim.requests, "the mapping sync reads users from AtHoc"
    assert all(r.path.lower().endswith(("/connect/token", "/users/search/basic")) for r in sim.requests)
    assert sim.requests_to("SyncByCommonNames") == []
    assert sim.attribute(U2, FIELD) is None
    db = work / "bobo_mapping.db"
    assert len(rows(db, "SELECT * FROM worker_mapping")) == 3  # the one change a dry run may make
    for table in ("duty_state", "processed_files", "file_attempts", "processing_log"):
        assert rows(db, f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    assert listing(work / "crown_files") == ["a.csv"]
    assert U2 in dry.stdout and "01/01/2024 09:00:00" in dry.stdout


def test_dry_run_does_not_move_a_file_already_confirmed_by_athoc(sim, work):
    """A file confirmed while MOVE_PROCESSED_FILES=false stays in CSV_DIRECTORY; once the operator
    switches moving on, --dry-run must still leave it where it is."""
    sim.seed_users(2)
    write_csv(work / "crown_files", "kept.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")
    assert cli(env_for(sim, work, MOVE_PROCESSED_FILES="false")).returncode == 0
    assert listing(work / "crown_files") == ["kept.csv"]
    sent = len(sim.requests_to("SyncByCommonNames"))

    dry = cli(env_for(sim, work, MOVE_PROCESSED_FILES="true"), "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert listing(work / "crown_files") == ["kept.csv"]
    assert listing(work / "processed_files") == []
    assert len(sim.requests_to("SyncByCommonNames")) == sent



def test_dry_run_when_athoc_cannot_give_the_mappings_says_it_cannot_tell_and_exits_1(sim, work):
    """No mapping and AtHoc unreachable: every employee would look unmapped, which would be a wrong plan."""
    write_csv(work / "crown_files", "a.csv", "BON,10002,P2,20240101,090000,20240101090010,1,,,\n")
    env = env_for(sim, work, ATHOC_SERVER_URL=f"http://127.0.0.1:{closed_port()}")

    dry = cli(env, "--dry-run")

    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert "who would be updated cannot be told; 1 file(s) would wait" in dry.stdout
    assert "no AtHoc user in the mappings" not in dry.stdout + dry.stderr  # not reported as unmapped
    assert listing(work / "crown_files") == ["a.csv"]
    assert rows(work / "bobo_mapping.db", "SELECT COUNT(*) FROM worker_mapping") == [(0,)]


def test_dry_run_with_a_missing_csv_folder_is_a_configuration_error(sim, work):
    env = env_for(sim, work, CSV_DIRECTORY=str(work / "no_such_folder"))

    dry = cli(env, "--dry-run")

    assert dry.returncode == 2 and "Traceback" not in dry.stdout + dry.stderr, dry.stdout + dry.stderr
    assert f"CSV_DIRECTORY {work / 'no_such_folder'} does not exist" in dry.stdout + dry.stderr
    assert not (work / "no_such_folder").exists() and sim.requests == []
    assert not (work / "processed_files").exists() and not (work / "failed_files").exists()  # nothing made


# --- --check ---

def test_check_passes_on_a_healthy_setup(sim, work):
    sim.seed_users(3)

    result = cli(env_for(sim, work), "--check")

    assert result.returncode == 0, result.stdout
    assert lines_with(result.stdout, "FAIL") == []
    passed = " ".join(lines_with(result.stdout, "PASS"))
    for check in ("settings", "CSV_DIRECTORY", "PROCESSED_DIRECTORY", "FAILED_FILES_DIRECTORY", "LOG_DIRECTORY",
                  "database", "DNS", "TCP connect", "proxy", "token", "user search"):
        assert check in passed, check
    assert sim.requests_to("connect/token", "POST") and sim.requests_to("search/basic", "GET")
    assert sim.requests_to("SyncByCommonNames") == []  # --check writes nothing to AtHoc
    assert not (work / "processed_files").exists() and not (work / "logs").exists()  # a check creates nothing
    assert "does not exist yet: a run creates it" in result.stdout


def test_check_warns_when_it_finds_the_database_damaged_and_leaves_it_to_the_next_run(sim, work):
    """Rule: a check changes nothing: a damaged database is a WARN saying the next run sets it aside, and the
    file is left as it is."""
    sim.seed_users(3)
    db = work / "bobo_mapping.db"
    damaged = bytes((i * 7919 + 13) % 251 for i in range(20000))
    db.write_bytes(damaged)

    result = cli(env_for(sim, work), "--check")

    assert result.returncode == 0, result.stdout  # a WARN: the next run carries on with a new database
    warns = [line for line in lines_with(result.stdout, "WARN") if line.split()[1] == "database"]
    assert len(warns) == 1 and "the next run sets it aside" in warns[0], result.stdout
    assert list(work.glob("bobo_mapping.db.damaged-*")) == [] and db.read_bytes() == damaged


def test_check_fails_naming_the_token_step_on_a_wrong_password(sim, work):
    sim.seed_users(3)

    result = cli(env_for(sim, work, PASSWORD="Wr0ng-Passw0rd"), "--check")

    assert result.returncode == 1
    fails = lines_with(result.stdout, "FAIL")
    assert len(fails) == 1 and "token" in fails[0] and "PASSWORD" in fails[0]
    assert "Wr0ng-Passw0rd" not in result.stdout + result.stderr
    assert sim.requests_to("search/basic") == []  # the users step is skipped after the token failed


def test_check_fails_naming_tcp_connect_on_an_unreachable_host(work):
    port = closed_port()
    with AtHocSimulator() as live:
        env = env_for(live, work, ATHOC_SERVER_URL=f"http://127.0.0.1:{port}")

        result = cli(env, "--check")

        assert live.requests == []
    assert result.returncode == 1
    fails = lines_with(result.stdout, "FAIL")
    assert len(fails) == 1 and "TCP connect" in fails[0] and f"127.0.0.1:{port}" in fails[0]
    assert not any("token" in line for line in lines_with(result.stdout, "PASS"))


def test_check_fails_on_an_untrusted_certificate_and_names_ssl_cert_path(tls_sim, work):
    result = cli(env_for(tls_sim, work), "--check")

    assert result.returncode == 1
    fails = lines_with(result.stdout, "FAIL")
    assert len(fails) == 1 and "TLS" in fails[0] and "SSL_CERT_PATH" in fails[0]
    assert tls_sim.requests == []  # no credentials were sent to an unverified server


def test_check_passes_over_tls_when_ssl_cert_path_names_the_private_ca(tls_sim, tls_ca, work):
    ca_file = work / "private-ca.pem"
    ca_file.write_bytes(tls_ca.cert_pem)

    result = cli(env_for(tls_sim, work, SSL_CERT_PATH=str(ca_file)), "--check")

    assert result.returncode == 0, result.stdout
    assert lines_with(result.stdout, "FAIL") == []
    tls = [line for line in lines_with(result.stdout, "PASS") if line.split()[1] == "TLS"]
    assert len(tls) == 1 and "TLSv1." in tls[0] and "issuer" in tls[0] and "trustme" in tls[0]
    assert tls_sim.requests_to("connect/token", "POST") and tls_sim.requests_to("search/basic")


def test_check_fails_when_no_user_of_the_organisation_has_the_collar_field(sim, work):
    sim.seed_users(3)

    result = cli(env_for(sim, work, COLLAR_ID_FIELD="NoSuchField"), "--check")

    # all 3 users were read and none has the field: the mapping would be empty, so the site is not ready
    assert result.returncode == 1, result.stdout
    fails = lines_with(result.stdout, "FAIL")
    assert len(fails) == 1 and "NoSuchField" in fails[0] and "COLLAR_ID_FIELD" in fails[0]
    searched = sim.requests_to("search/basic")
    assert searched and "NoSuchField" in searched[-1].query.get("fields", "")


def test_check_warns_but_passes_when_no_user_of_a_sample_has_the_collar_field(sim, work):
    sim.seed_users(150)  # --check reads one page of 100: the others may have collar numbers

    result = cli(env_for(sim, work, COLLAR_ID_FIELD="NoSuchField"), "--check")

    # WARN is not FAIL: the exit code stays 0, and the WARN line names the field and the setting
    assert result.returncode == 0, result.stdout
    assert lines_with(result.stdout, "FAIL") == []
    warns = [w for w in lines_with(result.stdout, "WARN") if "COLLAR_ID_FIELD" in w]  # (and one on the duty field)
    assert len(warns) == 1 and "NoSuchField" in warns[0] and "COLLAR_ID_FIELD" in warns[0]
    assert "100 of 150 users read" in warns[0]


def test_check_with_invalid_settings_exits_2_naming_each_problem_and_calls_nobody(sim, work):
    result = cli(env_for(sim, work, HTTP_TIMEOUT_SECONDS="soon", MAX_RETRY_ATTEMPTS="0"), "--check")

    assert result.returncode == 2
    fails = lines_with(result.stdout, "FAIL")
    assert any("HTTP_TIMEOUT_SECONDS" in line for line in fails)
    assert any("MAX_RETRY_ATTEMPTS" in line for line in fails)
    assert sim.requests == []
    assert not (work / "bobo_mapping.db").exists()


@pytest.mark.parametrize("case", ["healthy", "wrong password", "proxy with a password"])
def test_check_output_contains_no_secret(sim, work, case):
    sim.seed_users(2)
    overrides = {}
    secrets = [sim.password, sim.client_secret]
    if case == "wrong password":
        overrides["PASSWORD"] = "Wr0ng-Passw0rd"
        secrets.append("Wr0ng-Passw0rd")
    if case == "proxy with a password":
        proxy = f"http://proxyuser:Pr0xy-Secret@127.0.0.1:{closed_port()}"
        overrides.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
        secrets.append("Pr0xy-Secret")

    result = cli(env_for(sim, work, **overrides), "--check")

    assert result.returncode == (0 if case == "healthy" else 1), result.stdout
    for secret in secrets:
        assert secret not in result.stdout + result.stderr, secret
    if case == "proxy with a password":
        assert "http://***@127.0.0.1:" in result.stdout  # the proxy is still named, its user information masked


# --- --status ---

def test_status_makes_no_network_call_and_reports_a_waiting_file(sim, work):
    sim.seed_users(2)
    write_csv(work / "crown_files", "waiting.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")

    live = cli(env_for(sim, work), "--status")
    unreachable = cli(env_for(sim, work, ATHOC_SERVER_URL=f"http://127.0.0.1:{closed_port()}"),
                      "--status", "--json")

    assert sim.requests == []
    assert live.returncode == 0 and unreachable.returncode == 0, live.stderr + unreachable.stderr
    assert "Files waiting:       1 to send in" in live.stdout
    report = json.loads(unreachable.stdout)
    assert report["files_waiting"] == 1 and report["oldest_waiting_seconds"] is not None
    assert report["files_failed"] == 0
    assert listing(work / "crown_files") == ["waiting.csv"]


def test_status_in_process_opens_no_socket(sim, work, monkeypatch, capsys):
    """In-process, with every socket connection refused: --status still answers from local state."""
    import bobo_processor

    sim.seed_users(2)
    write_csv(work / "crown_files", "a.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")
    for name, value in env_for(sim, work).items():
        monkeypatch.setenv(name, value)

    def no_network(*args, **kwargs):
        raise AssertionError("--status opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    assert bobo_processor.main(["--status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files_waiting"] == 1
    assert sim.requests == []


def test_status_reports_the_file_being_retried_and_its_attempts(sim, work):
    sim.seed_users(3)
    sim.reject[U1] = ("Error", "x")
    env = env_for(sim, work)
    write_csv(work / "crown_files", "retry.csv",
              "BON,10001,P1,20240101,080000,20240101080010,1,,,\n"
              "BON,10002,P2,20240101,090000,20240101090010,1,,,\n")
    db = work / "bobo_mapping.db"

    assert cli(env).returncode == 1  # something left for the next run
    assert cli(env).returncode == 1
    assert sim.attribute(U1, FIELD) is None and sim.attribute(U2, FIELD) == "01/01/2024 09:00:00"
    assert listing(work / "crown_files") == ["retry.csv"]
    assert rows(db, "SELECT filename, attempts FROM file_attempts") == [("retry.csv", 2)]
    sent = len(sim.requests)

    text = cli(env, "--status")
    as_json = cli(env, "--status", "--json")

    assert len(sim.requests) == sent
    assert text.returncode == 0 and as_json.returncode == 0
    assert "Files being retried: 1" in text.stdout
    assert "retry.csv: 2 attempt(s)" in text.stdout
    report = json.loads(as_json.stdout)
    assert report["files_waiting"] == 1
    assert [(r["file"], r["attempts"]) for r in report["retrying"]] == [("retry.csv", 2)]
    assert U1 in report["retrying"][0]["last_error"]
    assert report["mapping_sync"]["users_mapped"] == 3 and report["mapping_sync"]["status"] == "success"
    assert report["on_duty"] == 1  # 10002, by our records
    assert report["last_run"] and report["last_athoc_update"]


def test_status_does_not_create_the_database(sim, work):
    db = work / "bobo_mapping.db"

    text = cli(env_for(sim, work), "--status")
    as_json = cli(env_for(sim, work), "--status", "--json")

    assert text.returncode == 0 and as_json.returncode == 0
    assert not db.exists()
    assert sorted(p.name for p in work.iterdir()) == ["crown_files"]  # no folder, log or lock made either
    assert "does not exist yet" in text.stdout
    report = json.loads(as_json.stdout)
    assert report["database_missing"] is True and report["files_waiting"] == 0
    assert sim.requests == []


def test_status_on_a_damaged_database_says_so_and_leaves_it_as_it_is(sim, work):
    db = work / "bobo_mapping.db"
    damaged = bytes((i * 7919 + 13) % 251 for i in range(20000))
    db.write_bytes(damaged)

    text = cli(env_for(sim, work), "--status")
    as_json = cli(env_for(sim, work), "--status", "--json")

    assert text.returncode == 1 and "Traceback" not in text.stdout + text.stderr, text.stdout + text.stderr
    assert f"{db} cannot be read (file is not a database)" in text.stdout
    assert json.loads(as_json.stdout)["database_error"] == "file is not a database" and as_json.returncode == 1
    assert db.read_bytes() == damaged and sorted(p.name for p in work.iterdir()) == ["bobo_mapping.db", "crown_files"]
    assert sim.requests == []


def test_status_when_the_database_path_is_a_folder(sim, work):
    (work / "bobo_mapping.db").mkdir()

    text = cli(env_for(sim, work), "--status")

    assert text.returncode == 1 and f"{work / 'bobo_mapping.db'} cannot be read (it is not a file)" in text.stdout


def test_json_without_status_is_refused_as_a_usage_error(work, sim):
    result = cli(env_for(sim, work), "--json")

    assert result.returncode == 2
    assert "--json" in result.stderr
    assert sim.requests == []


# --- --demo, --help ---

def _checkout_state() -> Tuple[str, List[str]]:
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"], cwd=str(ROOT),
                            capture_output=True, text=True, check=True).stdout if shutil.which("git") else ""
    # (no git, as in the Windows leg: the listing of the files below still shows any change)
    skip = {".git", "__pycache__", ".pytest_cache", ".benchmarks", ".hypothesis"}
    files = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                   if not skip.intersection(p.relative_to(ROOT).parts))
    status_lines = sorted(line for line in status.splitlines()
                          if not skip.intersection(Path(line[3:].rstrip("/")).parts))
    return "\n".join(status_lines), files


def test_demo_exits_0_and_leaves_the_checkout_unchanged(tmp_path):
    env = clean_environ()  # no AtHoc setting at all, and no .env is needed
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TMPDIR"] = str(tmp_path)  # the demo's workspace, to check that it is removed
    before = _checkout_state()

    result = subprocess.run([sys.executable, ENTRY, "--demo"], cwd=str(ROOT), env=env, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert _checkout_state() == before
    assert list(tmp_path.iterdir()) == []  # the temporary workspace is gone
    # the run really happened: the duty table after the run shows 10236 on duty since 16:05
    after = result.stdout.split("after the run", 1)[1]
    assert "user10236@demo.example" in after and "01/10/2024 16:05:00" in after


def test_help_lists_every_option():
    result = cli(None, "--help")

    assert result.returncode == 0
    for option in ("--dry-run", "--sync-mappings", "--check", "--status", "--json", "--demo", "--env-file"):
        assert option in result.stdout, option


# --- --env-file, --sync-mappings ---

def test_env_file_supplies_the_settings(sim, work):
    sim.seed_users(2)
    env_file = work / "site.env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in env_for(sim, work).items()) + "\n", encoding="utf-8")
    env_file.chmod(0o600)
    write_csv(work / "crown_files", "a.csv", "BON,10002,P2,20240101,090000,20240101090010,1,,,\n")

    result = cli(None, "--env-file", str(env_file))  # the environment holds no AtHoc setting
    check = cli(None, "--check", "--env-file", str(env_file))
    missing = cli(None, "--env-file", str(work / "no-such.env"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.attribute(U2, FIELD) == "01/01/2024 09:00:00"
    assert listing(work / "processed_files") == ["a.csv"]
    assert check.returncode == 0 and f"read from {env_file}" in check.stdout
    assert missing.returncode == 2 and "no-such.env" in missing.stderr


def test_sync_mappings_fills_worker_mapping_and_exits_0_without_sending_updates(sim, work):
    sim.seed_users(5)
    write_csv(work / "crown_files", "a.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")

    result = cli(env_for(sim, work), "--sync-mappings")

    assert result.returncode == 0, result.stdout + result.stderr
    db = work / "bobo_mapping.db"
    assert rows(db, "SELECT employee_id, username FROM worker_mapping ORDER BY employee_id") == [
        (str(10001 + i), f"user{10001 + i}@demo.example") for i in range(5)]
    assert rows(db, "SELECT status FROM sync_tracking WHERE sync_type = 'user_mapping'") == [("success",)]
    assert sim.requests_to("SyncByCommonNames") == []
    assert sim.attribute(U1, FIELD) is None
    assert listing(work / "crown_files") == ["a.csv"]  # no file was processed


def test_sync_mappings_exits_1_and_keeps_the_mappings_when_athoc_is_unreachable(sim, work):
    sim.seed_users(3)
    assert cli(env_for(sim, work), "--sync-mappings").returncode == 0

    result = cli(env_for(sim, work, ATHOC_SERVER_URL=f"http://127.0.0.1:{closed_port()}"), "--sync-mappings")

    assert result.returncode == 1
    assert len(rows(work / "bobo_mapping.db", "SELECT * FROM worker_mapping")) == 3


def test_a_run_through_a_failing_proxy_keeps_the_proxy_password_out_of_the_log_and_console(sim, work):
    sim.seed_users(2)
    proxy = f"http://proxyuser:Pr0xy-Secret@127.0.0.1:{closed_port()}"
    write_csv(work / "crown_files", "a.csv", "BON,10001,P1,20240101,080000,20240101080010,1,,,\n")

    result = cli(env_for(sim, work, HTTP_PROXY=proxy, HTTPS_PROXY=proxy))

    assert result.returncode == 1  # AtHoc unreachable: the file waits for the next run
    assert sim.requests == [] and listing(work / "crown_files") == ["a.csv"]
    log_text = "".join(p.read_text(encoding="utf-8") for p in (work / "logs").iterdir())
    assert "http://***@127.0.0.1:" in log_text  # the failure is logged, naming the proxy (user information masked)
    for text in (log_text, result.stdout, result.stderr):
        assert "Pr0xy-Secret" not in text and sim.password not in text and sim.client_secret not in text
