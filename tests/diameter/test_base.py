"""The base protocol core (``nf.diameter.base``) on its own: capabilities exchange,
watchdog, disconnect, protocol errors and duplicates, with time passed in."""

from __future__ import annotations

from nf.diameter import base, codec
from nf.diameter.base import APP_GX, APP_GY, APP_SY, AnswerCache, Connection, State
from nf.diameter.codec import Message

ME = base.Identity("nf.mvno.test", "mvno.test", "127.0.0.1", "mvno-nf")
REALM = "epc.mnc001.mcc001.3gppnetwork.org"
ALLOWED = base.allowed_from({"northwind": ([REALM], ["pgw1.northwind.test"])})


def _conn(cache: AnswerCache | None = None) -> Connection:
    return Connection(ME, ALLOWED, cache if cache is not None else AnswerCache(100),
                      watchdog_s=30.0, now=0.0, first_id=1000)


def _req(command: int, app: int, avps: list[codec.Avp], e2e: int = 7, hbh: int = 5,
         host: str = "pgw1.northwind.test", realm: str = REALM,
         flags_extra: int = 0) -> Message:
    m = codec.request(command, app, [
        codec.new_avp(codec.AVP_ORIGIN_HOST, host.encode()),
        codec.new_avp(codec.AVP_ORIGIN_REALM, realm.encode()), *avps],
        hop_by_hop=hbh, end_to_end=e2e, proxiable=app != 0)
    m.header.command_flags |= flags_extra
    return codec.decode(codec.encode(m))


def _cer(apps: list[int] | None = None, vendor_apps: list[int] | None = None,
         **kw: str) -> Message:
    avps = [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a) for a in apps or []]
    avps += [codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
        codec.new_avp(codec.AVP_VENDOR_ID, codec.VENDOR_3GPP),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a)]) for a in vendor_apps or []]
    return _req(codec.CMD_CER, 0, avps, **kw)


def _sent(msg: Message) -> Message:
    return codec.decode(codec.encode(msg))


def _open(cache: AnswerCache | None = None) -> Connection:
    c = _conn(cache)
    assert codec.result_code(c.received(_cer([APP_GY]), 0.0).send[0]) == codec.SUCCESS
    return c


def test_cea_offers_gy_gx_sy_and_opens() -> None:
    c = _conn()
    step = c.received(_cer([APP_GY]), 0.0)
    cea = _sent(step.send[0])
    h = codec.header_of(cea)
    assert (h.command, h.is_request, h.hop_by_hop, h.end_to_end) == (257, False, 5, 7)
    assert codec.result_code(cea) == codec.SUCCESS and not step.close
    assert codec.get_str(cea, codec.AVP_ORIGIN_HOST) == "nf.mvno.test"
    plain = {a.value for a in codec.find_all(cea, codec.AVP_AUTH_APPLICATION_ID)}
    vsa = {codec.get_int(v, codec.AVP_AUTH_APPLICATION_ID)
           for v in codec.find_all(cea, codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID)}
    assert plain == {APP_GY} and vsa == {APP_GX, APP_SY}
    assert codec.get_int(cea, codec.AVP_SUPPORTED_VENDOR_ID) == codec.VENDOR_3GPP
    assert c.state is State.OPEN and c.peer is not None
    assert (c.peer.network_id, c.peer.apps) == ("northwind", frozenset({APP_GY}))


def test_gx_and_sy_accepted_inside_vendor_specific_application_id() -> None:
    c = _conn()
    c.received(_cer(vendor_apps=[APP_GX, APP_SY]), 0.0)
    assert c.peer is not None and c.peer.apps == frozenset({APP_GX, APP_SY})


def test_relay_only_peer_gets_every_application() -> None:
    c = _conn()
    c.received(_cer([codec.APP_RELAY]), 0.0)
    assert c.peer is not None and c.peer.apps == frozenset({APP_GY, APP_GX, APP_SY})


def test_unknown_peer_refused_3010_and_closed() -> None:
    for kw in ({"host": "pgw9.elsewhere.test"}, {"realm": "other.realm"}):
        c = _conn()
        step = c.received(_cer([APP_GY], **kw), 0.0)
        cea = _sent(step.send[0])
        assert codec.result_code(cea) == codec.UNKNOWN_PEER
        assert codec.header_of(cea).flags & codec.FLAG_ERROR
        assert step.close and c.state is State.CLOSED and c.peer is None


def test_no_common_application_5010() -> None:
    c = _conn()
    step = c.received(_cer([16777251]), 0.0)  # S6a only
    assert codec.result_code(step.send[0]) == codec.NO_COMMON_APPLICATION and step.close


def test_anything_before_cer_closes() -> None:
    c = _conn()
    step = c.received(_req(codec.CMD_DWR, 0, []), 0.0)
    assert step.close and not step.send


