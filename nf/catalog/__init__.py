"""The offer catalogue: per-brand YAML files of plans, add-ons, roaming passes, speed boosts
and family plans, validated with pydantic and reloadable without a restart.

Owns the offer models and loading/validation. Never touches the database or balances: the
ledger snapshots an offer's terms into the subscription when it is bought.
"""

from nf.catalog.load import CatalogError, CatalogHolder, load_catalog
from nf.catalog.model import (
    AddOn,
    BasePlan,
    Brand,
    BrandFile,
    Catalog,
    FamilyPlan,
    Offer,
    RoamingPass,
    SpeedBoost,
)

__all__ = [
    "AddOn",
    "BasePlan",
    "Brand",
    "BrandFile",
    "Catalog",
    "CatalogError",
    "CatalogHolder",
    "FamilyPlan",
    "Offer",
    "RoamingPass",
    "SpeedBoost",
    "load_catalog",
]
