"""SCIM 2.0 (RFC 7643/7644) for provisioning employees from the company's identity provider: what we publish
about ourselves, and how a SCIM User maps to an employee. Pure: no Starlette, no SQL (``web/scim.py`` serves it;
``provisioning`` stores it through the service). scim2-models builds our User model from the very schemas we
publish, as a client does, so what we announce and what we accept cannot drift apart.

What we publish is what we keep:

- core User: ``userName`` (unique), ``name`` (formatted, familyName, givenName), ``displayName``, ``title``,
  ``active``, ``emails`` (value, type, primary; required: a card needs the work email), and ``externalId``;
- the enterprise extension's ``department`` and ``manager`` (value, $ref): the manager becomes the successor
  when the user is deactivated;
- our extension ``PHONETIC`` with the readings (furigana) of the family and given names.

Any other attribute a provider sends (phone numbers, addresses, ...) is dropped, not stored: a card never shows
a private contact, so we keep none. Entra ID's deviations are read as Entra means them (``POLICY``; the manager
sent as a bare id string, see ``normalise_patch``).

The mapping: email from ``emails`` (type work, else the primary, else the first); family and given names from
``name`` (without a family name: displayName, then the email's local part); the readings from ``PHONETIC``;
``title``; ``department``. For an employee the provider wrote, what it wrote is kept as a JSON document and shown
back, with the console's later changes to those fields laid over it (``current``); an employee it never wrote is
shown from the employee row, with userName = email.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from scim2_models import (
    Attribute,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    InvalidValueException,
    Meta,
    Mutability,
    Patch,
    Required,
    Resource,
    ResourceType,
    Returned,
    Schema,
    ScimFilter,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
    User,
)

from . import policy
from .models import Employee, EmployeeProfile, EmployeeStatus, ScimIdentity

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PHONETIC = "urn:contactcard:scim:schemas:extension:phonetic:1.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"
MAX_RESULTS = 200  # the most resources one list answer carries (count is clamped to it)
MAX_USER_NAME = 254

# Entra ID sends "remove" with a value naming what to remove and patches filters that match nothing (it expects
# the entry to be created); attributes we do not keep are dropped rather than refused, since every provider
# sends some by default (phone numbers, addresses) and refusing them would stop provisioning altogether.
POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore, remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)

_CORE_KEPT = {"userName", "name", "displayName", "title", "active", "emails"}
_NAME_KEPT = ("formatted", "familyName", "givenName")


def _core_schema() -> Schema:
    attributes = []
    for attribute in User.to_schema().attributes or []:
        if attribute.name not in _CORE_KEPT:
            continue
        subs = attribute.sub_attributes
        if attribute.name == "name":
            subs = [a for a in subs or [] if a.name in _NAME_KEPT]
        elif attribute.name == "emails":  # required, and each entry must carry its address
            subs = [a.model_copy(update={"required": Required(a.name == "value")})
                    for a in subs or [] if a.name in ("value", "type", "primary")]
            attribute = attribute.model_copy(update={"required": Required.true})
        attributes.append(attribute.model_copy(update={"sub_attributes": subs}))
    return User.to_schema().model_copy(update={"attributes": attributes})


def _enterprise_schema() -> Schema:
    attributes = []
    for attribute in EnterpriseUser.to_schema().attributes or []:
        if attribute.name == "department":
            attributes.append(attribute)
        elif attribute.name == "manager":  # Entra sends the id alone: $ref is optional, displayName not kept
            subs = [a.model_copy(update={"required": Required(a.name == "value")})
                    for a in attribute.sub_attributes or [] if a.name in ("value", "$ref")]
            attributes.append(attribute.model_copy(update={"sub_attributes": subs}))
    return EnterpriseUser.to_schema().model_copy(update={"attributes": attributes})


def _reading(name: str, what: str) -> Attribute:
    return Attribute(name=name, type=Attribute.Type.string, multi_valued=False, required=Required.false,
                     case_exact=CaseExact.false, mutability=Mutability.read_write, returned=Returned.default,
                     uniqueness=Uniqueness.none, description=f"The reading (furigana) of the {what}, in katakana.")


def _phonetic_schema() -> Schema:
    return Schema(id=PHONETIC, name="PhoneticName",
                  description="How the user's name is read (Japanese furigana), printed on the card and its vCard.",
                  attributes=[_reading("familyName", "family name"), _reading("givenName", "given name")])


USER_SCHEMAS: tuple[Schema, ...] = (_core_schema(), _enterprise_schema(), _phonetic_schema())
RESOURCE_TYPE = ResourceType.model_validate({
    "id": "User", "name": "User", "endpoint": "/Users", "description": "An employee, who gets a contact card",
    "schema": CORE, "schemaExtensions": [{"schema": ENTERPRISE, "required": False},
                                         {"schema": PHONETIC, "required": False}],
})
CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True), bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS), change_password=ChangePassword(supported=False),
    sort=Sort(supported=False), etag=ETag(supported=False),
    authentication_schemes=[AuthenticationScheme(
        type=AuthenticationScheme.Type.oauthbearertoken, name="Bearer token", primary=True,
        description="Authorization: Bearer <token>, a token printed by `contactcard scim token create`")],
)
# /Schemas also lists the schemas of the discovery resources themselves (RFC 7644 section 4)
ALL_SCHEMAS: tuple[Schema, ...] = (*USER_SCHEMAS, ServiceProviderConfig.to_schema(), ResourceType.to_schema(),
                                   Schema.to_schema())
PROVIDER = ScimProvider.from_discovery(USER_SCHEMAS, [RESOURCE_TYPE], CONFIG, POLICY)
USER = cast("type[Resource[Any]]", PROVIDER.model_for("User"))


@dataclass(frozen=True)
class Wanted:
    """What one SCIM write asks for, read from the resource it leaves."""

    profile: EmployeeProfile  # latin_name is not SCIM's: the service keeps the employee's
    active: bool
    manager_id: int | None  # the manager's SCIM id when it names an employee (ids are employee ids)
    user_name: str
    document: str  # the resource as written, JSON, without id and meta


def parse_user(payload: Any, context: Context) -> Resource[Any]:
    """A request's User (creation or replacement); pydantic's ValidationError when it is not one."""
    return USER.model_validate(payload, scim_ctx=context, scim_policy=POLICY)


def wanted(resource: Resource[Any]) -> Wanted:
    """What the resource asks of the employee; InvalidValueException when it cannot be an employee."""
    data = _dump(resource)
    user_name = str(data.get("userName") or "").strip()
    if not user_name or len(user_name) > MAX_USER_NAME:
        raise InvalidValueException(detail=f"userName is required, at most {MAX_USER_NAME} characters")
    email = _work_email(data.get("emails") or [])
    if email is None or len(email) > MAX_USER_NAME or not policy.is_email(email):
        raise InvalidValueException(detail="emails must hold the employee's work email address")
    name = data.get("name") or {}
    family = str(name.get("familyName") or data.get("displayName") or email.split("@")[0])
    enterprise = data.get(ENTERPRISE) or {}
    reading = data.get(PHONETIC) or {}
    manager = str((enterprise.get("manager") or {}).get("value") or "")
    profile = EmployeeProfile(
        email=email, family_name=family, given_name=str(name.get("givenName") or ""),
        family_kana=str(reading.get("familyName") or ""), given_kana=str(reading.get("givenName") or ""),
        title=str(data.get("title") or ""), department=str(enterprise.get("department") or ""),
    )
    return Wanted(profile=profile, active=data.get("active") is not False,
                  manager_id=int(manager) if manager.isdigit() and len(manager) < 19 else None,
                  user_name=user_name, document=document(resource))


def current(employee: Employee, identity: ScimIdentity | None) -> Resource[Any]:
    """The employee as SCIM shows it now, without id and meta (see ``shown``)."""
    active = employee.status is EmployeeStatus.ACTIVE
    if identity is None:
        return USER.model_validate(_from_employee(employee, active), scim_policy=POLICY)
    data: dict[str, Any] = json.loads(identity.document)
    # what the console changed since the provider last wrote it, wherever the provider had set a value
    _overlay(data.get("name"), {"familyName": employee.family_name, "givenName": employee.given_name})
    _overlay(data, {"title": employee.title})
    _overlay(data.get(ENTERPRISE), {"department": employee.department})
    _overlay(data.get(PHONETIC), {"familyName": employee.family_kana, "givenName": employee.given_kana})
    if "active" in data or not active:  # a departed employee always shows as inactive
        data["active"] = active
    return USER.model_validate(data, scim_policy=POLICY)


def shown(employee: Employee, identity: ScimIdentity | None, base_url: str) -> Resource[Any]:
    """The resource with its id (the employee's) and meta."""
    resource = current(employee, identity)
    resource.id = str(employee.id)
    resource.meta = Meta(resource_type="User", location=f"{base_url}/scim/v2/Users/{employee.id}",
                         created=employee.created_at if identity is None else identity.created_at,
                         last_modified=employee.created_at if identity is None else identity.updated_at)
    return resource


def parse_filter(text: str) -> ScimFilter[Any]:
    """A ``filter`` parameter; InvalidFilterException when it is not one."""
    return ScimFilter[USER](text)  # type: ignore[valid-type]


def normalise_patch(payload: Any) -> Any:
    """Entra ID sends the enterprise manager as a bare id (``"value": "42"``) where RFC 7643 has
    ``{"value": "42"}``, and may name the manager it removes (``"value": [{"value": "42"}]``): the manager is one
    value, so its removal needs no selector."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        return payload
    for operation in payload["Operations"]:
        if not isinstance(operation, dict):
            continue
        path, value = str(operation.get("path") or ""), operation.get("value")
        if path.lower() in (f"{ENTERPRISE}:manager".lower(), "manager"):
            if str(operation.get("op") or "").lower() == "remove":
                operation.pop("value", None)
            elif isinstance(value, str):
                operation["value"] = {"value": value}
        elif not path and isinstance(value, dict):
            key = next((k for k in value if k.lower() == f"{ENTERPRISE}:manager".lower()), None)
            if key is not None and isinstance(value[key], str):
                value[key] = {"value": value[key]}
    return payload


def document(resource: Resource[Any]) -> str:
    """What is stored of a resource: its JSON without id and meta."""
    return json.dumps(_dump(resource), ensure_ascii=False, sort_keys=True)


def _dump(resource: Resource[Any]) -> dict[str, Any]:
    data = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=POLICY)
    data.pop("id", None)
    data.pop("meta", None)
    return data


def _work_email(emails: list[dict[str, Any]]) -> str | None:
    with_value = [e for e in emails if isinstance(e, dict) and e.get("value")]
    chosen = (next((e for e in with_value if e.get("type") == "work"), None)
              or next((e for e in with_value if e.get("primary")), None)
              or next(iter(with_value), None))
    return None if chosen is None else str(chosen["value"]).strip()


def _overlay(target: Any, values: dict[str, str]) -> None:
    if not isinstance(target, dict):
        return
    for key, value in values.items():
        if key in target:
            if value:
                target[key] = value
            else:
                del target[key]


def _from_employee(employee: Employee, active: bool) -> dict[str, Any]:
    name = {k: v for k, v in (("familyName", employee.family_name), ("givenName", employee.given_name)) if v}
    data: dict[str, Any] = {
        "schemas": [CORE], "userName": employee.email, "name": name, "displayName": employee.display_name,
        "emails": [{"value": employee.email, "type": "work", "primary": True}], "active": active,
    }
    if employee.title:
        data["title"] = employee.title
    if employee.department:
        data["schemas"].append(ENTERPRISE)
        data[ENTERPRISE] = {"department": employee.department}
    readings = {k: v for k, v in (("familyName", employee.family_kana), ("givenName", employee.given_kana)) if v}
    if readings:
        data["schemas"].append(PHONETIC)
        data[PHONETIC] = readings
    return data
