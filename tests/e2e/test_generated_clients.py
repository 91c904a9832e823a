"""What a test team does: generate Python clients from the NF's OpenAPI documents with
OpenAPI Generator (target ``python``, HTTP/1.1 over urllib3) and drive a whole flow through
them against the real ``nf serve``: a subscriber and an add-on through the provisioning
client, an SM policy through the PCF client, a charging session through the CHF client
past the cap, and the throttle seen in the policy. Each client's base URL is the
``servers`` entry of the document the running NF serves on its OAM port.

Skipped, with the reason, only where Java is missing (or Maven, to fetch the pinned
generator the first time)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.e2e.nfproc import NfProcess, running_nf
from tests.generated_clients import DOCS, GeneratorUnavailable, ensure_clients

pytestmark = pytest.mark.e2e

GIB = 1024**3


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, ModuleType]]:
    try:
        root = ensure_clients()
    except GeneratorUnavailable as e:
        pytest.skip(f"generated-client test skipped: {e}")
    paths = [str(root / name) for name in DOCS]
    sys.path[:0] = paths
    try:
        import chf_client
        import pcf_client
        import provisioning_client
        import slc_client

        yield {"chf": chf_client, "pcf": pcf_client, "slc": slc_client,
               "provisioning": provisioning_client}
    finally:
        for p in paths:
            sys.path.remove(p)


def _served_root(nf: NfProcess, doc: str) -> str:
    """The base URL the running NF's own document gives for ``doc``."""
    r = httpx.get(f"{nf.oam}/openapi/{doc}.yaml", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    return str(yaml.safe_load(r.text)["servers"][0]["url"])


def _api(mod: ModuleType, host: str, **config: Any) -> Any:
    cfg = mod.Configuration(host=host, **config)
    return mod.DefaultApi(mod.ApiClient(cfg))


def _location(answer: Any) -> str:
    headers = {k.lower(): v for k, v in (answer.headers or {}).items()}
    return str(headers["location"]).rstrip("/")


def _ambr(policy: Any) -> dict[str, str]:
    rules = policy.to_dict()["sessRules"]
    (rule,) = rules.values()
    return dict(rule["authSessAmbr"])


def _charging_request(supi: str, isn: int, *, requested: int, used: int = 0) -> dict[str, Any]:
    mu: dict[str, Any] = {"ratingGroup": 10, "requestedUnit": {"totalVolume": requested}}
    if used:
        mu["usedUnitContainer"] = [{"localSequenceNumber": isn, "totalVolume": used,
                                    "uplinkVolume": used // 4,
                                    "downlinkVolume": used - used // 4}]
    return {
        "subscriberIdentifier": supi,
        "nfConsumerIdentification": {"nodeFunctionality": "SMF",
                                     "nFPLMNID": {"mcc": "001", "mnc": "01"}},
        "invocationTimeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "invocationSequenceNumber": isn,
        "notifyUri": "http://127.0.0.1:9/notify",
        "pDUSessionChargingInformation": {
            "chargingId": 7001,
            "pduSessionInformation": {
                "pduSessionID": 5, "dnnId": "internet",
                "networkSlicingInfo": {"sNSSAI": {"sst": 1}},
                "servingNetworkFunctionID": {
                    "servingNetworkFunctionInformation": {"nodeFunctionality": "SMF"}},
                "servingCNPlmnId": {"mcc": "001", "mnc": "01"}, "ratType": "NR"}},
        "multipleUnitUsage": [mu],
    }


def test_generated_clients_run_a_whole_flow(
        clients: dict[str, ModuleType], db_server: EmbeddedDb, settings: Settings,
        tmp_path: Path) -> None:
    supi = "imsi-001010000000431"
    # Big grants reach the 15 GiB cap of the demo plan in a few updates.
    networks = json.dumps([{**n.model_dump(), "default_grant_bytes": 8 * GIB}
                           for n in settings.networks])
    env = {"NF_NETWORKS": networks, "NF_SERVER__SBI_HTTP1": "true"}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, extra_env=env) as nf:
        prov_mod, pcf_mod, chf_mod = (clients["provisioning"], clients["pcf"],
                                      clients["chf"])
        prov = _api(prov_mod, _served_root(nf, "provisioning"),
                    api_key={"apiKey": "demo-key-lumen"})
        pcf = _api(pcf_mod, _served_root(nf, "pcf"))
        chf = _api(chf_mod, _served_root(nf, "chf"))
        assert _served_root(nf, "slc") == nf.sbi + "/nchf-spendinglimitcontrol/v1"

        sub = prov.create_subscriber(prov_mod.NewSubscriber.from_dict(
            {"supi": supi, "homeNetwork": "northwind", "planOfferId": "lumen-unlimited"}))
        assert sub.supi == supi
        bal = prov.purchase(supi, prov_mod.Purchase(offerId="lumen-addon-1gb-7d"))
        assert {b.offer_id for b in bal.buckets} >= {"lumen-unlimited", "lumen-addon-1gb-7d"}

        created = pcf.create_sm_policy_with_http_info(pcf_mod.SmPolicyContextData.from_dict({
            "supi": supi, "pduSessionId": 5, "pduSessionType": "IPV4", "dnn": "internet",
            "notificationUri": "http://127.0.0.1:9/smf", "sliceInfo": {"sst": 1},
            "servingNetwork": {"mcc": "001", "mnc": "01"}}))
        assert created.status_code == 201
        policy_id = _location(created).rsplit("/", 1)[-1]
        assert _ambr(created.data) == {"uplink": "4 Mbps", "downlink": "20 Mbps"}

        req = chf_mod.ChargingDataRequest
        opened = chf.charging_data_create_with_http_info(
            req.from_dict(_charging_request(supi, 1, requested=8 * GIB)))
        assert opened.status_code == 201
        ref = _location(opened).rsplit("/", 1)[-1]
        isn = 1
        for _ in range(3):  # 8 + 8 + 8 GiB used: past the 16 GiB at full speed
            isn += 1
            chf.charging_data_update(ref, req.from_dict(
                _charging_request(supi, isn, requested=8 * GIB, used=8 * GIB)))
        chf.charging_data_release(ref, req.from_dict(
            _charging_request(supi, isn + 1, requested=0, used=1024)))

        deadline = time.monotonic() + 15
        while True:
            got = pcf.get_sm_policy(policy_id)
            if _ambr(got.policy)["downlink"] == "128 Kbps" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert _ambr(got.policy) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
        assert prov.balance(supi).speed.reason == "throttled"
        pcf.delete_sm_policy(policy_id, pcf_mod.SmPolicyDeleteData.from_dict({}))
