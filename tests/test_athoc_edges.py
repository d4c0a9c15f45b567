"""AtHoc at its edges (issue 13) and AtHoc's clock (issue 21): the client against the simulator over real
HTTP on 127.0.0.1, never a mocked requests. Each test names the rule it checks."""
import logging
import time

import pytest

from athoc_client import (AtHocClient, DeadlineReachedError, IncompleteListingError, RedirectRefusedError,
                          UnexpectedResponseError)
from athoc_simulator import AtHocSimulator
from athoc_types import SyncOutcome, classify_result
from conftest import BACKOFF_SCALE_VAR, settings_for
from log_setup import SecretFilter

FIELD = "On-Duty-DTG"
DEEP = b"[" * 100_000 + b"]" * 100_000  # parses only with a recursion depth far beyond Python's limit


@pytest.fixture
def elsewhere():
    """A second simulator: where a redirect points. It must never receive anything."""
    with AtHocSimulator(org="DEMO") as other:
        yield other


# --- 1. no redirect is followed ---

def test_rule_no_redirect_is_followed_by_the_token_call_and_the_other_host_receives_nothing(sim, settings,
                                                                                             elsewhere):
    sim.redirect("connect/token", elsewhere.url, status=307)
    with pytest.raises(RedirectRefusedError) as err:
        AtHocClient(settings)
    assert elsewhere.requests == []  # PASSWORD and CLIENT_SECRET went nowhere else
    message = str(err.value)
    assert "307" in message and f"127.0.0.1:{elsewhere.port}" in message
    assert sim.password not in message and sim.client_secret not in message
    assert err.value.unavailable is False


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_rule_no_redirect_is_followed_by_an_api_call_and_the_other_host_receives_nothing(sim, settings,
                                                                                          elsewhere, status):
    sim.seed_users(2)
    client = AtHocClient(settings)
    sim.redirect("search/basic", elsewhere.url, status=status)
    with pytest.raises(RedirectRefusedError, match=f"HTTP {status}.*127.0.0.1:{elsewhere.port}"):
        client.search_users(None, ["Collar-Number"])
    sim.redirect("syncbycommonnames", elsewhere.url, status=status)
    with pytest.raises(RedirectRefusedError):
        client.batch_update_duty_status({"user10001@demo.example": ""}, FIELD)
    assert elsewhere.requests == []  # the bearer token and the records went nowhere else
    assert len(sim.requests_to("search/basic")) == 1  # a redirect is not retried either


# --- 3. a deeply nested reply ---

@pytest.mark.parametrize("path", ["connect/token", "search/basic", "syncbycommonnames"])
def test_rule_a_deeply_nested_json_reply_is_one_unexpected_response_error(sim, settings, path):
    sim.seed_users(1)
    client = AtHocClient(settings, lazy=path != "connect/token")
    if path != "connect/token":
        client.authenticate()
    sim.fail(path, 200, body=DEEP)
    with pytest.raises(UnexpectedResponseError, match="nested too deeply"):
        if path == "connect/token":
            client.authenticate()
        elif path == "search/basic":
            client.search_users(None, ["Collar-Number"])
        else:
            client.batch_update_duty_status({"user10001@demo.example": ""}, FIELD)


def test_rule_a_deeply_nested_error_reply_of_the_token_call_is_no_traceback(sim, settings):
    sim.fail("connect/token", 400, body=DEEP)
    with pytest.raises(Exception) as err:
        AtHocClient(settings)
    assert not isinstance(err.value, RecursionError)


# --- 4. "gone" only for the user itself; an unknown attribute is a configuration problem ---

def test_rule_gone_only_when_the_details_name_the_records_own_login():
    login = "jane@demo.example"
    gone = {":SyncStatus": "Error", ":SyncDetails": f"User {login} does not exists in the Organization"}
    other = {":SyncStatus": "Error", ":SyncDetails": "User sam@demo.example does not exists in the Organization"}
    attribute = {":SyncStatus": "Error", ":SyncDetails": "Attribute On-Duty-DTG does not exist in the Organization"}
    undefined = {":SyncStatus": "Error", ":SyncDetails": "Attribute On-Duty-DTG is not defined for the organization"}
    assert classify_result(gone, login, FIELD).status == "gone"
    assert classify_result(other, login, FIELD).status == "failed"
    assert classify_result(attribute, login, FIELD).status == "unknown_field"
    assert classify_result(undefined, login, FIELD).status == "unknown_field"
    other_attribute = {":SyncStatus": "Error", ":SyncDetails": "Attribute Foo does not exist in the Organization"}
    assert classify_result(other_attribute, login, FIELD).status == "failed"


def test_rule_a_missing_field_error_is_never_gone_over_http(sim, settings):
    logins = sim.seed_users(3)
    sim.reject[logins[0]] = ("Error", "Attribute On-Duty-DTG does not exist in the Organization")
    sim.reject[logins[1]] = ("Error", f"User {logins[2]} does not exists in the Organization")
    outcomes = AtHocClient(settings).batch_update_duty_status({login: "" for login in logins}, FIELD)
    assert [o.status for o in outcomes.values()] == ["unknown_field", "failed", "ok"]


