"""App targets for the servers: each worker process builds its app from the configuration
named by ``$NF_CONFIG`` and the ``NF_*`` environment (see ``nf.config``)."""

from __future__ import annotations

from quart import Quart

from nf import logs
from nf.config import Settings
from nf.sbi.app import create_app


def _app(role: str) -> Quart:
    settings = Settings.load()
    logs.setup(settings.log_level)
    return create_app(settings, role="sbi" if role == "sbi" else "oam")


def sbi_app() -> Quart:
    return _app("sbi")


def oam_app() -> Quart:
    return _app("oam")
