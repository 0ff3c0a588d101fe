"""Waiting-list pages: linked from a full day, join with both partners, verify the
phones, see the offer, leave; refusals come back in the form, readable."""

from __future__ import annotations

import html
import re

import httpx

from tests.helpers import person
from tests.test_pages import post_form, says
from tests.waitlist_helpers import entry_id, fill, offer_codes, one_slot_office, target_slot, texted


def filled(a: dict[str, str], b: dict[str, str], **extra: str) -> dict[str, str]:
    form = {f"party_a.{k}": v for k, v in a.items()} | {f"party_b.{k}": v for k, v in b.items()}
    return form | {"time_from": "", "time_to": "", "office_2": "", "office_3": ""} | extra


async def test_full_day_links_to_the_waiting_list_and_the_couple_gets_the_seat(
    client: httpx.AsyncClient,
) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    [booked] = await fill(client, slot["id"], 1)
    month = await client.get(f"/book/GZ-TH/marriage?day={slot['date']}")
    assert month.status_code == 200 and says(month, "waitlist.calendar.join")
    link = f"/waitlist/GZ-TH/marriage/{slot['date']}"
    assert f'href="{link}"' in month.text

    form = await client.get(link)
    assert form.status_code == 200 and says(form, "waitlist.form.title")
    bad = await post_form(client, link, filled(person(), person(), time_from="10:00"))
    assert bad.status_code == 422 and says(bad, "error.invalid-input.time-range")
    assert 'value="10:00"' in bad.text  # what was typed is kept

    joined = await post_form(client, link, filled(person(), person()))
    assert joined.status_code == 303, joined.text
    page_url = joined.headers["location"]
    reference = page_url.rsplit("/", 1)[1]
    entry = await client.get(page_url)
    assert says(entry, "waitlist.status.pending")
    codes = await texted("waitlist_code", f"waitlist:{await entry_id(reference)}:")
    for role in ("a", "b"):
        done = await post_form(
            client, f"{page_url}/confirm", {"party": role, "code": codes[role], "token": ""}
        )
        assert done.status_code == 303, done.text
    entry = await client.get(page_url)
    assert says(entry, "waitlist.status.waiting")

    cancel = await client.post(
        f"/api/v1/appointments/{booked['reference']}/cancel",
        headers={"X-Manage-Token": booked["manage_token"]},
    )
    assert cancel.status_code == 200
    entry = await client.get(page_url)
    assert says(entry, "waitlist.status.offered")
    offer_link = re.search(r'href="(/booking/[^"]+)"', entry.text)
    assert offer_link
    # The offer's booking page opens with the list's token (cookie set above).
    offer_page = await client.get(html.unescape(offer_link.group(1)))
    assert offer_page.status_code == 200
    offer_ref = offer_link.group(1).rsplit("/", 1)[1]
    codes = await offer_codes(await entry_id(reference))
    for role in ("a", "b"):
        done = await post_form(
            client, f"/booking/{offer_ref}/confirm", {"party": role, "code": codes[role]}
        )
        assert done.status_code == 303, done.text
    assert says(await client.get(page_url), "waitlist.status.booked")


async def test_leave_through_the_page(client: httpx.AsyncClient) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    await fill(client, slot["id"], 1)
    link = f"/waitlist/GZ-TH/marriage/{slot['date']}"
    await client.get(link)
    joined = await post_form(client, link, filled(person(), person()))
    page_url = joined.headers["location"]
    left = await post_form(client, f"{page_url}/leave", {"token": ""})
    assert left.status_code == 303
    assert says(await client.get(page_url), "waitlist.status.left")
    again = await post_form(client, f"{page_url}/leave", {"token": ""})
    assert again.status_code == 409 and says(again, "error.not-pending")
