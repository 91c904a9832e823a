"""Reading a catalogue directory (one ``<brand>.yaml`` per brand) into a ``Catalog``.

Errors name the file, the offer and the field, all of them at once, so a product manager
can fix a file in one go. ``CatalogHolder`` keeps the current catalogue and swaps it on
reload only when the new one is valid and changes no offer without a new version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nf.catalog.model import AnyOffer, Brand, BrandFile, Catalog

MAX_FILE_BYTES = 1024 * 1024


class CatalogError(Exception):
    """The catalogue is invalid; ``problems`` lists each one as ``file: where: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid catalogue:\n" + "\n".join(f"  {p}" for p in problems))


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into ``offer 'x' field a.b`` using the raw document."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "offers" and isinstance(parts[1], int):
        idx = parts[1]
        oid: Any = None
        if isinstance(raw, dict):
            offers = raw.get("offers")
            if isinstance(offers, list) and idx < len(offers) and isinstance(offers[idx], dict):
                oid = offers[idx].get("id")
        rest = parts[2:]
        # Drop the discriminator tag pydantic puts in the path (e.g. "plan").
        if rest and isinstance(rest[0], str) and rest[0] in (
                "plan", "addon", "roaming_pass", "speed_boost", "family_plan"):
            rest = rest[1:]
        name = f"offer {oid!r}" if oid is not None else f"offer #{idx + 1}"
        field = ".".join(str(p) for p in rest) or "(offer)"
        return f"{name} field {field}"
    return "field " + (".".join(str(p) for p in parts) or "(top level)")


def load_brand_file(path: Path) -> tuple[BrandFile | None, list[str]]:
    problems: list[str] = []
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, [f"{path.name}: larger than {MAX_FILE_BYTES} bytes"]
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        return None, [f"{path.name}: cannot read: {e.strerror}"]
    except yaml.YAMLError as e:
        return None, [f"{path.name}: not valid YAML: {e}"]
    except UnicodeDecodeError:
        return None, [f"{path.name}: not UTF-8 text"]
    if not isinstance(raw, dict):
        return None, [f"{path.name}: the top level must be a mapping with brand and offers"]
    try:
        bf = BrandFile.model_validate(raw)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            problems.append(f"{path.name}: {_where(raw, tuple(err['loc']))}: {err['msg']}")
        return None, problems
    if bf.brand.id != path.stem:
        problems.append(f"{path.name}: field brand.id: {bf.brand.id!r} must match the file "
                        f"name {path.stem!r}")
        return None, problems
    return bf, problems


def load_catalog(directory: Path) -> Catalog:
    """Load and validate every ``*.yaml`` file in ``directory``; raise ``CatalogError``."""
    if not directory.is_dir():
        raise CatalogError([f"{directory}: not a directory"])
    problems: list[str] = []
    brands: dict[str, Brand] = {}
    offers: dict[str, tuple[str, AnyOffer]] = {}
    owner_file: dict[str, str] = {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    if not files:
        raise CatalogError([f"{directory}: no brand files (*.yaml)"])
    for path in files:
        bf, errs = load_brand_file(path)
        problems.extend(errs)
        if bf is None:
            continue
        brands[bf.brand.id] = bf.brand
        for o in bf.offers:
            if o.id in offers:
                problems.append(f"{path.name}: offer {o.id!r} field id: already defined in "
                                f"{owner_file[o.id]}; offer ids are unique across brands")
                continue
            offers[o.id] = (bf.brand.id, o)
            owner_file[o.id] = path.name
    if problems:
        raise CatalogError(problems)
    return Catalog(brands, offers)


class CatalogHolder:
    """The catalogue in use, swapped atomically by ``reload``.

    Remembers the terms of every (offer id, version) it has served, so a reload that
    changes an offer's terms without raising its version, or lowers a version, is refused.
    """

    def __init__(self, catalog: Catalog, directory: Path | None = None) -> None:
        self._dir = directory
        self._current = catalog
        self._seen: dict[tuple[str, int], str] = {}
        self._latest: dict[str, int] = {}
        self._remember(catalog)

    @classmethod
    def from_dir(cls, directory: Path) -> CatalogHolder:
        return cls(load_catalog(directory), directory)

    @classmethod
    def empty(cls) -> CatalogHolder:
        return cls(Catalog({}, {}), None)

    @property
    def current(self) -> Catalog:
        return self._current

    @property
    def directory(self) -> Path | None:
        return self._dir

    def _remember(self, catalog: Catalog) -> None:
        for _brand, o in catalog:
            self._seen[(o.id, o.version)] = o.terms_hash()
            self._latest[o.id] = max(self._latest.get(o.id, 0), o.version)

    def check_versions(self, catalog: Catalog) -> list[str]:
        problems = []
        for brand, o in catalog:
            known = self._seen.get((o.id, o.version))
            if known is not None and known != o.terms_hash():
                problems.append(f"{brand}.yaml: offer {o.id!r} field version: terms changed "
                                f"but version {o.version} is already in use; raise it")
            elif o.version < self._latest.get(o.id, 0):
                problems.append(f"{brand}.yaml: offer {o.id!r} field version: {o.version} is "
                                f"lower than {self._latest[o.id]} already in use")
        return problems

    def reload(self) -> Catalog:
        """Re-read the directory; keep the old catalogue if the new one is invalid."""
        if self._dir is None:
            raise CatalogError(["no catalogue directory is configured"])
        new = load_catalog(self._dir)
        problems = self.check_versions(new)
        if problems:
            raise CatalogError(problems)
        self._remember(new)
        self._current = new
        return new
