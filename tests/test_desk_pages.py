"""The clerk's desk pages, driven like a browser without JavaScript: sign in, the day's
list with an audited reveal, check-in, calling to a counter, missed and re-queued
tickets; anonymous visitors go to the login page, another office's pages are 404."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.audit import NamedActor, entries
from scheduler.db.queue_tables import QueueTicket
from scheduler.db.tables import Appointment, Office, OfficeDay, OnsiteWindow, Slot
from scheduler.domain.calendar import onsite_window_start
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.desk import queue
from scheduler.usecases.staff.accounts import create_staff
from tests.helpers import make_office, person, sms_codes

PASSWORD = "desk-pages-long-password"


async def confirmed_today(office: str = "GZ-TH", count: int = 1) -> list[dict[str, Any]]:
    """``count`` confirmed couples whose slot started a few minutes ago, today.

    Check-in needs an appointment of today within the check-in window, but booking
    refuses a slot that has started (409 date-closed), and today may be a holiday
    without generated slots. So the test inserts a slot of its own starting just
    now (plus its day and hall-hour counters if missing) and books it through the
    use cases (hold, both confirmations) with ``now`` an hour before the slot: the
    rows are exactly those of a couple who booked earlier.
    """
    row = await Office.select().where(Office.code == office).first()
    assert row is not None
    tz = ZoneInfo(row["timezone"])
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0).astimezone(UTC)
    start = max(now - timedelta(minutes=5), midnight)
    day = start.astimezone(tz).date()
    inserted = await Slot.insert(
        Slot(
            office=row["id"],
            service="marriage",
            day=day,
            start_at=start,
            end_at=start + timedelta(minutes=30),
            capacity=count + 10,
        )
    ).returning(Slot.id)
    await OfficeDay.insert(
        OfficeDay(office=row["id"], day=day, capacity=row["day_cap"])
    ).on_conflict(action="DO NOTHING")
    await OnsiteWindow.insert(
        OnsiteWindow(
            office=row["id"],
            window_start=onsite_window_start(start, tz),
            capacity=row["onsite_cap"],
        )
    ).on_conflict(action="DO NOTHING")
    booked_at = start - timedelta(hours=1)
    couples = []
    for _ in range(count):
        a, b = person(), person()
        held = await booking.hold(
            booking.BookingInput(
                slot_id=inserted[0]["id"],
                service="marriage",
                party_a=booking.PartyInput(**a),
                party_b=booking.PartyInput(**b),
            ),
            now=booked_at,
            settings=get_settings(),
        )
        codes = await sms_codes(held["reference"])
        for role in ("a", "b"):
            await booking.confirm(
                held["reference"], role, codes[role], now=booked_at, settings=get_settings()
            )
        couples.append({"reference": held["reference"], "a": a, "b": b})
    return couples


async def one(query: Any) -> dict[str, Any]:
    """The first row of a select the test knows is there."""
    found: dict[str, Any] | None = await query.first()
    assert found is not None
    return found


async def make_staff(username: str, role: str = "clerk", offices: tuple[str, ...] = ()) -> None:
    await create_staff(
        username=username,
        password=PASSWORD,
        role=role,
        office_codes=list(offices),
        now=datetime.now(UTC),
    )


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """A form POST as the browser sends it: the CSRF cookie's value in _csrf_token."""
    token = client.cookies.get("csrftoken") or ""
    return await client.post(url, data={**(data or {}), "_csrf_token": token})


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    await client.get("/staff/login")
    resp = await post_form(client, "/staff/login", {"username": username, "password": PASSWORD})
    assert resp.status_code == 303, resp.text


def says(page: httpx.Response, key: str, locale: str = "zh-Hans", **params: Any) -> bool:
    return html.escape(translate(locale, key, **params)) in page.text


@pytest.fixture
async def clerk(client: httpx.AsyncClient, db: None) -> httpx.AsyncClient:
    """Offices GZ-TH and SZ-FT; the client signed in as a clerk of GZ-TH."""
    await make_office(code="GZ-TH", days_ahead=3)
    await make_office(code="SZ-FT", days_ahead=3)
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    return client


PAGES = ["/staff/offices/", "/staff/offices/{o}/day", "/staff/offices/{o}/worklist"]
PAGES += ["/staff/offices/{o}/checkin", "/staff/offices/{o}/queue"]


async def test_anonymous_visitors_are_sent_to_sign_in(client: httpx.AsyncClient, db: None) -> None:
    await make_office(days_ahead=3)
    for path in PAGES:
        url = path.format(o="GZ-TH")
        resp = await client.get(url)
        assert resp.status_code == 303, url
        assert resp.headers["location"].startswith("/staff/login?next=")
    await client.get("/staff/login")  # the CSRF cookie
    for url in ("/staff/offices/GZ-TH/checkin", "/staff/offices/GZ-TH/queue/call-next"):
        resp = await post_form(client, url, {"reference": "X", "counter": "1"})
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login")


