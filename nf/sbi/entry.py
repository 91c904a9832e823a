"""App targets for the servers: each worker process builds its app from the configuration
named by ``$NF_CONFIG`` and the ``NF_*`` environment (see ``nf.config``)."""

from __future__ import annotations

from quart import Quart

from nf import logs
from nf.config import Settings
from nf.proc import tune_gc
from nf.sbi import drain
from nf.wiring import create_app


def _app(role: str, *, granian: bool = False) -> Quart:
    settings = Settings.load()
    logs.setup(settings.log_level)
    # Indexes are checked and built, and the database warmed up, by the OAM process alone
    # (its /readyz turns ready after): two processes building the same new index on a
    # large collection, or one building it while another wrote to the collection, kept
    # the embedded database retrying write conflicts for minutes (a million wallets).
    app = create_app(settings, role="sbi" if role == "sbi" else "oam",
                     build_indexes=role != "sbi")
    if granian:
        drain.install(app, role)
    tune_gc()
    return app


def sbi_app() -> Quart:
    return _app("sbi")


def oam_app() -> Quart:
    return _app("oam")


# Under Granian, whose workers wait for idle connections before their lifespan shutdown:
# the process drains and stops on SIGTERM by itself (``nf.sbi.drain``).
def granian_sbi_app() -> Quart:
    return _app("sbi", granian=True)


def granian_oam_app() -> Quart:
    return _app("oam", granian=True)
