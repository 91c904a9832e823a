"""Wholesale reconciliation: a host network's usage file against our EDRs.

The invoice is a CSV file with a header line and four columns::

    day,plmn,subscriber,bytes
    2026-11-03,00101,imsi-001010000000001,734003200
    2026-11-03,00101,msisdn-15550000002,1048576

``day`` is the UTC day (YYYY-MM-DD), ``plmn`` the MCC+MNC that carried the usage,
``subscriber`` an IMSI (``imsi-<digits>``, or 15 bare digits) or a GPSI
(``msisdn-<digits>``, or other bare digits), ``bytes`` the volume billed. Several lines for
the same day and subscriber (several PLMNs) are added up.

Both sides are summed per (day, subscriber) for the month on that network (EDRs: charging
rows whose ``host_network`` is the network; subscribers named by GPSI are matched through
the GPSIs the EDRs carry). A difference is reported when ``|invoice - edrs|`` exceeds
``max(tolerance_bytes, tolerance_pct % of the larger side)``; a subscriber with no usage at
all on one side in the month is listed as on one side only (not as differences).
"""

from __future__ import annotations

import calendar
from datetime import date
from pathlib import Path

import duckdb

from nf.errors import BadRequest
from nf.reports.queries import Report, ReportDb


def month_bounds(month: str) -> tuple[date, date]:
    try:
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
    except ValueError:
        raise BadRequest(f"month {month!r} is not YYYY-MM") from None
    return first, date(y, m, calendar.monthrange(y, m)[1])


def _load_invoice(db: ReportDb, invoice: Path) -> None:
    if not invoice.is_file():
        raise BadRequest(f"invoice {invoice} is not a readable file")
    path = str(invoice).replace("'", "''")
    try:
        db.con.execute(f"""
            CREATE TABLE invoice_raw AS SELECT * FROM read_csv('{path}', header=true,
                columns={{'day': 'DATE', 'plmn': 'VARCHAR', 'subscriber': 'VARCHAR',
                          'bytes': 'BIGINT'}}, auto_detect=false, strict_mode=true)
        """)
    except duckdb.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadRequest(f"invoice {invoice} is not day,plmn,subscriber,bytes: {first}"
                         ) from None
    _, bad = db.query("""
        SELECT count(*) FILTER (WHERE day IS NULL OR subscriber IS NULL OR bytes IS NULL
                                OR bytes < 0 OR NOT regexp_full_match(
                                    subscriber, '(imsi-|msisdn-)?[0-9]{5,15}'))
        FROM invoice_raw""", {})
    if bad[0][0]:
        raise BadRequest(f"invoice {invoice}: {bad[0][0]} line(s) with an empty or invalid "
                         "day, subscriber or bytes")


