"""Which parts make up the NF, built by construction in dependency order, and the app of
one port made of them (``create_app``).

Each slice adds its part here; nothing registers itself at import time. This is the top of
the layers (``docs/ARCHITECTURE.md``): it may import every slice, and none imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from quart import Quart

from nf.clock import Clock
from nf.config import Settings
from nf.oam.part import HealthPart, ProvisioningPart
from nf.runtime import Part, Role, Runtime
from nf.sbi.app import build_app
from nf.store.mongo import Db


def create_app(
    settings: Settings,
    *,
    role: Role,
    clock: Clock | None = None,
    db: Db | None = None,
    parts: Sequence[Part] | Callable[[Runtime], Sequence[Part]] | None = None,
    build_indexes: bool = True,
) -> Quart:
    """The app of one port. ``db`` and ``clock`` are injected by tests; ``parts`` defaults
    to every slice of the NF (``build_parts``) plus ``settings.extra_parts``. It may also be
    a function of the app's ``Runtime`` (``parts=lambda rt: [MyPart(rt)]``). Every app has
    the health part (liveness; on OAM readiness, metrics and the API documents).
    ``build_indexes=False``: see ``nf.sbi.app.build_app``."""

    def of(rt: Runtime) -> list[Part]:
        if parts is None:
            given: Sequence[Part] = [*build_parts(rt), *_extra_parts(rt)]
        elif callable(parts):
            given = parts(rt)
        else:
            given = parts
        return [*given, HealthPart(rt)]

    return build_app(settings, role=role, parts=of, clock=clock, db=db,
                     build_indexes=build_indexes)


def _extra_parts(rt: Runtime) -> list[Part]:
    """Parts named in ``settings.extra_parts`` as ``module:factory``; each factory takes the
    ``Runtime`` and returns a ``Part``."""
    out: list[Part] = []
    for spec in rt.settings.extra_parts:
        module, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        out.append(factory(rt))
    return out


def build_parts(rt: Runtime) -> list[Part]:
    parts: list[Part] = []
    # Who calls: OAuth2 access tokens on the SBI (first, so it runs before any handler),
    # and the NRF registration of this NF's CHF and PCF profiles.
    from nf.nrf.part import NrfPart
    from nf.security.part import SecurityPart

    parts += [SecurityPart(rt), NrfPart(rt)]
    # Shared plumbing first: the persisted outbox towards peers and the EDR writer. Slices
    # take them as constructor arguments (``outbox=``, ``edrs=``).
    from nf.edr.writer import EdrWriter
    from nf.notify.outbox import MongoOutbox
    from nf.notify.wake import Waker

    # A Diameter push enqueued in another process than the Diameter one wakes it.
    wake_socket = rt.settings.diameter.wake_socket
    outbox = MongoOutbox(rt, waker=Waker(wake_socket, rt.metrics)
                         if wake_socket is not None and rt.role != "diameter" else None)
    edrs = EdrWriter(rt)
    parts += [outbox, edrs]
    # The balance manager and the offer catalogue: the CHF, the PCF and the provisioning
    # API take ``ledger_part.ledger`` (a ``nf.ledger.port.Ledger``) and ``.catalog``.
    from nf.ledger.part import LedgerPart

    ledger_part = LedgerPart(rt, edrs=edrs)
    parts += [ledger_part,
              ProvisioningPart(rt, ledger_part.ledger, ledger_part.catalog, edrs)]
    # Policy: the built-in PCF (Npcf_SMPolicyControl) and the spending-limit service for
    # external PCFs (Nchf_SpendingLimitControl). Both hear every counter change the ledger
    # reports (one mechanism), the PCF first so throttles leave before anything else.
    from nf.pcf.part import PcfPart
    from nf.slc.part import SlcPart

    pcf = PcfPart(rt, ledger=ledger_part.ledger, outbox=outbox, edrs=edrs)
    slc = SlcPart(rt, ledger=ledger_part.ledger, outbox=outbox)
    parts += [pcf, slc]
    rt.counter_listeners += [pcf, slc]
    # Charging: the CHF (Nchf_ConvergedCharging). It listens too, after the policy side:
    # purchases re-authorise refused sessions, blocks abort them.
    from nf.chf.part import ChfPart

    chf = ChfPart(rt, ledger=ledger_part.ledger, outbox=outbox, edrs=edrs)
    parts.append(chf)
    rt.counter_listeners.append(chf)
    # 4G host networks: Diameter Gy (and Gx, Sy) on the same services, served by the
    # ``diameter`` process of ``nf serve`` only (``nf.diameter_process``).
    from nf.diameter.gy import GyHandler
    from nf.diameter.part import DiameterPart
    from nf.diameter.sessions import SessionMap

    gy = GyHandler(chf.service, rt.settings, rt.clock, ledger_part.ledger, SessionMap(rt.db))
    diameter = DiameterPart(rt, handlers=[gy])
    diameter.watch(gy)  # a PGW restarted (CER): its Gy sessions of before are released
    parts.append(diameter)
    # Gx and Sy on the PCF and the spending-limit service; their pushes (RAR, SNR) are
    # outbox entries sent by the same process (``diameter://`` notification URIs).
    from nf.diameter.policy import DiameterPolicyPart

    parts.append(DiameterPolicyPart(rt, diameter, pcf=pcf.service, slc=slc.service,
                                    outbox=outbox, ledger=ledger_part.ledger))
    # Purchase EDRs: from the same durable counter changes, so none is lost to a crash.
    from nf.edr.purchases import PurchaseEdrs

    rt.counter_listeners.append(PurchaseEdrs(ledger_part.ledger, edrs))
    # Care API idempotency keys (used by the provisioning blueprint): their TTL index.
    from nf.oam.idempotency import IdempotencyKeys

    parts.append(IdempotencyKeys(rt))

    # Reporting: the EDRs' retention index, the scheduled export, reports on OAM.
    from nf.reports.part import ReportsPart

    parts.append(ReportsPart(rt, ledger=ledger_part.ledger, catalog=ledger_part.catalog))

    # Notices to subscribers (SMS, brand webhooks): the same counter changes, heard last.
    from nf.subnotify.part import SubNoticePart

    notices = SubNoticePart(rt, ledger_part.ledger, ledger_part.catalog)
    parts.append(notices)
    rt.counter_listeners.append(notices)

    # Fraud protection: reads the stored EDRs in the background (never in a request), acts
    # through the ledger (throttle, suspend) and the counter listeners above.
    from nf.fraud.part import FraudPart

    fraud = FraudPart(rt, ledger=ledger_part.ledger, outbox=outbox, edrs=edrs)
    parts.append(fraud)

    # The care console on the OAM port (reads and acts through the same ledger; shows the
    # notices and fraud cases of a subscriber through their parts' stores).
    from nf.oam.console.part import ConsolePart

    parts.append(ConsolePart(rt, ledger_part.ledger, ledger_part.catalog, notices=notices,
                             fraud=fraud))
    return parts
