"""The OAM port's own part: liveness, readiness and metrics (``nf.oam.health``) and the API
documents (``nf.oam.apidocs``); the SBI port gets only its liveness probe."""

from __future__ import annotations

from quart import Blueprint

from nf.catalog.load import CatalogHolder
from nf.edr.port import EdrSink
from nf.oam.apidocs import apidocs_blueprint
from nf.oam.health import health_blueprint, liveness_blueprint
from nf.oam.port import CareLedger
from nf.oam.provisioning import provisioning_blueprint
from nf.runtime import Role, Runtime, Worker


class HealthPart:
    """Every app has it (``nf.wiring.create_app`` adds it after the other parts); ``/readyz``
    reads ``Runtime.ready``, which the app's lifecycle sets."""

    name = "health"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role == "oam":
            return [health_blueprint(self.rt, lambda: self.rt.ready),
                    apidocs_blueprint(self.rt.settings.server)]
        return [liveness_blueprint("sbi_health")]

    async def ensure_indexes(self) -> None:
        return None

    def workers(self) -> list[Worker]:
        return []


class ProvisioningPart:
    """The provisioning and care API on the OAM port (``nf.oam.provisioning``), acting
    through the ledger it is handed."""

    name = "provisioning"

    def __init__(self, rt: Runtime, ledger: CareLedger, catalog: CatalogHolder,
                 edrs: EdrSink | None) -> None:
        self.rt = rt
        self.ledger = ledger
        self.catalog = catalog
        self.edrs = edrs

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "oam":
            return []
        return [provisioning_blueprint(self.rt, self.ledger, self.catalog, self.edrs)]

    async def ensure_indexes(self) -> None:
        return None

    def workers(self) -> list[Worker]:
        return []
