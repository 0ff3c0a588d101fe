"""The audit log page and API: every filter (actor, office, action, local dates) finds
exactly the matching entries, newest first, page by page; admins see their offices'
entries (actions over several offices included), superadmins all; a reveal of
personal data and an admin's change both appear; CSV holds every match."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.tables import AuditLog, Office
from tests.helpers import make_office, staff_token
from tests.test_desk_pages import confirmed_today, make_staff, sign_in

TZ = ZoneInfo("Asia/Shanghai")
ACTIONS = ("office.update", "queue.check_in", "sms.resend", "policy.update")


def local_today() -> date:
    return datetime.now(UTC).astimezone(TZ).date()


@pytest.fixture
async def log(client: httpx.AsyncClient, db: None) -> dict[str, Any]:
    """Three offices; real entries (sign-ins, a two-office blackout declared and lifted,
    a one-office blackout, a reveal) and 130 written ones over 40 past days."""
    for code in ("GZ-TH", "SZ-FT", "DG-NC"):
        await make_office(code=code, days_ahead=3)
    root = await staff_token(client, "root.admin", role="superadmin", offices=())
    th = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    clerk = await staff_token(client, "th.clerk", role="clerk", offices=("GZ-TH",))
    await staff_token(client, "sz.clerk", role="clerk", offices=("SZ-FT",))
    day = (local_today() + timedelta(days=2)).isoformat()
    declared = []
    for offices in (["GZ-TH", "SZ-FT"], ["SZ-FT"]):
        body = {
            "offices": offices,
            "start_date": day,
            "end_date": day,
            "kind": "no_new_bookings",
            "reason": {"zh-Hans": "演练"},
        }
        # Over two offices the declaration carries its preview's token (issue 14).
        dry = await client.post(
            "/api/v1/admin/blackouts", headers=root, json=body | {"dry_run": True}
        )
        token = dry.json()["preview_token"]
        resp = await client.post(
            "/api/v1/admin/blackouts", headers=root, json=body | {"preview_token": token}
        )
        assert resp.status_code in (200, 202), resp.text
        declared.append(resp.json()["blackout"]["id"])
    lifted = await client.delete(f"/api/v1/admin/blackouts/{declared[0]}", headers=root)
    assert lifted.status_code == 200, lifted.text
    # An admin's change at their office; a superadmin's suspension over two offices, lifted.
    changed = await client.patch("/api/v1/admin/offices/GZ-TH", json={"counters": 3}, headers=th)
    assert changed.status_code == 200, changed.text
    suspended = await client.post(
        "/api/v1/admin/suspensions",
        headers=root,
        json={
            "offices": ["GZ-TH", "DG-NC"],
            "service": "marriage",
            "start_date": day,
            "end_date": day,
            "reason": {"zh-Hans": "疫情防控"},
        },
    )
    assert suspended.status_code == 201, suspended.text
    suspension = suspended.json()["id"]
    resumed = await client.delete(f"/api/v1/admin/suspensions/{suspension}", headers=root)
    assert resumed.status_code == 200, resumed.text
    couple = (await confirmed_today("GZ-TH"))[0]
    resp = await client.post(
        f"/api/v1/offices/GZ-TH/appointments/{couple['reference']}/reveal", headers=clerk
    )
    assert resp.status_code == 200, resp.text
    ids = {r["code"]: r["id"] for r in await Office.select(Office.id, Office.code)}
    rng = random.Random(11)
    for n in range(130):
        back = rng.randint(1, 40)
        # Some at 16:30 UTC = 00:30 the next local day: local dates decide.
        at = datetime.combine(local_today() - timedelta(days=back), time(16, 30), UTC)
        at -= timedelta(minutes=rng.choice([0, 60, 600]))
        action = rng.choice(ACTIONS)
        office = None if action == "policy.update" else rng.choice(list(ids.values()))
        await AuditLog.insert(
            AuditLog(
                actor_id=None,
                actor_name=rng.choice(["th.admin", "sz.admin", "root.admin"]),
                action=action,
                office_id=office,
                object_type="test",
                object_id=str(n),
                before={"cap": n},
                after={"cap": n + 1},
                at=at,
            )
        )
    return {
        "root": root,
        "th": th,
        "clerk": clerk,
        "ids": ids,
        "blackouts": declared,
        "couple": couple,
        "suspension": suspension,
    }


# --- the expected entries, from the audit table and the rules written out here -------


async def entries() -> list[dict[str, Any]]:
    rows = await AuditLog.select().order_by(AuditLog.at, ascending=False).output(load_json=True)
    return sorted(rows, key=lambda r: (r["at"], r["id"]), reverse=True)


def names_office(entry: dict[str, Any], codes: set[str]) -> bool:
    values = [v for v in (entry["before"], entry["after"]) if isinstance(v, dict)]
    return any(c in json.dumps(v) for v in values for c in (f'"{x}"' for x in codes))


def belongs(
    entry: dict[str, Any], all_rows: list[dict[str, Any]], ids: set[int], codes: set[str]
) -> bool:
    if entry["office_id"] is not None:
        return entry["office_id"] in ids
    if names_office(entry, codes):
        return True
    return any(
        other["id"] != entry["id"]
        and other["object_type"] == entry["object_type"]
        and other["object_id"] == entry["object_id"]
        and (
            other["office_id"] in ids or (other["office_id"] is None and names_office(other, codes))
        )
        for other in all_rows
    )


async def listed(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[int]:
    """Every entry id the API lists for these filters, page after page."""
    found: list[int] = []
    page = 1
    while True:
        resp = await client.get(
            "/api/v1/admin/audit", params=params | {"page": page}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["entries"]) <= 50
        found += [e["id"] for e in body["entries"]]
        if page * 50 >= body["total"]:
            assert len(found) == body["total"]
            return found
        page += 1


async def test_filters_find_exactly_the_matching_entries(
    client: httpx.AsyncClient, log: dict[str, Any]
) -> None:
    rows = await entries()
    ids, root = log["ids"], log["root"]
    start, end = local_today() - timedelta(days=40), local_today()
    window = {"from": start.isoformat(), "to": end.isoformat()}

    def local_day(r: dict[str, Any]) -> date:
        return r["at"].astimezone(TZ).date()

    def expect(pred: Any, first: date = start, last: date = end) -> list[int]:
        return [r["id"] for r in rows if first <= local_day(r) <= last and pred(r)]

    assert await listed(client, root, **window) == expect(lambda r: True)
    assert len(expect(lambda r: True)) > 100  # several pages
    for actor in ("th.admin", "root.admin", "th.clerk"):
        assert await listed(client, root, **window, actor=actor) == expect(
            lambda r, a=actor: r["actor_name"] == a
        )
    for action in ("sms.resend", "policy.update", "blackout.declare", "appointment.reveal"):
        got = await listed(client, root, **window, action=action)
        assert got == expect(lambda r, a=action: r["action"] == a) and got, action
    for code in ("GZ-TH", "SZ-FT", "DG-NC"):
        got = await listed(client, root, **window, office=code)
        assert got == expect(lambda r, c=code: belongs(r, rows, {ids[c]}, {c})), code
    first, last = local_today() - timedelta(days=12), local_today() - timedelta(days=5)
    narrow = {"from": first.isoformat(), "to": last.isoformat()}
    assert await listed(client, root, **narrow) == expect(lambda r: True, first, last)
    combined = await listed(
        client, root, **narrow, office="GZ-TH", action="office.update", actor="sz.admin"
    )
    assert combined == expect(
        lambda r: (
            r["office_id"] == ids["GZ-TH"]
            and r["action"] == "office.update"
            and r["actor_name"] == "sz.admin"
        ),
        first,
        last,
    )
    # Default range: the last 30 days.
    month = expect(lambda r: True, local_today() - timedelta(days=29), local_today())
    assert await listed(client, root) == month


async def test_admins_see_their_offices_entries(
    client: httpx.AsyncClient, log: dict[str, Any]
) -> None:
    rows = await entries()
    ids = log["ids"]
    window = {
        "from": (local_today() - timedelta(days=40)).isoformat(),
        "to": local_today().isoformat(),
    }
    seen = await listed(client, log["th"], **window)
    expected = [r["id"] for r in rows if belongs(r, rows, {ids["GZ-TH"]}, {"GZ-TH"})]
    assert seen == expected
    by_id = {r["id"]: r for r in rows}
    actions = {(by_id[i]["action"], by_id[i]["object_id"]) for i in seen}
    two_offices = str(log["blackouts"][0])
    # The blackout over GZ-TH and SZ-FT: declared (office named in its values) and
    # lifted (placed through the declaration); the SZ-FT-only one is not shown.
    assert ("blackout.declare", two_offices) in actions and (
        "blackout.lift",
        two_offices,
    ) in actions
    assert ("blackout.declare", str(log["blackouts"][1])) not in actions
    # The reveal of personal data at GZ-TH, and the GZ-TH staff's sign-ins, are shown;
    # sign-ins of SZ-FT's clerk and of the superadmin, and policy changes, are not.
    assert ("appointment.reveal", log["couple"]["reference"]) in actions
    # The admin's own change, and a suspension over GZ-TH and DG-NC with its lifting.
    assert ("office.update", "GZ-TH") in actions
    assert ("service.suspend", str(log["suspension"])) in actions
    assert ("service.resume", str(log["suspension"])) in actions
    logins = {by_id[i]["actor_name"] for i in seen if by_id[i]["action"] == "staff.login"}
    assert logins == {"th.admin", "th.clerk"}
    assert not any(by_id[i]["action"] == "policy.update" for i in seen)
    assert not any(by_id[i]["office_id"] == ids["SZ-FT"] for i in seen)
    # Another office asked for explicitly: 404; a clerk: 403.
    resp = await client.get("/api/v1/admin/audit", params={"office": "SZ-FT"}, headers=log["th"])
    assert resp.status_code == 404
    assert (await client.get("/api/v1/admin/audit", headers=log["clerk"])).status_code == 403
    # The superadmin sees every entry.
    assert len(await listed(client, log["root"], **window)) == len(rows)


async def test_page_shows_entries_with_changes_pages_and_csv(
    client: httpx.AsyncClient, log: dict[str, Any]
) -> None:
    rows = await entries()
    await make_staff("root.page", role="superadmin")
    await sign_in(client, "root.page")
    rows = await entries()  # the page sign-in is an entry too
    window = {
        "from": (local_today() - timedelta(days=40)).isoformat(),
        "to": local_today().isoformat(),
    }
    page = await client.get("/staff/admin/audit", params=window | {"lang": "en"})
    assert page.status_code == 200
    shown = [int(i) for i in re.findall(r'<tr id="audit-(\d+)"', page.text)]
    assert shown == [r["id"] for r in rows][:50]
    assert f"{len(rows)} entries, page 1 of {-(-len(rows) // 50)}" in page.text
    nxt = re.search(r'rel="next" href="([^"]+)"', page.text)
    assert nxt is not None
    second = await client.get(nxt.group(1).replace("&amp;", "&"))
    assert [int(i) for i in re.findall(r'<tr id="audit-(\d+)"', second.text)] == [
        r["id"] for r in rows
    ][50:100]
    # Before and after, readably: the written "cap" change of one entry.
    sample = next(r for r in rows if r["object_type"] == "test" and r["id"] in shown)
    row_html = page.text.split(f'<tr id="audit-{sample["id"]}"')[1].split("</tr>")[0]
    assert (
        "<dt>cap</dt>" in row_html
        and f"<del>{sample['before']['cap']}</del> → <ins>{sample['after']['cap']}</ins>"
        in row_html
    )
    # The reveal shows who and which appointment, never the revealed numbers.
    assert log["couple"]["reference"] in page.text
    assert (
        log["couple"]["a"]["id_number"] not in page.text
        and log["couple"]["a"]["phone"] not in page.text
    )
    # Filters on the page: the action select narrows to exactly those entries.
    only = await client.get("/staff/admin/audit", params=window | {"action": "appointment.reveal"})
    assert [int(i) for i in re.findall(r'<tr id="audit-(\d+)"', only.text)] == [
        r["id"] for r in rows if r["action"] == "appointment.reveal"
    ]
    link = re.search(r'id="audit-csv" href="([^"]+)"', page.text)
    assert link is not None
    resp = await client.get(link.group(1).replace("&amp;", "&"))
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert f"audit_{window['from']}_{window['to']}.csv" in resp.headers["content-disposition"]
    parsed = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert len(parsed) == 1 + len(rows)
    assert [p[2] for p in parsed[1:]] == [r["action"] for r in rows]
    by_action = next(p for p in parsed[1:] if p[4] == "test")
    assert json.loads(by_action[6])["cap"] + 1 == json.loads(by_action[7])["cap"]