def test_rule_the_simulator_answers_an_unknown_attribute_with_an_error_naming_it(sim, settings):
    logins = sim.seed_users(2)
    outcomes = AtHocClient(settings).batch_update_duty_status({login: "" for login in logins}, "On-Duty-DGT")
    assert set(outcomes.values()) == {
        SyncOutcome("unknown_field", "Attribute On-Duty-DGT is not defined for the organization")}
    assert sim.attribute(logins[0], "On-Duty-DGT") is None


def test_rule_field_exists_says_yes_no_or_cannot_tell(sim, settings):
    sim.seed_users(3)
    client = AtHocClient(settings)
    assert client.field_exists("Collar-Number") is True
    assert client.field_exists(FIELD) is None  # nobody on duty: the API cannot tell
    assert client.field_exists("No-Such-Field") is None
    sim.strict_criteria = True  # a server that refuses a criteria naming an unknown attribute
    assert client.field_exists("No-Such-Field") is False
    assert client.field_exists(FIELD) is None


# --- 5. the run's deadline ---

def test_rule_a_call_bounded_by_a_deadline_returns_within_it_when_every_503_comes_late(sim, settings):
    client = AtHocClient(settings)
    sim.fail("search/basic", 503, delay=1.5, times=None)
    started = time.monotonic()
    client.deadline = started + 3.0
    with pytest.raises(DeadlineReachedError) as err:
        client.search_users(None, ["Collar-Number"])
    assert time.monotonic() - started < 3.5
    assert err.value.unavailable is True
    assert "deadline" in str(err.value) and "next run" in str(err.value)


def test_rule_each_request_timeout_is_at_most_the_time_left(sim, settings):
    client = AtHocClient(settings)  # HTTP_TIMEOUT_SECONDS=5
    sim.fail("search/basic", delay=4.0, times=1)
    started = time.monotonic()
    client.deadline = started + 1.5
    with pytest.raises(DeadlineReachedError):
        client.search_users(None, ["Collar-Number"])
    assert time.monotonic() - started < 2.0


def test_rule_a_retry_that_would_sleep_past_the_deadline_is_not_made(sim, settings, monkeypatch):
    monkeypatch.setenv(BACKOFF_SCALE_VAR, "1")  # the real wait: it is what would pass the deadline
    client = AtHocClient(settings)
    sim.fail("search/basic", 429, retry_after=4, times=None)
    started = time.monotonic()
    client.deadline = started + 2.0
    with pytest.raises(DeadlineReachedError, match="HTTP 429"):
        client.search_users(None, ["Collar-Number"])
    assert time.monotonic() - started < 1.0
    assert len(sim.requests_to("search/basic")) == 1


def test_rule_no_request_is_started_once_the_deadline_has_passed(sim, settings):
    client = AtHocClient(settings, deadline=time.monotonic() + 60)
    client.deadline = time.monotonic() - 1
    before = len(sim.requests)
    with pytest.raises(DeadlineReachedError):
        client.batch_update_duty_status({"user@demo.example": ""}, FIELD)
    assert len(sim.requests) == before


def test_rule_within_the_deadline_retries_still_recover(sim, settings):
    sim.seed_users(1)
    client = AtHocClient(settings, deadline=time.monotonic() + 20)
    sim.fail("search/basic", 503, times=2)
    assert len(client.search_users(None, ["Collar-Number"])) == 1
    assert len(sim.requests_to("search/basic")) == 3


# --- 6. TotalUsers that changes between pages ---

def test_rule_total_users_changing_between_pages_makes_the_listing_incomplete(sim, settings):
    logins = sim.seed_users(2001)

    def delete_one_while_listing(page: int) -> None:
        if page == 1:
            sim.remove_user(logins[0])  # page 1 now starts one user later: logins[1000] is never served

    sim.on_search = delete_one_while_listing
    with pytest.raises(IncompleteListingError, match="TotalUsers changed from 2001 to 2000"):
        AtHocClient(settings).get_all_users_with_attributes(["Collar-Number"])


# --- 9. AtHoc's clock ---

@pytest.mark.parametrize("skew", [0.0, 600.0, -3600.0])
def test_rule_the_client_records_athocs_clock_offset_from_the_date_header(sim, settings, skew):
    sim.clock_skew_seconds = skew
    client = AtHocClient(settings, lazy=True)
    assert client.clock_offset_seconds is None
    client.authenticate()
    client.search_users(None, ["Collar-Number"])
    assert client.clock_offset_seconds == pytest.approx(skew, abs=2.0)


# --- 2 and 7: the secret filter knows every secret-bearing setting ---

def test_rule_the_secret_filter_covers_url_user_information_and_percent_forms(sim):
    settings = settings_for(sim, athoc_server_url="http://svc:S3rv3r%23pw@127.0.0.1:1",
                            https_proxy="http://svc-proxy:Pr0xy%23Secret9@proxy.example:8080")
    secrets = settings.secrets
    for form in ("Pr0xy%23Secret9", "Pr0xy#Secret9", "S3rv3r%23pw", "S3rv3r#pw", "svc:S3rv3r%23pw"):
        assert form in secrets
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s / %s / %s", (
        "via http://svc-proxy:Pr0xy#Secret9@proxy", "Pr0xy%23Secret9", "http://svc:S3rv3r%23pw@127.0.0.1:1"), None)
    SecretFilter(secrets).filter(record)
    shown = record.getMessage()
    assert "Pr0xy" not in shown and "S3rv3r" not in shown
    assert "Secret9" not in repr(settings) and "https_proxy='http://svc-proxy:***@proxy.example:8080'" in repr(settings)
