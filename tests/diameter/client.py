"""A small blocking Diameter client for tests (a PGW/PCEF stand-in), built on the same codec
library as the NF: CER, DWR, DPR, CCR, and raw bytes for malformed messages. Requests the
NF sends (DWR) while a test waits are answered here, as a real peer would."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Sequence

from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.diameter.codec import Avp, Message

REALM = "epc.mnc001.mcc001.3gppnetwork.org"
PGW = "pgw1.northwind.test"


class Client:
    def __init__(self, port: int, origin_host: str = PGW, origin_realm: str = REALM,
                 host: str = "127.0.0.1", timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self._ids = itertools.count((int(time.time()) & 0xFFFF) << 12)
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
        ans = self.recv()
        assert codec.header_of(ans).hop_by_hop == codec.header_of(msg).hop_by_hop
        return ans

    def cer(self, apps: Sequence[int] = (APP_GY,), vendor_apps: Sequence[int] = ()) -> Message:
        avps = [*self.origin(),
                codec.new_avp(codec.AVP_HOST_IP_ADDRESS, "127.0.0.1"),
                codec.new_avp(codec.AVP_VENDOR_ID, 0),
                codec.new_avp(codec.AVP_PRODUCT_NAME, "test-pgw"),
                codec.new_avp(codec.AVP_SUPPORTED_VENDOR_ID, codec.VENDOR_3GPP)]
        avps += [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a) for a in apps]
        avps += [codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
            codec.new_avp(codec.AVP_VENDOR_ID, codec.VENDOR_3GPP),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a)]) for a in vendor_apps]
        return self.call(self.request(codec.CMD_CER, 0, avps))

    def dwr(self) -> Message:
        return self.call(self.request(codec.CMD_DWR, 0, self.origin()))

    def dpr(self, cause: int = 0) -> Message:
        return self.call(self.request(codec.CMD_DPR, 0, [
            *self.origin(), codec.new_avp(codec.AVP_DISCONNECT_CAUSE, cause)]))
