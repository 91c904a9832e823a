"""The calling host network and its checks (pure parts of nf.security.caller)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import HostNetwork, Settings
from nf.errors import BadRequest, Forbidden
from nf.security.caller import (
    Caller,
    check_notify_uri,
    check_owner,
    check_plmns,
    resolve,
    uri_allowed,
)
from nf.security.tokens import Claims

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings() -> Settings:
    s = Settings.load(ROOT / "tests" / "data" / "nf-test.yaml")
    extra = {"notify_cidrs": ["10.1.0.0/16", "2001:db8::/32"],
             "notify_fqdn_suffixes": ["smf.northwind.example"],
             "consumer_nf_instance_ids": ["smf-nw-1"]}
    nets = [HostNetwork.model_validate({**n.model_dump(), **extra})
            if n.id == "northwind" else n for n in s.networks]
    return s.model_copy(update={"networks": nets})


def claims(plmn: str | None = None, sub: str | None = None) -> Claims:
    return Claims(subject=sub, audiences=("CHF",), scopes=frozenset(), expires=0.0,
                  consumer_plmn=plmn)


def test_network_from_consumer_plmn_or_subject(settings: Settings) -> None:
    assert resolve(settings, claims("00102")).network.id == "bluepeak"
    c = resolve(settings, claims(sub="smf-nw-1"))
    assert c.network.id == "northwind" and c.plmn == "00101"
    with pytest.raises(Forbidden):
        resolve(settings, claims("31041"))
    with pytest.raises(Forbidden):
        resolve(settings, claims(sub="smf-unknown"))


def test_body_naming_another_network_is_refused(settings: Settings) -> None:
    a = resolve(settings, claims("00101"))
    check_plmns(settings, a, consumer=("c", "00101"), others=[("s", "00101")])
    check_plmns(settings, a, others=[("s", "23415")])  # a roaming partner, not a host
    with pytest.raises(Forbidden) as e:
        check_plmns(settings, a, consumer=("nfConsumerIdentification/nFPLMNID", "00102"))
    assert "nFPLMNID" in e.value.detail
    with pytest.raises(Forbidden):
        check_plmns(settings, a, consumer=("c", "23415"))  # the consumer must be the caller
    with pytest.raises(Forbidden):
        check_plmns(settings, a, others=[("servingNetwork", "999001")])
    check_plmns(settings, None, consumer=("c", "00102"))  # no OAuth2: no binding


def test_owner(settings: Settings) -> None:
    a = resolve(settings, claims("00101"))
    check_owner(a, "northwind", "x")
    check_owner(a, None, "x")
    check_owner(None, "bluepeak", "x")
    with pytest.raises(Forbidden):
        check_owner(a, "bluepeak", "charging session r1")


@pytest.mark.parametrize(("uri", "ok"), [
    ("http://10.1.2.3:8080/notify", True),
    ("http://10.2.0.1/notify", False),
    ("http://[2001:db8::5]/n", True),
    ("http://[::1]/n", False),
    ("https://smf1.smf.northwind.example/cb", True),
    ("https://smf.northwind.example/cb", True),
    ("https://evilsmf.northwind.example/cb", False),
    ("https://smf.northwind.example.evil.com/cb", False),
    ("http://127.0.0.1:27017/", False),
    ("http://169.254.169.254/latest/meta-data", False),
    ("http:///nohost", False),
])
def test_allow_list(settings: Settings, uri: str, ok: bool) -> None:
    net = settings.network("northwind")
    assert net is not None
    assert uri_allowed(net, uri) is ok


def test_unset_allow_list_allows_any(settings: Settings) -> None:
    net = settings.network("bluepeak")
    assert net is not None and uri_allowed(net, "http://127.0.0.1:1/")


def test_refusal_names_the_field(settings: Settings) -> None:
    net = settings.network("northwind")
    with pytest.raises(BadRequest) as e:
        check_notify_uri(net, "notifyUri", "http://192.168.0.1/x")
    assert e.value.status == 400
    assert e.value.invalid_params[0].param == "/notifyUri"
    check_notify_uri(None, "notifyUri", "http://192.168.0.1/x")
    check_notify_uri(net, "notifyUri", None)
    assert isinstance(Caller(net, "00101", None), Caller)  # type: ignore[arg-type]


def test_token_of_another_network_on_a_network_listener(settings: Settings) -> None:
    from nf.security.caller import check_listener

    northwind, bluepeak = settings.networks[0], settings.networks[1]
    check_listener(Caller(northwind, "00101", "smf-nw-1"), northwind)
    with pytest.raises(Forbidden) as e:
        check_listener(Caller(bluepeak, "00102", "smf-bp-1"), northwind)
    assert e.value.cause == "PLMN_NOT_ALLOWED" and "northwind" in e.value.detail
