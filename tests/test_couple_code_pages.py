"""Code entry on the couple pages sharing scheduler/web/pages/couple_forms.py: a wrong
code and a locked code are both told by that partner's code input."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import httpx

from scheduler.db.lottery_tables import Lottery
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from tests.helpers import make_office, staff_token
from tests.test_desk_pages import post_form
from tests.test_lottery_api import DAYS, application, lottery_day, new_lottery


def error_by_code_a(page: httpx.Response, key: str) -> bool:
    """The message sits in party a's code field, not in the page's alert."""
    field = page.text.split('id="code-a-error"', 1)
    return len(field) == 2 and html.escape(translate("zh-Hans", key)) in field[1].split("</p>")[0]


async def test_lottery_code_errors_are_shown_by_the_partners_input(
    client: httpx.AsyncClient, db: None
) -> None:
    office_id = await make_office(code="GZ-TH", days_ahead=DAYS)
    admin = await staff_token(client, "lot.admin", role="admin", offices=("GZ-TH",))
    made = await client.post(
        "/api/v1/admin/lotteries", json=new_lottery(await lottery_day(office_id)), headers=admin
    )
    assert made.status_code == 201, made.text
    lid = made.json()["id"]
    await Lottery.update({Lottery.opens_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        Lottery.id == lid
    )
    applied = await client.post(f"/api/v1/lotteries/{lid}/applications", json=application())
    assert applied.status_code == 201, applied.text
    page = f"/lotteries/{lid}/applications/{applied.json()['reference']}"
    assert (await client.get(f"/lotteries/{lid}")).status_code == 200  # sets the CSRF cookie
    url, token = f"{page}/confirm", applied.json()["manage_token"]
    for _ in range(get_settings().code_max_attempts):
        wrong = await post_form(client, url, {"party": "a", "code": "000000", "token": token})
        assert wrong.status_code == 422 and error_by_code_a(wrong, "error.wrong-code")
    locked = await post_form(client, url, {"party": "a", "code": "000000", "token": token})
    assert locked.status_code >= 400 and error_by_code_a(locked, "error.too-many-attempts")
