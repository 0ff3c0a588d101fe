"""The admin reports: every figure checked against counts the test computes from the
appointment, slot, ticket, event, outbox and run tables itself; CSV equals the page
table; the office and date filters; bad ranges (422); who may see what (401/403/404)."""

from __future__ import annotations

import csv
import html
import io
import math
import re
import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.blackout_tables import Blackout, BlackoutOffice, RescheduleItem, RescheduleRun
from scheduler.db.queue_tables import QueueTicket
from scheduler.db.tables import (
    Appointment,
    AppointmentEvent,
    AuditLog,
    Office,
    OfficeDay,
    OutboxMessage,
    Slot,
)
from scheduler.kernel.i18n import translate
from tests.helpers import staff_token
from tests.report_data import build, today
from tests.test_desk_pages import make_staff, sign_in

REPORTS = ("bookings", "lead-time", "cancellations", "queue", "sms", "reschedule")


@pytest.fixture
async def data(client: httpx.AsyncClient, db: None) -> dict[str, Any]:
    return await build(client)


def _range(data: dict[str, Any]) -> dict[str, str]:
    return {"from": data["from"].isoformat(), "to": data["to"].isoformat()}


async def api(
    client: httpx.AsyncClient, name: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/admin/reports/{name}", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# --- what the tables say, computed here ------------------------------------------------


async def offices() -> dict[int, str]:
    return {r["id"]: r["code"] for r in await Office.select(Office.id, Office.code)}


async def appointments(start: date, end: date, codes: set[str]) -> list[dict[str, Any]]:
    """Every appointment with its slot's office code, day and start."""
    names = await offices()
    slots = {s["id"]: s for s in await Slot.select()}
    found = []
    for a in await Appointment.select():
        slot = slots[a["slot"]]
        code = names[slot["office"]]
        if start <= slot["day"] <= end and code in codes:
            found.append(a | {"code": code, "day": slot["day"], "start_at": slot["start_at"]})
    return found


def pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


async def expected_bookings(
    start: date, end: date, codes: set[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    names = await offices()
    seats: Counter[tuple[str, str]] = Counter()
    keys: set[tuple[str, str]] = set()
    for s in await Slot.select():
        code = names[s["office"]]
        if start <= s["day"] <= end and code in codes:
            key = (s["day"].isoformat(), code)
            keys.add(key)
            if not s["blocked"]:
                reduced = s["reduced_capacity"]
                seats[key] += min(s["capacity"], reduced) if reduced is not None else s["capacity"]
    caps = {}
    for d in await OfficeDay.select():
        code = names[d["office"]]
        if start <= d["day"] <= end and code in codes:
            caps[(d["day"].isoformat(), code)] = d["capacity"]
            keys.add((d["day"].isoformat(), code))
    booked: Counter[tuple[str, str]] = Counter()
    for a in await appointments(start, end, codes):
        if a["status"] not in ("cancelled", "expired"):
            booked[(a["day"].isoformat(), a["code"])] += 1
            keys.add((a["day"].isoformat(), a["code"]))
    out = {}
    for key in keys:
        cap = seats[key] if key not in caps else min(seats[key], caps[key])
        out[key] = {
            "slot_seats": seats[key],
            "day_cap": caps.get(key),
            "cap": cap,
            "bookings": booked[key],
            "utilisation_pct": pct(booked[key], cap),
        }
    return out


def nearest_rank_p90(values: list[float]) -> float:
    return round(sorted(values)[math.ceil(0.9 * len(values)) - 1], 1)


# --- figures ------------------------------------------------------------------------------


async def test_every_report_matches_the_tables(
    client: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    start, end, both = data["from"], data["to"], {"GZ-TH", "SZ-FT"}
    root = data["root"]

    got = await api(client, "bookings", root, **_range(data))
    assert got["offices"] == ["GZ-TH", "SZ-FT"] and got["from"] == start.isoformat()
    rows = {(r["day"], r["office"]): r for r in got["tables"]["days"]}
    expected = await expected_bookings(start, end, both)
    assert set(rows) == set(expected)
    for key, figures in expected.items():
        assert {k: rows[key][k] for k in figures} == figures, key
    # The definition of a booking is the seat counters' own: on the days booked
    # through the API, bookings equal the slots' stored counters.
    future = [r for r in rows.values() if r["day"] > (today() + timedelta(days=1)).isoformat()]
    assert any(r["bookings"] for r in future)
    names = await offices()
    for r in future:
        counters = sum(
            s["booked"]
            for s in await Slot.select().where(Slot.day == date.fromisoformat(r["day"]))
            if names[s["office"]] == r["office"]
        )
        assert r["bookings"] == counters, r
    # The blackout closed a GZ-TH day: no seats offered, couples moved off it.
    assert any(r["slot_seats"] == 0 and r["office"] == "GZ-TH" for r in future)

    got = await api(client, "lead-time", root, **_range(data))
    leads: dict[str, list[float]] = defaultdict(list)
    for a in await appointments(start, end, both):
        if a["confirmed_at"] is not None:
            leads[a["code"]].append((a["start_at"] - a["created_at"]).total_seconds() / 86400)
    everything = [v for values in leads.values() for v in values]
    edges = [0, 1, 3, 7, 14, 30]
    by_bucket = {r["bucket"]: r["bookings"] for r in got["tables"]["buckets"]}
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        name = f"{low}-{high}" if high else f"{low}+"
        assert by_bucket[name] == sum(
            1 for v in everything if (i == 0 or v >= low) and (high is None or v < high)
        ), name
    assert sum(by_bucket.values()) == len(everything) > 10
    for r in got["tables"]["offices"]:
        values = leads[r["office"]]
        assert r["bookings"] == len(values)
        assert r["median_days"] == round(statistics.median(values), 1)
        assert r["p90_days"] == nearest_rank_p90(values)

    got = await api(client, "cancellations", root, **_range(data))
    per: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for a in await appointments(start, end, both):
        per[(a["day"].isoformat(), a["code"])][a["status"]] += 1
    rows = {(r["day"], r["office"]): r for r in got["tables"]["days"]}
    assert set(rows) == set(per)
    for key, counts in per.items():
        total = sum(counts.values()) - counts["expired"]
        assert rows[key]["appointments"] == total
        assert rows[key]["cancelled"] == counts["cancelled"]
        assert rows[key]["no_show"] == counts["no_show"]
        assert rows[key]["expired"] == counts["expired"]
        assert rows[key]["cancel_rate_pct"] == pct(counts["cancelled"], total)
        assert rows[key]["no_show_rate_pct"] == pct(counts["no_show"], total - counts["cancelled"])
    assert sum(r["no_show"] for r in rows.values()) > 0
    assert sum(r["cancelled"] for r in rows.values()) > 0

    got = await api(client, "queue", root, **_range(data))
    events = await AppointmentEvent.select().where(AppointmentEvent.kind == "called")
    waits: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    for t in await QueueTicket.select():
        calls = [
            e["at"]
            for e in events
            if e["appointment"] == t["appointment"] and e["at"] >= t["checked_in_at"]
        ]
        wait = (min(calls) - t["checked_in_at"]).total_seconds() / 60 if calls else None
        waits[(t["day"].isoformat(), names[t["office"]])].append(wait)
    rows = {(r["day"], r["office"]): r for r in got["tables"]["offices"]}
    assert set(rows) == set(waits)
    for key, values in waits.items():
        called = [v for v in values if v is not None]
        assert rows[key]["tickets"] == len(values) and rows[key]["called"] == len(called)
        assert rows[key]["median_wait_min"] == (
            round(statistics.median(called), 1) if called else None
        )
        assert rows[key]["p90_wait_min"] == (nearest_rank_p90(called) if called else None)
    for r in got["tables"]["days"]:
        pooled = [
            v for (day, _), vs in waits.items() if day == r["day"] for v in vs if v is not None
        ]
        assert r["called"] == len(pooled)
        assert r["p90_wait_min"] == (nearest_rank_p90(pooled) if pooled else None)

    got = await api(client, "sms", root, **_range(data))
    owner = {
        a["id"]: names[a["office"]]
        for a in await Appointment.select(Appointment.id, Appointment.office)
    }
    zones = {r["code"]: ZoneInfo(r["timezone"]) for r in await Office.select()}
    assert zones["SZ-FT"] == ZoneInfo("Asia/Kolkata")
    sms: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    codes: Counter[str] = Counter()
    for m in await OutboxMessage.select():
        if m["appointment_id"] is None:
            continue
        day = m["created_at"].astimezone(zones[owner[m["appointment_id"]]]).date()
        if not start <= day <= end:
            continue
        c = sms[(day.isoformat(), owner[m["appointment_id"]])]
        c["messages"] += 1
        if m["status"] == "delivered":
            c["delivered"] += 1
        elif m["status"] in ("failed", "undelivered", "dead"):
            c["failed"] += 1
            codes[m["error_code"] or ""] += 1
        else:
            c["in_flight"] += 1
    rows = {(r["day"], r["office"]): r for r in got["tables"]["days"]}
    assert set(rows) == set(sms)
    for key, c in sms.items():
        assert {k: rows[key][k] for k in ("messages", "delivered", "failed", "in_flight")} == {
            k: c[k] for k in ("messages", "delivered", "failed", "in_flight")
        }
        assert rows[key]["delivery_rate_pct"] == pct(c["delivered"], c["delivered"] + c["failed"])
    assert {r["error_code"]: r["failures"] for r in got["tables"]["errors"]} == dict(codes)
    assert sum(c["in_flight"] for c in sms.values()) > 0  # the API's own code messages

    got = await api(client, "reschedule", root, **_range(data))
    runs = await RescheduleRun.select()
    assert [r["run"] for r in got["tables"]["runs"]] == [r["id"] for r in runs] and runs
    items = await RescheduleItem.select()
    for r in got["tables"]["runs"]:
        mine = [i for i in items if i["run"] == r["run"]]
        assert r["moved"] == sum(1 for i in mine if i["outcome"] == "moved")
        assert r["needs_rebooking"] == sum(1 for i in mine if i["outcome"] == "needs_rebooking")
        assert r["total"] == len(mine) > 0 and r["offices"] == "GZ-TH" and r["kind"] == "closed"
        run = next(x for x in runs if x["id"] == r["run"])
        assert r["notified"] == run["notified"] and r["status"] == "done"


# --- CSV ----------------------------------------------------------------------------------


def page_tables(text: str) -> dict[str, list[list[str]]]:
    """Each report table of a page as rows of cell texts (header first)."""
    tables = {}
    for match in re.finditer(
        r'<table class="list report" id="table-([\w-]+)">(.*?)</table>', text, re.S
    ):
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", match.group(2), re.S):
            rows.append(
                [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
            )
        tables[match.group(1)] = rows
    return tables


async def test_csv_is_the_table_on_the_page(
    client: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    await make_staff("root.pages", role="superadmin")
    await sign_in(client, "root.pages")
    for name in REPORTS:
        for locale in ("zh-Hans", "en"):
            page = await client.get(
                f"/staff/admin/reports/{name}", params=_range(data) | {"lang": locale}
            )
            assert page.status_code == 200, page.text
            assert page.text.count("<svg") >= 1 and 'role="img"' in page.text
            tables = page_tables(page.text)
            assert tables, name
            for table, rows in tables.items():
                link = re.search(rf'id="csv-{table}" href="([^"]+)"', page.text)
                assert link is not None
                resp = await client.get(html.unescape(link.group(1)))
                assert resp.status_code == 200
                assert resp.headers["content-type"] == "text/csv; charset=utf-8"
                disposition = resp.headers["content-disposition"]
                assert f"{data['from'].isoformat()}_{data['to'].isoformat()}.csv" in disposition
                assert resp.content.startswith(b"\xef\xbb\xbf")
                parsed = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
                assert parsed == rows, (name, table)
    # Chinese text survives the trip (headers are translated).
    resp = await client.get(
        "/staff/admin/reports/bookings",
        params=_range(data) | {"format": "csv", "table": "days", "lang": "zh-Hans"},
    )
    assert "登记处" in resp.content.decode("utf-8-sig").splitlines()[0]


# --- filters --------------------------------------------------------------------------------


async def test_office_and_range_filters_change_the_figures(
    client: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    root = data["root"]
    both = await api(client, "cancellations", root, **_range(data))
    only_sz = await api(client, "cancellations", root, **_range(data), office="SZ-FT")
    assert only_sz["offices"] == ["SZ-FT"]
    assert only_sz["tables"]["days"] == [
        r for r in both["tables"]["days"] if r["office"] == "SZ-FT"
    ]
    assert {r["office"] for r in both["tables"]["days"]} == {"GZ-TH", "SZ-FT"}
    # Both named explicitly: the same as the default (every office in scope).
    named = await client.get(
        "/api/v1/admin/reports/cancellations",
        params=[
            ("from", _range(data)["from"]),
            ("to", _range(data)["to"]),
            ("office", "GZ-TH"),
            ("office", "SZ-FT"),
        ],
        headers=root,
    )
    assert named.json()["tables"] == both["tables"]
    # A narrower range keeps exactly its days.
    first, last = today() - timedelta(days=3), today() - timedelta(days=2)
    narrow = await api(
        client, "bookings", root, **{"from": first.isoformat(), "to": last.isoformat()}
    )
    full = await api(client, "bookings", root, **_range(data))
    assert narrow["tables"]["days"] == [
        r for r in full["tables"]["days"] if first.isoformat() <= r["day"] <= last.isoformat()
    ]
    assert narrow["tables"]["days"]
    expected = await expected_bookings(first, last, {"GZ-TH", "SZ-FT"})
    assert sum(r["bookings"] for r in narrow["tables"]["days"]) == sum(
        e["bookings"] for e in expected.values()
    )
    # The default range is 30 days either side of today: upcoming bookings show too.
    default = await api(client, "bookings", root)
    assert default["to"] == (today() + timedelta(days=30)).isoformat()
    assert default["from"] == (today() - timedelta(days=30)).isoformat()
    # An admin of GZ-TH gets GZ-TH's figures only, by default.
    th = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    mine = await api(client, "sms", th, **_range(data))
    assert mine["offices"] == ["GZ-TH"]
    assert mine["tables"]["days"] == [
        r
        for r in (await api(client, "sms", root, **_range(data)))["tables"]["days"]
        if r["office"] == "GZ-TH"
    ]
    # Runs of blackouts over other offices are not listed.
    sz = await staff_token(client, "sz.admin", role="admin", offices=("SZ-FT",))
    assert (await api(client, "reschedule", sz, **_range(data)))["tables"]["runs"] == []
    assert await Blackout.count() == 1 and await BlackoutOffice.count() == 1


BAD_RANGES = [
    ({"from": "2026-03-10", "to": "2026-03-01"}, "to", "range-order"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "to", "range-too-long"),
    ({"from": "2026-13-01"}, "from", "report-date"),
    ({"to": "yesterday"}, "to", "report-date"),
    ({"from": "2026-3-1"}, "from", "report-date"),
]


async def test_bad_ranges_are_422(client: httpx.AsyncClient, db: None) -> None:
    root = await staff_token(client, "root.x", role="superadmin", offices=())
    await make_staff("root.page", role="superadmin")
    await sign_in(client, "root.page")
    for params, field, detail in BAD_RANGES:
        text = translate("en", f"error.invalid-input.{detail}", days=366)
        for name in ("bookings", "sms"):
            resp = await client.get(
                f"/api/v1/admin/reports/{name}",
                params=params,
                headers=root | {"Accept-Language": "en"},
            )
            assert resp.status_code == 422, params
            assert resp.headers["content-type"].startswith("application/problem+json")
            body = resp.json()
            assert body["type"].endswith("/invalid-input") and body["field"] == field
            assert body["detail"] == text
        resp = await client.get("/api/v1/admin/audit", params=params, headers=root)
        assert resp.status_code == 422 and resp.json()["field"] == field
        for path in ("/staff/admin/reports/queue", "/staff/admin/audit"):
            page = await client.get(path, params=params | {"lang": "en"})
            assert page.status_code == 422 and html.escape(text) in page.text, (path, params)
            assert 'name="from"' in page.text  # the form is there to correct it
    # 366 days is allowed.
    ok = await client.get(
        "/api/v1/admin/reports/bookings",
        params={"from": "2025-01-01", "to": "2026-01-01"},
        headers=root,
    )
    assert ok.status_code == 200


# --- permissions ------------------------------------------------------------------------------

PAGES = [f"/staff/admin/reports/{n}" for n in REPORTS] + [
    "/staff/admin/audit",
    "/staff/admin/reports",
]
CSVS = ["/staff/admin/reports/bookings?format=csv&table=days", "/staff/admin/audit?format=csv"]
APIS = [f"/api/v1/admin/reports/{n}" for n in REPORTS] + ["/api/v1/admin/audit"]


async def test_who_may_see_what(client: httpx.AsyncClient, db: None) -> None:
    from tests.helpers import make_office

    await make_office(code="GZ-TH", days_ahead=2)
    await make_office(code="SZ-FT", days_ahead=2)
    for path in PAGES + CSVS:
        resp = await client.get(path)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login"), path
    for path in APIS:
        resp = await client.get(path)
        assert resp.status_code == 401, path
        assert resp.headers["content-type"].startswith("application/problem+json")
    clerk = await staff_token(client, "th.clerk", role="clerk", offices=("GZ-TH",))
    for path in APIS:
        assert (await client.get(path, headers=clerk)).status_code == 403, path
    admin = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    for path in APIS:
        assert (await client.get(path, headers=admin)).status_code == 200, path
        other = await client.get(path, params={"office": "SZ-FT"}, headers=admin)
        assert other.status_code == 404, path
        assert (
            await client.get(path, params={"office": "NO-SUCH"}, headers=admin)
        ).status_code == 404
    assert (await client.get("/api/v1/admin/reports/nothing", headers=admin)).status_code == 404

    await make_staff("th.clerk2", offices=("GZ-TH",))
    await sign_in(client, "th.clerk2")
    for path in PAGES + CSVS:
        assert (await client.get(path)).status_code == 403, path
    home = await client.get("/staff/")
    assert "/staff/admin/reports" not in home.text

    client.cookies.clear()
    await make_staff("th.admin2", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin2")
    home = await client.get("/staff/")
    assert "/staff/admin/reports" in home.text and "/staff/admin/audit" in home.text
    for path in PAGES + CSVS:
        resp = await client.get(path, follow_redirects=True)
        assert resp.status_code == 200, path
        other = await client.get(path, params={"office": "SZ-FT"}, follow_redirects=True)
        assert other.status_code == 404, path
    assert (await client.get("/staff/admin/reports/nothing")).status_code == 404
    assert (
        await client.get("/staff/admin/reports/bookings", params={"format": "csv", "table": "nope"})
    ).status_code == 404
    page = await client.get("/staff/admin/reports/bookings")
    assert 'value="SZ-FT"' not in page.text and 'value="GZ-TH"' in page.text


async def test_odd_input_is_never_a_server_error(client: httpx.AsyncClient, db: None) -> None:
    from tests.helpers import make_office

    await make_office(code="GZ-TH", days_ahead=2)
    root = await staff_token(client, "root.odd", role="superadmin", offices=())
    odd = [
        {"office": "\x00"},
        {"office": "X" * 5000},
        {"office": "GZ-TH", "from": "２０２６-０１-０１"},
        {"from": "0000-00-00"},
        {"from": "9999-12-31"},
        {"to": "0001-01-01"},
        {"page": "abc", "actor": "%", "action": "'; DROP TABLE audit_log; --"},
        {"page": "99999999999999999999", "actor": "\x00", "action": "\x00"},
        {"format": "csv", "table": "\x00"},
    ]
    for params in odd:
        for path in [f"/api/v1/admin/reports/{n}" for n in REPORTS] + ["/api/v1/admin/audit"]:
            resp = await client.get(path, params=params, headers=root)
            assert resp.status_code in (200, 404, 422), (path, params, resp.text)
    await make_staff("root.oddpage", role="superadmin")
    await sign_in(client, "root.oddpage")
    for params in odd:
        for path in ("/staff/admin/reports/sms", "/staff/admin/audit"):
            resp = await client.get(path, params=params)
            assert resp.status_code in (200, 404, 422), (path, params, resp.text)
    assert await AuditLog.count() >= 2  # the accounts and their sign-ins, nothing dropped
