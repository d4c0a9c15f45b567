"""AtHoc client rules (docs/athoc-api.md), over real HTTP(S) to the simulator."""
import logging
import os
import subprocess
import sys
import time

import pytest

from athoc_client import (AtHocClient, AuthenticationError, BadRequestError, ConnectionFailedError,
                          IncompleteListingError, NotFoundError, PermissionDeniedError, ServerError,
                          UnexpectedResponseError, classify_result, criteria_eq)
from athoc_simulator import AtHocSimulator
from conftest import BACKOFF_SCALE_VAR, BOBOSYNC_DIR, ENTRY, ROOT, SETTING_NAMES, env_for, settings_for
from private_ca import PrivateCA

FIELD = "On-Duty-DTG"


def client_for(settings, **overrides) -> AtHocClient:
    return AtHocClient(settings.replace(**overrides))


# --- token ---

def test_password_grant_yields_a_token_with_the_tenant(sim, settings):
    AtHocClient(settings)
    form = sim.requests_to("connect/token")[0].body
    assert form["grant_type"] == "password" and form["acr_values"] == "tenant:DEMO"
    assert form["scope"] == "athoc.iws.web.api" and form["username"] == sim.username


def test_wrong_client_secret_is_invalid_client(sim, settings):
    with pytest.raises(AuthenticationError, match="CLIENT_ID / CLIENT_SECRET"):
        client_for(settings, client_secret="nope")


def test_wrong_password_is_invalid_grant_naming_apiuser_and_password(sim, settings):
    with pytest.raises(AuthenticationError, match="APIUSER, PASSWORD and ORG_CODE"):
        client_for(settings, password="nope")


def test_401_fetches_one_new_token_and_repeats_the_call_once(sim, settings):
    sim.seed_users(3)
    client = AtHocClient(settings)
    sim.revoke_tokens()
    assert len(client.get_all_users_with_attributes(["Collar-Number"])) == 3
    assert len(sim.requests_to("connect/token")) == 2


def test_a_token_refused_twice_is_an_authentication_error(sim, settings):
    client = AtHocClient(settings)
    sim.fail("search/basic", 401, times=None)
    with pytest.raises(AuthenticationError):
        client.search_users(None, ["Collar-Number"])
    assert len(sim.requests_to("search/basic")) == 2


# --- retries and time bounds ---

def test_429_waits_as_retry_after_says_then_succeeds(sim, settings, monkeypatch):
    monkeypatch.setenv(BACKOFF_SCALE_VAR, "1")  # the real wait
    sim.seed_users(1)
    client = AtHocClient(settings)
    sim.fail("search/basic", 429, retry_after=1)
    started = time.monotonic()
    assert len(client.get_all_users_with_attributes(["Collar-Number"])) == 1
    assert time.monotonic() - started >= 0.9


def test_503_is_retried_with_backoff_then_succeeds(sim, settings):
    sim.seed_users(1)
    client = AtHocClient(settings)
    sim.fail("syncbycommonnames", 503, times=2)
    outcome = client.batch_update_duty_status({"user10001@demo.example": "01/01/2024 08:00:00"}, FIELD)
    assert outcome["user10001@demo.example"].ok
    assert sim.attribute("user10001@demo.example", FIELD) == "01/01/2024 08:00:00"
    assert len(sim.requests_to("syncbycommonnames")) == 3


@pytest.mark.parametrize("scale", ["1", "0"])
def test_persistent_503_fails_inside_the_time_bound(sim, settings, monkeypatch, scale):
    """With the real back-off (0 s, 1 s, 2 s) and with the test hook that the rest of the suite uses."""
    monkeypatch.setenv(BACKOFF_SCALE_VAR, scale)
    client = AtHocClient(settings)
    sim.fail("syncbycommonnames", 503, times=None)
    started = time.monotonic()
    with pytest.raises(ServerError, match="HTTP 503"):
        client.batch_update_duty_status({"x@demo.example": ""}, FIELD)
    took = time.monotonic() - started
    assert len(sim.requests_to("syncbycommonnames")) == 4  # the first try and three retries
    if scale == "1":
        assert 2.7 <= took < 15  # it backs off, and the whole call stays bounded
    else:
        assert took < 1  # the test hook takes the waits away


def test_read_timeout_is_a_connection_failure_naming_the_setting(sim, settings):
    client = client_for(settings, http_timeout_seconds=1)
    sim.fail("search/basic", 200, delay=2.5)
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="HTTP_TIMEOUT_SECONDS"):
        client.search_users(None, ["Collar-Number"])
    assert time.monotonic() - started < 2.4


def test_the_simulator_is_quiet_when_a_client_gave_up_before_its_reply(sim, settings, capfd):
    """Its late reply goes to a closed connection; a traceback printed from its thread would land in
    whatever test captures stderr at that moment."""
    client = client_for(settings, http_timeout_seconds=0.2)
    sim.fail("search/basic", 200, delay=0.5)
    with pytest.raises(ConnectionFailedError):
        client.search_users(None, ["Collar-Number"])
    client.close()
    time.sleep(0.6)  # the reply has been written by now
    assert "Traceback" not in capfd.readouterr().err


