"""Template rendering with the request's language, brand and CSP nonce."""

from __future__ import annotations

import gettext
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


class Renderer:
    def __init__(self, templates_dir: Path, catalogues: Mapping[str, gettext.NullTranslations]) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["phone"] = display_phone
        self.catalogues = catalogues

    def language(self, request: Request) -> str:
        return i18n.negotiate(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language", ""),
        )

    def translator(self, request: Request) -> i18n.Translator:
        return i18n.Translator(self.catalogues, self.language(request))

    def page(self, request: Request, name: str, context: Mapping[str, Any], *, status: int = 200,
             company: Company | None = None, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        t = self.translator(request)
        brand_bg, brand_fg = button_colors(company.brand_color if company else "#1f2937")
        html = self.env.get_template(name).render(
            _=t.gettext,
            lang=t.lang,
            nonce=request.scope.get("state", {}).get("csp_nonce", ""),
            brand_bg=brand_bg,
            brand_fg=brand_fg,
            company=company,
            company_label=(company.name_en if t.lang == "en" and company.name_en else company.name) if company else "",
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
        chosen = request.query_params.get("lang")
        if chosen in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", httponly=True)
        response.headers["Content-Language"] = t.lang
        response.headers.setdefault("Vary", "Accept-Language, Cookie")
        return response
