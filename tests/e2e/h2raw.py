"""A minimal HTTP/2 (h2c prior knowledge) client speaking frames directly.

httpx's HTTP/2 stack gives up on a connection as soon as the server sends GOAWAY, even on a
graceful one (the stream in flight is still answered). SMFs keep reading after a graceful
GOAWAY, and so does this client; it also shows the server's SETTINGS.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from hpack import Decoder, Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class RawResponse:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    goaways: list[int] = field(default_factory=list)  # last_stream_id of each GOAWAY
    server_settings: dict[int, int] = field(default_factory=dict)
    reset: bool = False


class RawH2:
    def __init__(self, host: str, port: int, timeout_s: float = 30) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.authority = f"{host}:{port}"
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())
        self.enc, self.dec = Encoder(), Decoder()
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self) -> Frame:
        frame, length = Frame.parse_frame_header(memoryview(self._read(9)))
        frame.parse_body(memoryview(self._read(length)))
        return frame

    def handshake(self) -> dict[int, int]:
        """The server's first SETTINGS."""
        while True:
            f = self._frame()
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
                return dict(f.settings)

    def get(self, path: str, stream_id: int = 1) -> RawResponse:
        out = RawResponse()
        headers = [(":method", "GET"), (":scheme", "http"), (":authority", self.authority),
                   (":path", path)]
        self.sock.sendall(HeadersFrame(stream_id, self.enc.encode(headers),
                                       flags=["END_HEADERS", "END_STREAM"]).serialize())
        while True:
            f = self._frame()
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                out.server_settings.update(f.settings)
                self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            elif isinstance(f, PingFrame) and "ACK" not in f.flags:
                self.sock.sendall(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
            elif isinstance(f, GoAwayFrame):
                out.goaways.append(f.last_stream_id)
            elif isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                out.reset = True
                return out
            elif isinstance(f, HeadersFrame) and f.stream_id == stream_id:
                for k, v in self.dec.decode(f.data):
                    name, value = str(k), str(v)
                    if name == ":status":
                        out.status = int(value)
                    else:
                        out.headers[name] = value
                if "END_STREAM" in f.flags:
                    return out
            elif isinstance(f, DataFrame) and f.stream_id == stream_id:
                out.body += f.data
                if "END_STREAM" in f.flags:
                    return out

    def until_closed(self) -> list[int]:
        """Read (answering PINGs, as a live peer does) until the server closes the
        connection; the last_stream_id of each GOAWAY received on the way."""
        goaways: list[int] = []
        try:
            while True:
                f = self._frame()
                if isinstance(f, PingFrame) and "ACK" not in f.flags:
                    self.sock.sendall(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
                elif isinstance(f, GoAwayFrame):
                    goaways.append(f.last_stream_id)
        except (ConnectionError, OSError):
            return goaways
