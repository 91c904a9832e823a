"""The Helm chart (``helm/nf``): pinned tools, lint, render, offline strict validation."""
