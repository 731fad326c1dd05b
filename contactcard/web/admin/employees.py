"""Employees in the admin console: the list, create, the employee's page (profile, channels, photo, card,
departure, sign-in invitation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ... import images, reports
from ...accounts import Accounts
from ...models import ContactcardError, Employee, EmployeeStatus, NotFound, User, ValidationError
from ...service import Service
from ..session import accounts, csrf_form, require_admin
from . import channels
from .base import MAX_UPLOAD_BODY, back, field, page, path_id, refusal_status, service_of, upload_image

PROFILE_FIELDS = ("family_name", "given_name", "family_kana", "given_kana", "latin_name", "email", "title",
                  "department")


async def get_employee(service: Service, employee_id: int) -> Employee:
    try:
        return await service.find_employee(employee_id)
    except NotFound:
        raise HTTPException(404) from None


def _profile(form: FormData) -> dict[str, str]:
    return {name: field(form, name) for name in PROFILE_FIELDS}


async def employee_list(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employees = await service.employees()
    live_cards = await service.live_cards()
    live = {employee.id: employee.id in live_cards for employee in employees}
    return await page(request, user, "admin/employees.html", {"employees": employees, "live": live})


async def new_form(request: Request) -> Response:
    user = await require_admin(request)
    return await page(request, user, "admin/employee_new.html", {"values": {}, "error": None})


async def create(request: Request) -> Response:
    user = await require_admin(request)
    form = await csrf_form(request)
    values = _profile(form)
    try:
        employee = await service_of(request).add_employee(**values, actor=user.email)
    except ContactcardError as err:
        return await page(request, user, "admin/employee_new.html", {"values": values, "error": str(err)},
                          status=400)
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


async def detail(request: Request) -> Response:
    user = await require_admin(request)
    employee = await get_employee(service_of(request), path_id(request))
    return await detail_page(request, user, employee)


async def edit(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    form = await csrf_form(request)
    values = _profile(form)
    try:
        await service.edit_employee(employee.id, **values, actor=user.email)
    except ContactcardError as err:
        return await detail_page(request, user, employee, errors={"profile": str(err)}, values=values, status=400)
    return back(f"/admin/employees/{employee.id}", "saved")


async def channel_add(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    form = await csrf_form(request)
    try:
        await channels.add(service, employee.id, form, user)
    except ContactcardError as err:
        values = {"kind": field(form, "kind"), "target": field(form, "target"), "label": field(form, "label")}
        return await detail_page(request, user, employee, errors={"channel": str(err)}, values=values, status=400)
    return back(f"/admin/employees/{employee.id}", "channel_added")


async def channel_remove(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    channel_id = path_id(request, "channel")
    await csrf_form(request)
    await channels.remove(service, employee.id, channel_id, user)
    return back(f"/admin/employees/{employee.id}", "channel_removed")


async def channel_move(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    channel_id = path_id(request, "channel")
    form = await csrf_form(request)
    try:
        await channels.move(service, employee.id, channel_id, form, user)
    except ValidationError as err:
        return await detail_page(request, user, employee, errors={"channel": str(err)}, status=400)
    return back(f"/admin/employees/{employee.id}", "channel_moved")


async def photo(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    jpeg, problem = await upload_image(request, images.photo_jpeg)
    if jpeg is None:
        assert problem is not None
        return await detail_page(request, user, employee, errors={"photo": problem}, status=refusal_status(problem))
    await service.set_photo(employee.id, jpeg, actor=user.email)
    return back(f"/admin/employees/{employee.id}", "photo")


async def depart(request: Request) -> Response:
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    form = await csrf_form(request)
    raw = field(form, "successor")
    successor: int | None = None
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            return await detail_page(request, user, employee, errors={"depart": "choose a successor from the list"},
                                     status=400)
        successor = int(raw)
    try:
        await service.depart(employee.id, successor, actor=user.email)
    except ContactcardError as err:
        return await detail_page(request, user, employee, errors={"depart": str(err)}, status=400)
    return back(f"/admin/employees/{employee.id}", "departed")


async def invite(request: Request) -> Response:
    """A one-time sign-in link for the employee, shown once on the page (never stored in clear)."""
    user = await require_admin(request)
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    await csrf_form(request)
    accts: Accounts = accounts(request)
    try:
        link = await accts.invite_employee(employee.id, actor=user.email)
    except ContactcardError as err:
        return await detail_page(request, user, employee, errors={"invite": str(err)}, status=400)
    return await detail_page(request, user, employee, invitation=link)


routes: list[BaseRoute] = [
    Route("/employees", employee_list, methods=["GET"]),
    Route("/employees/new", new_form, methods=["GET"]),
    Route("/employees/new", create, methods=["POST"]),
    Route("/employees/{id}", detail, methods=["GET"]),
    Route("/employees/{id}", edit, methods=["POST"]),
    Route("/employees/{id}/channels", channel_add, methods=["POST"]),
    Route("/employees/{id}/channels/{channel}/remove", channel_remove, methods=["POST"]),
    Route("/employees/{id}/channels/{channel}/move", channel_move, methods=["POST"]),
    Route("/employees/{id}/photo", photo, methods=["POST"], max_body_size=MAX_UPLOAD_BODY),
    Route("/employees/{id}/depart", depart, methods=["POST"]),
    Route("/employees/{id}/invite", invite, methods=["POST"]),
]
