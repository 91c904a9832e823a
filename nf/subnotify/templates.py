"""Notice texts per brand and language, from ``<catalog_dir>/notices/<brand>.yaml``::

    default_language: en
    templates:
      en:
        usage: "{brand}: you have used {pct}% of your {allowance} data. Renews {renews}."
        cap_throttled: "{brand}: full-speed data used up; now {speed}. Top up: {topup}"

Checked at load: known events and languages, known placeholders per event, and a text
that fits in at most ``text.MAX_PARTS`` SMS parts; each error names the file and the key.
An event with no template in a brand's files is not sent by that brand. Pure rendering:
amounts in human units (MB/GB of 1024), dates in the brand's time zone.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from nf.subnotify import text
from nf.subnotify.events import Kind

COMMON = frozenset({"brand", "topup"})
USAGE = frozenset({"pct", "used", "allowance", "renews"})
BOUGHT = frozenset({"offer", "quota", "expires"})
ALLOWED: dict[Kind, frozenset[str]] = {
    Kind.USAGE: USAGE, Kind.POOL_USAGE: USAGE,
    Kind.CAP_THROTTLED: frozenset({"speed", "renews"}),
    Kind.CAP_BLOCKED: frozenset({"renews"}), Kind.CAP_REDIRECTED: frozenset({"renews"}),
    Kind.SPEED_RESTORED: frozenset({"speed"}), Kind.DATA_RESTORED: frozenset({"speed"}),
    Kind.PLAN_PURCHASED: BOUGHT, Kind.ADDON_PURCHASED: BOUGHT,
    Kind.PASS_PURCHASED: BOUGHT, Kind.BOOST_PURCHASED: BOUGHT,
    Kind.ADDON_EXPIRING: BOUGHT, Kind.ADDON_EXPIRED: BOUGHT,
    Kind.PASS_EXPIRING: BOUGHT, Kind.PASS_EXPIRED: BOUGHT,
    Kind.PASS_ACTIVATED: BOUGHT, Kind.ROAMING_EXHAUSTED: frozenset(), Kind.SUSPENDED: frozenset(),
    Kind.BLOCKED: frozenset(), Kind.REACTIVATED: frozenset(),
}
MAX_TEMPLATE_CHARS = 1000
MAX_FILE_BYTES = 256 * 1024
GIB, MIB = 1024**3, 1024**2
_SAMPLE = {"brand": "Brand Name Wireless", "topup": "https://brand.example/top-up/now",
           "pct": "100", "used": "1023.9 GB", "allowance": "1023.9 GB",
           "renews": "30 Sep 2026", "expires": "30 Sep 2026 23:59", "speed": "100 Mbps",
           "offer": "x" * 40, "quota": "1023.9 GB"}


class TemplateError(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid notice templates:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class BrandTemplates:
    default_language: str
    texts: Mapping[str, Mapping[Kind, str]]  # language -> kind -> template

    def pick(self, kind: Kind, language: str | None) -> tuple[str, str] | None:
        """(language, template) for the subscriber's language, else the brand's default."""
        for lang in (language, self.default_language):
            if lang is not None and kind in self.texts.get(lang, {}):
                return lang, self.texts[lang][kind]
        return None


def human_bytes(n: int) -> str:
    if n >= GIB:
        v, unit = n / GIB, "GB"
    else:
        v, unit = n / MIB, "MB"
    s = f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{s} {unit}"


def human_speed(kbps: int) -> str:
    if kbps >= 1000 and kbps % 1000 == 0:
        return f"{kbps // 1000} Mbps"
    return f"{kbps} kbps"


def local_date(t: datetime, tz: str, with_time: bool = False) -> str:
    lt = t.astimezone(ZoneInfo(tz))
    return lt.strftime("%d %b %Y %H:%M" if with_time else "%d %b %Y")


def fields_of(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def check_template(kind: Kind, template: str) -> list[str]:
    probs: list[str] = []
    if len(template) > MAX_TEMPLATE_CHARS:
        return [f"longer than {MAX_TEMPLATE_CHARS} characters"]
    try:
        names = fields_of(template)
    except ValueError as e:
        return [f"bad placeholder syntax: {e}"]
    allowed = ALLOWED[kind] | COMMON
    for f in names:
        if f not in allowed:
            probs.append(f"unknown placeholder {{{f}}} (allowed: "
                         f"{', '.join(sorted(allowed))})")
    if not probs:
        sample = template.format(**_SAMPLE)
        if text.part_count(sample) > text.MAX_PARTS:
            probs.append(f"too long: more than {text.MAX_PARTS} SMS parts")
    return probs


def parse(name: str, raw: Any) -> tuple[BrandTemplates | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{name}: the top level must be a mapping"]
    probs: list[str] = []
    for k in raw:
        if k not in ("default_language", "templates"):
            probs.append(f"{name}: {k}: unknown key")
    lang = raw.get("default_language", "en")
    if not (isinstance(lang, str) and len(lang) == 2 and lang.isalpha() and lang.islower()):
        probs.append(f"{name}: default_language: must be a two-letter language code")
        lang = "en"
    tpl = raw.get("templates")
    if not isinstance(tpl, dict) or not tpl:
        return None, [*probs, f"{name}: templates: must be a non-empty mapping by language"]
    texts: dict[str, dict[Kind, str]] = {}
    for lg, items in tpl.items():
        where = f"{name}: templates.{lg}"
        if not (isinstance(lg, str) and len(lg) == 2 and lg.isalpha() and lg.islower()):
            probs.append(f"{where}: not a two-letter language code")
            continue
        if not isinstance(items, dict):
            probs.append(f"{where}: must be a mapping of event to text")
            continue
        texts[lg] = {}
        for ev, body in items.items():
            try:
                kind = Kind(ev)
            except ValueError:
                probs.append(f"{where}.{ev}: unknown event (known: "
                             f"{', '.join(k.value for k in Kind)})")
                continue
            if not isinstance(body, str) or not body.strip():
                probs.append(f"{where}.{ev}: must be a non-empty string")
                continue
            probs += [f"{where}.{ev}: {p}" for p in check_template(kind, body)]
            texts[lg][kind] = body
    if lang not in texts:
        probs.append(f"{name}: default_language: no templates for {lang!r}")
    return (None if probs else BrandTemplates(lang, texts)), probs


def load_dir(directory: Path | None, brands: set[str]) -> dict[str, BrandTemplates]:
    """Every ``notices/<brand>.yaml`` under the catalogue ``directory``; raise
    ``TemplateError`` listing every problem."""
    if directory is None or not (directory / "notices").is_dir():
        return {}
    out: dict[str, BrandTemplates] = {}
    probs: list[str] = []
    for path in sorted((directory / "notices").iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        name = f"notices/{path.name}"
        if path.stem not in brands:
            probs.append(f"{name}: no brand {path.stem!r} in the catalogue")
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                probs.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
                continue
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            probs.append(f"{name}: cannot read: {e}")
            continue
        except yaml.YAMLError as e:
            probs.append(f"{name}: not valid YAML: {e}")
            continue
        bt, errs = parse(name, raw)
        probs += errs
        if bt is not None:
            out[path.stem] = bt
    if probs:
        raise TemplateError(probs)
    return out


def render(template: str, params: Mapping[str, object], *, brand: str, tz: str,
           topup: str | None, offer_name: str | None) -> str:
    """The template with human values: bytes as MB/GB, kbps as speed, dates local."""
    vals: dict[str, str] = {"brand": brand, "topup": topup or ""}
    for k, v in params.items():
        if v is None:
            vals[k] = ""
        elif k in ("used", "allowance", "quota") and isinstance(v, int):
            vals[k] = human_bytes(v)
        elif k == "speed" and isinstance(v, int):
            vals[k] = human_speed(v)
        elif isinstance(v, datetime):
            vals[k] = local_date(v, tz, with_time=(k == "expires"))
        else:
            vals[k] = str(v)
    vals["offer"] = offer_name or str(params.get("offer_id", ""))
    return template.format_map(_Default(vals))


class _Default(dict[str, str]):
    def __missing__(self, k: str) -> str:
        return ""
