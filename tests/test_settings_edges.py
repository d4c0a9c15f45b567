"""Secrets and settings at their edges (issues 13 and 21): credentials in ATHOC_SERVER_URL, proxy passwords with
reserved or non-Latin-1 characters, server URLs that do not parse, the run deadline and clock settings, and what
--check says. Through the real entry point (`python bobosync/bobo_processor.py`) against the simulator on
127.0.0.1 where the rule concerns what a user sees. Each test names the rule it checks."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from config import ConfigError, load_settings, settings_for_tests
from conftest import ENTRY, ROOT, SETTING_NAMES, env_for
from preflight import Preflight

REQUIRED = {"ATHOC_SERVER_URL": "https://athoc.example", "CLIENT_ID": "c", "CLIENT_SECRET": "csecret",
            "APIUSER": "u", "PASSWORD": "pw", "ORG_CODE": "DEMO"}


def run(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`python bobosync/bobo_processor.py ARGS` from the repository root, with only `env`'s settings."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    return subprocess.run([sys.executable, ENTRY, *args], cwd=str(ROOT), env={**base, **env},
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=90)


def site_env(sim, tmp_path: Path, **overrides: str) -> Dict[str, str]:
    (tmp_path / "crown_files").mkdir(exist_ok=True)
    return env_for(sim, tmp_path, **overrides)


def everything(result: subprocess.CompletedProcess, tmp_path: Path) -> str:
    """What the user sees of a run: its output, and every log written."""
    logs = [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*.log*") if p.is_file()]
    return "\n".join([result.stdout, result.stderr, *logs])


def lines_with(output: str, verdict: str) -> List[str]:
    return [line for line in output.splitlines() if line.startswith(verdict + " ")]


# --- 2. credentials in ATHOC_SERVER_URL ---

@pytest.mark.parametrize("args", [(), ("--check",)])
def test_rule_credentials_in_athoc_server_url_are_a_settings_error_exit_2_never_shown(sim, tmp_path, args):
    env = site_env(sim, tmp_path, ATHOC_SERVER_URL=f"http://svc:S3rv3rPw@127.0.0.1:{sim.port}")
    result = run(env, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    seen = everything(result, tmp_path)
    assert "S3rv3rPw" not in seen and "svc:" not in seen
    assert "ATHOC_SERVER_URL" in seen and f"http://***@127.0.0.1:{sim.port}" in seen
    assert "Traceback" not in seen
    assert sim.requests == []


# --- 7. proxy passwords with # / ? ---

@pytest.mark.parametrize("password", ["Pr0xy#Secret9", "Pr0xy/Secret9", "Pr0xy?Secret9", "Pr0xy@Secret9"])
@pytest.mark.parametrize("args", [(), ("--check",)])
def test_rule_a_proxy_password_with_reserved_characters_is_reported_never_printed(sim, tmp_path, password, args):
    """The simulator is http://, so HTTP_PROXY is the proxy AtHoc's address uses: an error (exit 2), no PASS."""
    env = site_env(sim, tmp_path, HTTP_PROXY=f"http://svc-proxy:{password}@127.0.0.1:9")
    result = run(env, *args)
    seen = everything(result, tmp_path)
    assert result.returncode == 2, seen
    assert "Pr0xy" not in seen and "Secret9" not in seen
    assert "HTTP_PROXY='http://***@127.0.0.1:9' cannot be used as written" in seen and "percent-encoded" in seen
    assert "PASS  proxy" not in seen and "Traceback" not in seen


def test_rule_a_proxy_url_the_server_does_not_use_is_a_warning(sim, tmp_path):
    env = site_env(sim, tmp_path, HTTPS_PROXY="http://svc-proxy:Pr0xy#Secret9@127.0.0.1:9")
    result = run(env, "--check")
    seen = everything(result, tmp_path)
    assert result.returncode == 0, seen
    # the settings warning, not the line on where its password comes from
    warns = [w for w in lines_with(result.stdout, "WARN") if "HTTPS_PROXY=" in w]
    assert len(warns) == 1 and "cannot be used as written" in warns[0]
    assert "Pr0xy" not in seen and "Secret9" not in seen


