"""Couple pages of the hot-date lotteries: the list, a lottery (window, seed hash;
after the draw the seed and the order), the application form, an application
(codes to enter, result, withdraw). Same use cases as the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.db.tables import Slot
from scheduler.domain.identity import ID_TYPES
from scheduler.domain.lottery import MAX_PREFERENCES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar import lottery_days
from scheduler.usecases.lottery import apply as lottery_apply
from scheduler.web.locale import request_locale
from scheduler.web.pages.common import (
    FORM_ERROR,
    SMS_LIMIT,
    error_messages,
    render,
    text,
    token_cookie,
    token_of,
)
from scheduler.web.pages.couple_forms import PARTY_FORM_FIELDS, code_errors, party_input

FORM_FIELDS = (*PARTY_FORM_FIELDS, "preferences")


def _base(lottery_id: int) -> str:
    return f"/lotteries/{lottery_id}"


async def _starts(view: dict[str, Any]) -> list[str]:
    """Every slot start of the date at the lottery's offices (the time choices)."""
    rows = await Slot.select(Slot.start_at, Slot.office.timezone).where(
        Slot.office.code.is_in(view["offices"] or [""])
        & (Slot.day == date.fromisoformat(view["date"]))
        & (Slot.service == view["service"])
    )
    return sorted(
        {r["start_at"].astimezone(ZoneInfo(r["office.timezone"])).strftime("%H:%M") for r in rows}
    )


def _input(values: dict[str, str], locale: str) -> lottery_apply.ApplicationInput:
    prefs = [
        lottery_apply.PreferenceInput(values[f"office_{i}"], values[f"start_{i}"] or None)
        for i in range(1, MAX_PREFERENCES + 1)
        if values[f"office_{i}"]
    ]
    return lottery_apply.ApplicationInput(
        party_a=party_input(values, "a"),
        party_b=party_input(values, "b"),
        preferences=prefs,
        locale=locale,
    )


class LotteryPages(Controller):
    path = "/lotteries"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return render(request, "lottery_list.html", lotteries=await lottery_days.upcoming(utcnow()))

    @get("/{lottery_id:int}")
    async def one(self, request: Request[Any, Any, Any], lottery_id: FromPath[int]) -> Template:
        view = await lottery_days.view_of(lottery_id)
        return render(request, "lottery.html", lottery=view, open=_is_open(view))

    @get("/{lottery_id:int}/apply")
    async def form(self, request: Request[Any, Any, Any], lottery_id: FromPath[int]) -> Template:
        return await self._form(request, lottery_id, {}, {})

    async def _form(
        self,
        request: Request[Any, Any, Any],
        lottery_id: int,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        view = await lottery_days.view_of(lottery_id)
        return render(
            request,
            "lottery_form.html",
            status=status,
            here=f"{_base(lottery_id)}/apply",
            lottery=view,
            open=_is_open(view),
            starts=await _starts(view),
            values=values,
            errors=errors,
            id_types=ID_TYPES,
            max_preferences=MAX_PREFERENCES,
        )

    @post("/{lottery_id:int}/apply", middleware=[SMS_LIMIT])
    async def submit(
        self,
        request: Request[Any, Any, Any],
        state: State,
        lottery_id: FromPath[int],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        keys = list(PARTY_FORM_FIELDS)
        keys += [f"{k}_{i}" for i in range(1, MAX_PREFERENCES + 1) for k in ("office", "start")]
        values = {key: text(data, key) for key in keys}
        locale = request_locale(request)
        try:
            body = await lottery_apply.apply(
                lottery_id, _input(values, locale), now=utcnow(), settings=state.settings
            )
        except DomainError as exc:
            errors = error_messages(exc, locale, FORM_FIELDS)
            return await self._form(request, lottery_id, values, errors, status=exc.status)
        reference = body["reference"]
        return Redirect(
            f"{_base(lottery_id)}/applications/{reference}",
            status_code=303,
            cookies=[token_cookie(reference, body["manage_token"], state.settings)],
        )

    @get("/{lottery_id:int}/applications/{reference:str}")
    async def application(
        self,
        request: Request[Any, Any, Any],
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
    ) -> Template:
        token = token_of(request, reference)
        app = await lottery_apply.view(lottery_id, reference, token, state.settings)
        return await _application_page(request, app, token)

    @post("/{lottery_id:int}/applications/{reference:str}/confirm")
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        party = text(data, "party")
        try:
            await lottery_apply.confirm(
                lottery_id,
                reference,
                party,
                text(data, "code"),
                now=utcnow(),
                settings=state.settings,
            )
        except DomainError as exc:
            token = token_of(request, reference, text(data, "token"))
            app = await lottery_apply.view(lottery_id, reference, token, state.settings)
            errors = code_errors(exc, party, request_locale(request))
            return await _application_page(request, app, token, status=exc.status, errors=errors)
        return Redirect(f"{_base(lottery_id)}/applications/{reference}", status_code=303)

    @post("/{lottery_id:int}/applications/{reference:str}/withdraw")
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        token = token_of(request, reference, text(data, "token"))
        try:
            await lottery_apply.withdraw(
                lottery_id, reference, token, now=utcnow(), settings=state.settings
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            app = await lottery_apply.view(lottery_id, reference, token, state.settings)
            message = error_messages(exc, request_locale(request))[FORM_ERROR]
            return await _application_page(
                request, app, token, status=exc.status, errors={FORM_ERROR: message}
            )
        return Redirect(f"{_base(lottery_id)}/applications/{reference}", status_code=303)


def _is_open(view: dict[str, Any]) -> bool:
    now = utcnow()
    return view["status"] == "scheduled" and datetime.fromisoformat(
        view["opens_at"]
    ) <= now < datetime.fromisoformat(view["closes_at"])


async def _application_page(
    request: Request[Any, Any, Any],
    app: dict[str, Any],
    token: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Template:
    view = await lottery_days.view_of(app["lottery"])
    return render(
        request,
        "lottery_application.html",
        status=status,
        here=f"{_base(app['lottery'])}/applications/{app['reference']}",
        app=app,
        lottery=view,
        open=_is_open(view),
        token=token,
        errors=errors or {},
    )
