"""Staff pages: sign in and out, the staff home, and the SMS that did not arrive.

Every form carries the CSRF token; every page but the login page needs a signed-in
member (anonymous visitors are sent to the login page and back afterwards).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.kernel.clock import utcnow
from scheduler.kernel.i18n import LOCALES, translate
from scheduler.usecases.staff import accounts as staff
from scheduler.usecases.staff.accounts import LoginRefused, StaffMember
from scheduler.web.auth import (
    COOKIE,
    LOGIN_LIMIT,
    LOGIN_PAGE,
    client_ip,
    expired_cookie,
    login_redirect,
    provide_staff,
    require_staff,
    safe_next,
    session_cookie,
)
from scheduler.web.locale import request_locale

SMS_PAGE = "/staff/sms"
SMS_NOTICES = ("resent", "already-resent", "called")
_YEAR = 365 * 24 * 3600


def render(
    request: Request[Any, Any, Any], template: str, *, status: int = 200, **context: Any
) -> Template:
    """A staff page in the request's language (``?lang=`` is remembered in a cookie)."""
    locale = request_locale(request)
    cookies = []
    lang = request.query_params.get("lang")
    if lang in LOCALES and request.cookies.get("lang") != lang:
        cookies.append(Cookie(key="lang", value=str(lang), max_age=_YEAR, samesite="lax"))
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    here = request.url.path + ("?" + urlencode(pairs) if pairs else "")
    return Template(
        template_name=f"staff/{template}",
        context={
            "locale": locale,
            "here": here if request.method == "GET" else None,
            # Set by the staff routes' before_request hook (scheduler/web/staff/routes.py).
            "holiday_missing": request.state.get("holiday_missing", []),
            **context,
        },
        status_code=status,
        cookies=cookies,
    )


def field(form: dict[str, Any], key: str) -> str:
    value = form.get(key, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def label(locale: str, prefix: str, name: str) -> str:
    """A translated name of a code (SMS template, status), or the code itself."""
    key = f"{prefix}.{name}"
    text = translate(locale, key)
    return name if text == key else text


class StaffLoginPages(Controller):
    path = "/staff"
    include_in_schema = False

    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Template:
        return render(request, "login.html", next=safe_next(next), username="", error=None)

    @post("/login", middleware=[LOGIN_LIMIT])
    async def login(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Response[Any]:
        username, target = field(data, "username"), safe_next(field(data, "next"))
        try:
            signed = await staff.login(
                username,
                field(data, "password"),
                kind="cookie",
                ip=client_ip(request),
                now=utcnow(),
                settings=request.app.state.settings,
            )
        except LoginRefused as exc:
            minutes = -(-exc.retry_after // 60)
            error = translate(request_locale(request), f"error.{exc.slug}", minutes=minutes)
            return render(
                request,
                "login.html",
                status=exc.status,
                next=target,
                username=username,
                error=error,
            )
        cookie = session_cookie(signed.token, state.settings)
        return Redirect(target, status_code=303, cookies=[cookie])

    @post("/logout")
    async def logout(self, request: Request[Any, Any, Any], state: State) -> Redirect:
        token = request.cookies.get(COOKIE)
        if token:
            await staff.logout(token, "cookie", ip=client_ip(request), now=utcnow())
        return Redirect(LOGIN_PAGE, status_code=303, cookies=[expired_cookie(state.settings)])


class StaffPages(Controller):
    path = "/staff"
    include_in_schema = False
    guards = [require_staff]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/")
    async def home(
        self, request: Request[Any, Any, Any], member: NamedDependency[StaffMember]
    ) -> Template:
        return render(request, "home.html", member=member)

    @get("/sms")
    async def sms(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        messages = await staff.sms_failures(
            member, now=utcnow(), default_tz=request.app.state.settings.default_timezone
        )
        return render(
            request,
            "sms.html",
            member=member,
            messages=messages,
            label=label,
            notice=notice if notice in SMS_NOTICES else None,
        )

    @post("/sms/{message_id:int}/resend")
    async def resend(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        message_id: FromPath[int],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Redirect:
        attempt = int(field(data, "attempt")) if field(data, "attempt").isdigit() else 0
        queued = await staff.resend_sms(
            member, message_id, attempt, ip=client_ip(request), now=utcnow()
        )
        notice = "resent" if queued is not None else "already-resent"
        return Redirect(SMS_PAGE, status_code=303, query_params={"notice": notice})

    @post("/sms/{message_id:int}/called")
    async def called(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        message_id: FromPath[int],
    ) -> Redirect:
        await staff.mark_called(member, message_id, ip=client_ip(request), now=utcnow())
        return Redirect(SMS_PAGE, status_code=303, query_params={"notice": "called"})
