"""EDR reporting: export to Parquet/CSV, reports with DuckDB, wholesale reconciliation.

Owns the exported file layout (``schema``), the streaming exporter (``export``), its
scheduled worker and the EDRs' retention index (``part``), the reports (``queries``,
``wholesale``), their rendering and charts, and the ``nf edr`` / ``nf report`` commands.
It only ever reads the ``edrs`` collection (and the ledger, read-only, to name plans and
passes); it never writes EDRs, money or policy.
"""
