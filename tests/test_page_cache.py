"""Rendered pages reused while the objects they show are the same (web.render.Renderer pins)."""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from contactcard.web.render import Renderer


@dataclass(frozen=True)
class Shown:
    """An object a page shows; counts how often it is compared by value."""

    name: str
    compared: list[int] = field(default_factory=list, compare=False)

    def __eq__(self, other: object) -> bool:
        self.compared.append(1)
        return isinstance(other, Shown) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def request(nonce: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/c/x", "query_string": b"", "root_path": "",
                    "headers": [(b"accept-language", b"en")], "state": {"csp_nonce": nonce}})


def test_a_page_pinned_to_an_equal_copy_is_reused_then_matched_by_identity(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ tick() }}{{ shown.name }} <script nonce=\"{{ nonce }}\"></script>")
    renders: list[int] = []

    def tick() -> str:
        renders.append(1)
        return ""

    renderer = Renderer(tmp_path, {"en": gettext.NullTranslations(), "ja": gettext.NullTranslations()})

    def html(shown: Shown, nonce: str) -> str:
        text, _ = renderer.html(request(nonce), "page.html", {"shown": shown, "tick": tick}, company=None,
                                pins=(shown,))
        return text

    first, copy = Shown("Taro"), Shown("Taro")
    assert html(first, "n1") == 'Taro <script nonce="n1"></script>'
    assert html(first, "n2") == 'Taro <script nonce="n2"></script>' and len(renders) == 1
    # Two requests that missed the service's cache at once each built a copy; the service keeps one of them.
    assert html(copy, "n3") == 'Taro <script nonce="n3"></script>' and len(renders) == 1, "reused"
    compared = len(copy.compared) + len(first.compared)
    for nonce in ("n4", "n5", "n6"):
        assert html(copy, nonce) == f'Taro <script nonce="{nonce}"></script>'
    assert len(copy.compared) + len(first.compared) == compared, "pinned to the copy: matched by identity"
    assert len(renders) == 1
    assert html(Shown("Hanako"), "n7") == 'Hanako <script nonce="n7"></script>' and len(renders) == 2, "changed"