def test_dwr_answered_and_dpr_answered() -> None:
    c = _open()
    dwa = _sent(c.received(_req(codec.CMD_DWR, 0, []), 1.0).send[0])
    assert codec.header_of(dwa).command == 280 and codec.result_code(dwa) == 2001
    step = c.received(_req(codec.CMD_DPR, 0, [
        codec.new_avp(codec.AVP_DISCONNECT_CAUSE, 2)]), 2.0)
    assert codec.result_code(step.send[0]) == 2001 and c.state is State.CLOSING


def test_unknown_application_3007_and_unknown_base_command_3001() -> None:
    c = _open()
    sid = codec.new_avp(codec.AVP_SESSION_ID, "s;1")
    ans = _sent(c.received(_req(272, APP_GX, [sid]), 1.0).send[0])  # Gx not negotiated
    assert codec.result_code(ans) == codec.APPLICATION_UNSUPPORTED
    assert codec.header_of(ans).flags & codec.FLAG_ERROR
    ans = _sent(c.received(_req(999, 0, []), 1.0).send[0])
    assert codec.result_code(ans) == codec.COMMAND_UNSUPPORTED


def test_unknown_mandatory_avp_5001_with_failed_avp_and_optional_one_ignored() -> None:
    c = _open()
    sid = codec.new_avp(codec.AVP_SESSION_ID, "s;1")
    step = c.received(_req(272, APP_GY, [sid, codec.raw_avp(99999, b"abcd")]), 1.0)
    ans = _sent(step.send[0])
    assert codec.result_code(ans) == codec.AVP_UNSUPPORTED and step.dispatch is None
    assert ans.avps[0].code == codec.AVP_SESSION_ID
    failed = codec.find(ans, codec.AVP_FAILED_AVP)
    assert failed is not None and [a.code for a in failed.value] == [99999]
    step = c.received(_req(272, APP_GY, [sid, codec.raw_avp(99998, b"ab", mandatory=False)],
                           e2e=8), 1.0)
    assert step.dispatch is not None and not step.send


def test_reserved_header_bits_3008() -> None:
    c = _open()
    step = c.received(_req(272, APP_GY, [], flags_extra=0x01), 1.0)
    assert codec.result_code(step.send[0]) == codec.INVALID_HDR_BITS


def test_duplicate_answered_from_cache_with_its_own_hop_by_hop() -> None:
    cache = AnswerCache(10)
    c = _open(cache)
    sid = codec.new_avp(codec.AVP_SESSION_ID, "s;1")
    req = _req(272, APP_GY, [sid], e2e=77, hbh=1)
    step = c.received(req, 1.0)
    assert step.dispatch is not None
    c.answered(req, codec.answer(req, 2001, ME.origin_host, ME.origin_realm))
    # The retransmission (T flag) over another connection: same E2E, new Hop-by-Hop.
    other = _open(cache)
    again = other.received(_req(272, APP_GY, [sid], e2e=77, hbh=2,
                                flags_extra=codec.FLAG_RETRANSMIT), 5.0)
    assert again.dispatch is None
    ans = _sent(again.send[0])
    assert codec.header_of(ans).hop_by_hop == 2 and codec.header_of(ans).end_to_end == 77
    assert codec.result_code(ans) == 2001


def test_a_dispatched_request_carries_its_key_and_its_answer_is_kept_as_sent() -> None:
    cache = AnswerCache(10)
    c = _open(cache)
    req = _req(272, APP_GY, [codec.new_avp(codec.AVP_SESSION_ID, "s;2")], e2e=78, hbh=3)
    step = c.received(req, 1.0)
    assert step.dispatch is req and step.key == ("pgw1.northwind.test", 78)
    sent = codec.encode(codec.answer(req, 2001, ME.origin_host, ME.origin_realm))
    c.answered(req, sent, step.key)
    assert cache.get(("pgw1.northwind.test", 78)) is sent  # the bytes sent, not re-encoded
    again = c.received(_req(272, APP_GY, [], e2e=78, hbh=9), 2.0)
    assert again.dispatch is None
    assert codec.encode(again.send[0]) == codec.with_hop_by_hop_bytes(sent, 9)


def test_answer_cache_is_bounded() -> None:
    cache = AnswerCache(2)
    for i in range(5):
        cache.put(("h", i), codec.encode(codec.request(280, 0, [], hop_by_hop=i,
                                                       end_to_end=i)))
    assert len(cache) == 2 and cache.get(("h", 0)) is None and cache.get(("h", 4)) is not None


def test_watchdog_sends_dwr_after_tw_and_closes_after_another_tw() -> None:
    c = _open()
    assert c.tick(29.0).send == []
    dwr = c.tick(30.0).send[0]
    assert codec.header_of(dwr).command == codec.CMD_DWR and codec.header_of(dwr).is_request
    assert c.tick(45.0).send == [] and not c.tick(45.0).close
    assert c.tick(60.0).close and c.state is State.CLOSED


