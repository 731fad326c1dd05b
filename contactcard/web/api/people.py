"""``/api/v1/employees`` and their channels: the console's employee and channel use cases, for a token."""

from __future__ import annotations

import dataclasses

from ...models import ApiScope, EmployeeProfile, ValidationError
from .operations import Call, Operation
from .shapes import ChannelCreate, ChannelMove, ChannelOut, Departure, EmployeeCreate, EmployeeOut, EmployeeUpdate


async def list_employees(call: Call) -> list[EmployeeOut]:
    return [EmployeeOut.of(e) for e in await call.service.employees()]


async def get_employee(call: Call) -> EmployeeOut:
    return EmployeeOut.of(await call.service.find_employee(call.id("employee_id")))


async def create_employee(call: Call) -> EmployeeOut:
    body: EmployeeCreate = call.body
    return EmployeeOut.of(await call.service.add_employee(EmployeeProfile(**body.model_dump()), actor=call.actor))


async def update_employee(call: Call) -> EmployeeOut:
    body: EmployeeUpdate = call.body
    employee = await call.service.find_employee(call.id("employee_id"))
    profile = dataclasses.replace(employee.profile, **body.model_dump(exclude_none=True))
    return EmployeeOut.of(await call.service.edit_employee(employee.id, profile, actor=call.actor))


async def depart_employee(call: Call) -> EmployeeOut:
    body: Departure = call.body
    employee_id = call.id("employee_id")
    await call.service.find_employee(employee_id)  # an unknown employee is the path's 404 ...
    if body.successor_id is not None and await call.service.employee(body.successor_id) is None:
        raise ValidationError("the successor must be another active employee")  # ... an unknown successor is not
    return EmployeeOut.of(await call.service.depart(employee_id, body.successor_id, actor=call.actor))


async def list_channels(call: Call) -> list[ChannelOut]:
    return [ChannelOut.of(c) for c in await call.service.channels(call.id("employee_id"))]


async def add_channel(call: Call) -> ChannelOut:
    body: ChannelCreate = call.body
    channel = await call.service.add_channel(call.id("employee_id"), body.kind, body.target, body.label,
                                             actor=call.actor)
    return ChannelOut.of(channel)


async def remove_channel(call: Call) -> None:
    await call.service.remove_channel(call.id("channel_id"), call.id("employee_id"), actor=call.actor)


async def move_channel(call: Call) -> list[ChannelOut]:
    body: ChannelMove = call.body
    step = -1 if body.direction == "up" else 1
    moved = await call.service.move_channel(call.id("channel_id"), call.id("employee_id"), step, actor=call.actor)
    return [ChannelOut.of(c) for c in moved]


EMPLOYEE = "/employees/{employee_id}"
CHANNEL = EMPLOYEE + "/channels/{channel_id}"

OPERATIONS = (
    Operation("GET", "/employees", list_employees, ApiScope.READ, "List employees", "employees",
              returns=list[EmployeeOut]),
    Operation("POST", "/employees", create_employee, ApiScope.WRITE, "Add an employee", "employees",
              body=EmployeeCreate, status=201, returns=EmployeeOut, errors=(409,),
              description="The title and department are printed on the card: the policy refuses a personal "
                          "contact in them (422). An email already in use is 409."),
    Operation("GET", EMPLOYEE, get_employee, ApiScope.READ, "Get an employee", "employees", returns=EmployeeOut),
    Operation("PATCH", EMPLOYEE, update_employee, ApiScope.WRITE, "Change an employee's profile", "employees",
              body=EmployeeUpdate, returns=EmployeeOut, errors=(409,)),
    Operation("POST", EMPLOYEE + "/depart", depart_employee, ApiScope.WRITE, "Record a departure", "employees",
              body=Departure, body_required=False, returns=EmployeeOut, errors=(409,),
              description="Revokes the employee's link, which from then on introduces the successor (or the "
                          "company). 409 if they have already departed."),
    Operation("GET", EMPLOYEE + "/channels", list_channels, ApiScope.READ, "List an employee's channels",
              "channels", returns=list[ChannelOut]),
    Operation("POST", EMPLOYEE + "/channels", add_channel, ApiScope.WRITE, "Add a channel", "channels",
              body=ChannelCreate, status=201, returns=ChannelOut,
              description="The company's channel policy applies exactly as in the console: a target outside it "
                          "is refused with the console's message (422, type urn:contactcard:problem:policy)."),
    Operation("DELETE", CHANNEL, remove_channel, ApiScope.WRITE, "Remove a channel", "channels", status=204),
    Operation("POST", CHANNEL + "/move", move_channel, ApiScope.WRITE, "Move a channel up or down", "channels",
              body=ChannelMove, returns=list[ChannelOut],
              description="Answers the employee's channels in their new order."),
)