def reconcile(db: ReportDb, network: str, month: str, invoice: Path, *,
              tolerance_bytes: int = 1_048_576, tolerance_pct: float = 0.5,
              plmns: tuple[str, ...] = ()) -> list[Report]:
    """Totals, differences above the tolerance, and subscribers on one side only."""
    frm, to = month_bounds(month)
    _load_invoice(db, invoice)
    p = {"frm": frm, "to": to, "net": network}
    db.con.execute("""
        CREATE TEMP TABLE edr_side AS
        SELECT day, supi, max(gpsi) AS gpsi, sum(used_total)::BIGINT AS bytes
        FROM charging WHERE day BETWEEN $frm AND $to AND host_network = $net
        GROUP BY day, supi
    """, p)
    db.con.execute("""
        CREATE TEMP TABLE inv AS
        WITH norm AS (
            SELECT day, plmn, bytes,
                   CASE WHEN subscriber LIKE 'imsi-%' THEN subscriber
                        WHEN subscriber LIKE 'msisdn-%' THEN NULL
                        WHEN length(subscriber) = 15 THEN 'imsi-' || subscriber END AS supi,
                   CASE WHEN subscriber LIKE 'msisdn-%' THEN subscriber
                        WHEN subscriber LIKE 'imsi-%' OR length(subscriber) = 15 THEN NULL
                        ELSE 'msisdn-' || subscriber END AS gpsi,
                   subscriber
            FROM invoice_raw WHERE day BETWEEN $frm AND $to),
        g AS (SELECT DISTINCT gpsi, supi FROM edr_side WHERE gpsi IS NOT NULL)
        SELECT norm.day, coalesce(norm.supi, g.supi, norm.subscriber) AS subscriber,
               string_agg(DISTINCT norm.plmn, ' ') AS plmns, sum(norm.bytes)::BIGINT AS bytes
        FROM norm LEFT JOIN g ON g.gpsi = norm.gpsi
        GROUP BY 1, 2
    """, {"frm": frm, "to": to})
    _, tot = db.query("""
        SELECT (SELECT coalesce(sum(bytes), 0)::BIGINT FROM inv),
               (SELECT coalesce(sum(bytes), 0)::BIGINT FROM edr_side),
               (SELECT count(*) FROM invoice_raw),
               (SELECT count(*) FROM invoice_raw WHERE day NOT BETWEEN $frm AND $to),
               (SELECT count(DISTINCT subscriber) FROM inv),
               (SELECT count(DISTINCT supi) FROM edr_side)
    """, {"frm": frm, "to": to})
    inv_b, edr_b, lines, outside, inv_subs, edr_subs = tot[0]
    other_plmn = 0
    if plmns:
        _, o = db.query("SELECT count(*) FROM invoice_raw WHERE day BETWEEN $frm AND $to "
                        "AND NOT list_contains($plmns, plmn)",
                        {"frm": frm, "to": to, "plmns": list(plmns)})
        other_plmn = o[0][0]
    totals = Report("totals", ["network", "month", "invoice_bytes", "edr_bytes",
                               "difference_bytes", "invoice_lines", "lines_outside_month",
                               "lines_other_plmn", "invoice_subscribers", "edr_subscribers"],
                    [(network, month, inv_b, edr_b, inv_b - edr_b, lines, outside,
                      other_plmn, inv_subs, edr_subs)])
    both = """(SELECT subscriber FROM inv INTERSECT SELECT supi FROM edr_side)"""
    cols, diffs = db.query(f"""
        WITH j AS (
            SELECT coalesce(i.day, e.day) AS day, coalesce(i.subscriber, e.supi) AS subscriber,
                   e.gpsi, i.plmns, coalesce(i.bytes, 0) AS invoice_bytes,
                   coalesce(e.bytes, 0) AS edr_bytes
            FROM inv i FULL OUTER JOIN edr_side e ON i.day = e.day AND i.subscriber = e.supi)
        SELECT day, subscriber, gpsi, plmns, invoice_bytes, edr_bytes,
               invoice_bytes - edr_bytes AS difference_bytes
        FROM j WHERE subscriber IN {both}
          AND abs(invoice_bytes - edr_bytes) > greatest(
                $tb, $tp / 100.0 * greatest(invoice_bytes, edr_bytes))
        ORDER BY day, subscriber
    """, {"tb": tolerance_bytes, "tp": tolerance_pct})
    c1, inv_only = db.query(f"""
        SELECT subscriber, count(*) AS days, sum(bytes)::BIGINT AS invoice_bytes
        FROM inv WHERE subscriber NOT IN {both} GROUP BY subscriber ORDER BY subscriber
    """, {})
    c2, edr_only = db.query(f"""
        SELECT supi AS subscriber, max(gpsi) AS gpsi, count(*) AS days,
               sum(bytes)::BIGINT AS edr_bytes
        FROM edr_side WHERE supi NOT IN {both} GROUP BY supi ORDER BY supi
    """, {})
    summary = {"tolerance_bytes": tolerance_bytes, "tolerance_pct": tolerance_pct}
    return [totals, Report("differences", cols, diffs, summary),
            Report("invoice_only", c1, inv_only), Report("edr_only", c2, edr_only)]
