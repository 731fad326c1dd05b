"""Template rendering with the request's language, brand and CSP nonce."""

from __future__ import annotations

import gettext
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .. import i18n
from ..brand import button_colors
from ..models import Company
from ..policy import display_phone

LANG_COOKIE = "lang"
PAGE_CACHE_SIZE = 2048


class Renderer:
    def __init__(self, templates_dir: Path, catalogues: Mapping[str, gettext.NullTranslations]) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # compiled once: no stat() of template files on the hot path
        )
        self.env.filters["phone"] = display_phone
        self.catalogues = catalogues
        # Rendered pages keyed by (template, language, path, status), each pinned to the very objects it was
        # rendered from (the service's cached company, card, employee, channels; the console's user and CSRF
        # token): when the service drops its cache those objects are replaced, the pins no longer match (nor
        # compare equal) and the page is rendered afresh. The CSP
        # nonce, the only per-request part, is a random placeholder swapped in per response.
        self._pages: dict[tuple[str, str, str, int], tuple[tuple[object, ...], str]] = {}
        self._nonce_mark = "n" + secrets.token_hex(12)
        self._fresh_prefix = "f" + secrets.token_hex(12)  # placeholders of ``fresh`` values (see ``page``)
        self._languages: dict[tuple[bytes, str | None, str, bool], str] = {}

    def _fresh_mark(self, key: str) -> str:
        return f"{self._fresh_prefix}-{key}"

    def language(self, request: Request, *, customer: bool = False) -> str:
        """The customer's pages are offered in every language we have, the rest only in the console's."""
        # Memoised on the raw inputs: the same few header combinations come back on every scan.
        headers = request.headers
        raw = (request.scope.get("query_string", b""), headers.get("cookie"), headers.get("accept-language", ""),
               customer)
        lang = self._languages.get(raw)
        if lang is None:
            lang = i18n.negotiate(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), raw[2],
                                  i18n.LANGUAGES if customer else i18n.CONSOLE_LANGUAGES)
            if len(self._languages) >= PAGE_CACHE_SIZE:
                self._languages.clear()
            self._languages[raw] = lang
        return lang

    def translator(self, request: Request, *, customer: bool = False) -> i18n.Translator:
        return i18n.Translator(self.catalogues, self.language(request, customer=customer))

    def translator_for(self, lang: str) -> i18n.Translator:
        return i18n.Translator(self.catalogues, lang)

    def page(self, request: Request, name: str, context: Mapping[str, Any], *, status: int = 200,
             company: Company | None = None, headers: Mapping[str, str] | None = None,
             pins: tuple[object, ...] | None = None, fresh: Mapping[str, str] | None = None) -> HTMLResponse:
        """Render ``name``; with ``pins`` (every object the page shows), reuse the page rendered from them.

        ``fresh`` values (e.g. a form's signed token) differ per response: the template gets a placeholder for
        each, which the page, rendered or reused, has replaced by the value.
        """
        if fresh:
            context = {**context, **{key: self._fresh_mark(key) for key in fresh}}
        html, lang = self.html(request, name, context, company=company, pins=pins, status=status)
        for key, value in (fresh or {}).items():
            html = html.replace(self._fresh_mark(key), value)
        all_headers = {"Vary": "Accept-Language, Cookie", **(headers or {}), "Content-Language": lang}
        response = HTMLResponse(html, status_code=status, headers=all_headers)
        if request.scope.get("query_string") and (chosen := request.query_params.get("lang")) == lang:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    def html(self, request: Request, name: str, context: Mapping[str, Any], *, company: Company | None,
             pins: tuple[object, ...] | None = None, status: int = 200) -> tuple[str, str]:
        """The page's HTML and its language."""
        t = self.translator(request, customer=is_customer_page(name))
        nonce = request.scope.get("state", {}).get("csp_nonce", "")
        key = (name, t.lang, request.scope["path"], status)
        cached = self._pages.get(key) if pins is not None else None
        if cached is not None and pins is not None and len(cached[0]) == len(pins):
            if all(a is b for a, b in zip(cached[0], pins, strict=True)):
                return cached[1].replace(self._nonce_mark, nonce), t.lang
            if cached[0] == pins:
                # Equal copies (two requests that missed the service's cache at once each built one): pin the
                # page to these, so the next request, which gets the copy the service kept, matches by identity
                # and not by comparing every field of the company, card and employee again on each scan.
                self._pages[key] = (pins, cached[1])
                return cached[1].replace(self._nonce_mark, nonce), t.lang
        html = self._render(t, name, context, company, request.url.path,
                            self._nonce_mark if pins is not None else nonce)
        if pins is not None:
            if len(self._pages) >= PAGE_CACHE_SIZE:
                self._pages.clear()
            self._pages[key] = (pins, html)
            html = html.replace(self._nonce_mark, nonce)
        return html, t.lang

    def _render(self, t: i18n.Translator, name: str, context: Mapping[str, Any], company: Company | None,
                path: str, nonce: str) -> str:
        brand_bg, brand_fg = button_colors(company.brand_color if company else "#1f2937")
        return self.env.get_template(name).render(
            _=t.gettext,
            lang=t.lang,
            nonce=nonce,
            brand_bg=brand_bg,
            brand_fg=brand_fg,
            company=company,
            company_label=company.name_for(t.lang) if company else "",
            person_label=lambda employee: employee.name_for(t.lang),
            languages=i18n.NAMES,
            og_locale=i18n.OG_LOCALES.get(t.lang, "ja_JP"),
            path=path,
            **context,
        )


def is_customer_page(template: str) -> bool:
    """The pages a customer sees (the card and its 404/410 pages, errors), offered in every language."""
    return template.startswith("card/") or template == "error.html"