async def test_another_office_is_not_found(clerk: httpx.AsyncClient) -> None:
    futian = (await confirmed_today("SZ-FT"))[0]
    for path in PAGES[1:]:
        for office in ("SZ-FT", "NO-SUCH"):
            resp = await clerk.get(path.format(o=office))
            assert resp.status_code == 404, (path, office)
    posts = [
        (f"/staff/offices/SZ-FT/appointments/{futian['reference']}/reveal", {}),
        ("/staff/offices/SZ-FT/checkin", {"reference": futian["reference"], "party_a": "on"}),
        ("/staff/offices/SZ-FT/queue/call-next", {"counter": "1"}),
        ("/staff/offices/SZ-FT/queue/1/serve", {}),
    ]
    for url, data in posts:
        assert (await post_form(clerk, url, data)).status_code == 404, url
    # Futian's reference through Tianhe's pages is not found either, and nothing leaks.
    resp = await post_form(
        clerk,
        "/staff/offices/GZ-TH/checkin",
        {"reference": futian["reference"], "party_a": "on", "party_b": "on"},
    )
    assert resp.status_code == 404 and says(resp, "error.not-found")
    assert await entries("appointment", futian["reference"]) == []
    offices = await clerk.get("/staff/offices/")
    assert 'id="office-GZ-TH"' in offices.text and "SZ-FT" not in offices.text


async def test_day_list_is_masked_and_each_reveal_is_audited(clerk: httpx.AsyncClient) -> None:
    couple = (await confirmed_today())[0]
    id_number, phone = couple["a"]["id_number"], couple["a"]["phone"]
    day = await clerk.get("/staff/offices/GZ-TH/day")
    assert day.status_code == 200
    assert couple["reference"] in day.text
    assert id_number not in day.text and phone not in day.text
    assert f"{id_number[:3]}***" in day.text and says(day, "page.status.confirmed")
    for query in (id_number, couple["reference"].lower()):
        found = await clerk.get("/staff/offices/GZ-TH/day", params={"q": query})
        assert couple["reference"] in found.text, query
    none = await clerk.get("/staff/offices/GZ-TH/day", params={"status": "completed"})
    assert couple["reference"] not in none.text and says(none, "desk.day.empty")

    revealed = await post_form(
        clerk, f"/staff/offices/GZ-TH/appointments/{couple['reference']}/reveal"
    )
    assert revealed.status_code == 200
    assert id_number in revealed.text and phone in revealed.text
    assert couple["b"]["id_number"] in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    audit = await entries("appointment", couple["reference"])
    assert [(e["action"], e["actor_name"]) for e in audit] == [("appointment.reveal", "th.clerk")]
    # Shown once: the next view is masked again.
    again = await clerk.get("/staff/offices/GZ-TH/day")
    assert id_number not in again.text


async def test_reveal_needs_the_csrf_token(clerk: httpx.AsyncClient) -> None:
    couple = (await confirmed_today())[0]
    resp = await clerk.post(f"/staff/offices/GZ-TH/appointments/{couple['reference']}/reveal")
    assert resp.status_code == 403
    assert couple["a"]["id_number"] not in resp.text
    assert await entries("appointment", couple["reference"]) == []


async def test_check_in_and_call_through_the_pages(clerk: httpx.AsyncClient) -> None:
    first, second = await confirmed_today(count=2)
    form = await clerk.get("/staff/offices/GZ-TH/checkin")
    assert re.search(r'<input id="f-reference" name="reference"[^>]* autofocus', form.text)
    present = {"party_a": "on", "party_b": "on"}
    done = await post_form(
        clerk, "/staff/offices/GZ-TH/checkin", {"reference": first["reference"], **present}
    )
    assert done.status_code == 200
    assert '<p class="big-ticket" id="ticket-label">M001</p>' in done.text
    # By ID number (of party B), with the priority box ticked.
    by_id = await post_form(
        clerk,
        "/staff/offices/GZ-TH/checkin",
        {"id_type": "mainland_id", "id_number": second["b"]["id_number"], "priority": "on"}
        | present,
    )
    assert 'id="ticket-label">M002</p>' in by_id.text

    desk = await clerk.get("/staff/offices/GZ-TH/queue")
    assert re.search(r'id="waiting-count">2<', desk.text)
    called = await post_form(clerk, "/staff/offices/GZ-TH/queue/call-next", {"counter": "3"})
    assert called.status_code == 303
    assert called.headers["location"] == "/staff/offices/GZ-TH/queue"
    assert clerk.cookies.get("desk_counter") == "3"
    desk = await clerk.get("/staff/offices/GZ-TH/queue")
    assert 'value="3"' in desk.text  # the counter is remembered
    priority = await one(QueueTicket.select().where(QueueTicket.label == "M002"))
    assert priority["status"] == "called" and priority["counter"] == "3"
    assert f'id="ticket-{priority["id"]}" data-status="called"' in desk.text
    board = await clerk.get("/offices/GZ-TH/board")
    assert "M002" in board.text

    for action, status in (("serve", "serving"), ("complete", "completed")):
        resp = await post_form(clerk, f"/staff/offices/GZ-TH/queue/{priority['id']}/{action}")
        assert resp.status_code == 303, resp.text
        assert (await one(QueueTicket.select().where(QueueTicket.id == priority["id"])))[
            "status"
        ] == status
    appointment = await Appointment.select().where(Appointment.reference == second["reference"])
    assert appointment[0]["status"] == "completed"
    # A transition the ticket cannot make is explained in place.
    again = await post_form(clerk, f"/staff/offices/GZ-TH/queue/{priority['id']}/serve")
    assert again.status_code == 409 and says(again, "error.bad-transition.state")


