"""The exported tables: their typed columns, and how an EDR document becomes rows.

Layout under the export directory (Hive-style partitions, one file per hour)::

    <table>/day=YYYY-MM-DD/brand=<brand>/part-HH.parquet   (or .csv)

``day`` and ``brand`` are partition columns (in the path, not in the files); ``HH`` is the
UTC hour of the EDRs' ``time``. EDRs without a brand go to ``brand=_none``. Three tables:

``charging`` -- one row per rating group of each CHF record (a record with no rating group,
e.g. a release without usage, gives one row with ``rating_group`` null). Record-level
fields repeat on each of its rows; sum the unit columns, never multiply by rows.

``policy`` -- one row per PCF record (speed before and after, kbit/s).

``purchase`` -- one row per purchase (price in minor units of ``currency``).

Every table starts with ``edr_id`` (the document ``_id``), ``time`` (UTC, ms) and
``event``; fields of the documents not listed here are not exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

NO_BRAND = "_none"

_TS = pa.timestamp("ms", tz="UTC")
_COMMON: list[tuple[str, pa.DataType, str]] = [
    ("edr_id", pa.string(), "the EDR's id (unique)"),
    ("time", _TS, "when the event happened (UTC)"),
    ("event", pa.string(), "what happened (create/update/release/..., throttled/..., "
     "purchase)"),
    ("supi", pa.string(), "subscriber permanent id, imsi-..."),
    ("gpsi", pa.string(), "subscriber public id, msisdn-... (may be null)"),
    ("host_network", pa.string(), "host network id (the network that carried the usage)"),
]

COLUMNS: dict[str, list[tuple[str, pa.DataType, str]]] = {
    "charging": [*_COMMON,
                 ("serving_plmn", pa.string(), "PLMN (MCC+MNC) serving the subscriber"),
                 ("roaming", pa.bool_(), "served outside the home host network"),
                 ("charging_data_ref", pa.string(), "the charging session"),
                 ("invocation_sequence_number", pa.int64(), "the SMF's sequence number"),
                 ("result", pa.string(), "result of the request"),
                 ("rating_group", pa.int64(), "rating group of this row (null: none)"),
                 ("used_ul", pa.int64(), "bytes reported uplink"),
                 ("used_dl", pa.int64(), "bytes reported downlink"),
                 ("used_total", pa.int64(), "bytes reported in total"),
                 ("granted", pa.int64(), "bytes granted"),
                 ("unit_result", pa.string(), "result for this rating group"),
                 ("final", pa.bool_(), "final units given (the cap was reached)"),
                 ("throttled", pa.bool_(), "granted from the throttled after-cap allowance"),
                 ("overage", pa.int64(), "bytes reported beyond every bucket"),
                 ("debited", pa.string(),
                  "ledger buckets the usage was taken from: 'bucket:bytes;...'"),
                 ("interface", pa.string(),
                  "where the request came from: sbi (Nchf) or gy (Diameter, 4G)")],
    "policy": [*_COMMON,
               ("serving_plmn", pa.string(), "PLMN serving the subscriber"),
               ("roaming", pa.bool_(), "served outside the home host network"),
               ("sm_policy_id", pa.string(), "the policy association"),
               ("decision_version", pa.int64(), "version of the decision"),
               ("reason", pa.string(), "why the speed is what it is"),
               ("speed_before_ul_kbps", pa.int64(), "session AMBR before, uplink"),
               ("speed_before_dl_kbps", pa.int64(), "session AMBR before, downlink"),
               ("speed_after_ul_kbps", pa.int64(), "session AMBR after, uplink"),
               ("speed_after_dl_kbps", pa.int64(), "session AMBR after, downlink"),
               ("interface", pa.string(),
                "where the request came from: sbi (Npcf) or gx (Diameter, 4G)")],
    "purchase": [*_COMMON,
                 ("offer_id", pa.string(), "the offer bought"),
                 ("offer_version", pa.int64(), "its version"),
                 ("offer_kind", pa.string(), "plan, addon, roaming_pass, speed_boost, "
                  "family_plan"),
                 ("price_cents", pa.int64(), "price in minor units of currency"),
                 ("currency", pa.string(), "ISO 4217 code"),
                 ("bucket_ids", pa.string(), "ledger buckets created, ';'-separated"),
                 ("zone_name", pa.string(), "roaming passes: the zone")],
}
TABLES = tuple(COLUMNS)
SCHEMAS = {t: pa.schema([pa.field(n, ty) for n, ty, _ in cols]) for t, cols in COLUMNS.items()}


def table_of(doc: Mapping[str, Any]) -> str | None:
    """Which table an EDR document belongs to; None for kinds not exported."""
    kind = doc.get("kind")
    return kind if isinstance(kind, str) and kind in COLUMNS else None


def brand_of(doc: Mapping[str, Any]) -> str:
    b = doc.get("brand")
    return b if isinstance(b, str) and b else NO_BRAND


def _time(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _speed(v: Any, key: str) -> int | None:
    return _int(v.get(key)) if isinstance(v, Mapping) else None


def _common(doc: Mapping[str, Any]) -> list[Any]:
    return [str(doc.get("_id")), _time(doc.get("time")), _str(doc.get("event")),
            _str(doc.get("supi")), _str(doc.get("gpsi")), _str(doc.get("host_network"))]


def rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """The rows (in ``COLUMNS`` order) one EDR document gives in its table."""
    table = table_of(doc)
    if table == "charging":
        head = [*_common(doc), _str(doc.get("serving_plmn")), bool(doc.get("roaming")),
                _str(doc.get("charging_data_ref")),
                _int(doc.get("invocation_sequence_number")), _str(doc.get("result"))]
        units = doc.get("units") or []
        via = _str(doc.get("interface")) or "sbi"  # records from before 4G were all SBI
        if not units:
            return [[*head, None, 0, 0, 0, 0, None, False, False, 0, "", via]]
        out = []
        for u in units:
            debited = ";".join(f"{d.get('bucket_id')}:{_int(d.get('bytes')) or 0}"
                               for d in u.get("debited") or [])
            out.append([*head, _int(u.get("rating_group")), _int(u.get("used_ul")) or 0,
                        _int(u.get("used_dl")) or 0, _int(u.get("used_total")) or 0,
                        _int(u.get("granted")) or 0, _str(u.get("result")),
                        bool(u.get("final")), bool(u.get("throttled")),
                        _int(u.get("overage")) or 0, debited, via])
        return out
    if table == "policy":
        before, after = doc.get("speed_before"), doc.get("speed_after")
        return [[*_common(doc), _str(doc.get("serving_plmn")), bool(doc.get("roaming")),
                 _str(doc.get("sm_policy_id")), _int(doc.get("decision_version")),
                 _str(doc.get("reason")),
                 _speed(before, "uplink_kbps"), _speed(before, "downlink_kbps"),
                 _speed(after, "uplink_kbps"), _speed(after, "downlink_kbps"),
                 _str(doc.get("interface")) or "sbi"]]
    if table == "purchase":
        return [[*_common(doc), _str(doc.get("offer_id")), _int(doc.get("offer_version")),
                 _str(doc.get("offer_kind")), _int(doc.get("price_cents")) or 0,
                 _str(doc.get("currency")),
                 ";".join(str(b) for b in doc.get("bucket_ids") or []),
                 _str(doc.get("zone_name"))]]
    return []


def to_arrow(table: str, batch: Iterable[list[Any]]) -> pa.RecordBatch:
    """Rows of ``table`` as one Arrow record batch of the table's schema."""
    schema = SCHEMAS[table]
    cols: list[list[Any]] = [[] for _ in schema]
    for r in batch:
        for i, v in enumerate(r):
            cols[i].append(v)
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema)


def describe() -> str:
    """The schema as Markdown (``nf edr schema``)."""
    lines = []
    for t, cols in COLUMNS.items():
        lines += [f"### {t}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{n}` | {ty} | {d} |" for n, ty, d in cols]
        lines += ["| `day` | date (partition) | UTC day of `time` |",
                  "| `brand` | string (partition) | the subscriber's brand |", ""]
    return "\n".join(lines)