def test_unreachable_server_fails_fast_with_the_host(settings):
    closed = AtHocSimulator()
    url = closed.url
    closed.stop()
    with pytest.raises(ConnectionFailedError, match="cannot reach AtHoc at 127.0.0.1"):
        client_for(settings, athoc_server_url=url)


@pytest.mark.parametrize("status, error", [(400, BadRequestError), (403, PermissionDeniedError),
                                           (404, NotFoundError)])
def test_client_errors_are_not_retried(sim, settings, status, error):
    client = AtHocClient(settings)
    sim.fail("search/basic", status, times=None)
    with pytest.raises(error):
        client.search_users(None, ["Collar-Number"])
    assert len(sim.requests_to("search/basic")) == 1


def test_wrong_org_code_points_at_org_code(sim, settings):
    with pytest.raises(AuthenticationError, match="ORG_CODE"):
        client_for(settings, org_code="WRONG")  # the token is asked for tenant:WRONG
    client = AtHocClient(settings)
    client.org = "WRONG"  # a token for the right tenant, used on another org's path
    with pytest.raises(NotFoundError, match="ORG_CODE"):
        client.search_users(None, ["Collar-Number"])


# --- paging ---

@pytest.mark.parametrize("count, pages", [(0, 1), (999, 1), (1000, 2), (1001, 2), (2500, 3)])
def test_listing_reads_every_page_with_offset_as_page_index(sim, settings, count, pages):
    sim.seed_users(count)
    users = AtHocClient(settings).get_all_users_with_attributes(["Collar-Number"])
    assert len(users) == count
    searches = sim.requests_to("search/basic")
    assert [r.query["offset"] for r in searches] == [str(i) for i in range(pages)]
    assert {r.query["limit"] for r in searches} == {"1000"}


def test_listing_that_does_not_add_up_to_total_users_is_incomplete(sim, settings):
    sim.seed_users(1500)
    sim.total_users_bias = 1
    with pytest.raises(IncompleteListingError):
        AtHocClient(settings).get_all_users_with_attributes(["Collar-Number"])


def test_search_criteria_values_are_quoted_and_escaped(sim, settings):
    sim.add_user("odd@demo.example", **{"Collar-Number": "O'Neil"})
    sim.seed_users(2)
    found = AtHocClient(settings).search_users(criteria_eq("Collar-Number", "O'Neil"), ["Collar-Number"])
    assert list(found) == ["odd@demo.example"]
    assert sim.requests_to("search/basic")[-1].query["criteria"] == "Collar-Number eq 'O''Neil'"


# --- SyncByCommonNames ---

@pytest.mark.parametrize("records, calls", [(1, 1), (1000, 1), (1001, 2)])
def test_updates_are_chunked_by_sync_chunk_size(sim, settings, records, calls):
    logins = sim.seed_users(records)
    outcomes = AtHocClient(settings).batch_update_duty_status({login: "" for login in logins}, FIELD)
    assert len(outcomes) == records and all(o.ok for o in outcomes.values())
    assert len(sim.requests_to("syncbycommonnames")) == calls


def test_bodies_carry_only_login_id_and_the_duty_field_for_existing_users_only(sim, settings):
    sim.seed_users(1)
    AtHocClient(settings).batch_update_duty_status(
        {"user10001@demo.example": "01/02/2024 07:00:00", "stranger@demo.example": "01/02/2024 07:00:00"}, FIELD)
    (request,) = sim.requests_to("syncbycommonnames")
    assert request.query["syncexistingusersonly"] == "true"
    assert all(set(record) == {"LOGIN_ID", FIELD} for record in request.body)
    assert "stranger@demo.example" not in sim.users  # never created


def test_every_result_classification(sim, settings):
    logins = sim.seed_users(4)
    sim.reject[logins[1]] = ("Error", "Field On-Duty-DTG is read-only")
    sim.reject[logins[2]] = ("Partial", "some attributes failed")
    sim.reject[logins[3]] = ("Weird", "")
    updates = {login: "" for login in logins}
    updates["gone@demo.example"] = ""
    outcomes = AtHocClient(settings).batch_update_duty_status(updates, FIELD)
    assert {login: o.status for login, o in outcomes.items()} == {
        logins[0]: "ok", logins[1]: "failed", logins[2]: "failed", logins[3]: "failed",
        "gone@demo.example": "gone"}
    assert "read-only" in outcomes[logins[1]].details
    assert "Weird" in outcomes[logins[3]].details


def test_result_array_shorter_than_the_request_fails_the_records_without_a_result(sim, settings):
    logins = sim.seed_users(3)
    sim.short_results = 1
    outcomes = AtHocClient(settings).batch_update_duty_status({login: "" for login in logins}, FIELD)
    assert [o.status for o in outcomes.values()] == ["ok", "ok", "failed"]


def test_result_keys_are_matched_case_insensitively():
    assert classify_result({"login_id": "a", ":syncstatus": "ok"}).ok
    assert classify_result({":SYNCSTATUS": "Error",
                            ":SYNCDETAILS": "User a does not exists in the Organization"}).status == "gone"


