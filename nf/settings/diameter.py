"""The ``diameter:`` section: the listener for 4G host networks (Gy, Gx, Sy), its peers
per host network, and its limits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from nf.settings.base import Frozen


class DiameterNetwork(Frozen):
    """One host network's Diameter side: the realms its peers (PGW, PCRF, DRA) speak from,
    and the Origin-Hosts allowed to connect. A peer not listed is refused at CER (3010)."""

    realms: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(min_length=1)
    peers: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(min_length=1)


class DiameterSettings(Frozen):
    """The Diameter listener (Gy, Gx, Sy for 4G host networks), in a process of its own
    under ``nf serve`` (``nf.diameter_process``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(3868, ge=0, le=65535)
    # TLS before CER (RFC 6733 §13, port 5658 by convention): both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    origin_host: str = Field("nf.mvno.invalid", min_length=1, max_length=253)
    origin_realm: str = Field("mvno.invalid", min_length=1, max_length=253)
    product_name: str = Field("mvno-nf", min_length=1, max_length=64)
    # Host network id -> its realms and allowed peers (ids of ``networks``).
    networks: dict[str, DiameterNetwork] = Field(default_factory=dict)
    max_connections: int = Field(64, ge=1, le=10_000)
    max_message_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    # Requests of one connection being handled at once; past it: 3004 DIAMETER_TOO_BUSY.
    max_inflight_per_connection: int = Field(256, ge=1, le=100_000)
    # Answers kept for retransmissions, by (Origin-Host, End-to-End-Id).
    answer_cache_size: int = Field(50_000, ge=0, le=10_000_000)
    # RFC 3539 Tw: a DWR after this long without traffic; the connection closes after
    # twice this without an answer.
    watchdog_s: float = Field(30.0, ge=1.0, le=3600.0)
    # Wait this long for a CER after the connection opens.
    cer_timeout_s: float = Field(10.0, gt=0, le=600)
    # On shutdown: how long to wait for the peers' DPA.
    dpa_timeout_s: float = Field(2.0, gt=0, le=60)
    # How often the Diameter process looks in the outbox for pushes (RAR, SNR, ASR) nobody
    # woke it for: those of other NF instances, retries past their backoff, a wake lost.
    # Pushes enqueued by this ``nf serve``'s processes wake it at once (``wake_socket``).
    push_poll_interval_s: float = Field(1.0, gt=0, le=60)
    # The Unix datagram socket those wakes go to; ``nf serve`` sets it for its processes
    # (a path in a directory of its own) unless it is given. None: no wakes, the poll only.
    wake_socket: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None
