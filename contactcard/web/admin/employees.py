"""Employees in the admin console: the list, create, the employee's page (profile, channels, photo, card,
departure, sign-in invitation)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import images, reports
from ...models import ContactcardError, Employee, EmployeeProfile, EmployeeStatus, NotFound, User, ValidationError
from ...service import Service
from ..forms import FormRoute
from ..session import accounts, require_admin
from . import channels
from .base import (
    MAX_UPLOAD_BODY,
    UPLOAD_FORM_BYTES,
    admin_get,
    admin_post,
    back,
    converted,
    field,
    page,
    path_id,
    refusal_status,
    said,
    service_of,
)

PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(EmployeeProfile))


async def get_employee(service: Service, employee_id: int) -> Employee:
    try:
        return await service.find_employee(employee_id)
    except NotFound:
        raise HTTPException(404) from None


def _profile(form: FormData) -> EmployeeProfile:
    return EmployeeProfile(**{name: field(form, name) for name in PROFILE_FIELDS})


async def employee_list(request: Request, user: User) -> Response:
    service = service_of(request)
    employees = await service.employees()
    live_cards = await service.live_cards()
    live = {employee.id: employee.id in live_cards for employee in employees}
    return await page(request, user, "admin/employees.html", {"employees": employees, "live": live})


async def new_form(request: Request, user: User) -> Response:
    return await page(request, user, "admin/employee_new.html", {"values": {}, "error": None})


async def create(request: Request, user: User, form: FormData) -> Response:
    profile = _profile(form)
    try:
        employee = await service_of(request).add_employee(profile, actor=user.email)
    except ContactcardError as err:
        return await page(request, user, "admin/employee_new.html",
                          {"values": dataclasses.asdict(profile), "error": said(request, err)}, status=400)
    return back(f"/admin/employees/{employee.id}", "created")


async def detail_page(request: Request, user: User, employee: Employee, *, errors: Mapping[str, str] | None = None,
                      values: Mapping[str, str] | None = None, invitation: Any = None,
                      status: int = 200) -> Response:
    """The employee's page; a failed form re-renders it with its message next to that form."""
    service = service_of(request)
    now = service.clock()
    current = await service.current_card(employee.id)
    others = [e for e in await service.employees() if e.id != employee.id and e.status is EmployeeStatus.ACTIVE]
    successor = None if employee.successor_id is None else await service.employee(employee.successor_id)
    login = await accounts(request).user_for_employee(employee.id)
    scans = await service.scan_log(reports.ScanFilter(employee_id=employee.id), limit=10)
    return await page(request, user, "admin/employee.html", {
        "employee": employee,
        "channels": await service.channels(employee.id),
        "kinds": channels.KINDS,
        "card": current,
        "card_live": current is not None and current.card.is_live(now),
        "history": [c.card for c in await service.cards(employee.id)],
        "others": others,
        "successor": successor,
        "login": login,
        "invitation": invitation,
        "scans": scans,
        "errors": dict(errors or {}),
        "values": dict(values or {}),
        "default_days": (await service.company()).default_card_days,
    }, status=status)


@dataclass(frozen=True)
class OnEmployee:
    """What a form on an employee's page acts as and on: the admin, and the employee from the URL."""

    user: User
    employee: Employee


async def admin_on_employee(request: Request) -> OnEmployee:
    """The guard of the employee page's forms: an admin (303/403 otherwise), then the employee (404)."""
    user = await require_admin(request)
    return OnEmployee(user, await get_employee(service_of(request), path_id(request)))


EmployeeAction = Callable[[Request, User, Employee, FormData], Awaitable[str]]
CONFIRMED = "yes"  # the ``confirm`` field of a confirmation page's form


def employee_post(path: str, action: EmployeeAction, *, errors: str, keep: tuple[str, ...] = (),
                  upload: bool = False, confirm: str | None = None) -> FormRoute[OnEmployee]:
    """A form on the employee's page. ``action(request, user, employee, form)`` returns the ``?done=`` code
    for the redirect back (303). A ContactcardError it raises re-renders the page (400) with the message
    beside the ``errors`` form and the ``keep`` fields refilled; an image refused (``upload``) shows the
    reason there too, with 413 for one too large. With ``confirm`` (an action of ``confirmation_page``), a
    form without ``confirm=yes`` does nothing and answers that action's confirmation page."""

    async def handler(request: Request, on: OnEmployee, form: FormData) -> Response:
        try:
            if confirm is not None and field(form, "confirm") != CONFIRMED:
                return await confirmation_page(request, on.user, on.employee, confirm, field(form, "successor"))
            done = await action(request, on.user, on.employee, form)
        except images.ImageRejected as err:
            return await refused(request, on, err.code)
        except ContactcardError as err:
            return await detail_page(request, on.user, on.employee, errors={errors: said(request, err)},
                                     values={name: field(form, name) for name in keep}, status=400)
        return back(f"/admin/employees/{on.employee.id}", done)

    async def refused(request: Request, on: OnEmployee, code: str) -> Response:
        return await detail_page(request, on.user, on.employee, errors={errors: code}, status=refusal_status(code))

    if not upload:
        return FormRoute(path, handler, guard=admin_on_employee, name=action.__name__)
    return FormRoute(path, handler, guard=admin_on_employee, upload=UPLOAD_FORM_BYTES, refused=refused,
                     max_body_size=MAX_UPLOAD_BODY, name=action.__name__)


