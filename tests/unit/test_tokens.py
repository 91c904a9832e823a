"""OAuth2 access-token verification (pure), with tokens from an issuer that does not share
the NF's JOSE library (tests/jwt_issuer.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nf.errors import Forbidden, NfError, Unauthorized
from nf.security import keys
from nf.security.tokens import TokenVerifier, bearer
from tests.jwt_issuer import Issuer, plmn

SERVICE = "nchf-convergedcharging"
AUD = {"chf-instance", "CHF"}


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer("nrf-1")


def verifier(issuer: Issuer, **kw: object) -> TokenVerifier:
    v = TokenVerifier(issuer="nrf-1", algorithms=["ES256"], leeway_s=5, **kw)  # type: ignore[arg-type]
    v.set_keys(keys.parse_jwks(issuer.jwks(), "test"))
    return v


def refused(fn: object, status: int, error: str | None) -> NfError:
    with pytest.raises(NfError) as e:
        fn()  # type: ignore[operator]
    assert e.value.status == status
    challenge = e.value.www_authenticate or ""
    assert challenge.startswith('Bearer realm="')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    return e.value


def test_valid_token_gives_claims(issuer: Issuer) -> None:
    tok = issuer.token(aud=["CHF"], scope=f"{SERVICE} npcf-smpolicycontrol",
                       consumerPlmnId=plmn("00101"))
    c = verifier(issuer).verify(tok, service=SERVICE, audiences=AUD)
    assert c.consumer_plmn == "00101"
    assert c.subject == "smf-1"
    assert SERVICE in c.scopes


def test_audience_may_be_the_instance_id_as_a_string(issuer: Issuer) -> None:
    tok = issuer.token(aud="chf-instance", scope=SERVICE)
    assert verifier(issuer).verify(tok, service=SERVICE, audiences=AUD).audiences == (
        "chf-instance",)


def test_missing_header_is_401_without_error_code() -> None:
    refused(lambda: bearer(None), 401, None)
    refused(lambda: bearer(""), 401, None)


def test_other_scheme_is_401_invalid_request() -> None:
    refused(lambda: bearer("Basic dXNlcjpwdw=="), 401, "invalid_request")
    assert bearer("Bearer abc.def.ghi") == "abc.def.ghi"


def test_expired_token_is_401(issuer: Issuer) -> None:
    tok = issuer.token(aud="CHF", scope=SERVICE, now=time.time() - 7200, ttl_s=60)
    e = refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
                401, "invalid_token")
    assert "expired" in e.detail


def test_expiry_is_checked_again_for_a_remembered_token(issuer: Issuer) -> None:
    v = verifier(issuer)
    now = time.time()
    tok = issuer.token(aud="CHF", scope=SERVICE, now=now, ttl_s=60)
    v.verify(tok, service=SERVICE, audiences=AUD, now=now)
    refused(lambda: v.verify(tok, service=SERVICE, audiences=AUD, now=now + 120),
            401, "invalid_token")


def test_wrong_audience_is_401(issuer: Issuer) -> None:
    tok = issuer.token(aud=["PCF", "some-other-nf"], scope=SERVICE)
    refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
            401, "invalid_token")


def test_wrong_scope_is_403_insufficient_scope(issuer: Issuer) -> None:
    tok = issuer.token(aud="CHF", scope="npcf-smpolicycontrol nchf-convergedchargingX")
    e = refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
                403, "insufficient_scope")
    assert isinstance(e, Forbidden)
    assert f'scope="{SERVICE}"' in (e.www_authenticate or "")


def test_other_key_is_401(issuer: Issuer) -> None:
    stranger = Issuer("nrf-1", kid=issuer.kid)  # same issuer name and kid, other key
    tok = stranger.token(aud="CHF", scope=SERVICE)
    refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
            401, "invalid_token")


def test_other_issuer_is_401(issuer: Issuer) -> None:
    other = Issuer("nrf-2", kid=issuer.kid)
    other.key = issuer.key
    tok = other.token(aud="CHF", scope=SERVICE)
    refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
            401, "invalid_token")


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "HS256"}])
def test_algorithm_confusion_is_401(issuer: Issuer, header: dict[str, str]) -> None:
    tok = issuer.sign({"iss": "nrf-1", "aud": "CHF", "scope": SERVICE,
                       "exp": int(time.time()) + 60}, header)
    refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
            401, "invalid_token")


@pytest.mark.parametrize("garbage", ["x", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9..", "é.é.é"])
def test_garbage_is_401(issuer: Issuer, garbage: str) -> None:
    refused(lambda: verifier(issuer).verify(garbage, service=SERVICE, audiences=AUD),
            401, "invalid_token")


def test_token_without_exp_is_401(issuer: Issuer) -> None:
    tok = issuer.sign({"iss": "nrf-1", "aud": "CHF", "scope": SERVICE})
    refused(lambda: verifier(issuer).verify(tok, service=SERVICE, audiences=AUD),
            401, "invalid_token")


def test_no_keys_loaded_is_401(issuer: Issuer) -> None:
    v = TokenVerifier(issuer="nrf-1", algorithms=["ES256"])
    with pytest.raises(Unauthorized):
        v.verify(issuer.token(aud="CHF", scope=SERVICE), service=SERVICE, audiences=AUD)


def test_cache_is_bounded(issuer: Issuer) -> None:
    v = verifier(issuer, cache_size=3)
    for i in range(10):
        v.verify(issuer.token(aud="CHF", scope=SERVICE, sub=f"smf-{i}"), service=SERVICE,
                 audiences=AUD)
    assert len(v._cache) == 3


def test_check_config_refuses_an_unusable_key_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   issuer: Issuer) -> None:
    from typer.testing import CliRunner

    from nf.cli import cli

    config = Path(__file__).resolve().parents[2] / "tests" / "data" / "nf-test.yaml"
    jwks = tmp_path / "jwks.json"
    monkeypatch.setenv("NF_OAUTH2__REQUIRED", "true")
    monkeypatch.setenv("NF_OAUTH2__ISSUER", "nrf-1")
    monkeypatch.setenv("NF_OAUTH2__JWKS_FILE", str(jwks))
    for content, message in (("{\"keys\": []}", "not a JWKS"), ("{", "not JSON"),
                             (None, "cannot read")):
        if content is None:
            jwks.unlink()
        else:
            jwks.write_text(content)
        r = CliRunner().invoke(cli, ["check-config", str(config)])
        assert r.exit_code == 2 and message in r.output, r.output
    jwks.write_text(json.dumps(issuer.jwks()))
    r = CliRunner().invoke(cli, ["check-config", str(config)])
    assert r.exit_code == 0, r.output
