"""OAuth2 access tokens, host-network ownership, notification allow-lists and mTLS on the
real ``nf serve`` over HTTP/2.

Tokens come from an issuer that shares no code with the NF (tests/jwt_issuer.py signs ES256
with ``cryptography`` by hand); its JWKS is served over HTTP by a real server (the NF
fetches it by URL). Network A is northwind (PLMN 00101), network B is bluepeak (00102).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trustme
import yaml

from nf.clock import SystemClock
from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from nf.store.mongo import Db
from tests.e2e.nfproc import TEST_CONFIG, running_nf
from tests.jwt_issuer import Issuer, plmn
from tests.ledger import helpers as h
from tests.oauth2_peer import TokenEndpoint, Unavailable, running_token_endpoint
from tests.peers import NotificationReceiver, Reply
from tests.smf_sim import SmfSim, httpx_transport

pytestmark = pytest.mark.e2e

SUPI = "imsi-001010000000911"
ALL_SCOPES = "nchf-convergedcharging npcf-smpolicycontrol nchf-spendinglimitcontrol"
CHF = "/nchf-convergedcharging/v3/chargingdata"
PCF = "/npcf-smpolicycontrol/v1/sm-policies"
SLC = "/nchf-spendinglimitcontrol/v1/subscriptions"


def config(tmp: Path, **net_updates: dict[str, Any]) -> Path:
    """The test configuration with per-network additions (by network id)."""
    data = yaml.safe_load(TEST_CONFIG.read_text())
    data["catalog_dir"] = str(h.TEST_CATALOG)
    for n in data["networks"]:
        n.update(net_updates.get(n["id"], {}))
    path = tmp / "nf-security.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def pcf_context(notification_uri: str, serving: str = "00101") -> dict[str, Any]:
    return {"supi": SUPI, "pduSessionId": 7, "pduSessionType": "IPV4", "dnn": "internet",
            "notificationUri": notification_uri, "sliceInfo": {"sst": 1, "sd": "000001"},
            "servingNetwork": plmn(serving), "ratType": "NR", "accessType": "3GPP_ACCESS"}


async def test_tokens_ownership_and_notification_targets(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    issuer = Issuer("nrf-test-issuer")
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    await h.subscriber(ledger, SystemClock().now(), SUPI, "t-capped", brand="testco")
    cfg = config(tmp_path, northwind={"notify_cidrs": ["127.0.0.0/8"],
                                      "notify_fqdn_suffixes": ["smf.northwind.example"]})

    def tok(consumer: str = "00101", **kw: Any) -> dict[str, str]:
        args: dict[str, Any] = {"aud": ["CHF", "PCF"], "scope": ALL_SCOPES,
                                "consumerPlmnId": plmn(consumer)}
        args.update(kw)
        return {"authorization": f"Bearer {issuer.token(**args)}"}

    # Tokens for the accepted requests come from oauth2-mock-server playing the NRF's token
    # endpoint (its key and ours are both in the JWKS the NF fetches: a key rollover);
    # without Node they come from the in-test signer.
    with contextlib.ExitStack() as stack:
        try:
            endpoint: TokenEndpoint | None = stack.enter_context(
                running_token_endpoint(issuer.iss))
        except Unavailable:
            endpoint = None
        jwks = issuer.jwks()
        if endpoint is not None:
            jwks["keys"] += endpoint.jwks()["keys"]

        def minted(consumer: str, target: str) -> dict[str, str]:
            scope = ("npcf-smpolicycontrol" if target == "PCF" else
                     "nchf-convergedcharging nchf-spendinglimitcontrol")
            if endpoint is None:
                return tok(consumer, aud=target, scope=scope)
            return {"authorization": "Bearer " + endpoint.token(
                nfInstanceId=f"smf-{consumer}", nfType="SMF", targetNfType=target,
                scope=scope, requesterPlmn=plmn(consumer))}

        await _run(issuer, jwks, minted, tok, db_server, settings, db, tmp_path, cfg)


async def _run(issuer: Issuer, jwks: dict[str, Any], minted: Any, tok: Any,
               db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path,
               cfg: Path) -> None:
    async with NotificationReceiver() as peer:
        peer.respond("/jwks", Reply(200, jwks))
        env = {"NF_CONFIG": str(cfg), "NF_OAUTH2__REQUIRED": "true",
               "NF_OAUTH2__ISSUER": issuer.iss, "NF_OAUTH2__JWKS_URI": peer.url("/jwks")}
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            async with contextlib.AsyncExitStack() as clients:
                def client(headers: dict[str, str] | None = None, **kw: Any
                           ) -> httpx.AsyncClient:
                    made = httpx.AsyncClient(http2=True, http1=False, timeout=10,
                                             headers=headers, **kw)
                    clients.push_async_callback(made.aclose)
                    return made

                c = client(base_url=nf.sbi)
                a_headers, a_pcf = minted("00101", "CHF"), minted("00101", "PCF")
                a = SmfSim(httpx_transport(client(a_headers), nf.sbi), SUPI,
                    notify_uri=peer.url("/smf/a"))
                body = a.body(requested=1000)

                # -- refused tokens, each with its RFC 6750 challenge -------------------
                r = await c.post(CHF, json=body)
                problem(r, 401)
                assert r.headers["www-authenticate"].startswith("Bearer realm=")
                assert "error=" not in r.headers["www-authenticate"]
                cases = [
                    (tok(now=time.time() - 7200, ttl_s=60), 401, "invalid_token"),
                    (tok(aud=["PCF"]), 401, "invalid_token"),
                    (tok(aud="some-other-nf-instance"), 401, "invalid_token"),
                    (tok(scope="npcf-smpolicycontrol"), 403, "insufficient_scope"),
                    ({"authorization": "Bearer " + Issuer(issuer.iss, issuer.kid).token(
                        aud="CHF", scope=ALL_SCOPES, consumerPlmnId=plmn("00101"))},
                     401, "invalid_token"),
                    ({"authorization": "Bearer " + Issuer("someone-else").token(
                        aud="CHF", scope=ALL_SCOPES)}, 401, "invalid_token"),
                    ({"authorization": "Basic YTpi"}, 401, "invalid_request"),
                    (tok("31041"), 403, None),  # a PLMN that is none of our networks
                ]
                for headers, status, error in cases:
                    r = await c.post(CHF, json=body, headers=headers)
                    problem(r, status)
                    if error:
                        assert f'error="{error}"' in r.headers["www-authenticate"], error
                # Nothing was created by the refused requests.
                assert await db["charging_sessions"].count_documents({}) == 0

                # -- a valid token is accepted ------------------------------------------
                ex = await a.create(requested=1000)
                assert ex.status == 201, ex.response
                assert (await a.update(None, 1000)).status == 200

                # -- network B cannot touch A's session ---------------------------------
                b_headers, b_pcf = minted("00102", "CHF"), minted("00102", "PCF")
                b = SmfSim(httpx_transport(client(b_headers), nf.sbi), SUPI,
                    plmn="00102", notify_uri="http://127.0.0.1:9/b")
                b.ref, b.isn = a.ref, a.isn
                assert (await b.update(None, 1000)).status == 403
                assert (await b.release()).status == 403
                # ... nor speak for A, nor A for B (a body naming another network's PLMN).
                a_as_b = SmfSim(a.transport, SUPI, plmn="00102", pdu_session_id=2)
                ex = await a_as_b.create(requested=1000)
                assert ex.status == 403 and "nFPLMNID" in ex.response["detail"]
                a_in_b = SmfSim(a.transport, SUPI, serving_plmn="00102", pdu_session_id=3)
                assert (await a_in_b.create(requested=1000)).status == 403
                # A still owns and ends its session.
                assert (await a.release()).status == 204

                # -- notification targets outside A's allow-list -----------------------
                for uri in ("http://10.0.0.1/notify", "http://169.254.169.254/x",
                            "https://smf.northwind.example.evil.net/n"):
                    stray = SmfSim(a.transport, SUPI, notify_uri=uri, pdu_session_id=4)
                    ex = await stray.create(requested=1000)
                    assert ex.status == 400, (uri, ex.response)
                    assert ex.response["invalidParams"][0]["param"] == "/notifyUri"
                r = await c.post(PCF, json=pcf_context("http://10.0.0.1/pcf"),
                                 headers=a_pcf)
                assert problem(r, 400)["invalidParams"][0]["param"] == "/notificationUri"
                r = await c.post(SLC, json={"supi": SUPI, "notifUri": "http://10.0.0.1/s"},
                                 headers=a_headers)
                assert problem(r, 400)["invalidParams"][0]["param"] == "/notifUri"

                # -- SM policies: only the creating network ------------------------------
                r = await c.post(PCF, json=pcf_context(peer.url("/pcf/a")), headers=a_pcf)
                assert r.status_code == 201, r.text
                policy = r.headers["location"].removeprefix(nf.sbi)
                assert (await c.get(policy, headers=b_pcf)).status_code == 403
                r = await c.post(policy + "/update", json={}, headers=b_pcf)
                assert r.status_code == 403
                assert (await c.post(policy + "/delete", headers=b_pcf)).status_code \
                    == 403
                # B naming A's PLMN as its serving network is refused too.
                r = await c.post(PCF, json=pcf_context("http://127.0.0.1:9/b", "00101"),
                                 headers=b_pcf)
                assert r.status_code == 403
                # A CHF token does not open the PCF (audience and scope).
                assert (await c.get(policy, headers=a_headers)).status_code == 401
                assert (await c.get(policy, headers=a_pcf)).status_code == 200
                assert (await c.post(policy + "/delete", headers=a_pcf)).status_code \
                    == 204
                doc = await db["edrs"].find_one({"charging_data_ref": a.ref})
                assert doc is not None and doc["host_network"] == "northwind"

                # -- spending-limit subscriptions: only the creating network -------------
                r = await c.post(SLC, json={"supi": SUPI, "notifUri": peer.url("/slc/a")},
                                 headers=a_headers)
                assert r.status_code == 201, r.text
                sub = r.headers["location"].removeprefix(nf.sbi)
                r = await c.put(sub, json={"supi": SUPI, "notifUri": "http://127.0.0.1:9/b"},
                                headers=b_headers)
                assert r.status_code == 403
                assert (await c.delete(sub, headers=b_headers)).status_code == 403
                assert (await c.delete(sub, headers=a_headers)).status_code == 204
            log = nf.log.read_text()
        assert "another host network" in log


def _tls_files(tmp: Path) -> tuple[trustme.CA, Path, Path, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp / "cert.pem", tmp / "key.pem", tmp / "clients-ca.pem"
    server.private_key_and_cert_chain_pem.write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, cert, key, ca_file


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_mtls_requires_a_client_certificate_from_the_ca(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path, server: str) -> None:
    ca, cert, key, ca_file = _tls_files(tmp_path)
    good = ssl.create_default_context()
    ca.configure_trust(good)
    ca.issue_cert("smf1.smf.northwind.example").configure_cert(good)
    anonymous = ssl.create_default_context()
    ca.configure_trust(anonymous)
    stranger = ssl.create_default_context()
    ca.configure_trust(stranger)
    trustme.CA().issue_cert("smf1.smf.northwind.example").configure_cert(stranger)
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server=server,
                    tls=(cert, key), sbi_ssl=good,
                    extra_env={"NF_SERVER__TLS_CLIENT_CA_FILE": str(ca_file)}) as nf:
        with httpx.Client(http2=True, verify=good) as c:
            r = c.get(nf.sbi + "/nothing-here")
            assert r.http_version == "HTTP/2" and r.status_code == 404
        for ctx in (anonymous, stranger):
            with httpx.Client(http2=True, verify=ctx) as c, \
                    pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.WriteError,
                                   httpx.RemoteProtocolError)):
                c.get(nf.sbi + "/nothing-here")
        # OAM stays reachable for probes without a client certificate.
        oam = ssl.create_default_context()
        ca.configure_trust(oam)
        assert httpx.get(nf.oam + "/healthz", verify=oam).status_code == 200


def test_config_refuses_mtls_without_tls(tmp_path: Path) -> None:
    from nf.errors import ConfigError

    with pytest.raises(ConfigError, match="tls_client_ca_file"):
        Settings.load(TEST_CONFIG, server={"tls_client_ca_file": str(tmp_path / "ca.pem")})
    with pytest.raises(ConfigError, match="oauth2"):
        Settings.load(TEST_CONFIG, oauth2={"required": True})


# -- host networks' own SBI listeners (mTLS, one client CA bundle per network) ------------

# Under TLS 1.3 the server refuses a client certificate after the client has finished its
# side of the handshake: the refusal (an "unknown CA" alert) then arrives on the first read,
# which httpx's async transport lets through as ``ssl.SSLError``.
CONNECTION_REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.WriteError,
                      httpx.RemoteProtocolError, ssl.SSLError)


class _Listeners:
    """Server TLS plus one listener each for northwind (A) and bluepeak (B), with a CA of
    their own; ``client(net)`` is an HTTP/2 client with a certificate from that network's
    CA."""

    def __init__(self, tmp: Path) -> None:
        self.server_ca, self.cert, self.key, _ = _tls_files(tmp)
        self.cas = {"northwind": trustme.CA(), "bluepeak": trustme.CA()}
        self.ports = {net: free_port() for net in self.cas}
        self.nets: dict[str, dict[str, Any]] = {}
        for net, ca in self.cas.items():
            ca_file = tmp / f"{net}-clients-ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            self.nets[net] = {"sbi_port": self.ports[net], "tls_client_ca_file": str(ca_file)}
        self.sbi_ssl = ssl.create_default_context()  # the shared SBI port: TLS only
        self.server_ca.configure_trust(self.sbi_ssl)

    def url(self, net: str) -> str:
        return f"https://127.0.0.1:{self.ports[net]}"

    def context(self, net: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        self.cas[net].issue_cert(f"smf1.smf.{net}.example").configure_cert(ctx)
        return ctx


async def _assert_refused_at_handshake(url: str, ctx: ssl.SSLContext) -> None:
    async with httpx.AsyncClient(http2=True, verify=ctx, timeout=5) as c:
        with pytest.raises(CONNECTION_REFUSED):
            await c.get(url + "/healthz")


async def test_network_listeners_bind_the_caller_without_oauth2(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    """Granian: a request on a network's own listener is that network's: its SMF cannot
    speak for another network, and another network's listener cannot touch its sessions
    and policies. The shared SBI port keeps trusting the body."""
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    await h.subscriber(ledger, SystemClock().now(), SUPI, "t-capped", brand="testco")
    tls = _Listeners(tmp_path)
    cfg = config(tmp_path, **tls.nets)
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                    tls=(tls.cert, tls.key), sbi_ssl=tls.sbi_ssl,
                    extra_env={"NF_CONFIG": str(cfg)}) as nf:
        # Each listener admits only its own network's certificates.
        await _assert_refused_at_handshake(tls.url("bluepeak"), tls.context("northwind"))
        await _assert_refused_at_handshake(tls.url("northwind"), tls.context("bluepeak"))
        anonymous = ssl.create_default_context()
        tls.server_ca.configure_trust(anonymous)
        await _assert_refused_at_handshake(tls.url("northwind"), anonymous)
        async with httpx.AsyncClient(verify=tls.sbi_ssl) as oam:
            ready = (await oam.get(nf.oam + "/readyz")).json()
        assert ready["sbi"] is True  # covers both network listeners

        async with httpx.AsyncClient(http2=True, http1=False, timeout=10,
                                     verify=tls.context("northwind")) as ca_, \
                httpx.AsyncClient(http2=True, http1=False, timeout=10,
                                  verify=tls.context("bluepeak")) as cb, \
                httpx.AsyncClient(http2=True, http1=False, timeout=10,
                                  verify=tls.sbi_ssl) as shared:
            a_url, b_url = tls.url("northwind"), tls.url("bluepeak")
            a = SmfSim(httpx_transport(ca_, a_url), SUPI)
            ex = await a.create(requested=1000)
            assert ex.status == 201, ex.response
            # The same SMF naming B's PLMN, as its own or as the serving network.
            ex = await SmfSim(a.transport, SUPI, plmn="00102", pdu_session_id=2).create(1000)
            assert ex.status == 403 and ex.response["cause"] == "PLMN_NOT_ALLOWED", ex.response
            assert "nFPLMNID" in ex.response["detail"]
            ex = await SmfSim(a.transport, SUPI, serving_plmn="00102",
                              pdu_session_id=3).create(1000)
            assert ex.status == 403 and "servingCNPlmnId" in ex.response["detail"]
            # B's listener cannot update or release A's session, even naming A's PLMN.
            for plmn_ in ("00102", "00101"):
                b = SmfSim(httpx_transport(cb, b_url), SUPI, plmn=plmn_)
                b.ref, b.isn = a.ref, a.isn
                assert (await b.update(None, 1000)).status == 403
                assert (await b.release()).status == 403
            assert (await a.update(None, 1000)).status == 200

            # SM policies: created on A's listener, B's cannot read, update or delete.
            r = await ca_.post(a_url + PCF, json=pcf_context("http://127.0.0.1:9/pcf/a"))
            assert r.status_code == 201, r.text
            policy = urlsplit(r.headers["location"]).path
            problem(await cb.get(b_url + policy), 403)
            problem(await cb.post(b_url + policy + "/update", json={}), 403)
            problem(await cb.post(b_url + policy + "/delete"), 403)
            assert (await ca_.get(a_url + policy)).status_code == 200
            assert (await ca_.post(a_url + policy + "/delete")).status_code == 204

            # The shared port: no caller, the body names the network (as before).
            s = SmfSim(httpx_transport(shared, nf.sbi), SUPI, plmn="00102",
                       pdu_session_id=4)
            assert (await s.create(requested=1000)).status == 201
            assert (await s.release()).status == 204
            assert (await a.release()).status == 204
        log = nf.log.read_text()
    assert "access to another host network's resource refused" in log
    assert '"listener_network": "bluepeak"' not in log  # no token, no mismatch logged


async def test_network_listener_with_oauth2_refuses_another_networks_token(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    """Hypercorn, OAuth2 required: a token must still be there and valid on a network's
    listener, and be that network's."""
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    await h.subscriber(ledger, SystemClock().now(), SUPI, "t-capped", brand="testco")
    tls = _Listeners(tmp_path)
    cfg = config(tmp_path, **tls.nets)
    issuer = Issuer("nrf-test-issuer")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))

    def tok(consumer: str) -> dict[str, str]:
        return {"authorization": "Bearer " + issuer.token(
            aud="CHF", scope=ALL_SCOPES, consumerPlmnId=plmn(consumer))}

    env = {"NF_CONFIG": str(cfg), "NF_OAUTH2__REQUIRED": "true",
           "NF_OAUTH2__ISSUER": issuer.iss, "NF_OAUTH2__JWKS_FILE": str(jwks)}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server="hypercorn",
                    tls=(tls.cert, tls.key), sbi_ssl=tls.sbi_ssl, extra_env=env) as nf:
        await _assert_refused_at_handshake(tls.url("northwind"), tls.context("bluepeak"))
        a_url = tls.url("northwind")
        async with httpx.AsyncClient(http2=True, http1=False, timeout=10,
                                     verify=tls.context("northwind")) as ca_:
            body = SmfSim(httpx_transport(ca_, a_url), SUPI).body(requested=1000)
            problem(await ca_.post(a_url + CHF, json=body), 401)  # no token
            r = await ca_.post(a_url + CHF, json=body, headers=tok("00102"))
            assert problem(r, 403)["cause"] == "PLMN_NOT_ALLOWED"
            assert "serves host network northwind" in r.json()["detail"]
            assert await db["charging_sessions"].count_documents({}) == 0
            ca_.headers.update(tok("00101"))
            a = SmfSim(httpx_transport(ca_, a_url), SUPI)
            ex = await a.create(requested=1000)
            assert ex.status == 201, ex.response
            assert (await a.release()).status == 204
        log = nf.log.read_text()
    assert "token of another host network on a network's own listener refused" in log
