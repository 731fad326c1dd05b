"""The review's channel-policy attack list (tests/policy_variants.py), every row through the real policy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from urllib.parse import urlsplit

import pytest

from contactcard import policy
from contactcard.models import ChannelKind, Message, ValidationError

from .policy_variants import MORE_DISGUISES, PRESETS, TEXT_VARIANTS, VARIANTS, TextVariant, Variant

# Node's URL class is a WHATWG URL parser (with UTS-46), as a phone's browser is: the hostname it opens for each URL.
_WHATWG_HOSTS = """let d = ''; process.stdin.on('data', c => d += c).on('end', () => process.stdout.write(
  JSON.stringify(JSON.parse(d).map(u => { try { return new URL(u).hostname; } catch (e) { return null; } }))));"""


def verdict(variant: Variant) -> tuple[str, str]:
    """("accept", stored target) or ("refuse", the one-line reason)."""
    kind = ChannelKind(variant.kind)
    try:
        cleaned = policy.clean_target(kind, variant.target)
        policy.check_policy(PRESETS[variant.preset], kind, cleaned)
    except ValidationError as err:
        return "refuse", str(err)
    return "accept", cleaned


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_policy_variant(variant: Variant) -> None:
    outcome, detail = verdict(variant)
    assert outcome == variant.verdict, f"{variant.note}: {detail}"
    if outcome == "refuse":
        assert detail and "\n" not in detail, "a refusal is one line saying why"
    elif variant.stored:
        assert detail == variant.stored, "an accepted target is stored as the browser reads it"
        assert verdict(Variant(variant.kind, detail, variant.preset, "", "", "")) == ("accept", detail), \
            "the stored form is a fixed point: checking it again gives the same verdict and form"


def test_the_table_covers_the_review() -> None:
    findings = Counter(v.finding for v in VARIANTS)
    assert len(VARIANTS) >= 455
    assert findings["1"] >= 27 and findings["2"] >= 2 and findings["5"] >= 12 and findings["12"] >= 24
    assert sum(1 for v in VARIANTS if v.note.startswith("personal mobile")) == 46
    assert len({v.id for v in VARIANTS}) == len(VARIANTS), "no row is listed twice"


@pytest.mark.parametrize("variant", TEXT_VARIANTS, ids=lambda v: v.id)
def test_free_text_variant(variant: TextVariant) -> None:
    try:
        policy.check_text(PRESETS[variant.preset], Message("label"), variant.text)
    except ValidationError as err:
        assert variant.verdict == "refuse", f"{variant.note}: {err}"
        assert "\n" not in str(err) and str(err).startswith("the label must not carry")
    else:
        assert variant.verdict == "accept", f"{variant.note}: accepted"


def _browser_hosts(targets: list[str]) -> list[str | None]:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CONTACTCARD_REQUIRE_NODE") == "1":
            pytest.fail("CONTACTCARD_REQUIRE_NODE=1 but node is missing")
        pytest.skip("node is missing; CONTACTCARD_REQUIRE_NODE=1 fails")
    done = subprocess.run([node, "-e", _WHATWG_HOSTS], input=json.dumps(targets), capture_output=True, text=True,
                          timeout=60, check=True)
    hosts: list[str | None] = json.loads(done.stdout)
    return hosts


def test_the_policy_reads_every_host_as_a_browser_does() -> None:
    """Finding 1's root cause, with an independent parser as the oracle. Every https row of the table: a target the
    policy accepts is stored with the very host a browser opens for what was typed; every disguise of a messenger's
    host (the review's and MORE_DISGUISES) is one a browser opens as that host, so each refused row is a real
    bypass attempt, not a typo no phone would follow."""
    rows = [v for v in VARIANTS if v.target.lower().startswith("https://")]
    hosts = _browser_hosts([v.target for v in rows])
    disguised = 0
    for variant, browser_host in zip(rows, hosts, strict=True):
        outcome, detail = verdict(variant)
        if outcome == "accept":
            assert browser_host is not None and browser_host.rstrip(".") == urlsplit(detail).hostname, variant.id
        if variant.note.startswith("disguised: "):
            assert browser_host is not None and browser_host.rstrip(".") in (
                "line.me", "wa.me", "api.whatsapp.com", "web.whatsapp.com", "bit.ly", "t.me"), variant.id
            disguised += 1
    assert disguised >= len(MORE_DISGUISES) * 7 * 3
