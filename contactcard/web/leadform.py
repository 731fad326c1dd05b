"""The card's contact form: ``POST /c/{token}``, the card page's own address (see ``leads`` for the rules).

A ``SignedFormRoute``: no session or cookie is read; the form's signed token (bound to the link and the time
the page was served) is checked before the handler. Every post is a hit on the link, recorded (outcome
``lead``) before the answer, like every other hit under ``/c/``. The answer is the card page again: with a
thank-you in place of the form, or the form with what was typed and what is wrong with it (nothing lost).
Posting to the page's own address keeps the answer's relative links (the language switch) on the card.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from .. import leads
from ..models import Busy, Outcome
from .context import app_context
from .customer import LeadForm, busy, consent_text, page_for, track
from .forms import SignedFormRoute


@dataclass(frozen=True)
class Verdict:
    check: leads.FormCheck
    digest: bytes  # identifies the form served (a form posted twice is stored once)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def verify(request: Request, form: FormData) -> Verdict:
    """The form token's verdict, for this link, now (pure: before anything is read or recorded)."""
    check, digest = app_context(request).service.leads.check_form(request.path_params["token"],
                                                                  _text(form, "form_token"))
    return Verdict(check, digest)


async def leave_contact(request: Request, form: FormData, verdict: Verdict) -> Response:
    ctx = app_context(request)
    token = request.path_params["token"]
    trapped = bool(_text(form, leads.HONEYPOT).strip())  # people never see the field; robots fill it
    hit = await track(ctx, request.scope, token, lambda res: (Outcome.LEAD if res.live else res.outcome, None),
                      bot=trapped)
    if hit is None:
        return busy(request, ctx)
    if hit.oversized:
        raise HTTPException(431)
    res = hit.res
    if not res.live or res.card is None or res.employee is None or not res.company.leads_enabled:
        return page_for(request, ctx, res, token, status=404 if res.live else None)
    if trapped:  # answered as if it had worked: the robot learns nothing; nothing is stored
        return page_for(request, ctx, res, token, lead=LeadForm(notice="sent"))
    values = {name: _text(form, name) for name in leads.FIELDS}
    consent = _text(form, "consent") == "yes"
    entry, errors = leads.parse({**values, "consent": "yes" if consent else ""})
    if verdict.check is not leads.FormCheck.OK:
        errors = {**errors, "form": verdict.check.value}
    if errors:
        status = 403 if verdict.check is leads.FormCheck.INVALID else 400
        return page_for(request, ctx, res, token, status=status,
                        lead=LeadForm(values=values, errors=errors, consent=consent))
    if await ctx.service.leads.over_limit(res.company, hit.visitor_key):
        return page_for(request, ctx, res, token, status=429, lead=LeadForm(notice="limit"))
    t = ctx.renderer.translator(request, customer=True)
    try:
        await ctx.service.leads.leave(card_id=res.card.id, employee_id=res.employee.id, entry=entry, language=t.lang,
                                      consent_text=consent_text(t.gettext, res.company, t.lang),
                                      visitor_key=hit.visitor_key, form_digest=verdict.digest)
    except Busy:
        return busy(request, ctx)
    return page_for(request, ctx, res, token, lead=LeadForm(notice="sent"))


routes: list[BaseRoute] = [
    SignedFormRoute("/c/{token}", leave_contact, verify=verify),
]
