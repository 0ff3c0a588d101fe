"""Lottery pages: the admin's (guards, CSRF form, errors in place, hot-date
suggestion, cancel) and the couple's (lottery page with the hash, apply, codes,
withdraw; after the draw the seed and the order)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.lottery_tables import Lottery, LotteryApplication
from scheduler.db.tables import AuditLog
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.lottery import draw as lottery
from tests.helpers import make_office, person
from tests.test_desk_pages import make_staff, post_form, sign_in
from tests.test_lottery_api import DAYS, codes, lottery_day, new_lottery

BASE = "/staff/admin/lotteries"


def says(page: httpx.Response, key: str, locale: str = "zh-Hans", **params: Any) -> bool:
    return html.escape(translate(locale, key, **params)) in page.text


def form_of(body: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in body.items() if k != "offices"} | {"offices": body["offices"][0]}


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: None) -> dict[str, Any]:
    office_id = await make_office(code="GZ-TH", days_ahead=DAYS, day_cap=3)
    await make_office(code="SZ-FT", days_ahead=DAYS)
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin")
    return {"day": await lottery_day(office_id)}


async def test_guards(client: httpx.AsyncClient, db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=DAYS)
    anonymous = await client.get(BASE + "/")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/staff/login")
    await make_staff("th.clerk", role="clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    assert (await client.get(BASE + "/")).status_code == 403
    assert (await post_form(client, BASE + "/", {"date": "2030-01-01"})).status_code == 403
    assert await Lottery.count() == 0


async def test_admin_creates_from_a_suggestion_and_errors_stay_in_place(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    page = await client.get(BASE + "/", params={"date": admin["day"].isoformat()})
    assert page.status_code == 200 and 'id="suggested"' in page.text
    assert f'value="{admin["day"].isoformat()}"' in page.text
    assert 'name="_csrf_token"' in page.text
    # Opening in the past: explained in place, nothing stored.
    bad = form_of(new_lottery(admin["day"], opens_days_before=90))
    resp = await post_form(client, BASE + "/", bad)
    assert resp.status_code == 422 and says(resp, "error.invalid-input.lottery-opens-past")
    assert await Lottery.count() == 0
    # Another office's: refused as out of scope.
    other = form_of(new_lottery(admin["day"], offices=["SZ-FT"]))
    assert (await post_form(client, BASE + "/", other)).status_code == 404
    resp = await post_form(client, BASE + "/", form_of(new_lottery(admin["day"])))
    assert resp.status_code == 303, resp.text
    detail = await client.get(resp.headers["location"])
    row = await Lottery.select().first()
    assert detail.status_code == 200 and row["seed_sha256"] in detail.text
    assert row["seed"] not in detail.text  # secret until the draw
    assert await AuditLog.count().where(AuditLog.action == "lottery.create") == 1
    listing = await client.get(BASE + "/")
    assert f'id="lottery-{row["id"]}"' in listing.text
    cancelled = await post_form(client, f"{BASE}/{row['id']}/cancel")
    assert cancelled.status_code == 303
    assert (await Lottery.select(Lottery.status).first())["status"] == "cancelled"
    # The other office's admin does not see it.
    await make_staff("sz.admin", role="admin", offices=("SZ-FT",))
    await sign_in(client, "sz.admin")
    assert (await client.get(f"{BASE}/{row['id']}")).status_code == 404


async def test_couple_applies_confirms_withdraws_and_sees_the_draw(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    resp = await post_form(client, BASE + "/", form_of(new_lottery(admin["day"])))
    lid = int(resp.headers["location"].rsplit("/", 1)[1].split("?")[0])
    await Lottery.update({Lottery.opens_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        Lottery.id == lid
    )
    page = await client.get(f"/lotteries/{lid}", headers={"Accept-Language": "en"})
    row = await Lottery.select().first()
    assert page.status_code == 200 and row["seed_sha256"] in page.text and 'id="apply"' in page.text
    form = await client.get(f"/lotteries/{lid}/apply")
    assert form.status_code == 200 and 'name="office_1"' in form.text
    a, b = person(), person()
    fields = {f"party_a.{k}": v for k, v in a.items()} | {f"party_b.{k}": v for k, v in b.items()}
    fields |= {"office_1": "GZ-TH", "start_1": "", "office_2": "", "start_2": ""}
    fields |= {"office_3": "", "start_3": ""}
    applied = await post_form(client, f"/lotteries/{lid}/apply", fields)
    assert applied.status_code == 303, applied.text
    app_page = await client.get(applied.headers["location"])
    assert app_page.status_code == 200 and 'id="code-a"' in app_page.text
    reference = (await LotteryApplication.select().first())["reference"]
    # The same people again: refused with the reason on the form, nothing stored.
    again = await post_form(client, f"/lotteries/{lid}/apply", fields)
    assert again.status_code == 409 and says(again, "error.already-applied")
    assert await LotteryApplication.count() == 1
    sent = await codes(reference)
    url = f"/lotteries/{lid}/applications/{reference}"
    wrong = await post_form(client, url + "/confirm", {"party": "a", "code": "000000"})
    assert wrong.status_code == 422 and says(wrong, "error.wrong-code")
    for party in ("a", "b"):
        done = await post_form(client, url + "/confirm", {"party": party, "code": sent[party]})
        assert done.status_code == 303
    shown = await client.get(url)
    assert 'data-status="confirmed"' in shown.text and 'id="withdraw"' in shown.text
    # Another couple stays in; this one withdraws.
    other = await post_form(
        client,
        f"/lotteries/{lid}/apply",
        fields
        | {f"party_a.{k}": v for k, v in person().items()}
        | {f"party_b.{k}": v for k, v in person().items()},
    )
    assert other.status_code == 303
    gone = await post_form(client, url + "/withdraw")
    assert gone.status_code == 303
    assert 'data-status="withdrawn"' in (await client.get(url)).text
    # The draw: the page reveals the seed and the order.
    await Lottery.update({Lottery.closes_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Lottery.id == lid
    )
    await lottery.tick(datetime.now(UTC), get_settings())
    drawn = await client.get(f"/lotteries/{lid}")
    assert row["seed"] in drawn.text and 'id="draw-order"' in drawn.text
    assert (await client.get("/lotteries/")).status_code == 200
