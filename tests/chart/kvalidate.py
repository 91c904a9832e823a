"""Validate Kubernetes manifests offline, strict (no unknown fields), in its own process.

Run with ``kubernetes-validate``'s directory on ``PYTHONPATH`` (see ``tools``): reads a
JSON object ``{"versions": [...], "manifests": [...], "extra_schemas": {kind: schema}}``
on stdin and prints a JSON list of problems (empty: all valid). Kinds that Kubernetes does
not define (the Prometheus Operator's ServiceMonitor) are checked against a schema given in
``extra_schemas``; a kind with no schema at all is a problem, never silently passed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    import jsonschema
    from kubernetes_validate import utils

    job: dict[str, Any] = json.load(sys.stdin)
    problems: list[str] = []
    for doc in job["manifests"]:
        what = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        extra = job.get("extra_schemas", {}).get(f"{doc.get('apiVersion')}/{doc.get('kind')}")
        if extra is not None:
            for err in jsonschema.Draft202012Validator(extra).iter_errors(doc):
                path = "/".join(str(p) for p in err.absolute_path)
                problems.append(f"{what}: {path}: {err.message}")
            continue
        for version in job["versions"]:
            try:
                utils.validate(doc, version, strict=True)
            except utils.ValidationError as e:
                path = "/".join(str(p) for p in e.absolute_path)
                problems.append(f"{what} (Kubernetes {version}): {path}: {e.message}")
            except utils.SchemaNotFoundError as e:
                problems.append(f"{what}: {e.message}")
    json.dump(problems, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
