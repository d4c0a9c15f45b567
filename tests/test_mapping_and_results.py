"""Building the mapping from AtHoc's user listing, and classifying SyncByCommonNames results: pure
functions, every shape without a run (the whole runs of test_runs.py and the fault suites cover the paths)."""
import pytest

from athoc_types import classify_result
from mapping_sync import build_mapping

FIELD = "Collar-Number"


def mapping(users):
    rows, ambiguous, without = build_mapping(users, FIELD)
    return sorted(rows), {k: sorted(v) for k, v in ambiguous.items()}, without


@pytest.mark.parametrize("users, rows, ambiguous, without", [
    ({}, [], {}, 0),
    ({"a@x": {FIELD: "10001"}, "b@x": {FIELD: "10002"}}, [("10001", "a@x", "10001"), ("10002", "b@x", "10002")],
     {}, 0),
    ({"a@x": {FIELD: "0010001"}}, [("10001", "a@x", "0010001")], {}, 0),  # the raw value is kept beside
    ({"a@x": {FIELD: " 10001 "}}, [("10001", "a@x", "10001")], {}, 0),
    ({"a@x": {FIELD: 10001}}, [("10001", "a@x", "10001")], {}, 0),  # a number in the JSON
    ({"a@x": {"collar-NUMBER": "10001"}}, [("10001", "a@x", "10001")], {}, 0),  # the field's name in any case
    ({"a@x": {FIELD: "AB01"}}, [("AB01", "a@x", "AB01")], {}, 0),
    ({"a@x": {FIELD: ""}, "b@x": {FIELD: "  "}, "c@x": {FIELD: None}, "d@x": {}}, [], {}, 4),
    ({"a@x": {FIELD: "10001"}, "b@x": {FIELD: "010001"}, "c@x": {FIELD: "10002"}},  # one id, two users
     [("10002", "c@x", "10002")], {"10001": ["a@x", "b@x"]}, 0),
    ({"a@x": {FIELD: "7"}, "b@x": {FIELD: "7"}, "c@x": {FIELD: "7"}, "d@x": {}}, [], {"7": ["a@x", "b@x", "c@x"]}, 1),
], ids=["none", "two", "leading zeros", "spaces", "a number", "field name case", "letters", "without an id",
        "ambiguous", "three holders and one without"])
def test_build_mapping(users, rows, ambiguous, without):
    assert mapping(users) == (rows, ambiguous, without)


@pytest.mark.parametrize("result, status, details", [
    ({"LOGIN_ID": "a", ":SyncStatus": "OK", ":SyncDetails": ""}, "ok", ""),
    ({"login_id": "a", ":syncstatus": "ok"}, "ok", ""),  # keys and value in any case
    ({":SyncStatus": "Error", ":SyncDetails": "User a does not exists in the organization"}, "gone", None),
    ({":SYNCSTATUS": "Error", ":SYNCDETAILS": "User a does not exists in the Organization"}, "gone", None),
    ({":SyncStatus": "Error", ":SyncDetails": "User a does not exist in the organization"}, "gone", None),
    ({":SyncStatus": "Error", ":SyncDetails": "Field On-Duty-DTG is read-only"}, "failed",
     "Field On-Duty-DTG is read-only"),
    ({":SyncStatus": "Partial", ":SyncDetails": "some attributes failed"}, "failed", "some attributes failed"),
    ({":SyncStatus": "Partial", ":SyncDetails": "User a does not exists in the organization"}, "failed", None),
    ({":SyncStatus": "Queued", ":SyncDetails": "later"}, "failed", "unknown :SyncStatus 'Queued'; later"),
    ({":SyncStatus": "Weird"}, "failed", "unknown :SyncStatus 'Weird'"),
    ({"LOGIN_ID": "a"}, "failed", "unknown :SyncStatus ''"),
    ({":SyncStatus": None, ":SyncDetails": None}, "failed", "unknown :SyncStatus ''"),
    ({":SyncStatus": "Error"}, "failed", "Error"),  # no details: the status says it
], ids=["ok", "ok in lower case", "gone", "gone, keys in upper case", "gone, grammatical", "error", "partial",
        "partial is never gone", "unknown status", "unknown status alone", "no status", "null status",
        "error without details"])
def test_classify_result(result, status, details):
    outcome = classify_result(result)
    assert outcome.status == status and outcome.ok is (status == "ok")
    if details is not None:
        assert outcome.details == details
