"""Link tokens and the company channel policy: pure functions, checked directly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from contactcard import policy, tokens
from contactcard.config import load_secret
from contactcard.models import ChannelKind, PolicyError, ValidationError
from contactcard.service import DEFAULT_COMPANY

ACME = DEFAULT_COMPANY.__class__(
    **{**DEFAULT_COMPANY.__dict__, "allow_email_domains": ("acme.co.jp",), "allow_phone_prefixes": ("+813",),
       "allow_line_ids": ("@acme",), "allow_line_works_domains": ("acme",)}
)


def test_token_is_short_url_safe_and_carries_120_bits() -> None:
    secret = os.urandom(32)
    seen = {tokens.token_for(secret, tokens.new_nonce()) for _ in range(1000)}
    assert len(seen) == 1000
    for token in seen:
        assert tokens.is_well_formed(token) and len(token) == 20
    assert tokens.TOKEN_BYTES * 8 >= 96


def test_token_needs_the_secret_and_verifies_in_constant_time() -> None:
    secret, nonce = os.urandom(32), tokens.new_nonce()
    token = tokens.token_for(secret, nonce)
    assert tokens.verify(secret, nonce, token)
    assert not tokens.verify(os.urandom(32), nonce, token), "the nonce alone (a DB copy) does not give the token"
    assert not tokens.verify(secret, nonce, token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_visitor_key_is_stable_within_a_day_and_rotates_with_it() -> None:
    keys = tokens.DailyPseudonyms()
    today = keys.key("2026-11-28", "203.0.113.9", "UA")
    assert today == keys.key("2026-11-28", "203.0.113.9", "UA")
    assert today != keys.key("2026-11-28", "203.0.113.10", "UA") != keys.key("2026-11-28", "203.0.113.9", "UA2")
    assert today != keys.key("2026-11-29", "203.0.113.9", "UA")
    assert keys.key("2026-11-28", "203.0.113.9", "UA") != today, "a day's key, once dropped, never comes back"
    assert today != tokens.DailyPseudonyms().key("2026-11-28", "203.0.113.9", "UA"), "the key is per process"


def test_secret_file_is_created_owner_only_and_refused_when_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "s" / "secret.key"
    first = load_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == first
    path.chmod(0o644)
    with pytest.raises(ValidationError, match="readable by others"):
        load_secret(path)


@pytest.mark.parametrize("target", ["tel:03-1234-5678", "tel:+81-3-1234-5678", "03 1234 5678", "+81312345678"])
def test_phone_prefix_compares_on_e164(target: str) -> None:
    cleaned = policy.clean_target(ChannelKind.PHONE, target)
    assert cleaned == "tel:+81312345678"
    policy.check_policy(ACME, ChannelKind.PHONE, cleaned)


@pytest.mark.parametrize(("kind", "target"), [
    (ChannelKind.EMAIL, "mailto:taro.private@gmail.com"),
    (ChannelKind.PHONE, "tel:090-1234-5678"),
    (ChannelKind.LINE, "https://line.me/ti/p/~taro_private"),
    (ChannelKind.LINE, "https://line.me/R/ti/p/@someone-else"),
    (ChannelKind.LINE, "https://lin.ee/abcd"),
    (ChannelKind.CUSTOM, "https://line.me/ti/p/~taro_private"),
    (ChannelKind.LINE_WORKS, "https://works.do/R/ti/p/taro@gmail"),
    (ChannelKind.WHATSAPP, "https://wa.me/819012345678"),
    (ChannelKind.TEAMS, "https://teams.microsoft.com/l/chat/0/0?users=taro@gmail.com"),
])
def test_private_targets_are_refused_by_the_policy(kind: ChannelKind, target: str) -> None:
    with pytest.raises(PolicyError):
        policy.check_policy(ACME, kind, policy.clean_target(kind, target))


@pytest.mark.parametrize(("kind", "target"), [
    (ChannelKind.EMAIL, "mailto:taro@acme.co.jp"),
    (ChannelKind.LINE, "https://line.me/R/ti/p/@acme"),
    (ChannelKind.LINE, "https://line.me/R/ti/p/%40acme"),
    (ChannelKind.LINE_WORKS, "https://works.do/R/ti/p/taro@acme"),
    (ChannelKind.BOOKING, "https://booking.example.jp/acme/taro"),
    (ChannelKind.TEAMS, "https://teams.microsoft.com/l/chat/0/0?users=taro@acme.co.jp"),
])
def test_company_targets_pass_the_policy(kind: ChannelKind, target: str) -> None:
    policy.check_policy(ACME, kind, policy.clean_target(kind, target))


@pytest.mark.parametrize(("kind", "target"), [
    (ChannelKind.WEB, "javascript:alert(1)"),
    (ChannelKind.CUSTOM, "data:text/html,<script>alert(1)</script>"),
    (ChannelKind.WEB, "http://example.co.jp/"),
    (ChannelKind.WEB, "https://user:pw@example.co.jp/"),
    (ChannelKind.WEB, "https://exa mple.co.jp/"),
    (ChannelKind.LINE, "https://evil.example/R/ti/p/@acme"),
    (ChannelKind.EMAIL, "not-an-email"),
    (ChannelKind.PHONE, "tel:call-me"),
    (ChannelKind.WEB, ""),
    (ChannelKind.WEB, "https://example.co.jp/" + "a" * 3000),
])
def test_malformed_targets_are_refused_with_a_message(kind: ChannelKind, target: str) -> None:
    with pytest.raises(ValidationError) as err:
        policy.clean_target(kind, target)
    assert str(err.value) and "\n" not in str(err.value)


def test_without_a_policy_any_well_formed_target_is_accepted() -> None:
    assert not DEFAULT_COMPANY.has_policy
    policy.check_policy(DEFAULT_COMPANY, ChannelKind.EMAIL, "mailto:anyone@gmail.com")


@pytest.mark.parametrize(("target", "shown"), [
    ("tel:+81312345678", "03-1234-5678"),
    ("tel:+819012345678", "090-1234-5678"),
    ("tel:+81120123456", "0120-123-456"),
    ("tel:+81452223333", "0452223333"),
    ("tel:+14155550100", "+14155550100"),
])
def test_phone_numbers_display_in_japanese_national_form(target: str, shown: str) -> None:
    assert policy.display_phone(target) == shown
