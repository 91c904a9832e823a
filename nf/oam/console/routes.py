"""The console's pages and actions (``/console/``).

Every page needs a signed-in agent (a session kept on the server, ``sessions``: one read
per request); every form carries the session's CSRF token; every subscriber is
brand-scoped exactly like the provisioning API (another brand's subscriber is "not
found"). Actions are confirmed on a page of their own, audited in
``console_audit``, and run through the same ledger calls as the provisioning API.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from quart import Blueprint, Quart, Response, redirect, render_template, request, session, url_for
from quart.typing import ResponseReturnValue

from nf.catalog import CatalogHolder
from nf.errors import NfError, NotFound, Unauthorized
from nf.fraud.store import FraudStore
from nf.ledger.port import SubscriberStatus
from nf.ledger.state import Member, Wallet
from nf.oam.console.auth import Agent, Keys, csrf_ok, key_id, new_token, session_secret
from nf.oam.console.charts import bucket_bar, usage_chart
from nf.oam.console.data import MAX_EDR_COUNT, OVERVIEW_CACHE_S, ConsoleData, OverviewRow
from nf.oam.console.present import (
    DEFAULT_ZONE,
    NoticeLine,
    charging_line,
    local,
    notice_line,
    zone,
)
from nf.oam.console.rates import RateMeter, charging_requests_total
from nf.oam.console.sessions import ConsoleSessions
from nf.oam.console.signin import SignInThrottle
from nf.oam.port import CareLedger
from nf.oam.views import human
from nf.runtime import Runtime
from nf.sbi.problem import problem_response
from nf.security.apikeys import digest
from nf.store.mongo import Doc
from nf.subnotify.outbox import NoticeOutbox

PREFIX = "/console"
SUPI = re.compile(r"^imsi-[0-9]{5,15}$")
GPSI = re.compile(r"^msisdn-[0-9]{5,15}$")
DIGITS = re.compile(r"^\+?[0-9]{5,15}$")
ACTIONS = {"buy": "Buy an offer", "suspend": "Suspend", "reactivate": "Reactivate",
           "block": "Block", "remove-member": "Remove a family member"}
STATUS_OF = {"suspend": SubscriberStatus.SUSPENDED, "reactivate": SubscriberStatus.ACTIVE,
             "block": SubscriberStatus.BLOCKED}
BUYABLE = ("addon", "roaming_pass", "speed_boost")
SIDE_LIST_MAX = 20  # notices and fraud cases shown on a subscriber page (newest first)
log = logging.getLogger("nf.console")


class _SignIn(Exception):
    """No valid session: go to the sign-in page."""


def console_blueprint(rt: Runtime, ledger: CareLedger, catalog: CatalogHolder,
                      sessions: ConsoleSessions, *, notices: NoticeOutbox | None = None,
                      fraud: FraudStore | None = None) -> Blueprint:
    """``notices``/``fraud``: the stores behind the subscriber page's "notifications
    sent" and "fraud cases" (None: that part is off, the section is not shown)."""
    cfg = rt.settings.console
    tls = rt.settings.server.tls_cert_file is not None
    bp = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates",
                   static_folder="static", static_url_path="/static")
    keys = Keys(rt.api_keys)
    data = ConsoleData(rt)
    secret = session_secret(cfg.session_secret)
    meter = RateMeter()
    throttle = SignInThrottle(rt)
    cached: dict[str, tuple[float, list[OverviewRow], int]] = {}

    @bp.record_once
    def _setup(state: Any) -> None:
        app: Quart = state.app
        app.secret_key = secret
        app.config.update(
            SESSION_COOKIE_NAME="nf_console", SESSION_COOKIE_PATH=PREFIX,
            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
            SESSION_COOKIE_SECURE=tls,
            PERMANENT_SESSION_LIFETIME=timedelta(seconds=cfg.session_ttl_s))

    def now_s() -> float:
        return rt.clock.now().timestamp()

    async def current() -> Agent | None:
        """The agent of this request's session, if it still stands."""
        sid = session.get("sid")
        if not isinstance(sid, str):
            return None
        s = await sessions.current(sid, keys.scopes, rt.clock.now())
        return Agent(s.key_id, s.scope, s.csrf) if s is not None else None

    async def agent() -> Agent:
        a = await current()
        if a is None:
            raise _SignIn()
        return a

    async def form_of(a: Agent | None) -> dict[str, str]:
        form = await request.form
        expected = a.csrf if a is not None else session.get("pre_csrf")
        if not csrf_ok(expected, form.get("csrf")):
            raise NfError("the form has expired or did not come from this console; "
                          "reload the page and try again", 403, "CSRF_FAILED", "Forbidden")
        return {k: str(v) for k, v in form.items()}

    def may_see(a: Agent, brand: str) -> bool:
        return a.admin or a.scope == brand

    async def owned(a: Agent, supi: str) -> tuple[Wallet, Member]:
        got = await ledger.wallet(supi, rt.clock.now())
        if got is None or not may_see(a, got[1].brand):
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return got

    def zone_name(brand: str | None) -> str:
        """A brand's time zone (its notices' ``time_zone``); UTC for the operator."""
        b = rt.settings.notices.brands.get(brand) if brand else None
        return b.time_zone if b is not None else DEFAULT_ZONE

    def offer_label(offer_id: str | None) -> str:
        """An offer as an agent knows it: its name (the id for one no longer sold)."""
        got = catalog.current.offer(offer_id) if offer_id else None
        return got[1].name if got is not None else str(offer_id or "")

    async def page(a: Agent | None, template: str, status: int = 200,
                   brand: str | None = None, **ctx: Any) -> Response:
        ctx.setdefault("csrf", a.csrf if a is not None else session.get("pre_csrf", ""))
        tz = zone(zone_name(brand or (a.scope if a is not None and not a.admin else None)))
        body = await render_template(f"console/{template}", agent=a,
                                     recent=session.get("recent", []) if a else [],
                                     human=human, iso=lambda dt: local(dt, tz),
                                     offer_name=offer_label, money=_money, **ctx)
        return Response(body, status, content_type="text/html; charset=utf-8")

    @bp.after_request
    async def _headers(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        return resp

    def wants_html() -> bool:
        # Browsers get pages; other clients (scripts, probes) get ProblemDetails.
        return bool(request.accept_mimetypes.accept_html)

    @bp.errorhandler(_SignIn)
    async def _to_sign_in(_: _SignIn) -> ResponseReturnValue:
        session.pop("sid", None)
        if not wants_html():
            return problem_response(Unauthorized("sign in to the console first"),
                                    request.path)
        if request.method == "GET":
            return redirect(url_for("console.sign_in", next=request.path))
        return await page(None, "error.html", 401, title="Signed out",
                          message="Your session has ended. Sign in again.")

    @bp.errorhandler(NfError)
    async def _error(e: NfError) -> ResponseReturnValue:
        if not wants_html():
            return problem_response(e, request.path)
        try:
            a = await current()
        except NfError:  # the database is what failed: the page without the agent
            a = None
        if a is None:
            # Not signed in (a refused or expired sign-in): the way on is the sign-in form.
            session["pre_csrf"] = session.get("pre_csrf") or new_token()
            resp = await page(None, "sign_in.html", e.status, csrf=session["pre_csrf"],
                              next="", failed=False, title=e.title, message=e.detail)
        else:
            resp = await page(a, "error.html", e.status, title=e.title, message=e.detail)
        if e.retry_after_s is not None:
            resp.headers["Retry-After"] = str(e.retry_after_s)
        return resp

    @bp.get("/")
    async def home() -> ResponseReturnValue:
        a = await agent()
        return redirect(url_for("console.overview" if a.admin else "console.find"))

    @bp.get("/sign-in")
    async def sign_in() -> ResponseReturnValue:
        session["pre_csrf"] = session.get("pre_csrf") or new_token()
        return await page(None, "sign_in.html", csrf=session["pre_csrf"],
                          next=request.args.get("next", ""), failed=False)

    @bp.post("/sign-in")
    async def sign_in_post() -> ResponseReturnValue:
        form = await form_of(None)
        presented = form.get("key", "").strip()
        address, kid = throttle.client_address(), key_id(digest(presented))
        await throttle.admit(kid, address)
        got = keys.sign_in(presented)
        if got is None:
            throttle.failed(kid, address)
        if got is None and not wants_html():
            raise Unauthorized("unknown API key")
        if got is None:
            return await page(None, "sign_in.html", 401, csrf=session["pre_csrf"],
                              next=form.get("next", ""), failed=True)
        before = session.get("sid")
        if isinstance(before, str):  # signing in again ends the session signed in before
            await sessions.end(before)
        session.clear()
        session.permanent = True
        sid = await sessions.open(got[0], got[1], new_token(), rt.clock.now())
        session.update(sid=sid, recent=[])
        nxt = form.get("next", "")
        if nxt.startswith(PREFIX + "/") and "//" not in nxt and nxt != PREFIX + "/sign-in":
            return redirect(nxt)
        return redirect(url_for("console.home"))

    @bp.post("/sign-out")
    async def sign_out() -> ResponseReturnValue:
        a = await agent()
        await form_of(a)
        sid = session.get("sid")
        if isinstance(sid, str):
            await sessions.end(sid)
        session.clear()
        return redirect(url_for("console.sign_in"))

    @bp.get("/find")
    async def find() -> ResponseReturnValue:
        a = await agent()
        q = request.args.get("q", "").strip()
        if not q:
            return await page(a, "find.html", q="", message=None)
        supi: str | None = None
        if SUPI.match(q):
            supi = q
        elif GPSI.match(q) or DIGITS.match(q):
            supi = await data.supi_of_gpsi(q if GPSI.match(q) else "msisdn-" + q.lstrip("+"))
        if supi is not None:
            got = await ledger.wallet(supi, rt.clock.now())
            if got is not None and may_see(a, got[1].brand):
                return redirect(url_for("console.subscriber", supi=supi))
        return await page(a, "find.html", 404, q=q,
                          message=f"No subscriber found for “{q[:64]}”. Enter a SUPI "
                                  "(imsi-…) or an MSISDN (msisdn-… or digits).")

    @bp.get("/subscribers/<supi>")
    async def subscriber(supi: str) -> ResponseReturnValue:
        a = await agent()
        now = rt.clock.now()
        w, m = await owned(a, supi)
        view = await ledger.subscriber(supi, now)
        bal = await ledger.balance(supi, now)
        if view is None or bal is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        recent = [s for s in session.get("recent", []) if s != supi]
        session["recent"] = [supi, *recent][:cfg.recent_max]
        group = await ledger.group(w.group_id, now) if w.group_id else None
        bars = [(b, bucket_bar(b.quota_bytes, b.used_bytes, b.reserved_bytes))
                for b in bal.buckets]
        chart = usage_chart(now, await data.usage_per_day(supi, now))
        # The session documents as of their create; each update is on the wallet's note.
        notes = await ledger.session_notes(supi, now)
        charging = [charging_line(d, notes.get(str(d["_id"])))
                    for d in await data.charging_sessions(supi)]
        edrs = await data.recent_edrs(supi, cfg.edr_timeline_max)
        edr_count = (await data.count_edrs(supi, MAX_EDR_COUNT)
                     if len(edrs) >= cfg.edr_timeline_max else len(edrs))
        return await page(
            a, "subscriber.html", brand=view.brand, v=view, member=m, bars=bars,
            group=group, chart=chart, charging=charging, policies=await data.policies(supi),
            edrs=edrs, edrs_older=edr_count - len(edrs),
            edrs_capped=edr_count >= MAX_EDR_COUNT,
            audit=await data.audit_of(supi), offers=_buyable(view.brand),
            notices=await _notices(a, supi), cases=await _cases(a, supi),
            side_max=SIDE_LIST_MAX,
            done=request.args.get("done"), now=now)

    async def _notices(a: Agent, supi: str) -> dict[str, list[tuple[Doc, NoticeLine]]] | None:
        """The notices still to be sent (soonest first) and those sent or ended (newest
        first), each list bounded, each notice with its status line."""
        if notices is None:
            return None
        brand = None if a.admin else a.scope
        return {which: [(d, notice_line(d)) for d in await notices.for_subscriber(
                    supi, SIDE_LIST_MAX, brand=brand, waiting=which == "waiting")]
                for which in ("waiting", "done")}

    async def _cases(a: Agent, supi: str) -> list[Doc] | None:
        if fraud is None:
            return None
        q: Doc = {"supi": supi} if a.admin else {"supi": supi, "brand": a.scope}
        return await fraud.find_cases(q, SIDE_LIST_MAX)

    def _buyable(brand: str) -> list[Any]:
        return [o for o in catalog.current.offers_of(brand) if o.kind in BUYABLE]

    async def _check_action(a: Agent, supi: str, args: dict[str, str]
                            ) -> tuple[str, str, dict[str, str], Member]:
        action = args.get("action", "")
        if action not in ACTIONS:
            raise NfError(f"unknown action {action[:32]!r}", 400, "INVALID_ACTION",
                          "Bad request")
        w, m = await owned(a, supi)
        detail: dict[str, str] = {}
        if action == "buy":
            oid = args.get("offer", "")
            offer = next((o for o in _buyable(m.brand) if o.id == oid), None)
            if offer is None:
                raise NotFound(f"no offer {oid[:64]} of brand {m.brand}",
                               cause="OFFER_NOT_FOUND")
            detail["offer"] = oid
            what = (f"Buy {offer.name} ({_money(offer.price_cents, offer.currency)}) "
                    f"for {supi}")
        elif action == "remove-member":
            member = args.get("member", "")
            g = await ledger.group(w.group_id, rt.clock.now()) if w.group_id else None
            if g is None or g.member(member) is None:
                raise NotFound(f"{member[:32]} is not in this subscriber's family group",
                               cause="USER_NOT_FOUND")
            detail["member"] = member
            what = f"Remove {member} from family group {w.group_id}"
        else:
            what = f"{ACTIONS[action]} {supi}"
        return action, what, detail, m

    @bp.get("/subscribers/<supi>/confirm")
    async def confirm(supi: str) -> ResponseReturnValue:
        a = await agent()
        args = {k: str(v) for k, v in request.args.items()}
        action, what, detail, m = await _check_action(a, supi, args)
        return await page(a, "confirm.html", supi=supi, action=action, what=what,
                          detail=detail, brand=m.brand)

    @bp.post("/subscribers/<supi>/actions")
    async def act(supi: str) -> ResponseReturnValue:
        a = await agent()
        form = await form_of(a)
        action, what, detail, _ = await _check_action(a, supi, form)
        now = rt.clock.now()
        # The same ledger calls as the provisioning API; counter changes reach the PCF and
        # the CHF through the ledger's pending effects.
        if action == "buy":
            await ledger.purchase(supi, detail["offer"], now)
        elif action == "remove-member":
            await ledger.leave_group(detail["member"], now)
        else:
            await ledger.set_status(supi, STATUS_OF[action], now)
        await data.audit(a.key_id, a.scope, action, supi, detail, now)
        return redirect(url_for("console.subscriber", supi=supi, done=what))

    @bp.get("/overview")
    async def overview() -> ResponseReturnValue:
        a = await agent()
        if not a.admin:
            raise NfError("the overview needs the operator's admin key", 403,
                          "ADMIN_REQUIRED", "Forbidden")
        brands = sorted(catalog.current.brands)
        networks = [n.id for n in rt.settings.networks]
        hit = cached.get("overview")
        if hit is not None and now_s() - hit[0] < OVERVIEW_CACHE_S:
            rows, backlog = hit[1], hit[2]
        else:
            rows, backlog = await data.overview(brands, networks, rt.clock.now())
            cached["overview"] = (now_s(), rows, backlog)
        total = charging_requests_total(rt.metrics)
        return await page(a, "overview.html", rows=rows, backlog=backlog, at=rt.clock.now(),
                          total=int(total), rate=meter.read(total, now_s()))

    return bp


def _money(cents: int | None, currency: str | None) -> str:
    return f"{(cents or 0) / 100:.2f} {currency or ''}".strip()
