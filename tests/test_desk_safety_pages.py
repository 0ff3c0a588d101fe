"""Issue 14 item 13 and item 3's office hours through the pages: a second check-in names
the ticket; "both notified by SMS" only once it is true (quiet hours: queued, with the
time it goes); the pre-check list points to other days' waiting reviews; staff 403 and
404 pages keep the staff layout; a closed weekday shows no sample hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from scheduler.db.audit import NamedActor
from scheduler.db.queue_tables import QueueTicket
from scheduler.jobs.schedule import dispatch_due
from scheduler.settings import get_settings
from scheduler.usecases.desk import queue
from tests.helpers import make_office, staff_token
from tests.test_desk_pages import confirmed_today, make_staff, one, post_form, says, sign_in
from tests.test_outbox import RecordingBackend
from tests.test_precheck import booked, desk, office, submission

__all__ = ["desk", "office"]  # fixtures of tests/test_precheck.py used here

TZ = ZoneInfo("Asia/Shanghai")


async def test_checking_in_twice_names_the_ticket(client: httpx.AsyncClient, db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=3)
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    (couple,) = await confirmed_today()
    url = "/staff/offices/GZ-TH/checkin"
    form = {"reference": couple["reference"], "party_a": "on", "party_b": "on"}
    first = await post_form(client, url, form)
    assert first.status_code == 200 and 'id="ticket-label"' in first.text
    ticket = await one(QueueTicket.select())
    again = await post_form(client, url, form)
    assert again.status_code == 409
    at = ticket["checked_in_at"].astimezone(TZ)
    assert says(
        again, "error.already-checked-in.waiting", label=ticket["label"], time=f"{at:%H:%M}"
    )
    assert not says(again, "error.not-pending")
    # Once called (the queue desk's "call next"), the message says when.
    await queue.call_next(
        ticket["office"], "3", now=datetime.now(UTC), actor=NamedActor("c"), settings=get_settings()
    )
    called = (await one(QueueTicket.select()))["called_at"]
    later = await post_form(client, url, form | {"lang": "en"})
    assert says(
        later,
        "error.already-checked-in.called",
        label=ticket["label"],
        time=f"{called.astimezone(TZ):%H:%M}",
    )


async def test_review_says_sent_only_when_sent(desk: httpx.AsyncClient) -> None:
    root = await staff_token(desk, "root", role="superadmin", offices=())
    transport = desk._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as couple_c:
        couple = await booked(couple_c)
        await couple_c.put(
            f"/api/v1/appointments/{couple['reference']}/precheck",
            json=submission(),
            headers=couple["token_header"],
        )
    # Quiet hours around now (office time): the review's SMS waits until they end.
    now = datetime.now(TZ)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = {"enabled": True, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    put = await desk.put("/api/v1/admin/policies/sms_quiet_hours", json=quiet, headers=root)
    assert put.status_code == 200, put.text

    # The list of today points to the day the couple's pre-check waits on.
    listed = await desk.get("/staff/offices/GZ-TH/prechecks")
    day = couple["slot"]["date"]
    assert f'href="/staff/offices/GZ-TH/prechecks?date={day}"' in listed.text
    assert says(listed, "safety.precheck.day_count", date=day, count=1)

    url = f"/staff/offices/GZ-TH/prechecks/{couple['reference']}/review"
    done = await post_form(desk, url, {"decision": "approved", "version": "1", "note": ""})
    assert done.status_code == 303
    after = await desk.get(done.headers["location"])
    assert says(after, "safety.sms.queued", time=f"{end:%H:%M}")
    assert not says(after, "safety.sms.sent")

    # Sent for real (the dispatcher after quiet hours): now it says so.
    later = datetime.now(UTC) + timedelta(hours=3)
    assert (
        await dispatch_due(RecordingBackend(), "w1", later, settings=get_settings()) >= 2
    )  # + earlier texts
    after = await desk.get(done.headers["location"])
    assert says(after, "safety.sms.sent")


async def test_staff_errors_keep_the_staff_layout(client: httpx.AsyncClient, db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=3)
    await make_office(code="SZ-FT", days_ahead=3)
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    for url, status in (
        ("/staff/offices/SZ-FT/day", 404),  # another office's page
        ("/staff/admin/blackouts", 403),  # an admin page
    ):
        resp = await client.get(url)
        assert resp.status_code == status
        assert 'id="staff-error"' in resp.text and 'href="/staff/"' in resp.text
        assert 'href="/manage"' not in resp.text  # not the couples' error page
    public = await client.get("/manage/NOPE-0000-0000/cancel")
    assert 'id="staff-error"' not in public.text


async def test_closed_weekdays_show_no_sample_hours(client: httpx.AsyncClient, db: None) -> None:
    weekdays = {str(d): [["09:00", "12:00"]] for d in range(5)}  # Saturday, Sunday closed
    await make_office(code="GZ-TH", days_ahead=3, weekly_hours=weekdays)
    await make_staff("root", role="superadmin")
    await sign_in(client, "root")
    page = await client.get("/staff/admin/offices/GZ-TH")
    assert page.status_code == 200, page.text
    assert (
        "placeholder=" not in page.text.split('id="f-marriage-hours_0"')[1].split("</fieldset>")[0]
    )
    assert page.text.count('id="f-marriage-closed_') == 2
    assert says(page, "safety.hours.closed")