def test_rule_a_percent_encoded_proxy_password_is_secret_in_both_forms_and_masked_whole(sim, tmp_path):
    env = site_env(sim, tmp_path, HTTP_PROXY="http://svc-proxy:Pr0xy%23Secret9@127.0.0.1:9", LOG_LEVEL="DEBUG")
    result = run(env, "--check")
    seen = everything(result, tmp_path)
    assert "PASS  proxy" in result.stdout and "http://***@127.0.0.1:9" in result.stdout
    assert "Pr0xy" not in seen and "Secret9" not in seen and "svc-proxy" not in seen
    assert lines_with(result.stdout, "FAIL")  # nothing listens on port 9: the token step fails, saying so
    run_result = run(env)
    assert "Pr0xy" not in everything(run_result, tmp_path) and "Secret9" not in everything(run_result, tmp_path)


# --- 8. server URLs that do not parse, proxy passwords that are not Latin-1 ---

@pytest.mark.parametrize("url", ["https://athoc.example:443x", "https://[::1", "https://athoc.example:99999",
                                 "https://:443", "https://athoc example"])
@pytest.mark.parametrize("args", [(), ("--check",)])
def test_rule_a_server_url_that_does_not_parse_is_a_settings_error_exit_2(sim, tmp_path, url, args):
    result = run(site_env(sim, tmp_path, ATHOC_SERVER_URL=url), *args)
    seen = everything(result, tmp_path)
    assert result.returncode == 2, seen
    assert "ATHOC_SERVER_URL" in seen and "Traceback" not in seen


_HOSTS = ["athoc.example", "athoc.example.", "a..example", ".athoc.example", "x" * 63 + ".example",
          "x" * 64 + ".example", "athoc." + "x" * 63, "athoc." + "x" * 64, "127.0.0.1", "::1", "xn--bcher-kva.example",
          "bücher.example", "b\u00fccher..example", "\u00e9" * 60 + ".example", "athoc.\u0080example", "a", "."]


@pytest.mark.parametrize("host", _HOSTS)
def test_rule_a_host_name_is_valid_exactly_when_it_encodes_as_idna(host):
    """Rule: the server URL's host name is checked as requests will encode it (IDNA). ASCII names are checked
    without the IDNA codec, which a run would otherwise import for the usual ASCII name; both say the same."""
    from url_secrets import valid_dns_name
    try:
        host.encode("idna")
        encodes = True
    except UnicodeError:
        encodes = False
    assert valid_dns_name(host) is encodes


def test_rule_a_server_url_with_an_empty_host_label_is_a_settings_error_naming_it():
    env = {**REQUIRED, "ATHOC_SERVER_URL": "https://athoc..example"}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    assert "ATHOC_SERVER_URL" in str(caught.value) and "not a valid DNS name" in str(caught.value)


@pytest.mark.parametrize("password", ["Pr0xy€Secret9", "Pr0xy%E2%82%ACSecret9"])
@pytest.mark.parametrize("args", [(), ("--check",)])
def test_rule_a_proxy_password_outside_latin1_is_a_settings_error_never_printed(sim, tmp_path, password, args):
    env = site_env(sim, tmp_path, HTTP_PROXY=f"http://svc-proxy:{password}@127.0.0.1:9")
    result = run(env, *args)
    seen = everything(result, tmp_path)
    assert result.returncode == 2, seen
    assert "HTTP_PROXY" in seen and "Latin-1" in seen
    assert "Pr0xy" not in seen and "Secret9" not in seen and "Traceback" not in seen


def test_rule_check_network_steps_report_fail_lines_and_never_raise(capsys):
    """Settings made without validation (the Python API): --check's network steps still only print lines."""
    for url in ("https://[::1", "https://athoc.example:443x"):
        checks = Preflight(settings_for_tests(athoc_server_url=url, http_timeout_seconds=1.0))
        checks.network()
        assert checks.failed
    assert "Traceback" not in capsys.readouterr().out


def test_rule_undecodable_bytes_in_a_credential_are_a_settings_error_never_printed():
    with pytest.raises(ConfigError) as err:
        load_settings(environ={**REQUIRED, "PASSWORD": "pw\udcff\udcfe"})
    assert "PASSWORD" in str(err.value) and "\udcff" not in str(err.value)


