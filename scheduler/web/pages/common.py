"""What every couple-facing page shares: rendering in the request's language, the
manage-token cookie, form fields and dates in words."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import segno
from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Template

from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES, translate
from scheduler.kernel.security import normalize_reference
from scheduler.settings import Settings
from scheduler.web.locale import request_locale
from scheduler.web.ratelimit import page_rate_limit

LANG_COOKIE = "lang"
_YEAR = 365 * 24 * 3600
# Long enough to manage a booking made at the far end of the booking window.
_TOKEN_COOKIE_AGE = 45 * 24 * 3600
FORM_ERROR = "_form"
# On the page POSTs that text the couple (book, move): the per-client limit, with
# the settings of the app serving them (PAGE_ROUTES is a constant app.py includes,
# declared before create_app receives its settings).
SMS_LIMIT = page_rate_limit()
# Statuses after both parties confirmed: the couple sees the confirmation page.
BOOKED = ("confirmed", "checked_in", "called", "serving", "completed")


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    here: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A page in the request's language. ``here`` is the GET address the language
    switcher reloads (after a POST there is none, so the handler names one)."""
    locale = request_locale(request)
    cookies = []
    lang = request.query_params.get("lang")
    if lang in LOCALES and request.cookies.get(LANG_COOKIE) != lang:
        cookies.append(Cookie(key=LANG_COOKIE, value=str(lang), max_age=_YEAR, samesite="lax"))
    return Template(
        template_name=f"pages/{template}",
        context={
            "locale": locale,
            "here": here if here is not None else current_address(request),
            "date_label": partial(date_label, locale),
            "datetime_label": partial(datetime_label, locale),
            **context,
        },
        status_code=status,
        cookies=cookies,
        headers=headers,
    )


def current_address(request: Request[Any, Any, Any]) -> str:
    """This GET page's path and query without ``lang`` (the switcher adds its own)."""
    if request.method != "GET":
        return "/"
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + ("?" + urlencode(pairs) if pairs else "")


def token_cookie_name(reference: str) -> str:
    return "mt-" + normalize_reference(reference)


def token_of(
    request: Request[Any, Any, Any], reference: str, supplied: str | None = None
) -> str | None:
    """The manage token: from the form (POSTs carry it in a field, never in the URL),
    else from the cookie set when the booking was made or first opened here."""
    return supplied or request.cookies.get(token_cookie_name(reference))


def token_cookie(reference: str, token: str, settings: Settings) -> Cookie:
    # HttpOnly and path-wide: pages after a redirect find the token without it
    # ever travelling in a URL the server generates.
    return Cookie(
        key=token_cookie_name(reference),
        value=token,
        max_age=_TOKEN_COOKIE_AGE,
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https://"),
    )


def text(form: dict[str, Any], key: str) -> str:
    """One form field as a string ('' if missing; the first if sent twice)."""
    value = form.get(key, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def error_messages(exc: DomainError, locale: str, fields: tuple[str, ...] = ()) -> dict[str, str]:
    """The translated message keyed by the form field it belongs to (or the whole form)."""
    field = exc.field if exc.field in fields else FORM_ERROR
    return {field: translate(locale, exc.key, **exc.params)}


def field_errors(exc: DomainError, locale: str, fields: tuple[str, ...]) -> dict[str, str]:
    """Every problem of a refusal keyed where the form shows it: a known field's
    input, a party's fieldset ("party_a", also for problems about a party field
    the form does not have, e.g. eligibility), or the summary on top (``_form``)."""
    shown: dict[str, str] = {}
    for err in exc.errors or [exc]:
        field = err.field or ""
        if field in fields:
            key = field
        elif field.split(".")[0] in PARTY_KEYS:
            key = field.split(".")[0]
        else:
            key = FORM_ERROR
        message = translate(locale, err.key, **err.params)
        shown[key] = f"{shown[key]} {message}" if key in shown else message
    return shown


PARTY_KEYS = ("party_a", "party_b")


def date_label(locale: str, value: str | date) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return translate(
        locale,
        "page.date.long",
        year=day.year,
        month=day.month,
        day=day.day,
        name=translate(locale, f"page.month.name.{day.month}"),
        weekday=translate(locale, f"page.weekday.{day.weekday()}"),
    )


def datetime_label(locale: str, iso: str | None) -> str:
    """An ISO timestamp already in the office's zone, as the couple reads it there."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    return f"{date_label(locale, moment.date())} {moment:%H:%M}"


def qr_svg(locale: str, reference: str) -> str:
    """The reference as a QR code, inline SVG (nothing fetched from elsewhere), for
    the counter's scanner at check-in."""
    title = translate(locale, "page.done.qr", reference=reference)
    return str(
        segno.make_qr(reference, error="m").svg_inline(
            scale=6, border=2, title=title, omitsize=True
        )
    )


def appointment_page(
    request: Request[Any, Any, Any],
    appt: dict[str, Any],
    token: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """One appointment as its state calls for: codes to enter while held, the
    confirmation once booked, otherwise its status on the manage page."""
    if appt["status"] == "pending_confirmation":
        template = "codes.html"
    elif appt["status"] in BOOKED:
        template = "done.html"
    else:
        template = "manage.html"
    return render(
        request,
        template,
        status=status,
        appt=appt,
        token=token,
        qr=qr_svg(request_locale(request), appt["reference"]),
        errors=errors or {},
        **context,
    )
