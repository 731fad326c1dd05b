"""``/api/v1/employees/{id}/card``: issue, rotate, revoke, extend, and the QR code (the console's PNG and SVG);
``/api/v1/cards/expiring``: the live links about to expire."""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import Response

from ... import qr
from ...models import ApiScope, IssuedCard, NotFound
from ..admin.cards import PNG_BOX
from ..security import NO_STORE
from .operations import Call, Operation
from .shapes import CardDays, CardIssue, CardOut, ExpiringQuery, ExtendedOut


async def _current(call: Call) -> IssuedCard:
    employee = await call.service.find_employee(call.id("employee_id"))
    card = await call.service.current_card(employee.id)
    if card is None:
        raise NotFound("%(email)s has no card", email=employee.email)
    return card


def _out(call: Call, issued: IssuedCard) -> CardOut:
    return CardOut.issued(issued, call.service.clock())


async def get_card(call: Call) -> CardOut:
    return _out(call, await _current(call))


async def issue_card(call: Call) -> CardOut:
    body: CardIssue = call.body
    return _out(call, await call.service.issue_card(call.id("employee_id"), days=body.days, label=body.label,
                                                    actor=call.actor))


async def rotate_card(call: Call) -> CardOut:
    body: CardDays = call.body
    return _out(call, await call.service.rotate_card(call.id("employee_id"), days=body.days, actor=call.actor))


async def extend_card(call: Call) -> CardOut:
    body: CardDays = call.body
    return _out(call, await call.service.extend_card(call.id("employee_id"), days=body.days, actor=call.actor))


async def revoke_card(call: Call) -> CardOut:
    card = await call.service.revoke_card(call.id("employee_id"), actor=call.actor)
    return CardOut.of(card, call.service.clock(), None)


async def expiring_cards(call: Call) -> list[CardOut]:
    q: ExpiringQuery = call.query
    within = None if q.within_days is None else timedelta(days=q.within_days)
    now = call.service.clock()
    return [CardOut.of(e.card, now, None) for e in await call.service.expiring_cards(within)]


async def extend_expiring(call: Call) -> ExtendedOut:
    body: CardDays = call.body
    return ExtendedOut(extended=await call.service.extend_expiring(days=body.days, actor=call.actor))


async def qr_png(call: Call) -> Response:
    card = await _current(call)
    return Response(qr.png_bytes(card.url, box_size=PNG_BOX), media_type="image/png", headers=NO_STORE)


async def qr_svg(call: Call) -> Response:
    card = await _current(call)
    return Response(qr.svg_bytes(card.url), media_type="image/svg+xml", headers=NO_STORE)


CARD = "/employees/{employee_id}/card"
_NO_CARD = "404 also when the employee has no card."

OPERATIONS = (
    Operation("GET", CARD, get_card, ApiScope.READ, "Get the employee's current card and its link", "cards",
              returns=CardOut, description=_NO_CARD),
    Operation("POST", CARD, issue_card, ApiScope.WRITE, "Issue a card", "cards", body=CardIssue,
              body_required=False, status=201, returns=CardOut, errors=(409,),
              description="409 when the employee already has a card (rotate it) or has departed."),
    Operation("POST", CARD + "/rotate", rotate_card, ApiScope.WRITE, "Rotate: a fresh link, the old one ends",
              "cards", body=CardDays, body_required=False, returns=CardOut, errors=(409,)),
    Operation("POST", CARD + "/extend", extend_card, ApiScope.WRITE, "Extend the card's expiry", "cards",
              body=CardDays, body_required=False, returns=CardOut, errors=(409,)),
    Operation("POST", CARD + "/revoke", revoke_card, ApiScope.WRITE, "Revoke the card", "cards", returns=CardOut,
              errors=(409,), description="The link then shows the company's channels (410). 409 without a card."),
    Operation("GET", "/cards/expiring", expiring_cards, ApiScope.READ, "List the live links about to expire",
              "cards", query=ExpiringQuery, returns=list[CardOut],
              description="Soonest first; extend each with POST /employees/{employee_id}/card/extend. "
                          "`url` is null here: GET the employee's card for its link."),
    Operation("POST", "/cards/expiring/extend", extend_expiring, ApiScope.WRITE,
              "Extend every link about to expire", "cards", body=CardDays, body_required=False, returns=ExtendedOut,
              description="The links `GET /cards/expiring` lists (the company's notice), each to `days` from now; "
                          "a link already lasting longer is left as it is. One transaction, an audit row each."),
    Operation("GET", CARD + "/qr.png", qr_png, ApiScope.READ, "The card's QR code as PNG", "cards",
              media="image/png", description=_NO_CARD),
    Operation("GET", CARD + "/qr.svg", qr_svg, ApiScope.READ, "The card's QR code as SVG", "cards",
              media="image/svg+xml", description=_NO_CARD),
)
