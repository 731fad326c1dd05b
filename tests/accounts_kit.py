"""Helpers for tests that sign in: make users, read CSRF tokens, sign in through the real forms.

The harness talks plain http to the in-process app while the settings' base URL is https, so cookies come
back marked Secure and httpx would not return them; ``keep_cookies`` copies them into the jar by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx2 as httpx
from starlette.testclient import TestClient

from contactcard.accounts import Accounts
from contactcard.models import EmployeeProfile, IssuedCard, User

from .conftest import Harness

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@example.co.jp"
EMPLOYEE_EMAIL = "taro@example.co.jp"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass(frozen=True)
class Person:
    user: User
    email: str
    password: str


def accounts(h: Harness) -> Accounts:
    return h.ctx.accounts


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found[1]


def keep_cookies(client: TestClient, response: httpx.Response) -> None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        client.cookies.delete(name)
        if "max-age=0" not in header.lower() and value not in ("", '""'):
            client.cookies.set(name, value)


def get(client: TestClient, url: str) -> httpx.Response:
    r = client.get(url)
    keep_cookies(client, r)
    return r


def post_form(client: TestClient, page_url: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Load the page, take its CSRF token, post the form."""
    page = get(client, page_url)
    r = client.post(action, data={"csrf": csrf_of(page.text), **data})
    keep_cookies(client, r)
    return r


def login(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    client.cookies.clear()
    return post_form(client, "/login", "/login", {"email": email, "password": password})


def make_admin(h: Harness, email: str = ADMIN_EMAIL) -> Person:
    link = h.run(accounts(h).create_admin, email, password=PASSWORD, actor="cli")
    assert link is None
    user = h.run(accounts(h).user_by_email, email)
    assert user is not None
    return Person(user, email, PASSWORD)


def make_employee(h: Harness, email: str = EMPLOYEE_EMAIL) -> Person:
    """A user for an existing employee, password set through the invitation link."""
    employee = h.run(h.service.find_employee, email)
    link = h.run(accounts(h).invite_employee, employee.id, actor="cli")
    user = h.run(accounts(h).accept_link, link.token, PASSWORD)
    return Person(user, email, PASSWORD)


def seed_two(h: Harness) -> tuple[IssuedCard, IssuedCard]:
    """The harness seed (taro) plus hanako with her own card."""
    taro = h.seed()
    h.run(h.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤", given_name="花子"),
          actor="cli")
    hanako = h.run(h.service.issue_card, "hanako@example.co.jp", actor="cli")
    return taro, hanako
