"""The 3GPP conformance checker accepts what the specifications allow and rejects the rest.

If these tests pass while the checker accepts everything, something is wrong: each valid
example is paired with broken copies that must be reported.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests import conformance as c

CDR_PATH = "/nchf-convergedcharging/v3/chargingdata"
SMP_PATH = "/npcf-smpolicycontrol/v1/sm-policies"

CHARGING_DATA_REQUEST: dict[str, Any] = {
    "subscriberIdentifier": "imsi-001010000000001",
    "nfConsumerIdentification": {
        "nodeFunctionality": "SMF",
        "nFName": "5f7e1c8a-0b1e-4c1e-9d7a-3b1f2e4c5d6a",  # an NfInstanceId: format uuid
    },
    "invocationTimeStamp": "2024-05-01T12:00:00Z",
    "invocationSequenceNumber": 0,
    "notifyUri": "http://smf.example:8080/notify/1",
    "multipleUnitUsage": [
        {
            "ratingGroup": 10,
            "requestedUnit": {"totalVolume": 1_000_000},
            "usedUnitContainer": [
                {"localSequenceNumber": 1, "totalVolume": 5000, "uplinkVolume": 1000,
                 "downlinkVolume": 4000, "time": 30},
            ],
        }
    ],
}

CHARGING_DATA_RESPONSE: dict[str, Any] = {
    "invocationTimeStamp": "2024-05-01T12:00:00.250Z",
    "invocationSequenceNumber": 0,
    "invocationResult": {"error": {"status": 403, "cause": "QUOTA_LIMIT_REACHED"}},
    "multipleUnitInformation": [
        {"ratingGroup": 10, "resultCode": "QUOTA_LIMIT_REACHED"}
    ],
}

SM_POLICY_CONTEXT: dict[str, Any] = {
    "supi": "imsi-001010000000001",
    "pduSessionId": 5,
    "pduSessionType": "IPV4",
    "dnn": "internet",
    "notificationUri": "http://smf.example:8080/sm-policy-notify/abc",
    "sliceInfo": {"sst": 1, "sd": "0000A1"},
    "ratType": "NR",
    "accessType": "3GPP_ACCESS",
    "servingNetwork": {"mcc": "001", "mnc": "01"},
    "ipv4Address": "10.45.0.7",
    "subsSessAmbr": {"uplink": "100 Mbps", "downlink": "200 Mbps"},
    "subsDefQos": {"5qi": 9, "arp": {"priorityLevel": 8, "preemptCap": "NOT_PREEMPT",
                                     "preemptVuln": "PREEMPTABLE"}},
}

SM_POLICY_DECISION: dict[str, Any] = {
    "sessRules": {
        "s1": {"sessRuleId": "s1", "authSessAmbr": {"uplink": "10 Mbps", "downlink": "20 Mbps"}}
    },
    "pccRules": {"p1": {"pccRuleId": "p1", "precedence": 100, "refQosData": ["q1"]}},
    "qosDecs": {"q1": {"qosId": "q1", "5qi": 9}},
    "policyCtrlReqTriggers": ["PLMN_CH", "RES_MO_RE"],
    "revalidationTime": "2024-05-01T13:00:00Z",
}


def _broken(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    for key, value in changes.items():
        if value is _DROP:
            del body[key]
        else:
            body[key] = value
    return body


_DROP = object()


# -- requests ---------------------------------------------------------------------------------


def test_valid_charging_data_request_is_accepted() -> None:
    c.validate_request(c.CHF, "POST", CDR_PATH, CHARGING_DATA_REQUEST)
    c.validate_request(c.CHF, "POST", CDR_PATH + "/ref-1/update", CHARGING_DATA_REQUEST)
    c.validate_request(c.CHF, "POST", CDR_PATH + "/ref-1/release", CHARGING_DATA_REQUEST)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"invocationSequenceNumber": "one"}, "$.invocationSequenceNumber: 'one' is not of type"),
        ({"nfConsumerIdentification": _DROP}, "'nfConsumerIdentification' is a required"),
        ({"invocationTimeStamp": "yesterday"}, "'yesterday' is not a 'date-time'"),
        ({"invocationTimeStamp": "2024-05-01T12:00:00"}, "is not a 'date-time'"),
        ({"invocationSequenceNumber": -1}, "-1 is less than the minimum of 0"),
        ({"multipleUnitUsage": [{"requestedUnit": {}}]}, "'ratingGroup' is a required"),
        ({"multipleUnitUsage": {"ratingGroup": 1}}, "is not of type 'array'"),
        # NfInstanceId is format: uuid, not a free name.
        ({"nfConsumerIdentification": {"nodeFunctionality": "SMF", "nFName": "smf-1"}},
         "'smf-1' is not a 'uuid'"),
    ],
)
def test_invalid_charging_data_request_is_rejected(
    changes: dict[str, Any], expected: str
) -> None:
    body = _broken(CHARGING_DATA_REQUEST, **changes)
    with pytest.raises(AssertionError) as info:
        c.validate_request(c.CHF, "POST", CDR_PATH, body)
    assert expected in str(info.value)


def test_extensible_enums_accept_any_string_but_not_other_types() -> None:
    # nodeFunctionality is anyOf [enum, string]: the spec itself lets unknown values through.
    odd = _broken(CHARGING_DATA_REQUEST,
                  nfConsumerIdentification={"nodeFunctionality": "SMF_PLUS"})
    c.validate_request(c.CHF, "POST", CDR_PATH, odd)
    wrong = _broken(CHARGING_DATA_REQUEST, nfConsumerIdentification={"nodeFunctionality": 7})
    with pytest.raises(AssertionError, match="nodeFunctionality"):
        c.validate_request(c.CHF, "POST", CDR_PATH, wrong)


def test_every_error_is_listed_with_its_json_path() -> None:
    body = _broken(CHARGING_DATA_REQUEST, invocationSequenceNumber="x",
                   nfConsumerIdentification=_DROP)
    body["multipleUnitUsage"][0]["usedUnitContainer"][0]["totalVolume"] = "lots"
    errors = c.request_errors(c.CHF, "POST", CDR_PATH, body)
    assert len(errors) == 3, errors
    assert any("$.multipleUnitUsage[0].usedUnitContainer[0].totalVolume" in e for e in errors)


def test_valid_sm_policy_context_is_accepted() -> None:
    c.validate_request(c.PCF, "POST", SMP_PATH, SM_POLICY_CONTEXT)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"supi": _DROP}, "'supi' is a required property"),
        ({"notificationUri": _DROP}, "'notificationUri' is a required property"),
        ({"pduSessionId": "5"}, "'5' is not of type 'integer'"),
        ({"pduSessionId": 256}, "256 is greater than the maximum of 255"),
        # Snssai comes from TS29571_CommonData.yaml: the cross-file $ref is followed.
        ({"sliceInfo": {"sst": 300}}, "300 is greater than the maximum of 255"),
        ({"sliceInfo": {"sst": 1, "sd": "xyz"}}, "does not match"),
        ({"subsSessAmbr": {"uplink": "100 Mbps"}}, "'downlink' is a required property"),
    ],
)
def test_invalid_sm_policy_context_is_rejected(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(AssertionError) as info:
        c.validate_request(c.PCF, "POST", SMP_PATH, _broken(SM_POLICY_CONTEXT, **changes))
    assert expected in str(info.value)


def test_wrong_api_version_unknown_path_missing_body_and_wrong_media_type_are_reported() -> None:
    assert "not found" in " ".join(
        c.request_errors(c.CHF, "POST", "/nchf-convergedcharging/v2/chargingdata",
                         CHARGING_DATA_REQUEST)
    ).lower()
    assert c.request_errors(c.CHF, "POST", CDR_PATH + "/ref-1/nonsense", CHARGING_DATA_REQUEST)
    assert c.request_errors(c.CHF, "GET", CDR_PATH, None)  # no such operation
    assert any("body" in e.lower() for e in c.request_errors(c.CHF, "POST", CDR_PATH, None))
    assert any(
        "text/plain" in e
        for e in c.request_errors(c.CHF, "POST", CDR_PATH, "x", content_type="text/plain")
    )


def test_full_url_with_host_is_accepted() -> None:
    c.validate_request(c.PCF, "POST", "http://127.0.0.1:7777" + SMP_PATH, SM_POLICY_CONTEXT)


# -- responses --------------------------------------------------------------------------------


def test_sm_policy_decision_201_needs_location_header() -> None:
    location = {"Location": "http://pcf.example" + SMP_PATH + "/abc"}
    c.validate_response(c.PCF, "POST", SMP_PATH, 201, SM_POLICY_DECISION, headers=location)
    errors = c.response_errors(c.PCF, "POST", SMP_PATH, 201, SM_POLICY_DECISION)
    assert any("Location" in e for e in errors), errors
    bad = _broken(SM_POLICY_DECISION, policyCtrlReqTriggers="PLMN_CH")
    with pytest.raises(AssertionError, match=r"\$\.policyCtrlReqTriggers"):
        c.validate_response(c.PCF, "POST", SMP_PATH, 201, bad, headers=location)


def test_4xx_with_charging_data_response_body_is_accepted_despite_overlapping_one_of() -> None:
    # 3GPP: oneOf [ProblemDetails, ChargingDataResponse]; this body matches both branches.
    c.validate_response(c.CHF, "POST", CDR_PATH, 403, CHARGING_DATA_RESPONSE,
                        content_type="application/problem+json")
    c.validate_response(c.CHF, "POST", CDR_PATH, 400,
                        {"status": 400, "cause": "MANDATORY_IE_MISSING"},
                        content_type="application/problem+json")


def test_problem_json_body_is_parsed_and_checked() -> None:
    with pytest.raises(AssertionError) as info:
        c.validate_response(c.CHF, "POST", CDR_PATH, 400, {"status": "bad"},
                            content_type="application/problem+json")
    message = str(info.value)
    assert "$.status: 'bad' is not of type 'integer'" in message
    assert "branch 1" in message  # why the ChargingDataResponse branch failed too


def test_response_errors_on_success_body() -> None:
    bad = _broken(CHARGING_DATA_RESPONSE, invocationTimeStamp=_DROP)
    with pytest.raises(AssertionError, match="'invocationTimeStamp' is a required property"):
        c.validate_response(c.CHF, "POST", CDR_PATH, 201, bad)
    c.validate_response(c.CHF, "POST", CDR_PATH + "/ref-1/release", 204)
    with pytest.raises(AssertionError, match="defines none for 204"):
        c.validate_response(c.CHF, "POST", CDR_PATH + "/ref-1/release", 204, {"x": 1})


def test_validate_exchange_checks_request_and_response_of_an_httpx_response() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/" + CDR_PATH.lstrip("/"),
                            json=CHARGING_DATA_REQUEST)
    good = httpx.Response(201, json=CHARGING_DATA_RESPONSE, request=request)
    c.validate_exchange(c.CHF, good)
    bad = httpx.Response(201, json={"invocationSequenceNumber": "x"}, request=request)
    with pytest.raises(AssertionError, match="invocationSequenceNumber"):
        c.validate_exchange(c.CHF, bad)


# -- named schemas: callbacks and notifications -----------------------------------------------


def test_charging_notify_request() -> None:
    c.validate_schema(c.CHF, "ChargingNotifyRequest", {
        "notificationType": "REAUTHORIZATION",
        "reauthorizationDetails": [{"ratingGroup": 10}],
    })
    with pytest.raises(AssertionError, match="'notificationType' is a required property"):
        c.validate_schema(c.CHF, "ChargingNotifyRequest", {"reauthorizationDetails": []})
    with pytest.raises(AssertionError, match=r"\$\.reauthorizationDetails\[0\]\.ratingGroup"):
        c.validate_schema(c.CHF, "ChargingNotifyRequest", {
            "notificationType": "REAUTHORIZATION",
            "reauthorizationDetails": [{"ratingGroup": "ten"}],
        })


def test_sm_policy_notification_and_decision() -> None:
    notification = {"resourceUri": "http://pcf.example" + SMP_PATH + "/abc",
                    "smPolicyDecision": SM_POLICY_DECISION}
    c.validate_schema(c.PCF, "SmPolicyNotification", notification)
    c.validate_schema(c.PCF, "SmPolicyDecision", SM_POLICY_DECISION, direction="response")
    # Null removes a PCC rule: PccRule is 'nullable: true'.
    c.validate_schema(c.PCF, "SmPolicyDecision", {"pccRules": {"p1": None}})
    with pytest.raises(AssertionError, match=r"\$\.smPolicyDecision\.pccRules\.p1\.precedence"):
        c.validate_schema(c.PCF, "SmPolicyNotification", {
            "resourceUri": "x",
            "smPolicyDecision": {"pccRules": {"p1": {"pccRuleId": "p1", "precedence": "high"}}},
        })
    # authSessAmbr is a plain $ref to Ambr: null is not allowed there.
    with pytest.raises(AssertionError, match="authSessAmbr"):
        c.validate_schema(c.PCF, "SmPolicyDecision",
                          {"sessRules": {"s1": {"sessRuleId": "s1", "authSessAmbr": None}}})


def test_null_value_through_any_of_null_value() -> None:
    c.validate_schema(c.COMMON, "AmbrRm", None)
    c.validate_schema(c.COMMON, "AmbrRm", {"uplink": "1 Mbps", "downlink": "2 Mbps"})
    with pytest.raises(AssertionError):
        c.validate_schema(c.COMMON, "AmbrRm", {"uplink": "1 Mbps"})
    with pytest.raises(AssertionError):
        c.validate_schema(c.COMMON, "Ambr", None)


def test_spending_limit_status() -> None:
    status = {"supi": "imsi-001010000000001",
              "statusInfos": {"pc1": {"policyCounterId": "pc1", "currentStatus": "valid"}}}
    c.validate_schema(c.SLC, "SpendingLimitStatus", status)
    broken = copy.deepcopy(status)
    del broken["statusInfos"]["pc1"]["currentStatus"]
    with pytest.raises(AssertionError, match="'currentStatus' is a required property"):
        c.validate_schema(c.SLC, "SpendingLimitStatus", broken)


def test_unknown_schema_name_is_an_error_not_a_pass() -> None:
    assert not c.has_schema(c.CHF, "NoSuchThing")
    with pytest.raises(KeyError):
        c.validate_schema(c.CHF, "NoSuchThing", {})


def test_specs_are_found_beside_the_repository_and_cached() -> None:
    assert c.ROOT.parent / "shared" / "3gpp" / "Rel-17" == c.SPEC_DIR
    assert c.load(c.CHF) is c.load(c.CHF)
    with pytest.raises(FileNotFoundError):
        c.spec_path("TS00000_Nothing.yaml")
