"""The ``fraud:`` settings section: rule thresholds and actions, per brand.

``rules`` holds every brand's defaults; ``brands.<id>.rules.<rule>`` overrides fields of
one rule for one brand (the rest is inherited). Each rule has an ``action``:

- ``off``: not evaluated;
- ``record``: a fraud EDR and a metric, no case (repeated at most every ``repeat_after_s``);
- ``case``: open a case for care and notify the brand (log, metric, webhook if set);
- ``throttle``: as ``case``, and the subscriber's sessions run at the brand's
  ``speed_*_kbps`` (speed reason ``fraud``) until the case is resolved;
- ``suspend``: as ``case``, and the subscriber is suspended (sessions terminated, new ones
  refused) until the case is resolved as a false positive.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, PrivateAttr, model_validator

from nf.settings.base import Frozen

Action = Literal["off", "record", "case", "throttle", "suspend"]
# The rules, named once: the fields of ``FraudRules`` and the keys of a brand's overrides.
Rule = Literal["multi_network", "concurrent_sessions", "impossible_travel", "usage_velocity",
               "purchase_velocity", "orphan_session"]
RULES: tuple[Rule, ...] = get_args(Rule)
GIB = 1024**3


class MultiNetworkRule(Frozen):
    """Active sessions on two host networks, or on two serving PLMNs that are not
    neighbours, at the same time."""

    action: Action = "throttle"
    # Pairs of PLMN ids that may legitimately serve one subscriber at once (border areas).
    neighbours: list[tuple[str, str]] = Field(default_factory=list, max_length=10_000)


class ConcurrentSessionsRule(Frozen):
    action: Action = "case"
    max_sessions: int = Field(8, ge=1, le=1000)  # PDU sessions, charging or policy


class ImpossibleTravelRule(Frozen):
    """The serving PLMN's country (its MCC) changes sooner than ``min_travel_s``, between
    two countries that are not ``borders``."""

    action: Action = "case"
    min_travel_s: int = Field(3600, ge=1, le=7 * 86_400)
    # Pairs of countries (MCCs, or the names ``mcc_countries`` gives them) with a land
    # border: near it a phone moves between their networks within minutes, legitimately.
    borders: list[tuple[str, str]] = Field(default_factory=list, max_length=10_000)


class UsageVelocityRule(Frozen):
    """More than ``max_bytes[class]`` reported in any sliding ``window_s``. A plan's class
    is ``plan_classes[plan offer id]``, else ``default``."""

    action: Action = "throttle"
    window_s: int = Field(3600, ge=60, le=7 * 86_400)
    max_bytes: dict[str, int] = Field(default_factory=lambda: {"default": 200 * GIB})
    plan_classes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_class(self) -> UsageVelocityRule:
        if "default" not in self.max_bytes:
            raise ValueError("max_bytes needs a 'default' class")
        if any(v < 1 for v in self.max_bytes.values()):
            raise ValueError("max_bytes values must be positive")
        return self

    def limit(self, plan_class: str | None) -> int:
        return self.max_bytes.get(plan_class or "default", self.max_bytes["default"])


class PurchaseVelocityRule(Frozen):
    action: Action = "case"
    window_s: int = Field(3600, ge=60, le=30 * 86_400)
    max_purchases: int = Field(10, ge=1, le=10_000)


class OrphanSessionRule(Frozen):
    """A charging session with no policy association for the same PDU session (or the
    reverse) for longer than ``grace_s``."""

    action: Action = "record"
    grace_s: int = Field(120, ge=1, le=86_400)


class FraudRules(Frozen):
    multi_network: MultiNetworkRule = MultiNetworkRule()
    concurrent_sessions: ConcurrentSessionsRule = ConcurrentSessionsRule()
    impossible_travel: ImpossibleTravelRule = ImpossibleTravelRule()
    usage_velocity: UsageVelocityRule = UsageVelocityRule()
    purchase_velocity: PurchaseVelocityRule = PurchaseVelocityRule()
    orphan_session: OrphanSessionRule = OrphanSessionRule()

    def action(self, rule: str) -> str:
        return str(getattr(self, rule).action)


class FraudBrand(Frozen):
    # Field overrides per rule, e.g. {"usage_velocity": {"window_s": 600}}.
    rules: dict[Rule, dict[str, Any]] = Field(default_factory=dict)
    speed_uplink_kbps: int | None = Field(None, ge=1, le=10_000_000)
    speed_downlink_kbps: int | None = Field(None, ge=1, le=10_000_000)
    # Cases are POSTed here (JSON, through the persisted outbox) when they open, signed
    # with ``webhook_secret`` as the notice webhooks are (``nf.security.webhooks``).
    webhook_url: str | None = Field(None, pattern=r"^https?://", max_length=2048)
    webhook_secret: str | None = Field(None, min_length=16, max_length=200)

    @model_validator(mode="after")
    def _signed(self) -> FraudBrand:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs webhook_secret (cases are signed)")
        return self


class FraudSettings(Frozen):
    enabled: bool = True
    rules: FraudRules = FraudRules()
    brands: dict[str, FraudBrand] = Field(default_factory=dict)
    speed_uplink_kbps: int = Field(64, ge=1, le=10_000_000)
    speed_downlink_kbps: int = Field(128, ge=1, le=10_000_000)
    # The EDR reader: how often it looks for new records, how many per round, and how late
    # (after its ``time``) a record may be stored and still be read.
    poll_interval_s: float = Field(0.25, gt=0, le=60)
    batch_max: int = Field(1000, ge=1, le=100_000)
    late_window_s: float = Field(10.0, ge=0, le=3600)
    late_scan_interval_s: float = Field(2.0, gt=0, le=3600)
    # One process reads at a time; its lease is renewed every round. "oam": only OAM
    # processes compete for it, keeping the work away from the SBI workers' event loops.
    lease_s: float = Field(10.0, gt=0, le=600)
    reader: Literal["oam", "any"] = "oam"
    # A session not seen for this long is forgotten (its release was never seen).
    session_stale_s: int = Field(6 * 3600, ge=60, le=30 * 86_400)
    sessions_max: int = Field(64, ge=2, le=1000)  # remembered per subscriber
    # After a false positive, the rule stays quiet for the subscriber this long.
    cooldown_s: int = Field(3600, ge=0, le=30 * 86_400)
    repeat_after_s: int = Field(3600, ge=1, le=30 * 86_400)  # ``record`` actions
    # Resolved cases are kept this long (TTL), open ones until resolved.
    case_retention_days: int = Field(400, ge=1, le=3650)
    # MCCs of one country (an MCC is otherwise its own country), e.g. {"310": "us"}.
    mcc_countries: dict[str, str] = Field(default_factory=dict)

    # Each brand's rules with its overrides applied, validated once with the settings.
    _by_brand: dict[str, FraudRules] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _brand_rules(self) -> FraudSettings:
        for brand, b in self.brands.items():
            if not b.rules:
                continue
            data = self.rules.model_dump()
            for rule, fields in b.rules.items():
                data[rule] = {**data[rule], **fields}
            try:
                self._by_brand[brand] = FraudRules.model_validate(data)
            except ValueError as e:
                raise ValueError(f"brands.{brand}.rules: {e}") from None
        return self

    def rules_for(self, brand: str | None) -> FraudRules:
        return self._by_brand.get(brand or "", self.rules)

    def throttle_kbps(self, brand: str | None) -> tuple[int, int]:
        b = self.brands.get(brand or "")
        up = b.speed_uplink_kbps if b and b.speed_uplink_kbps else \
            self.speed_uplink_kbps
        down = b.speed_downlink_kbps if b and b.speed_downlink_kbps else \
            self.speed_downlink_kbps
        return up, down

    def webhook(self, brand: str | None) -> str | None:
        b = self.brands.get(brand or "")
        return b.webhook_url if b else None

    def webhook_secret(self, brand: str | None) -> str | None:
        b = self.brands.get(brand or "")
        return b.webhook_secret if b else None
