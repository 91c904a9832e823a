"""The NF's own OpenAPI documents and a browsable API reference, on the OAM port.

``GET /openapi/{chf,pcf,slc,provisioning}.yaml`` serves each document with its ``servers``
entry pointing at the running NF (the SBI for the 3GPP services, this OAM port for
provisioning), so a client generator pointed at the URL produces a client that works as
generated. ``GET /openapi/`` is a Swagger UI page over the four documents; its assets come
from the ``swagger-ui-bundle`` package, nothing is fetched from the internet at run time.

This module only reads files; it never touches the database.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from quart import Blueprint, Response, request

from nf.config import ServerSettings
from nf.errors import NotFound

# name -> (title, which port serves it)
DOCUMENTS: dict[str, tuple[str, str]] = {
    "chf": ("Nchf_ConvergedCharging (CHF)", "sbi"),
    "pcf": ("Npcf_SMPolicyControl (PCF)", "sbi"),
    "slc": ("Nchf_SpendingLimitControl", "sbi"),
    "provisioning": ("Provisioning and care", "oam"),
}
YAML_TYPE = "application/yaml"
# The asset files the reference page loads; anything else under /openapi/assets is 404.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


def default_docs_dir() -> Path:
    """``openapi/`` beside the package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parents[2] / "openapi"


@lru_cache(maxsize=8)
def _load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return doc


def _host_of(request_host: str) -> str:
    """The host name the client used to reach us, without the port."""
    return urlsplit(f"//{request_host}").hostname or "127.0.0.1"


def api_root(srv: ServerSettings, port_role: str, request_host: str, oam_base: str) -> str:
    """The base URL a client should call for a document served by ``port_role``."""
    if port_role == "oam":
        return oam_base.rstrip("/")
    if srv.api_root:
        return srv.api_root.rstrip("/")
    host = srv.sbi_host
    if host in ("0.0.0.0", "::", ""):
        # Bound to every address: the client reaches the SBI where it reached OAM.
        host = _host_of(request_host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if srv.tls else "http"
    return f"{scheme}://{host}:{srv.sbi_port}"


def with_servers(doc: dict[str, Any], root: str) -> dict[str, Any]:
    """The document with each ``servers`` entry's ``{apiRoot}`` resolved to ``root``."""
    out = dict(doc)
    servers = []
    for entry in doc.get("servers") or [{"url": "{apiRoot}"}]:
        url = str(entry.get("url", "{apiRoot}")).replace("{apiRoot}", root)
        servers.append({"url": url, "description": "this NF"})
    out["servers"] = servers
    return out


def _page(names: list[str]) -> str:
    urls = [{"url": f"/openapi/{n}.yaml", "name": DOCUMENTS[n][0]} for n in names]
    items = "".join(
        f'<li><a href="/openapi/{n}.yaml">{html.escape(DOCUMENTS[n][0])}</a></li>'
        for n in names)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MVNO NF API reference</title>
<link rel="stylesheet" href="/openapi/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/openapi/assets/favicon-32x32.png">
<style>body{{margin:0;background:#fafafa;font-family:sans-serif}}
header{{padding:1rem 1.5rem;background:#1b2a3a;color:#fff}}
header a{{color:#cde}} header ul{{margin:.4rem 0 0;padding-left:1.2rem}}</style>
</head>
<body>
<header><h1 style="margin:0;font-size:1.3rem">MVNO NF API reference</h1>
<p style="margin:.4rem 0 0">The documents, for client generators (each one's
<code>servers</code> entry points at this NF):</p><ul>{items}</ul></header>
<main id="swagger-ui"></main>
<script src="/openapi/assets/swagger-ui-bundle.js"></script>
<script src="/openapi/assets/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    urls: {json.dumps(urls)},
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  }});
}};
</script>
</body>
</html>
"""


def _assets_dir() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency of the package
        return None
    return Path(str(swagger_ui_path))


def apidocs_blueprint(srv: ServerSettings, docs_dir: Path | None = None) -> Blueprint:
    bp = Blueprint("apidocs", __name__)
    directory = docs_dir or default_docs_dir()
    assets = _assets_dir()

    def available() -> list[str]:
        return [n for n in DOCUMENTS if (directory / f"{n}.yaml").is_file()]

    @bp.get("/openapi")
    @bp.get("/openapi/")
    async def reference() -> Response:
        return Response(_page(available()), content_type="text/html; charset=utf-8")

    @bp.get("/openapi/<name>.yaml")
    async def document(name: str) -> Response:
        if name not in DOCUMENTS or not (directory / f"{name}.yaml").is_file():
            raise NotFound(f"no OpenAPI document named {name!r}; there are: "
                           + ", ".join(f"{n}.yaml" for n in available()))
        root = api_root(srv, DOCUMENTS[name][1], request.host, request.host_url)
        doc = with_servers(_load(directory / f"{name}.yaml"), root)
        body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        return Response(body, content_type=f"{YAML_TYPE}; charset=utf-8")

    @bp.get("/openapi/assets/<name>")
    async def asset(name: str) -> Response:
        if assets is None or name not in ASSETS or not (assets / name).is_file():
            raise NotFound(f"no asset {name!r}")
        resp = Response((assets / name).read_bytes(), content_type=ASSETS[name])
        resp.headers["Cache-Control"] = "public, max-age=86400"
        return resp

    return bp