async def test_check_in_errors_are_shown_in_place(clerk: httpx.AsyncClient) -> None:
    first, second = await confirmed_today(count=2)
    one_present = await post_form(
        clerk, "/staff/offices/GZ-TH/checkin", {"reference": first["reference"], "party_a": "on"}
    )
    assert one_present.status_code == 409 and says(one_present, "error.both-parties-required")
    assert f'value="{first["reference"]}"' in one_present.text  # kept for the next try
    nothing = await post_form(clerk, "/staff/offices/GZ-TH/checkin", {"party_a": "on"})
    assert nothing.status_code == 422 and says(nothing, "error.invalid-input.reference-or-id")
    # The hall holds one couple: the second is refused with the expected wait.
    await Office.update({Office.onsite_cap: 2}).where(Office.code == "GZ-TH")
    present = {"party_a": "on", "party_b": "on"}
    for couple, expected in ((first, 200), (second, 409)):
        resp = await post_form(
            clerk, "/staff/offices/GZ-TH/checkin", {"reference": couple["reference"], **present}
        )
        assert resp.status_code == expected, resp.text
    assert says(resp, "error.hall-full", minutes=10)
    assert 'id="checkin-error"' in resp.text


async def test_missed_ticket_is_requeued_once(clerk: httpx.AsyncClient) -> None:
    couple = (await confirmed_today())[0]
    present = {"party_a": "on", "party_b": "on"}
    await post_form(
        clerk, "/staff/offices/GZ-TH/checkin", {"reference": couple["reference"], **present}
    )
    await post_form(clerk, "/staff/offices/GZ-TH/queue/call-next", {"counter": "1"})
    ticket = await one(QueueTicket.select())
    url = f"/staff/offices/GZ-TH/queue/{ticket['id']}"
    early = await post_form(clerk, f"{url}/no-show")
    assert early.status_code == 409
    assert says(early, "error.bad-transition.calls", calls=get_settings().queue_max_calls)
    for _ in range(get_settings().queue_max_calls - 1):
        assert (await post_form(clerk, f"{url}/recall")).status_code == 303
    assert (await post_form(clerk, f"{url}/no-show")).status_code == 303
    desk = await clerk.get("/staff/offices/GZ-TH/queue")
    assert f'action="{url}/requeue"' in desk.text
    assert (await post_form(clerk, f"{url}/requeue")).status_code == 303
    assert (await one(QueueTicket.select()))["status"] == "waiting"
    empty = await post_form(clerk, "/staff/offices/GZ-TH/queue/call-next", {"counter": "bad one"})
    assert empty.status_code == 422 and says(empty, "error.invalid-input.desk-counter")
    await queue.call_next(
        ticket["office"],
        "1",
        now=datetime.now(UTC),
        actor=NamedActor("test"),
        settings=get_settings(),
    )
    nobody = await post_form(clerk, "/staff/offices/GZ-TH/queue/call-next", {"counter": "1"})
    assert nobody.status_code == 409 and says(nobody, "error.queue-empty")


async def test_worklist_lists_couples_that_need_rebooking(clerk: httpx.AsyncClient) -> None:
    empty = await clerk.get("/staff/offices/GZ-TH/worklist")
    assert 'id="worklist-empty"' in empty.text
    couple = (await confirmed_today())[0]
    # What a reschedule run leaves when it finds no seat for a couple.
    await Appointment.update({Appointment.status: "needs_rebooking"}).where(
        Appointment.reference == couple["reference"]
    )
    page = await clerk.get("/staff/offices/GZ-TH/worklist", params={"lang": "en"})
    assert couple["reference"] in page.text and "Rebooking worklist" in page.text
    assert couple["a"]["phone"] not in page.text
    filtered = await clerk.get("/staff/offices/GZ-TH/day", params={"status": "needs_rebooking"})
    assert couple["reference"] in filtered.text
