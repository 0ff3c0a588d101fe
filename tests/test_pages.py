"""The couple-facing pages, driven like a browser without JavaScript: links, forms
with the CSRF token from the cookie, redirects."""

from __future__ import annotations

import html
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from scheduler.kernel.i18n import LOCALES, translate
from tests.helpers import booking_body, make_office, person, sms_codes

LOCALES_DIR = Path(__file__).resolve().parents[1] / "scheduler" / "locales"
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "pages"


def says(page: httpx.Response, key: str, locale: str = "zh-Hans", **params: Any) -> bool:
    return html.escape(translate(locale, key, **params)) in page.text


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    pairs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    return {name: html.unescape(value) for name, value in pairs}


def form_actions(page: httpx.Response) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<form[^>]* action="([^"]*)"', page.text)]


def input_tag(page: httpx.Response, input_id: str) -> str:
    found = re.search(rf'<input id="{re.escape(input_id)}"[^>]*>', page.text)
    assert found, f"no input #{input_id}"
    return found.group(0)


async def post_form(client: httpx.AsyncClient, url: str, data: dict[str, str]) -> httpx.Response:
    """A form POST as the browser sends it: the CSRF cookie's value in _csrf_token."""
    token = client.cookies.get("csrftoken")
    assert token, "GET a page first: it sets the CSRF cookie"
    return await client.post(url, data={**data, "_csrf_token": token})


async def pick_slot(
    client: httpx.AsyncClient, office: str = "GZ-TH", service: str = "marriage"
) -> str:
    """Through the month view to the form of the first slot of an open day at least two
    days ahead (never 'today', whose slots run out as the clock moves)."""
    page = await client.get(f"/book/{office}/{service}")
    for _ in range(3):
        assert page.status_code == 200, page.text
        days = re.findall(
            r'data-date="([\d-]+)" data-status="open">\s*<a id="day-[\d-]+" href="([^"]+)"',
            page.text,
        )
        later = [
            href
            for day, href in days
            if date.fromisoformat(day) >= date.today() + timedelta(days=2)
        ]
        if later:
            day_page = await client.get(html.unescape(later[0]))
            assert day_page.status_code == 200
            slots = re.findall(rf'href="(/book/{office}/{service}/[\d-]+/\d+)"', day_page.text)
            assert slots, "an open day lists its slots"
            return slots[0]
        next_link = re.search(
            r'id="month-next" class="button small" rel="next" href="([^"]+)"', page.text
        )
        assert next_link, "no open day and no next month"
        page = await client.get(html.unescape(next_link.group(1)))
    raise AssertionError("no open day found")


