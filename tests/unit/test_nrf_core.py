"""The NRF registration state machine and the NF profiles (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import Settings
from nf.nrf import core
from nf.nrf.profile import instance_id, nf_profile, service_of

ROOT = Path(__file__).resolve().parents[2]
BACKOFF = core.Backoff(1.0, 8.0)


def settings(**nrf: object) -> Settings:
    return Settings.load(ROOT / "tests" / "data" / "nf-test.yaml",
                         nrf={"uri": "http://127.0.0.1:1", **nrf})


def test_register_then_heartbeat_at_the_nrf_timer() -> None:
    r = core.Registration("CHF", "id", heartbeat_s=30)
    assert r.action is core.Action.REGISTER and r.state == "registering"
    r = core.registered(r, 100.0, 12)
    assert r.action is core.Action.HEARTBEAT and r.due_at == 112.0 and r.heartbeat_s == 12
    r = core.heartbeat_ok(r, 112.0)
    assert r.due_at == 124.0
    r = core.heartbeat_ok(r, 124.0, 20)  # the NRF changed its mind
    assert r.due_at == 144.0


def test_nrf_without_timer_keeps_ours() -> None:
    r = core.registered(core.Registration("PCF", "id", heartbeat_s=30), 0.0, None)
    assert r.heartbeat_s == 30 and r.due_at == 30.0


def test_404_registers_again_at_once() -> None:
    r = core.registered(core.Registration("CHF", "id"), 0.0, 10)
    r = core.forgotten(r, 10.0)
    assert r.action is core.Action.REGISTER and r.due_at == 10.0
    r = core.registered(r, 10.0, 10)
    assert r.registrations == 2


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    r = core.registered(core.Registration("CHF", "id"), 0.0, 10)
    delays = []
    now = 10.0
    for _ in range(6):
        r = core.failed(r, now, BACKOFF, "connection refused")
        delays.append(r.due_at - now)
        now = r.due_at
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert r.action is core.Action.REGISTER and r.state == "retrying"
    r = core.registered(r, now, 10)
    assert r.failures == 0 and r.last_error is None


def test_instance_ids_are_stable_and_distinct_per_type() -> None:
    s = settings()
    assert instance_id(s, "CHF") == instance_id(settings(), "CHF")
    assert instance_id(s, "CHF") != instance_id(s, "PCF")
    other = s.model_copy(update={"instance_id": "other-nf"})
    assert instance_id(other, "CHF") != instance_id(s, "CHF")


def test_profiles_carry_services_and_info() -> None:
    s = settings(supi_ranges=[{"start": "001010000000000", "end": "001019999999999"}],
                 dnns=["internet"], fqdn="chf.mvno.example")
    chf = nf_profile(s, "CHF")
    assert chf["nfType"] == "CHF" and chf["nfStatus"] == "REGISTERED"
    assert {svc["serviceName"] for svc in chf["nfServices"]} == {
        "nchf-convergedcharging", "nchf-spendinglimitcontrol"}
    assert set(chf["nfServiceList"]) == {"nchf-convergedcharging",
                                         "nchf-spendinglimitcontrol"}
    cc = next(x for x in chf["nfServices"] if x["serviceName"] == "nchf-convergedcharging")
    assert cc["versions"][0]["apiVersionInUri"] == "v3" and cc["scheme"] == "http"
    assert cc["fqdn"] == "chf.mvno.example"
    assert chf["chfInfo"]["supiRangeList"] == [{"start": "001010000000000",
                                                "end": "001019999999999"}]
    assert {"start": "00101", "end": "00101"} in chf["chfInfo"]["plmnRangeList"]
    assert {"mcc": "999", "mnc": "001"} in chf["plmnList"]
    pcf = nf_profile(s, "PCF")
    assert [x["serviceName"] for x in pcf["nfServices"]] == ["npcf-smpolicycontrol"]
    assert pcf["pcfInfo"]["dnnList"] == ["internet"]
    assert pcf["fqdn"] == "chf.mvno.example" and "ipv4Addresses" not in pcf
    # Without an FQDN the SBI address is announced, with its port.
    plain = nf_profile(settings(), "PCF")
    assert plain["ipv4Addresses"] == ["127.0.0.1"]
    assert plain["nfServices"][0]["ipEndPoints"] == [
        {"ipv4Address": "127.0.0.1", "transport": "TCP", "port": 8000}]


def with_listeners(ids: tuple[str, ...], **nrf: object) -> Settings:
    """The test networks, those in ``ids`` with their own SBI listener: northwind on the SBI
    host, bluepeak on an IPv6 address of its own, redmoor on the SBI host too."""
    base = settings(**nrf)
    own = {"northwind": {"sbi_port": 8101},
           "bluepeak": {"sbi_port": 8102, "sbi_host": "fd00::2"},
           "redmoor": {"sbi_port": 8103}}
    nets = [{**n.model_dump(exclude_none=True),
             **({**own[n.id], "tls_client_ca_file": f"{n.id}.pem"} if n.id in ids else {})}
            for n in base.networks]
    server = {**base.server.model_dump(exclude_none=True), "tls_cert_file": "c.pem",
              "tls_key_file": "k.pem"}
    return Settings.load(ROOT / "tests" / "data" / "nf-test.yaml", server=server,
                         networks=nets, nrf=base.nrf.model_dump())


def test_each_network_listener_is_a_service_instance_of_its_own() -> None:
    """A host network with its own listener finds it in the profile, allowed to its PLMNs;
    the shared SBI port is shown to the other networks only."""
    chf = nf_profile(with_listeners(("northwind", "bluepeak"), fqdn="chf.mvno.example"), "CHF")
    cc = {x["serviceInstanceId"]: x for x in chf["nfServices"]
          if x["serviceName"] == "nchf-convergedcharging"}
    assert set(cc) == {"nchf-convergedcharging", "nchf-convergedcharging-northwind",
                       "nchf-convergedcharging-bluepeak"}
    assert set(chf["nfServiceList"]) == {x["serviceInstanceId"] for x in chf["nfServices"]}
    assert len(chf["nfServices"]) == 6  # and spending-limit control likewise
    shared, north, blue = (cc["nchf-convergedcharging"],
                           cc["nchf-convergedcharging-northwind"],
                           cc["nchf-convergedcharging-bluepeak"])
    assert shared["allowedPlmns"] == [{"mcc": "999", "mnc": "001"}]
    assert north["allowedPlmns"] == [{"mcc": "001", "mnc": "01"}]
    assert blue["allowedPlmns"] == [{"mcc": "001", "mnc": "02"}]
    assert {x["scheme"] for x in cc.values()} == {"https"}
    # On the SBI host: reached like the shared port (the FQDN), on its own port.
    assert north["fqdn"] == shared["fqdn"] == "chf.mvno.example"
    assert shared["ipEndPoints"] == [{"transport": "TCP", "port": 8000}]
    assert north["ipEndPoints"] == [{"transport": "TCP", "port": 8101}]
    # On an address of its own: that address.
    assert "fqdn" not in blue
    assert blue["ipEndPoints"] == [{"ipv6Address": "fd00::2", "transport": "TCP",
                                    "port": 8102}]
    # Without an FQDN, the SBI address is the listener's too.
    plain = nf_profile(with_listeners(("northwind",)), "PCF")
    assert [(x["serviceInstanceId"], x["ipEndPoints"]) for x in plain["nfServices"]] == [
        ("npcf-smpolicycontrol",
         [{"ipv4Address": "127.0.0.1", "transport": "TCP", "port": 8000}]),
        ("npcf-smpolicycontrol-northwind",
         [{"ipv4Address": "127.0.0.1", "transport": "TCP", "port": 8101}])]
    # Every network on its own listener: the shared port is not offered to any of them.
    every = nf_profile(with_listeners(("northwind", "bluepeak", "redmoor")), "PCF")
    assert [x["serviceInstanceId"] for x in every["nfServices"]] == [
        "npcf-smpolicycontrol-northwind", "npcf-smpolicycontrol-bluepeak",
        "npcf-smpolicycontrol-redmoor"]


def test_service_of_paths() -> None:
    assert service_of("/nchf-convergedcharging/v3/chargingdata") == (
        "nchf-convergedcharging", "CHF")
    assert service_of("/npcf-smpolicycontrol/v1/sm-policies/x") == ("npcf-smpolicycontrol",
                                                                     "PCF")
    assert service_of("/healthz") is None
    assert service_of("/") is None


def test_profiles_are_valid_rel17_nf_profiles() -> None:
    """Each profile (and the heartbeat patch) against TS 29.510's own schemas."""
    from tests import conformance as c

    s = settings(supi_ranges=[{"pattern": "^imsi-00101[0-9]{10}$"},
                              {"start": "001020000000000", "end": "001029999999999"}],
                 dnns=["internet"])
    listeners = with_listeners(("northwind", "bluepeak"), dnns=["internet"])
    for t in ("CHF", "PCF"):
        c.validate_schema("TS29510_Nnrf_NFManagement.yaml", "NFProfile", nf_profile(s, t))
        c.validate_schema("TS29510_Nnrf_NFManagement.yaml", "NFProfile",
                          nf_profile(listeners, t))
    broken = {**nf_profile(s, "CHF"), "nfStatus": "MAYBE", "heartBeatTimer": "soon"}
    with pytest.raises(AssertionError, match=r"nfStatus|heartBeatTimer"):
        c.validate_schema("TS29510_Nnrf_NFManagement.yaml", "NFProfile", broken)


def test_a_registered_profile_is_read_back_between_heartbeats() -> None:
    r = core.registered(core.Registration("CHF", "id", heartbeat_s=30, check_s=45), 0.0, 10)
    assert r.check_at == 45.0 and r.action_at(5.0) is None
    assert r.action_at(10.0) is core.Action.HEARTBEAT  # a heartbeat goes first
    r = core.heartbeat_ok(r, 50.0)
    assert r.action_at(50.0) is core.Action.CHECK and core.next_due([r]) == 45.0
    r = core.checked(r, 50.0)
    assert r.check_at == 95.0 and core.next_due([r]) == 60.0
    r = core.forgotten(r, 51.0)  # the read-back answered 404
    assert r.action_at(51.0) is core.Action.REGISTER and core.next_due([r]) == 51.0
    off = core.registered(core.Registration("PCF", "id", check_s=0), 0.0, 10)
    assert off.action_at(1e9) is core.Action.HEARTBEAT and off.check_at == float("inf")
