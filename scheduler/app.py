"""create_app(): routes, templates, error mapping and the lifespan (database, jobs)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from scheduler.db.engine import close_engine, open_engine
from scheduler.jobs.worker import running_jobs
from scheduler.kernel.i18n import LOCALES, translate
from scheduler.notify.live import make_plugin
from scheduler.notify.texts import TEMPLATES_DIR
from scheduler.observability.logs import logging_config
from scheduler.settings import Settings, get_settings
from scheduler.web.api.admin import AdminApi
from scheduler.web.api.admin_offices import AdminOfficesApi
from scheduler.web.api.couple_access import CoupleAccessApi
from scheduler.web.api.desk import DeskApi
from scheduler.web.api.holidays import HolidaysApi
from scheduler.web.api.lottery import LOTTERY_API, LotteryApplyApi
from scheduler.web.api.policies import PoliciesApi
from scheduler.web.api.precheck import PrecheckApi, PrecheckStaffApi
from scheduler.web.api.public import PublicApi, SmsSendingApi
from scheduler.web.api.reports import ReportsApi
from scheduler.web.api.rules import RulesApi
from scheduler.web.api.schemas import AvailabilityOut
from scheduler.web.api.waitlist import WaitlistApi, WaitlistJoinApi
from scheduler.web.board import board_events, board_page
from scheduler.web.bounds import bounded_path_ids
from scheduler.web.calendar_cache import CalendarCache, json_encoder
from scheduler.web.edge import edge
from scheduler.web.ops import OPS_ROUTES
from scheduler.web.pages import PAGE_ROUTES
from scheduler.web.problems import EXCEPTION_HANDLERS
from scheduler.web.ratelimit import refused_again, sms_rate_limit
from scheduler.web.staff.routes import STAFF_ROUTER
from scheduler.web.webhooks import twilio_status

log = logging.getLogger("scheduler")


def _template_globals(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals.update(t=translate, LOCALES=LOCALES)


def _request_metrics() -> PrometheusConfig:
    # Paths grouped by route template: a reference in the path must not become a label.
    return PrometheusConfig(
        app_name="registry",
        prefix="registry",
        group_path=True,
        exclude=["^/metrics", "^/health/", "^/static/"],
        exclude_unhandled_paths=True,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        opened = await open_engine(settings)
        try:
            if settings.jobs_enabled:
                async with running_jobs(settings):
                    yield
            else:
                yield
        finally:
            if opened:
                await close_engine()

    state: dict[str, Any] = {
        "settings": settings,
        "calendar": CalendarCache(
            settings.availability_cache_seconds,
            json_encoder(lambda value: msgspec.convert(value, AvailabilityOut)),
        ),
    }
    app = Litestar(
        route_handlers=[
            PublicApi,
            PrecheckApi,
            PrecheckStaffApi,
            twilio_status,
            board_page,
            board_events,
            DeskApi,
            AdminApi,
            PoliciesApi,
            RulesApi,
            HolidaysApi,
            AdminOfficesApi,
            ReportsApi,
            Router(
                "/",
                route_handlers=[SmsSendingApi, WaitlistJoinApi, CoupleAccessApi],
                middleware=[sms_rate_limit(settings, "api")],
            ),
            WaitlistApi,
            *LOTTERY_API,
            Router(
                "/",
                route_handlers=[LotteryApplyApi],
                middleware=[sms_rate_limit(settings, "lottery")],
            ),
            *OPS_ROUTES,
            *PAGE_ROUTES,
            STAFF_ROUTER,
            create_static_files_router(path="/static", directories=[TEMPLATES_DIR / "static"]),
        ],
        lifespan=[lifespan],
        middleware=[refused_again(settings), _request_metrics().middleware, bounded_path_ids],
        # Without it Litestar installs its own handlers and formatter over ours: no
        # masking, no request ids (a full phone number was printed in JSON logs).
        logging_config=logging_config(settings.log_level, settings.log_format),
        state=State(state),
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(
            directory=TEMPLATES_DIR,
            engine=JinjaTemplateEngine,
            engine_callback=_template_globals,
        ),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_samesite="lax",
            cookie_secure=settings.public_base_url.startswith("https://"),
            # Patterns are regular expressions searched anywhere in the path: anchor them.
            exclude=["^/api/", "^/webhooks/", "^/schema"],
        ),
        openapi_config=OpenAPIConfig(
            title="Marriage registry appointments",
            version="1.0.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        plugins=[make_plugin(settings)],
        debug=False,
    )
    # Outside Litestar's own exception layer, so that 404s, 405s and every other
    # answer carry the request id and security headers (scheduler/web/edge.py).
    app.asgi_handler = edge(app.asgi_handler)
    return app
