"""The charging session's one field list: the session document, the step's ``$set`` and
the wallet's note are all made from it, and each reads back what was written."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime

from nf.chf import store
from nf.chf.core import Reply, RgState, Session

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _session(**kw: object) -> Session:
    s = Session(ref="ref-1", supi="imsi-001010000000001", gpsi="msisdn-1", brand="lumen",
                home_network="home", home_plmn="00101", host_network="host",
                serving_plmn="00102", roaming=True, notify_uri="http://smf/notify",
                final_action="REDIRECT", topup_url="http://top.up", validity_time_s=600,
                last_isn=3, reply=Reply(200, {"a": 1}),
                rgs={10: RgState(True, False), 20: RgState(False, True)},
                expires_at=NOW, open=True)
    return replace(s, **kw)


def test_every_session_field_is_stored_and_read_back() -> None:
    s = _session()
    assert store.from_doc(store._to_doc(s, NOW)) == s
    closed = _session(open=False, reply=None, rgs={}, expires_at=None, notify_uri=None)
    assert store.from_doc(store._to_doc(closed, NOW)) == closed
    mapped = {f.attr for f in store._FIELDS}
    assert mapped == {f.name for f in fields(Session)} - {"note_isn"}


def test_a_note_lays_every_field_a_step_changes_over_the_stored_session() -> None:
    stored = _session(host_network="old", serving_plmn="00101", roaming=False,
                      validity_time_s=60, last_isn=1, reply=None, rgs={}, expires_at=None)
    after = _session(last_isn=4)
    note = {**store.note_doc(after), "i": 4, "s": after.supi}
    assert store.with_note(stored, note) == replace(after, note_isn=4)
    # The step's $set holds the same fields under their long keys.
    state = store._state(after, NOW)
    assert {k for k in state if k != "updated_at"} == \
        {f.long for f in store._FIELDS if f.short is not None} | {"isn"}
    # A blank notify URI is neither stored by a step nor laid over the stored one.
    blank = _session(notify_uri="")
    assert "notify_uri" not in store._state(blank, NOW)
    assert store.with_note(stored, {**store.note_doc(blank), "i": 4}).notify_uri == \
        stored.notify_uri
    # An older note than the stored session only records where the note is.
    assert store.with_note(_session(last_isn=9), note) == _session(last_isn=9, note_isn=4)