# --- 5 and 9: the new settings ---

def test_rule_run_deadline_and_clock_tolerance_are_settings_with_ranges():
    s = load_settings(environ=REQUIRED)
    assert s.run_deadline_seconds == 50 and s.clock_skew_tolerance_minutes == 5
    with pytest.raises(ConfigError, match="RUN_DEADLINE_SECONDS"):
        load_settings(environ={**REQUIRED, "RUN_DEADLINE_SECONDS": "5"})
    with pytest.raises(ConfigError, match="CLOCK_SKEW_TOLERANCE_MINUTES"):
        load_settings(environ={**REQUIRED, "CLOCK_SKEW_TOLERANCE_MINUTES": "0"})


# --- 9. --check shows AtHoc's clock ---

def test_rule_check_warns_when_athocs_clock_is_off_beyond_the_tolerance(sim, tmp_path):
    sim.seed_users(2)
    sim.clock_skew_seconds = 600
    result = run(site_env(sim, tmp_path), "--check")
    clock = [line for line in result.stdout.splitlines() if line.split()[1:2] == ["clock"]]
    assert len(clock) == 1 and clock[0].startswith("WARN"), result.stdout
    assert any(f"{seconds} s ahead" in clock[0] for seconds in (599, 600, 601)), clock[0]
    assert "CLOCK_SKEW_TOLERANCE_MINUTES=5" in clock[0]
    result = run(site_env(sim, tmp_path, CLOCK_SKEW_TOLERANCE_MINUTES="15"), "--check")
    assert any(line.startswith("PASS  clock") for line in result.stdout.splitlines()), result.stdout


def test_rule_check_passes_the_clock_when_athoc_agrees(sim, tmp_path):
    sim.seed_users(2)
    result = run(site_env(sim, tmp_path), "--check")
    assert any(line.startswith("PASS  clock") for line in result.stdout.splitlines()), result.stdout


# --- 4. --check and unknown fields ---

def test_rule_check_fails_when_athoc_says_the_duty_field_is_unknown(sim, tmp_path):
    sim.seed_users(2)
    sim.strict_criteria = True  # a server that refuses a criteria naming an attribute it does not know
    result = run(site_env(sim, tmp_path, DUTY_STATUS_FIELD="On-Duty-DGT"), "--check")
    assert result.returncode == 1, result.stdout
    fails = lines_with(result.stdout, "FAIL")
    assert len(fails) == 1 and "DUTY_STATUS_FIELD" in fails[0] and "On-Duty-DGT" in fails[0]


def test_rule_check_warns_when_it_cannot_tell_whether_the_duty_field_exists(sim, tmp_path):
    sim.seed_users(2)  # nobody holds a duty value
    result = run(site_env(sim, tmp_path, DUTY_STATUS_FIELD="On-Duty-DGT"), "--check")
    assert result.returncode == 0, result.stdout
    warns = [w for w in lines_with(result.stdout, "WARN") if "DUTY_STATUS_FIELD" in w]
    assert len(warns) == 1 and "cannot tell" in warns[0]


def test_rule_check_passes_a_duty_field_users_hold(sim, tmp_path):
    sim.seed_users(2)
    sim.users["user10001@demo.example"]["On-Duty-DTG"] = "01/10/2024 07:00:00"
    result = run(site_env(sim, tmp_path), "--check")
    assert result.returncode == 0 and lines_with(result.stdout, "WARN") == [], result.stdout
    assert any(line.startswith("PASS  DUTY_STATUS_FIELD") for line in result.stdout.splitlines())


# --- 6. a listing whose TotalUsers changes, through --sync-mappings ---

def test_rule_a_mapping_sync_whose_total_users_changes_between_pages_is_not_applied(sim, tmp_path):
    logins = sim.seed_users(2001)
    env = site_env(sim, tmp_path)

    def delete_one_while_listing(page: int) -> None:
        if page == 1:
            sim.remove_user(logins[0])

    sim.on_search = delete_one_while_listing
    result = run(env, "--sync-mappings")
    assert result.returncode != 0, result.stdout
    assert "the listing is incomplete" in everything(result, tmp_path)