def filled(form: dict[str, str], a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    data = dict(form)
    for role, party in (("a", a), ("b", b)):
        for key, value in party.items():
            data[f"party_{role}.{key}"] = value
    return data


async def hold_through_pages(client: httpx.AsyncClient) -> tuple[str, list[httpx.Response]]:
    seen = [await client.get("/")]
    assert seen[0].status_code == 200
    assert 'href="/book/GZ-TH/marriage"' in seen[0].text
    form = await client.get(await pick_slot(client))
    assert form.status_code == 200 and says(form, "page.form.title")
    seen.append(form)
    resp = await post_form(client, "/book", filled(hidden_fields(form), person(), person()))
    assert resp.status_code == 303, resp.text
    reference = resp.headers["location"].rsplit("/", 1)[1]
    assert resp.headers["location"] == f"/booking/{reference}"
    return reference, seen


async def test_full_flow_to_confirmation(client: httpx.AsyncClient) -> None:
    await make_office()
    reference, seen = await hold_through_pages(client)
    token = client.cookies.get(f"mt-{reference}")
    assert token, "the manage token is kept in a cookie, not in the redirect's URL"

    codes_page = await client.get(f"/booking/{reference}")
    assert codes_page.status_code == 200 and says(codes_page, "page.codes.title")
    view = (
        await client.get(f"/api/v1/appointments/{reference}", headers={"X-Manage-Token": token})
    ).json()
    expires = datetime.fromisoformat(view["hold_expires_at"])  # already in the office's zone
    assert f"{expires:%H:%M}" in codes_page.text
    assert "Asia/Shanghai" in codes_page.text
    seen.append(codes_page)

    codes = await sms_codes(reference)
    wrong = "000000" if codes["a"] != "000000" else "111111"
    refused = await post_form(
        client, f"/booking/{reference}/confirm", {"party": "a", "code": wrong, "token": token}
    )
    assert refused.status_code == 422 and says(refused, "error.wrong-code.left", attempts_left=4)
    assert 'aria-invalid="true"' in input_tag(refused, "code-a")
    for role in ("a", "b"):
        resp = await post_form(
            client,
            f"/booking/{reference}/confirm",
            {"party": role, "code": codes[role], "token": token},
        )
        assert resp.status_code == 303, resp.text
        seen.append(await client.get(resp.headers["location"]))

    done = seen[-1]
    assert done.status_code == 200
    assert says(done, "page.done.title") and reference in done.text
    assert re.search(r"<svg[^>]*>.*?</svg>", done.text, re.S), "an inline SVG QR code"
    ics = re.search(r'href="(/api/v1/appointments/[^"]+\.ics\?token=[^"]+)"', done.text)
    assert ics
    calendar = await client.get(html.unescape(ics.group(1)))
    assert calendar.status_code == 200 and "BEGIN:VEVENT" in calendar.text
    assert f'href="/manage/{reference}?token=' in done.text
    # Tokens travel in form fields, never in an address the server gives a form.
    assert all("token" not in action for page in seen for action in form_actions(page))


async def test_form_error_in_place_in_zh_hans(client: httpx.AsyncClient) -> None:
    await make_office()
    await client.get("/")
    form = await client.get(await pick_slot(client))
    a, b = person(), person()
    a["id_number"] = a["id_number"][:-1] + ("0" if a["id_number"][-1] != "0" else "1")
    resp = await post_form(client, "/book", filled(hidden_fields(form), a, b))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-Hans">' in resp.text
    message = translate("zh-Hans", "error.invalid-input.id-checksum")
    assert re.search(
        rf'<p class="error-text" id="f-party_a-id_number-error">{message}</p>', resp.text
    )
    field = input_tag(resp, "f-party_a-id_number")
    assert (
        f'value="{a["id_number"]}"' in field
        and 'aria-describedby="f-party_a-id_number-error"' in field
    )
    assert f'value="{b["name"]}"' in input_tag(resp, "f-party_b-name")
    assert f'value="{a["phone"]}"' in input_tag(resp, "f-party_a-phone")
    assert "Traceback" not in resp.text


async def test_the_same_form_sent_twice_is_one_booking(client: httpx.AsyncClient) -> None:
    # A double tap or a reload after a lost response: the same form, the same booking.
    await make_office()
    await client.get("/")
    form = await client.get(await pick_slot(client))
    data = filled(hidden_fields(form), person(), person())
    first = await post_form(client, "/book", data)
    second = await post_form(client, "/book", data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]


async def test_full_slot_is_409_with_the_form_kept(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=1)
    await client.get("/")
    form = await client.get(await pick_slot(client))
    fields = hidden_fields(form)
    taken = await client.post("/api/v1/appointments", json=booking_body(int(fields["slot_id"])))
    assert taken.status_code == 201
    a = person()
    resp = await post_form(client, "/book", filled(fields, a, person()))
    assert resp.status_code == 409 and says(resp, "error.slot-full")
    assert f'value="{a["name"]}"' in input_tag(resp, "f-party_a-name")


async def test_missing_csrf_token_is_refused_readably(client: httpx.AsyncClient) -> None:
    await make_office()
    await client.get("/")
    form = await client.get(await pick_slot(client))
    data = filled(hidden_fields(form), person(), person())
    data.pop("_csrf_token")
    resp = await client.post("/book", data=data)
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("text/html")
    assert says(resp, "error.http.403") and says(resp, "page.error.title")
    assert "Traceback" not in resp.text


async def test_english_and_traditional_chinese(client: httpx.AsyncClient) -> None:
    await make_office()
    en = await client.get("/", params={"lang": "en"})
    assert '<html lang="en">' in en.text and says(en, "page.home.title", "en")
    assert says(en, "page.service.marriage", "en")
    assert "lang=en" in en.headers.get("set-cookie", "")
    # The cookie keeps the choice on the next page, without ?lang=.
    month = await client.get("/book/GZ-TH/marriage")
    assert '<html lang="en">' in month.text and says(month, "page.day.open", "en")
    assert says(month, "page.legend.title", "en")
    client.cookies.delete("lang")
    hant = await client.get("/", headers={"Accept-Language": "zh-TW,zh;q=0.9"})
    assert '<html lang="zh-Hant">' in hant.text and says(hant, "page.home.title", "zh-Hant")
    assert translate("zh-Hant", "page.home.title") != translate("zh-Hans", "page.home.title")


async def test_htmx_gets_only_the_picker(client: httpx.AsyncClient) -> None:
    await make_office()
    resp = await client.get("/book/GZ-TH/marriage", headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith('<div id="picker"') and "<html" not in resp.text
    assert "HX-Request" in resp.headers.get("vary", "")
    full = await client.get("/book/GZ-TH/marriage")
    assert full.text.lstrip().startswith("<!doctype html>")


async def _api_booking(client: httpx.AsyncClient, slot_id: int) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _open_slot_ids(client: httpx.AsyncClient) -> list[int]:
    from tests.helpers import open_slots

    return [s["id"] for s in await open_slots(client)]


async def test_manage_cancel(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _api_booking(client, (await _open_slot_ids(client))[0])
    ref, token = held["reference"], held["manage_token"]
    link = await client.get(f"/manage/{ref}", params={"token": token})
    assert link.status_code == 303 and link.headers["location"] == f"/manage/{ref}"
    page = await client.get(f"/manage/{ref}")
    assert page.status_code == 200 and says(page, "page.status.pending_confirmation")
    ask = await client.get(f"/manage/{ref}/cancel")
    assert ask.status_code == 200 and says(ask, "page.cancel.warning")
    assert form_actions(ask) == [f"/manage/{ref}/cancel"]
    assert hidden_fields(ask)["token"] == token
    done = await post_form(client, f"/manage/{ref}/cancel", {"token": token})
    assert done.status_code == 303
    after = await client.get(done.headers["location"])
    assert says(after, "page.status.cancelled") and says(after, "page.manage.notice.cancelled")
    api = await client.get(f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": token})
    assert api.json()["status"] == "cancelled"


async def test_manage_lookup_and_move(client: httpx.AsyncClient) -> None:
    await make_office()
    first, *others = await _open_slot_ids(client)
    held = await _api_booking(client, first)
    ref, token = held["reference"], held["manage_token"]
    await client.get("/manage")
    wrong = await post_form(client, "/manage", {"reference": ref, "token": "x" * 32})
    # The message names what the page asked for and offers recovery (issue 14, item 9).
    assert wrong.status_code == 404 and says(wrong, "couples.lookup.not_found")
    assert 'href="/manage/recover' in wrong.text
    assert f'value="{ref}"' in input_tag(wrong, "f-reference")
    found = await post_form(client, "/manage", {"reference": ref.lower(), "token": token})
    assert found.status_code == 303 and found.headers["location"] == f"/manage/{ref}"
    day = held["slot"]["date"]
    picker = await client.get(f"/manage/{ref}/move", params={"day": day})
    assert picker.status_code == 200 and says(picker, "page.slots.current")
    target = next(s for s in others if f'name="slot_id" value="{s}"' in picker.text)
    form = {"token": token, "slot_id": str(target), "day": day}
    # Choosing a time asks first, naming both times (issue 14, item 10); nothing moved yet.
    asked = await post_form(client, f"/manage/{ref}/move", form)
    assert asked.status_code == 200 and says(asked, "couples.move.confirm_title")
    api = await client.get(f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": token})
    assert api.json()["slot"]["id"] == held["slot"]["id"]
    moved = await post_form(client, f"/manage/{ref}/move", form | {"confirm": "yes"})
    assert moved.status_code == 303, moved.text
    after = await client.get(moved.headers["location"])
    assert says(after, "page.manage.notice.moved")
    api = await client.get(f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": token})
    assert api.json()["slot"]["id"] == target


def test_every_locale_has_the_same_page_keys() -> None:
    catalogs = {
        loc: json.loads((LOCALES_DIR / loc / "pages.json").read_text("utf-8")) for loc in LOCALES
    }
    keys = set(catalogs["zh-Hans"])
    for locale, catalog in catalogs.items():
        assert set(catalog) == keys, locale
        assert all(isinstance(v, str) and v.strip() for v in catalog.values()), locale
    literal = set()
    for path in TEMPLATES_DIR.glob("*.html"):
        literal |= set(re.findall(r"'(page\.[a-z0-9_.]+[a-z0-9_])'", path.read_text("utf-8")))
    assert literal and literal <= keys, sorted(literal - keys)
