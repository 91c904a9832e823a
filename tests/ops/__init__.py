"""What the platform team watches: the chart's alert rules (``promtool``), and a real
Prometheus scraping a running NF."""
