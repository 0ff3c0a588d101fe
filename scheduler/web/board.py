"""The hall's display board: a page and its server-sent event stream (public, read-only:
it shows ticket labels and counters, nothing personal)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import ServerSentEvent, Template

from scheduler.kernel.clock import utcnow
from scheduler.notify.live import board_stream
from scheduler.usecases.calendar.slots import office_by_code
from scheduler.usecases.desk import queue
from scheduler.web.locale import request_locale


@get("/offices/{office:str}/board", include_in_schema=False)
async def board_page(request: Request[Any, Any, Any], office: FromPath[str]) -> Template:
    row = await office_by_code(office)
    minutes = request.app.state.settings.queue_minutes_per_couple
    state = await queue.board(row.id, utcnow(), minutes)
    return Template(
        template_name="board/board.html",
        context={"locale": request_locale(request), "office": row, "state": state},
    )


@get("/offices/{office:str}/board/stream", tags=["board"], summary="Board updates (SSE)")
async def board_events(
    office: FromPath[str], channels: NamedDependency[ChannelsPlugin], state: State
) -> ServerSentEvent:
    office_id = (await office_by_code(office)).id
    minutes = state.settings.queue_minutes_per_couple

    async def read_state() -> dict[str, Any]:
        return await queue.board(office_id, utcnow(), minutes)

    return ServerSentEvent(board_stream(office_id, channels, read_state))
