"""The base protocol against the real NF process: capabilities exchange, watchdog,
disconnect both ways, a refused peer."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path

import pytest
import trustme

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.base import APP_GX, APP_GY, APP_SY
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import Client
from tests.diameter.nfdia import ORIGIN_HOST, diameter_nf

pytestmark = pytest.mark.e2e


def test_cer_dwr_dpr_and_refused_peer(db_server: EmbeddedDb, settings: Settings,
                                      tmp_path: Path) -> None:
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path) as (_nf, port):
        with Client(port) as pgw:
            cea = pgw.cer(apps=[APP_GY])
            assert codec.result_code(cea) == codec.SUCCESS
            assert codec.get_str(cea, codec.AVP_ORIGIN_HOST) == ORIGIN_HOST
            assert {a.value for a in codec.find_all(cea, codec.AVP_AUTH_APPLICATION_ID)} \
                == {APP_GY}
            vsa = {codec.get_int(v, codec.AVP_AUTH_APPLICATION_ID)
                   for v in codec.find_all(cea, codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID)}
            assert vsa <= {APP_GX, APP_SY}
            dwa = pgw.dwr()
            assert codec.header_of(dwa).command == codec.CMD_DWR
            assert codec.result_code(dwa) == codec.SUCCESS
            dpa = pgw.dpr(cause=2)
            assert codec.result_code(dpa) == codec.SUCCESS
        with Client(port, origin_host="pgw9.stranger.test") as stranger:
            cea = stranger.cer()
            assert codec.result_code(cea) == codec.UNKNOWN_PEER
            assert stranger.closed_by_peer()


def test_nf_stop_sends_dpr(db_server: EmbeddedDb, settings: Settings,
                           tmp_path: Path) -> None:
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path) as (nf, port), \
            Client(port) as pgw:
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        nf.proc.send_signal(signal.SIGTERM)
        dpr = pgw.recv()
        h = codec.header_of(dpr)
        assert h.command == codec.CMD_DPR and h.is_request
        assert codec.get_int(dpr, codec.AVP_DISCONNECT_CAUSE) == 0  # REBOOTING
        pgw.send(codec.answer(dpr, codec.SUCCESS, pgw.origin_host, pgw.origin_realm))
        assert pgw.closed_by_peer()
        assert nf.proc.wait(30) == 0


def test_tls_before_cer(db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    env = {"NF_DIAMETER__TLS_CERT_FILE": str(tmp_path / "cert.pem"),
           "NF_DIAMETER__TLS_KEY_FILE": str(tmp_path / "key.pem")}
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                     extra_env=env) as (_nf, port):
        with Client(port, tls=ctx) as pgw:
            assert codec.result_code(pgw.cer()) == codec.SUCCESS
            assert codec.result_code(pgw.dwr()) == codec.SUCCESS
        with Client(port, timeout_s=3) as plain, pytest.raises((ConnectionError, OSError)):
            plain.cer()  # cleartext on the TLS port: no answer, the handshake fails
