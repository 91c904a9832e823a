"""A small blocking Diameter client for tests (a PGW/PCEF stand-in), built on the same codec
library as the NF: CER, DWR, DPR, CCR, and raw bytes for malformed messages. Requests the
NF sends while a test waits (DWR; a RAR during a call) are answered here, as a real peer
would."""

from __future__ import annotations

import itertools
import random
import socket
import ssl
import time
from collections.abc import Sequence

from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.diameter.codec import Avp, Message

REALM = "epc.mnc001.mcc001.3gppnetwork.org"
PGW = "pgw1.northwind.test"


class Client:
    def __init__(self, port: int, origin_host: str = PGW, origin_realm: str = REALM,
                 host: str = "127.0.0.1", timeout_s: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock = sock if tls is None else tls.wrap_socket(sock, server_hostname=host)
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        # RFC 6733 §3: End-to-End ids from the clock (high 12 bits) and a random part, so
        # that two clients of the same Origin-Host never reuse one within minutes.
        self._ids = itertools.count(((int(time.time()) & 0xFFF) << 20)
                                    | random.getrandbits(20))
        self.nf_requests: list[Message] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_a: object) -> None:
        self.close()

    # -- bytes ----------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, msg: Message) -> None:
        self.send_raw(codec.encode(msg))

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"closed by the NF after {len(out)} of {n} bytes")
            out += chunk
        return out

    def recv(self) -> Message:
        """The next message from the NF (requests from it are recorded and answered)."""
        while True:
            head = self._read(codec.HEADER_BYTES)
            hdr = codec.read_header(head)
            msg = codec.decode(head + self._read(hdr.length - codec.HEADER_BYTES))
            if not hdr.is_request:
                return msg
            self.nf_requests.append(msg)
            if hdr.command == codec.CMD_DWR:
                self.send(codec.answer(msg, codec.SUCCESS, self.origin_host, self.origin_realm))
            else:
                return msg

    def closed_by_peer(self, wait_s: float = 5.0) -> bool:
        self.sock.settimeout(wait_s)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    # -- messages -------------------------------------------------------------------------

    def ids(self) -> tuple[int, int]:
        n = next(self._ids)
        return n, n

    def origin(self) -> list[Avp]:
        return [codec.new_avp(codec.AVP_ORIGIN_HOST, self.origin_host.encode()),
                codec.new_avp(codec.AVP_ORIGIN_REALM, self.origin_realm.encode())]

    def request(self, command: int, app_id: int, avps: Sequence[Avp],
                retransmit: bool = False, ids: tuple[int, int] | None = None) -> Message:
        hbh, e2e = ids or self.ids()
        return codec.request(command, app_id, avps, hop_by_hop=hbh, end_to_end=e2e,
                             proxiable=app_id != 0, retransmit=retransmit)

    def call(self, msg: Message) -> Message:
        self.send(msg)
        while True:
            ans = self.recv()
            if codec.header_of(ans).is_request:  # the NF's own (a Gy RAR) meanwhile:
                self.send(codec.answer(ans, codec.SUCCESS, self.origin_host,  # as a PGW
                                       self.origin_realm))
                continue
            assert codec.header_of(ans).hop_by_hop == codec.header_of(msg).hop_by_hop
            return ans

    def cer(self, apps: Sequence[int] = (APP_GY,), vendor_apps: Sequence[int] = (),
            extra: Sequence[Avp] = ()) -> Message:
        avps = [*self.origin(),
                codec.new_avp(codec.AVP_HOST_IP_ADDRESS, "127.0.0.1"),
                codec.new_avp(codec.AVP_VENDOR_ID, 0),
                codec.new_avp(codec.AVP_PRODUCT_NAME, "test-pgw"),
                codec.new_avp(codec.AVP_SUPPORTED_VENDOR_ID, codec.VENDOR_3GPP)]
        avps += [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a) for a in apps]
        avps += [codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
            codec.new_avp(codec.AVP_VENDOR_ID, codec.VENDOR_3GPP),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a)]) for a in vendor_apps]
        return self.call(self.request(codec.CMD_CER, 0, [*avps, *extra]))

    def dwr(self) -> Message:
        return self.call(self.request(codec.CMD_DWR, 0, self.origin()))

    def dpr(self, cause: int = 0) -> Message:
        return self.call(self.request(codec.CMD_DPR, 0, [
            *self.origin(), codec.new_avp(codec.AVP_DISCONNECT_CAUSE, cause)]))


# -- Gy -------------------------------------------------------------------------------------

V = codec.VENDOR_3GPP
MIB = 1024 * 1024


def mscc(rg: int | None = 10, rsu: int | bool | None = True, used: int | None = None,
         reasons: Sequence[int] = ()) -> Avp:
    """One Multiple-Services-Credit-Control: ``rsu`` True = RSU without a volume."""
    inner: list[Avp] = []
    if rsu is not None and rsu is not False:
        inner.append(codec.new_avp(437, [] if rsu is True else [codec.new_avp(421, rsu)]))
    if used is not None:
        inner.append(codec.new_avp(446, [codec.new_avp(421, used), codec.new_avp(412, used // 4),
                                         codec.new_avp(414, used - used // 4),
                                         *[codec.new_avp(872, r, V) for r in reasons]]))
    if rg is not None:
        inner.append(codec.new_avp(432, rg))
    return codec.new_avp(456, inner)


def ccr(client: Client, session_id: str, request_type: int, number: int,
        imsi: str | None = "001010000000001", units: Sequence[Avp] = (),
        sgsn_plmn: str | None = None, uli: bytes | None = None, retransmit: bool = False,
        ids: tuple[int, int] | None = None, extra: Sequence[Avp] = (),
        msisdn: str | None = "15550000001") -> Message:
    avps = [codec.new_avp(codec.AVP_SESSION_ID, session_id), *client.origin(),
            codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.test"),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
            codec.new_avp(461, "32251@3gpp.org"),  # Service-Context-Id
            codec.new_avp(416, request_type), codec.new_avp(415, number)]
    if imsi:
        avps.append(codec.new_avp(443, [codec.new_avp(450, 1), codec.new_avp(444, imsi)]))
    if msisdn:
        avps.append(codec.new_avp(443, [codec.new_avp(450, 0), codec.new_avp(444, msisdn)]))
    avps.append(codec.new_avp(455, 1))  # Multiple-Services-Indicator: supported
    avps += list(units)
    ps: list[Avp] = []
    if sgsn_plmn:
        ps.append(codec.new_avp(18, sgsn_plmn, V))
    if uli:
        ps.append(codec.new_avp(22, uli, V))
    if ps:
        avps.append(codec.new_avp(873, [codec.new_avp(874, ps, V)], V))
    avps += list(extra)
    return client.request(codec.CMD_CCR, APP_GY, avps, retransmit=retransmit, ids=ids)


def units_of(cca: Message) -> list[dict[str, object]]:
    """The CCA's MSCCs as dicts: rg, rc, granted, validity, vqt, fua."""
    out: list[dict[str, object]] = []
    for m in codec.find_all(cca, 456):
        gsu = codec.find(m, 431)
        fui = codec.find(m, 430)
        out.append({"rg": codec.get_int(m, 432), "rc": codec.get_int(m, 268),
                    "granted": codec.get_int(gsu, 421) if gsu is not None else None,
                    "validity": codec.get_int(m, 448), "vqt": codec.get_int(m, 869, V),
                    "fua": codec.get_int(fui, 449) if fui is not None else None})
    return out
