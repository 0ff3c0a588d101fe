"""Pages for a couple's own access (issue 14): a partner confirming on their own
phone (/c: reference + own number + code, a short path typed by hand, as mainland
texts carry no links) and a lost manage code recovered by SMS (/manage/recover).
Every "no" reads the same, whatever was wrong: nothing tells which bookings or
numbers exist."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Template

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.booking import access as couple_access
from scheduler.web.locale import request_locale
from scheduler.web.pages.common import FORM_ERROR, SMS_LIMIT, qr_svg, render, text, token_cookie


def _no(request: Request[Any, Any, Any], key: str) -> dict[str, str]:
    return {FORM_ERROR: translate(request_locale(request), key)}


class SelfConfirmPages(Controller):
    path = "/c"
    include_in_schema = False

    @get("/")
    async def form(self, request: Request[Any, Any, Any], ref: FromQuery[str] = "") -> Template:
        return render(request, "confirm_self.html", values={"reference": ref}, errors={})

    @post("/", middleware=[SMS_LIMIT])
    async def confirm(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Template:
        values = {k: text(data, k) for k in ("reference", "phone", "code")}
        try:
            appt = await couple_access.confirm_by_phone(
                values["reference"],
                values["phone"],
                values["code"],
                now=utcnow(),
                settings=state.settings,
            )
        except DomainError as exc:
            key = "couples.self.not_found" if exc.slug == "not-found" else exc.key
            errors = {FORM_ERROR: translate(request_locale(request), key, **exc.params)}
            # The code is never echoed back; reference and number are the person's own.
            values.pop("code")
            return render(
                request,
                "confirm_self.html",
                status=exc.status,
                here="/c",
                values=values,
                errors=errors,
            )
        return render(request, "confirm_self_done.html", here="/c", appt=appt)

    @post("/resend", middleware=[SMS_LIMIT])
    async def resend(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Template:
        values = {k: text(data, k) for k in ("reference", "phone")}
        await couple_access.resend_to_phone(
            values["reference"], values["phone"], now=utcnow(), settings=state.settings
        )
        return render(
            request, "confirm_self.html", here="/c", values=values, errors={}, notice="resent"
        )


class RecoverPages(Controller):
    path = "/manage/recover"
    include_in_schema = False

    @get("/")
    async def form(self, request: Request[Any, Any, Any], ref: FromQuery[str] = "") -> Template:
        return render(request, "recover.html", step="phone", values={"reference": ref}, errors={})

    @post("/", middleware=[SMS_LIMIT])
    async def send(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Template:
        values = {k: text(data, k) for k in ("reference", "phone")}
        await couple_access.start_recovery(
            values["reference"], values["phone"], now=utcnow(), settings=state.settings
        )
        return render(
            request, "recover.html", here="/manage/recover", step="code", values=values, errors={}
        )

    @post("/code", middleware=[SMS_LIMIT])
    async def finish(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Response[Any]:
        values = {k: text(data, k) for k in ("reference", "phone", "code")}
        try:
            appt = await couple_access.finish_recovery(
                values["reference"],
                values["phone"],
                values["code"],
                now=utcnow(),
                settings=state.settings,
            )
        except DomainError as exc:
            values.pop("code")
            return render(
                request,
                "recover.html",
                status=exc.status,
                here="/manage/recover",
                step="code",
                values=values,
                errors=_no(request, "couples.recover.not_found"),
            )
        page = render(
            request,
            "recovered.html",
            here="/manage",
            appt=appt,
            token=appt["manage_token"],
            qr=qr_svg(request_locale(request), appt["reference"]),
        )
        page.set_cookie(token_cookie(appt["reference"], appt["manage_token"], state.settings))
        return page