# --- cleanup ---

def test_clear_old_duty_status_clears_only_old_parsable_values_and_honours_exclude(sim, settings):
    sim.add_user("old@demo.example", **{FIELD: "01/01/2024 08:00:00"})
    sim.add_user("recent@demo.example", **{FIELD: "02/01/2024 07:00:00"})
    sim.add_user("odd@demo.example", **{FIELD: "yesterday"})
    sim.add_user("kept@demo.example", **{FIELD: "01/01/2024 06:00:00"})
    sim.add_user("off@demo.example", **{FIELD: ""})
    from datetime import datetime
    cleared = AtHocClient(settings).clear_old_duty_status(FIELD, 12, now=datetime(2024, 1, 2, 8, 0),
                                                          exclude=["kept@demo.example"])
    assert cleared == ["old@demo.example"]
    assert sim.attribute("old@demo.example", FIELD) == ""
    assert sim.attribute("recent@demo.example", FIELD) == "02/01/2024 07:00:00"
    assert sim.attribute("odd@demo.example", FIELD) == "yesterday"
    assert sim.attribute("kept@demo.example", FIELD) == "01/01/2024 06:00:00"
    assert "pr" in sim.requests_to("search/basic")[0].query["criteria"]


# --- bad replies ---

def test_non_json_error_page_gives_a_clear_one_line_error(sim, settings):
    client = AtHocClient(settings)
    sim.fail("search/basic", 200, body=b"<html><body>Proxy error</body></html>")
    with pytest.raises(UnexpectedResponseError) as err:
        client.search_users(None, ["Collar-Number"])
    message = str(err.value)
    assert "not JSON" in message and "Proxy error" in message and "\n" not in message


@pytest.mark.parametrize("fault", [{"truncate": True}, {"drop": True}])
def test_truncated_or_dropped_reply_is_a_connection_failure(sim, settings, fault):
    client = AtHocClient(settings)
    sim.seed_users(50)
    sim.fail("search/basic", **fault)
    with pytest.raises(ConnectionFailedError, match="connection broke"):
        client.search_users(None, ["Collar-Number"])


# --- HTTPS ---

@pytest.fixture
def https_sim(tmp_path):
    ca = PrivateCA(tmp_path)
    with AtHocSimulator(ssl_context=ca.server_context()) as simulator:
        simulator.seed_users(2)
        yield simulator, ca.ca_file


def test_private_ca_is_trusted_through_ssl_cert_path(https_sim):
    simulator, ca_file = https_sim
    client = AtHocClient(settings_for(simulator, ssl_cert_path=ca_file))
    assert len(client.get_all_users_with_attributes(["Collar-Number"])) == 2


def test_private_ca_is_refused_without_ssl_cert_path_with_the_hint(https_sim):
    simulator, _ = https_sim
    with pytest.raises(ConnectionFailedError, match="SSL_CERT_PATH"):
        AtHocClient(settings_for(simulator))
    assert simulator.requests == []  # no credentials sent to an unverified server


def test_disable_ssl_verify_connects_and_a_run_warns_once(https_sim, tmp_path):
    simulator, _ = https_sim
    AtHocClient(settings_for(simulator, disable_ssl_verify=True)).close()  # connects to the untrusted server
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(env_for(simulator, tmp_path, DISABLE_SSL_VERIFY="true"))
    (tmp_path / "crown_files").mkdir()
    result = subprocess.run([sys.executable, ENTRY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert simulator.requests  # the run reached AtHoc (its mapping sync)
    log_text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "logs").glob("bobo_processor_*.log"))
    assert log_text.count("DISABLE_SSL_VERIFY=true") == 1  # said by the settings, once per run


# --- secrets ---

def test_no_secret_reaches_a_log_line_or_exception_at_debug(sim, settings, caplog):
    sim.seed_users(5)
    seen_tokens, messages = set(), []
    with caplog.at_level(logging.DEBUG):
        client = AtHocClient(settings)
        seen_tokens.update(sim.tokens)
        sim.revoke_tokens()
        client.get_all_users_with_attributes(["Collar-Number"])
        seen_tokens.update(sim.tokens)
        sim.fail("search/basic", 500, times=None)
        for call in (lambda: client.search_users(None, ["x"]),
                     lambda: client_for(settings, password="wrong-" + settings.password)):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every error message is checked
                messages.append(str(exc))
    messages += [r.getMessage() for r in caplog.records]
    assert seen_tokens
    for secret in [settings.password, settings.client_secret, "wrong-" + settings.password, *seen_tokens]:
        assert not any(secret in m for m in messages), secret


# --- standalone simulator ---

def test_standalone_simulator_prints_the_env_lines_that_point_at_it():
    process = subprocess.Popen([sys.executable, str(BOBOSYNC_DIR / "athoc_simulator.py"), "--port", "0",
                                "--users", "5"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(9)]
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    text = "".join(lines)
    assert "5 users of org DEMO" in text
    assert "ATHOC_SERVER_URL=http://127.0.0.1:" in text and "ORG_CODE=DEMO" in text
