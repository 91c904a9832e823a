"""Validated, frozen configuration: a YAML file plus ``NF_*`` environment variables,
assembled from the sections in ``nf.settings``.

Parsed once at the edge (``Settings.load``) and passed down. Units are in the names.
Nested keys can be set from the environment with ``__``: ``NF_SERVER__SBI_PORT=9000``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nf.errors import ConfigError
from nf.settings.diameter import DiameterSettings
from nf.settings.fraud import FraudSettings
from nf.settings.server import (
    HostNetwork,
    Listener,
    NrfSettings,
    OAuth2Settings,
    ServerSettings,
    SupiRange,
    sbi_listener,
)
from nf.settings.services import (
    BrandNotices,
    CareSettings,
    ChfSettings,
    ConsoleSettings,
    EdrExportSettings,
    EdrSettings,
    EffectsSettings,
    LedgerSettings,
    NoticeSettings,
    NotifySettings,
    PcfSettings,
    SmsBrand,
    SmsSettings,
)

# The sections, importable from here as before (``from nf.config import ServerSettings``).
__all__ = [
    "BrandNotices", "CareSettings", "ChfSettings", "ConsoleSettings", "EdrExportSettings",
    "EdrSettings", "EffectsSettings", "FraudSettings", "HostNetwork", "LedgerSettings",
    "Listener", "NoticeSettings", "NotifySettings", "NrfSettings", "OAuth2Settings",
    "PcfSettings", "ServerSettings", "Settings", "SmsBrand", "SmsSettings", "SupiRange",
    "sbi_listener",
]


class Settings(BaseSettings):
    """Everything the NF needs to start. Frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="NF_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    instance_id: str = "nf-1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mongodb_uri: str = "mongodb://127.0.0.1:27017"
    mongodb_database: str = "nf"
    mongodb_timeout_ms: int = Field(5_000, ge=100, le=120_000)
    mongodb_max_pool_size: int = Field(100, ge=1, le=10_000)
    # Connections opened ahead of traffic, so the first requests do not pay for them.
    mongodb_min_pool_size: int = Field(4, ge=0, le=10_000)
    # A database command slower than this is logged (WARNING, with its filter's shape).
    mongodb_slow_op_ms: float = Field(250.0, ge=1.0, le=600_000.0)
    # Watch every database command (``nf.store.opwatch``): its latency by command and
    # collection on /metrics and the slow-operation log. Off saves a few % of CPU per
    # request and loses both.
    mongodb_op_watch: bool = True
    # How long a process may wait for the database at start (index checks, the warm-up):
    # after a restart the embedded database's first operation on a large collection takes
    # seconds per 100,000 documents. Waited for with a progress line every 10 s.
    mongodb_startup_timeout_s: float = Field(900.0, ge=1.0, le=86_400.0)
    # Write nothing to every collection once at start (``nf.store.mongo.warm_up``), so the
    # embedded database's slow first write per collection is paid before traffic. Unset:
    # only where the server is the embedded database (SecantusDB; MongoDB needs none).
    mongodb_warm_up: bool | None = None
    catalog_dir: Path | None = None
    # Care / provisioning API keys: key -> brand id, or "*" for the operator-wide admin.
    # The key may be given as "sha256:<hex digest>", "env:VAR" or "file:/path" instead of
    # in plain text (nf.security.apikeys).
    api_keys: dict[str, str] = Field(default_factory=dict)
    care: CareSettings = CareSettings()
    console: ConsoleSettings = ConsoleSettings()
    server: ServerSettings = ServerSettings()
    networks: list[HostNetwork] = Field(default_factory=list)
    chf: ChfSettings = ChfSettings()
    pcf: PcfSettings = PcfSettings()
    notify: NotifySettings = NotifySettings()
    edr: EdrSettings = EdrSettings()
    ledger: LedgerSettings = LedgerSettings()
    effects: EffectsSettings = EffectsSettings()
    nrf: NrfSettings = NrfSettings()
    oauth2: OAuth2Settings = OAuth2Settings()

    sms: SmsSettings = SmsSettings()
    notices: NoticeSettings = NoticeSettings()
    fraud: FraudSettings = FraudSettings()
    diameter: DiameterSettings = DiameterSettings()
    # Extra parts appended after the built-in ones, as ``module:factory`` import paths; each
    # factory takes the ``Runtime`` and returns a ``Part`` (site add-ons, test harnesses).
    extra_parts: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = \
        Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_networks(self) -> Settings:
        seen: set[str] = set()
        for n in self.networks:
            for p in n.plmn_ids:
                if p in seen:
                    raise ValueError(f"plmn id {p} belongs to more than one host network")
                seen.add(p)
        return self

    @model_validator(mode="after")
    def _network_listeners(self) -> Settings:
        srv = self.server
        taken = {srv.sbi_port: "server.sbi_port", srv.oam_port: "server.oam_port"}
        for n in self.listener_networks():
            where = f"networks[{n.id}].sbi_port"
            if not srv.tls:
                raise ValueError(f"{where}: a host network's own SBI listener needs TLS "
                                 "(server.tls_cert_file and server.tls_key_file)")
            if n.sbi_port in taken:
                raise ValueError(f"{where}: port {n.sbi_port} is already "
                                 f"{taken[n.sbi_port]}; each listener needs its own port")
            assert n.sbi_port is not None
            taken[n.sbi_port] = where
        if srv.listener_network is not None:
            net = self.network(srv.listener_network)
            if net is None or net.sbi_port is None:
                raise ValueError(f"server.listener_network: {srv.listener_network!r} is no "
                                 "host network with its own sbi_port")
        return self

    @model_validator(mode="after")
    def _diameter_networks(self) -> Settings:
        d = self.diameter
        if (d.tls_cert_file is None) != (d.tls_key_file is None):
            raise ValueError("diameter: tls_cert_file and tls_key_file go together")
        seen: dict[str, str] = {}
        for net_id, dn in d.networks.items():
            if self.network(net_id) is None:
                raise ValueError(f"diameter.networks: {net_id!r} is no host network id")
            for peer in dn.peers:
                if peer in seen:
                    raise ValueError(f"diameter.networks: peer {peer!r} is listed under "
                                     f"{seen[peer]} and {net_id}")
                seen[peer] = net_id
        return self

    def listener_networks(self) -> list[HostNetwork]:
        """The host networks with their own SBI listener (``sbi_port``)."""
        return [n for n in self.networks if n.sbi_port is not None]

    def network_for_plmn(self, plmn: str) -> HostNetwork | None:
        for n in self.networks:
            if plmn in n.plmn_ids:
                return n
        return None

    def network(self, network_id: str) -> HostNetwork | None:
        # Asked on every request: a plain loop over a few networks (no generator; a dict
        # kept on a frozen model costs more to reach than this loop).
        for n in self.networks:
            if n.id == network_id:
                return n
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init kwargs by ``load``).
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Settings:
        """Read ``path`` (or ``$NF_CONFIG``), overlay the environment, validate.

        Raises ``ConfigError`` with a message naming every bad key.
        """
        if path is None and os.environ.get("NF_CONFIG"):
            path = Path(os.environ["NF_CONFIG"])
        data: dict[str, Any] = {}
        if path is not None:
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML: {e}") from None
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: the top level must be a mapping")
            data = loaded
            base = path.parent
            if isinstance(data.get("catalog_dir"), str):
                cat = Path(data["catalog_dir"])
                data["catalog_dir"] = cat if cat.is_absolute() else base / cat
        data.update(overrides)
        try:
            return cls(**data)
        except ValidationError as e:
            lines = []
            for err in e.errors():
                key = ".".join(str(p) for p in err["loc"]) or "(top level)"
                lines.append(f"  {key}: {err['msg']}")
            where = f"{path}" if path else "configuration"
            raise ConfigError(f"{where} is invalid:\n" + "\n".join(lines)) from None
