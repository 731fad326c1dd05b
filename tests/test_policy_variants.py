"""The review's channel-policy attack list (tests/policy_variants.py), every row through the real policy."""

from __future__ import annotations

from collections import Counter

import pytest

from contactcard import policy
from contactcard.models import ChannelKind, Message, ValidationError

from .policy_variants import PRESETS, TEXT_VARIANTS, VARIANTS, TextVariant, Variant


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