def test_watchdog_answered_keeps_the_connection() -> None:
    c = _open()
    dwr = _sent(c.tick(30.0).send[0])
    c.received(_sent(codec.answer(dwr, 2001, "pgw1.northwind.test", REALM)), 31.0)
    assert not c.tick(59.0).close and c.state is State.OPEN
    assert codec.header_of(c.tick(61.0).send[0]).command == codec.CMD_DWR


def test_disconnect_sends_dpr_and_closes_on_dpa() -> None:
    c = _open()
    dpr = _sent(c.disconnect().send[0])
    assert codec.get_int(dpr, codec.AVP_DISCONNECT_CAUSE) == base.DISCONNECT_REBOOTING
    step = c.received(_sent(codec.answer(dpr, 2001, "pgw1.northwind.test", REALM)), 1.0)
    assert step.close and c.state is State.CLOSED


def test_answer_echoes_proxy_info_in_order_and_session_id_first() -> None:
    proxies = [codec.new_avp(codec.AVP_PROXY_INFO, [
        codec.new_avp(280, f"dra{i}.test".encode()),  # Proxy-Host
        codec.new_avp(33, f"state{i}".encode())]) for i in range(2)]  # Proxy-State
    req = _req(272, APP_GY, [*proxies, codec.new_avp(codec.AVP_SESSION_ID, "s;9")])
    ans = _sent(codec.answer(req, 2001, "nf", "realm"))
    assert ans.avps[0].code == codec.AVP_SESSION_ID
    echoed = codec.find_all(ans, codec.AVP_PROXY_INFO)
    assert [p.payload for p in echoed] == [p.payload for p in proxies]


def test_other_realm_3003_and_loop_3005() -> None:
    c = _open()
    sid = codec.new_avp(codec.AVP_SESSION_ID, "s;1")
    ans = c.received(_req(272, APP_GY, [sid, codec.new_avp(
        codec.AVP_DESTINATION_REALM, b"elsewhere.test")]), 1.0).send[0]
    assert codec.result_code(ans) == codec.REALM_NOT_SERVED
    assert codec.header_of(ans).flags & codec.FLAG_ERROR
    step = c.received(_req(272, APP_GY, [sid, codec.new_avp(
        codec.AVP_DESTINATION_REALM, ME.origin_realm.encode())], e2e=8), 1.0)
    assert step.dispatch is not None
    ans = c.received(_req(272, APP_GY, [sid, codec.new_avp(
        codec.AVP_ROUTE_RECORD, b"dra.test"), codec.new_avp(
        codec.AVP_ROUTE_RECORD, ME.origin_host.encode())], e2e=9), 1.0).send[0]
    assert codec.result_code(ans) == codec.LOOP_DETECTED


def test_the_peers_origin_state_id_is_kept_from_its_cer() -> None:
    c = _conn()
    c.received(_req(codec.CMD_CER, 0, [
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
        codec.new_avp(codec.AVP_ORIGIN_STATE_ID, 1700000123)]), 0.0)
    assert c.peer is not None and c.peer.state_id == 1700000123
    assert _open().peer is not None and _open().peer.state_id is None  # type: ignore[union-attr]


def test_a_restart_is_an_origin_state_id_gone_up_acted_on_once() -> None:
    ids = base.StateIds(size=2)
    # Not heard of in this process: maybe a restart (sessions under a lower value are
    # looked for); no Origin-State-Id: never.
    assert ids.restarted("northwind", "pgw1", 5)
    assert not ids.restarted("northwind", "pgw1", None)
    ids.acted("northwind", "pgw1", 5)
    assert not ids.restarted("northwind", "pgw1", 5)
    assert not ids.restarted("northwind", "pgw1", 4)  # a late request of before
    assert ids.restarted("northwind", "pgw1", 6)
    assert ids.restarted("bluepeak", "pgw1", 5)  # another host network's client
    ids.acted("northwind", "pgw1", 6)
    ids.acted("northwind", "pgw1", 3)  # never goes down
    assert not ids.restarted("northwind", "pgw1", 6)
    # Bounded: past two clients the oldest is forgotten (looked for again, no harm).
    ids.acted("northwind", "pgw2", 1)
    ids.acted("northwind", "pgw3", 1)
    assert ids.restarted("northwind", "pgw1", 6)
    assert not ids.restarted("northwind", "pgw3", 1)


def test_a_requests_client_state_is_its_own_else_the_cers() -> None:
    c = _conn()
    c.received(_req(codec.CMD_CER, 0, [
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
        codec.new_avp(codec.AVP_ORIGIN_STATE_ID, 7)]), 0.0)
    assert c.peer is not None
    own = _req(272, APP_GY, [codec.new_avp(codec.AVP_ORIGIN_STATE_ID, 9)])
    assert base.client_state_id(own, c.peer) == 9
    assert base.client_state_id(_req(272, APP_GY, []), c.peer) == 7
    # A client behind the peer (a DRA's CER is the DRA's): none unless it says.
    relayed = _req(272, APP_GY, [], host="pgw7.northwind.test")
    assert base.client_state_id(relayed, c.peer) is None
