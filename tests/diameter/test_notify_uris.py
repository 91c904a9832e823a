"""A ``diameter://`` notification URI is given by the Diameter layer only: the SBI's wire
models refuse it from a body, and accept it under the ``FROM_DIAMETER`` context."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nf.notify.outbox import diameter_peer
from nf.notify.port import FROM_DIAMETER
from nf.pcf.wire import SmPolicyContextData
from nf.slc.wire import SpendingLimitContext

URI = "diameter://pgw1.northwind.example/pgw1.northwind.example%3B1%3B42"
POLICY = {"supi": "imsi-001010000000001", "pduSessionId": 0, "pduSessionType": "IPV4",
          "dnn": "internet", "sliceInfo": {"sst": 1}, "notificationUri": URI}


def test_an_sbi_body_cannot_point_a_notification_at_a_diameter_peer() -> None:
    with pytest.raises(ValidationError, match="notificationUri must be an http"):
        SmPolicyContextData.model_validate(POLICY)
    with pytest.raises(ValidationError, match="notifUri must be an http"):
        SpendingLimitContext.model_validate({"supi": "imsi-001010000000001",
                                             "notifUri": URI})


def test_the_diameter_layer_gives_its_uri_under_its_context() -> None:
    ctx = SmPolicyContextData.model_validate(POLICY, context=FROM_DIAMETER)
    assert ctx.notification_uri == URI
    slc = SpendingLimitContext.model_validate(
        {"supi": "imsi-001010000000001", "notifUri": URI + "/"}, context=FROM_DIAMETER)
    assert slc.notif_uri == URI
    assert diameter_peer(URI + "/update") == "pgw1.northwind.example"
    assert diameter_peer("http://smf.example/x") is None
