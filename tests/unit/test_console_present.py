"""How the console words a notice's state and a moment: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from nf.oam.console.present import NoticeLine, local, notice_line, zone

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 7, 1, 12, 5, tzinfo=UTC)


def test_each_state_has_a_status_and_the_time_that_goes_with_it() -> None:
    base = {"created_at": T0, "due_at": T0, "not_before": T1}
    cases = {
        "scheduled": NoticeLine("scheduled", "due", T1, None),
        "queued": NoticeLine("scheduled", "due", T1, None),
        "held": NoticeLine("scheduled", "due", T1, "held for the brand's quiet hours"),
        "sending": NoticeLine("sending", "since", T0, None),
        "submitted": NoticeLine("sent", "sent", T0, None),
        "delivered": NoticeLine("delivered", "delivered", T1, None),
        "undeliverable": NoticeLine("failed", "failed", T1, "UNDELIV"),
        "suppressed": NoticeLine("not sent", "at", T1, "the subscriber opted out"),
    }
    extra = {"sending": {"updated_at": T0}, "submitted": {"sent_at": T0},
             "delivered": {"sent_at": T0, "done_at": T1},
             "undeliverable": {"done_at": T1, "error": "UNDELIV"},
             "suppressed": {"done_at": T1}}
    for state, want in cases.items():
        assert notice_line({**base, "state": state, **extra.get(state, {})}) == want, state
    # A retry waiting for its next attempt says why.
    retry = notice_line({**base, "state": "queued", "error": "HTTP 503"})
    assert retry == NoticeLine("scheduled", "due", T1, "retrying after: HTTP 503")


def test_times_read_in_the_zone_with_its_abbreviation() -> None:
    assert str(local(T0, zone("Europe/Madrid"))) == "2026-07-01 14:00 CEST"
    assert local(T0, zone("Europe/Madrid")).iso == "2026-07-01T12:00:00Z"
    assert str(local(T0.replace(tzinfo=None), zone(None))) == "2026-07-01 12:00 UTC"
    assert zone("Not/AZone") == zone("UTC")