async def confirmation_page(request: Request, user: User, employee: Employee, action: str,
                            raw_successor: str = "") -> Response:
    """What ``action`` ("rotate", "revoke" or "depart") will do to this employee's printed cards, in plain words,
    with the one form that does it. Nothing to confirm (no card, already departed) is a 404; a successor not in
    the list is a ValidationError."""
    service = service_of(request)
    card = await service.current_card(employee.id)
    successor = None
    if action == "depart":
        if employee.status is EmployeeStatus.DEPARTED:
            raise HTTPException(404)
        successor = None if not raw_successor else await _successor(service, employee, raw_successor)
    elif card is None:
        raise HTTPException(404)
    return await page(request, user, "admin/confirm.html", {
        "employee": employee, "action": action, "card": card, "successor": successor,
        "card_live": card is not None and card.card.is_live(service.clock()),
    })


async def _successor(service: Service, employee: Employee, raw: str) -> Employee:
    """The successor chosen in the departure form: another active employee, or ValidationError."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        found = await service.employee(int(raw))
        if found is not None and found.id != employee.id and found.status is EmployeeStatus.ACTIVE:
            return found
    raise ValidationError("choose a successor from the list")


def confirmation_get(path: str, action: str, *, errors: str) -> BaseRoute:
    """The GET of a confirmed action's URL: its confirmation page (a bad choice shows the employee's page with
    the message beside the ``errors`` form, 400)."""
    async def confirmation(request: Request, user: User) -> Response:
        employee = await get_employee(service_of(request), path_id(request))
        successor = request.query_params.get("successor", "")
        try:
            return await confirmation_page(request, user, employee, action, successor)
        except ContactcardError as err:
            return await detail_page(request, user, employee, errors={errors: said(request, err)}, status=400)

    confirmation.__name__ = f"confirm_{action}"
    return admin_get(path, confirmation)


async def detail(request: Request, user: User) -> Response:
    employee = await get_employee(service_of(request), path_id(request))
    return await detail_page(request, user, employee)


async def edit(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await service_of(request).edit_employee(employee.id, _profile(form), actor=user.email)
    return "saved"


async def channel_add(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await channels.add(service_of(request), employee.id, form, user)
    return "channel_added"


async def channel_remove(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await channels.remove(service_of(request), employee.id, path_id(request, "channel"), user)
    return "channel_removed"


async def channel_move(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await channels.move(service_of(request), employee.id, path_id(request, "channel"), form, user)
    return "channel_moved"


async def photo(request: Request, user: User, employee: Employee, form: FormData) -> str:
    jpeg = await converted(form, images.photo_jpeg)
    await service_of(request).set_photo(employee.id, jpeg, actor=user.email)
    return "photo"


async def depart(request: Request, user: User, employee: Employee, form: FormData) -> str:
    raw = field(form, "successor")
    service = service_of(request)
    successor = None if not raw else await _successor(service, employee, raw)
    await service.depart(employee.id, None if successor is None else successor.id, actor=user.email)
    return "departed"


async def successor(request: Request, user: User, employee: Employee, form: FormData) -> str:
    """A departed employee's successor, chosen afterwards (e.g. when SCIM deactivated them)."""
    raw = field(form, "successor")
    if raw and (not raw.isdigit() or len(raw) > 12):
        raise ValidationError("choose a successor from the list")
    await service_of(request).name_successor(employee.id, int(raw) if raw else None, actor=user.email)
    return "saved"


async def invite(request: Request, on: OnEmployee, form: FormData) -> Response:
    """A one-time sign-in link for the employee, shown once on the page (never stored in clear)."""
    try:
        link = await accounts(request).invite_employee(on.employee.id, actor=on.user.email)
    except ContactcardError as err:
        return await detail_page(request, on.user, on.employee, errors={"invite": said(request, err)}, status=400)
    return await detail_page(request, on.user, on.employee, invitation=link)


routes: list[BaseRoute] = [
    admin_get("/employees", employee_list),
    admin_get("/employees/new", new_form),
    admin_post("/employees/new", create),
    admin_get("/employees/{id}", detail),
    employee_post("/employees/{id}", edit, errors="profile", keep=PROFILE_FIELDS),
    employee_post("/employees/{id}/channels", channel_add, errors="channel", keep=("kind", "target", "label")),
    employee_post("/employees/{id}/channels/{channel}/remove", channel_remove, errors="channel"),
    employee_post("/employees/{id}/channels/{channel}/move", channel_move, errors="channel"),
    employee_post("/employees/{id}/photo", photo, errors="photo", upload=True),
    confirmation_get("/employees/{id}/depart", "depart", errors="depart"),
    employee_post("/employees/{id}/depart", depart, errors="depart", confirm="depart"),
    employee_post("/employees/{id}/successor", successor, errors="successor"),
    FormRoute("/employees/{id}/invite", invite, guard=admin_on_employee),
]
