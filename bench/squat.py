"""Seat squatting (issue 13.3): fabricated couples try to hold a whole day while real
couples book it.

A hold needs no proof: ID numbers with valid checksums are easy to compute and a
phone number costs nothing to make up when nobody has to answer its code. Before
the fix 39 such couples from 39 addresses emptied a day for 15 minutes. Now at most
HOLD_UNCONFIRMED_PERCENT (50 %) of a slot's and of a day's seats may be held
unconfirmed, and a hold that nobody starts confirming lapses after
HOLD_UNSTARTED_MINUTES; the per-address limit is only a flood ceiling. Beyond the
share a hold waits for both codes without a seat, and a slot takes at most
HOLD_WAITING_PER_FREE_SEAT (1) such waiting holds per seat not taken (issue 16):
squatters fill those places too, so a real couple refused ``slot-full`` joins the
day's waiting list, verifies both phones there and is offered one of the seats
the squatters' waiting holds cannot take (they never confirm).

The squatters: ``--squatters`` addresses (127.0.1.N), each sending fabricated
couples (fresh valid IDs and phones every time) at every slot of the day, over and
over. The real couples: all from ONE address (a carrier's CGNAT address, as on a
hot morning), each booking the first slot it can get and confirming both codes
(read from the database, as their phones would receive them). The run reports how
many seats the squatters held, and whether every real couple got a confirmed
booking (directly or through the waiting list).

    .venv/bin/python bench/squat.py [--squatters 50] [--couples 20] [--rounds 3]

``run_squat`` is also what tests/test_squatting.py drives in process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The codes texted for a reference (appointment or waiting-list entry), per role,
# from the messages of one template: what the partners' phones received.
Codes = Callable[[str, str], Awaitable[dict[str, str]]]
Client = Callable[[str], httpx.AsyncClient]
REAL_ADDRESS = "100.64.0.1"  # RFC 6598 shared address space: a carrier's NAT


def fabricated(rng: random.Random, n: int) -> dict[str, str]:
    """A made-up person with a valid ID checksum and a made-up +86 mobile."""
    from scheduler.domain.identity import make_mainland_id

    birth = f"19{rng.randint(70, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return {
        "name": f"假{n}",
        "id_type": "mainland_id",
        "id_number": make_mainland_id(f"440106{birth}{rng.randint(0, 999):03d}"),
        "phone": f"+86139{rng.randint(0, 99_999_999):08d}",
    }


def real(n: int) -> dict[str, str]:
    from scheduler.domain.identity import make_mainland_id

    return {
        "name": f"真{n}",
        "id_type": "mainland_id",
        "id_number": make_mainland_id(f"44010619850101{n % 1000:03d}"[:17]),
        "phone": f"+86137{n:08d}",
    }


@dataclass
class Outcome:
    squatter_statuses: Counter[str] = field(default_factory=Counter)
    squatter_holds: int = 0
    couples_confirmed: list[str] = field(default_factory=list)
    couples_refusals: Counter[str] = field(default_factory=Counter)
    # Of the confirmed couples, those whose seat came as a waiting-list offer.
    couples_via_waitlist: int = 0

    def summary(self) -> str:
        return (
            f"squatters: {self.squatter_holds} holds,"
            f" answers {dict(self.squatter_statuses)}; real couples confirmed:"
            f" {len(self.couples_confirmed)} ({self.couples_via_waitlist} through the"
            f" waiting list), refusals on the way {dict(self.couples_refusals)}"
        )


def _slug(resp: httpx.Response) -> str:
    if resp.status_code < 400:
        return str(resp.status_code)
    try:
        return f"{resp.status_code} {str(resp.json().get('type', '')).rsplit('/', 1)[-1]}"
    except ValueError:
        return str(resp.status_code)


async def _squatter(
    client: httpx.AsyncClient, slots: list[int], rounds: int, seed: int, out: Outcome
) -> None:
    rng = random.Random(seed)
    order = list(slots)
    for r in range(rounds):
        rng.shuffle(order)
        for n, slot_id in enumerate(order):
            body = {
                "slot_id": slot_id,
                "service": "marriage",
                "locale": "zh-Hans",
                "party_a": fabricated(rng, 2 * (r * len(order) + n)),
                "party_b": fabricated(rng, 2 * (r * len(order) + n) + 1),
            }
            resp = await client.post("/api/v1/appointments", json=body)
            out.squatter_statuses[_slug(resp)] += 1
            out.squatter_holds += resp.status_code == 201


@dataclass(frozen=True)
class Day:
    office: str  # the office's code
    date: str  # ISO date
    slots: list[int]


async def _confirm_both(
    client: httpx.AsyncClient, url: str, sent: dict[str, str]
) -> dict[str, object]:
    for role in ("a", "b"):
        done = await client.post(url, json={"party": role, "code": sent[role]})
        assert done.status_code == 200, done.text
    return dict(done.json())


async def _couple(client: httpx.AsyncClient, day: Day, n: int, codes: Codes, out: Outcome) -> None:
    """Book the first slot with room and confirm both codes; on a refusal try the next
    slot; refused at every slot of the day, join its waiting list instead."""
    a, b = real(2 * n), real(2 * n + 1)
    for attempt in range(len(day.slots)):
        slot_id = day.slots[(n + attempt) % len(day.slots)]
        body = {"slot_id": slot_id, "service": "marriage", "locale": "zh-Hans"}
        resp = await client.post("/api/v1/appointments", json=body | {"party_a": a, "party_b": b})
        if resp.status_code != 201:
            out.couples_refusals[_slug(resp)] += 1
            await asyncio.sleep(0.01)
            continue
        reference = resp.json()["reference"]
        url = f"/api/v1/appointments/{reference}/confirm"
        done = await _confirm_both(client, url, await codes(reference, "code"))
        assert done["status"] == "confirmed", done
        out.couples_confirmed.append(reference)
        return
    await _wait_listed(client, day, a, b, codes, out)


async def _wait_listed(
    client: httpx.AsyncClient,
    day: Day,
    a: dict[str, str],
    b: dict[str, str],
    codes: Codes,
    out: Outcome,
) -> None:
    """Join the day's waiting list, verify both phones, confirm the seat offered."""
    body = {"service": "marriage", "date": day.date, "offices": [day.office], "locale": "zh-Hans"}
    resp = await client.post("/api/v1/waitlist", json=body | {"party_a": a, "party_b": b})
    assert resp.status_code == 201, resp.text
    entry = resp.json()["reference"]
    url = f"/api/v1/waitlist/{entry}/confirm"
    joined = await _confirm_both(client, url, await codes(entry, "waitlist_code"))
    offer = joined.get("offer")
    if not isinstance(offer, dict):  # no seat free now: the couple waits for one
        out.couples_refusals[f"waitlist {joined['status']}"] += 1
        return
    reference = str(offer["reference"])
    url = f"/api/v1/appointments/{reference}/confirm"
    done = await _confirm_both(client, url, await codes(reference, "waitlist_offer"))
    assert done["status"] == "confirmed", done
    out.couples_confirmed.append(reference)
    out.couples_via_waitlist += 1


async def run_squat(
    client_at: Client,
    day: Day,
    codes: Codes,
    *,
    squatters: int = 50,
    couples: int = 20,
    rounds: int = 3,
) -> Outcome:
    """Squatters (one address each) and real couples (one shared address) at once."""
    out = Outcome()
    clients = [client_at(f"127.0.1.{i + 1}") for i in range(squatters)]
    shared = client_at(REAL_ADDRESS)
    try:
        squatting = [_squatter(c, day.slots, rounds, seed, out) for seed, c in enumerate(clients)]
        booking = [_couple(shared, day, n, codes, out) for n in range(couples)]
        await asyncio.gather(*squatting, *booking)
    finally:
        for c in [*clients, shared]:
            await c.aclose()
    return out


async def _day_slots(base: str, office: str) -> tuple[str, list[int], int]:
    from datetime import date, timedelta

    start = date.today() + timedelta(days=2)
    async with httpx.AsyncClient(base_url=base) as c:
        resp = await c.get(
            f"/api/v1/offices/{office}/availability",
            params={
                "service": "marriage",
                "from": start.isoformat(),
                "to": (start + timedelta(days=14)).isoformat(),
            },
        )
        resp.raise_for_status()
    day = next(d for d in resp.json()["days"] if d["status"] == "open" and d["slots"])
    return day["date"], [s["id"] for s in day["slots"]], sum(s["remaining"] for s in day["slots"])


async def main() -> None:
    from _common import (
        REPO,
        Db,
        Server,
        bench_offices_toml,
        free_port,
        scheduler_cli,
        service_env,
    )

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--squatters", type=int, default=50)
    p.add_argument("--couples", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--capacity", type=int, default=4, help="seats per slot")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="squat-"))
    url = f"sqlite:///{tmp}/squat.sqlite3"
    env = service_env(url, free_port(), pool=4, log_level="WARNING")
    # The defaults of config/example.env: the per-address ceiling, per ID and phone,
    # texts per number per day, the unconfirmed-hold share and the short first hold.
    for name in ("RATE_LIMIT_SMS_PER_MINUTE", "RATE_LIMIT_ID_PER_HOUR"):
        env.pop(name, None)
    env.update({"RATE_LIMIT_PHONE_PER_HOUR": "10", "HOLD_UNCONFIRMED_PERCENT": "50"})
    scheduler_cli(env, REPO, "migrate")
    (tmp / "offices.toml").write_text(bench_offices_toml(args.capacity), encoding="utf-8")
    scheduler_cli(env, REPO, "seed-demo", "--file", str(tmp / "offices.toml"))
    server = Server(env, REPO, tmp / "server.log")
    db = Db(url)

    async def codes(reference: str, template: str) -> dict[str, str]:
        assert template in ("code", "waitlist_code", "waitlist_offer"), template
        rows = await db.fetch(
            f"SELECT key, payload FROM outbox_message WHERE template = '{template}'"  # noqa: S608
        )
        payloads = [(r["key"], json.loads(r["payload"])) for r in rows]
        return {k.rsplit(":", 1)[1]: p["code"] for k, p in payloads if p["reference"] == reference}

    try:
        await server.wait_ready()
        base = f"http://127.0.0.1:{server.port}"
        day, slots, seats = await _day_slots(base, "BENCH")

        def client_at(address: str) -> httpx.AsyncClient:
            transport = httpx.AsyncHTTPTransport(local_address=address)
            return httpx.AsyncClient(base_url=base, transport=transport, timeout=30)

        print(f"{day}: {len(slots)} slots, {seats} seats; {args.squatters} squatter addresses,")
        print(f"{args.couples} real couples behind one address ({REAL_ADDRESS} -> 127.0.0.1)")
        out = await run_squat(
            lambda a: client_at("127.0.0.1" if a == REAL_ADDRESS else a),
            Day("BENCH", day, slots),
            codes,
            squatters=args.squatters,
            couples=args.couples,
            rounds=args.rounds,
        )
        print(out.summary())
        rows = await db.fetch(
            "SELECT status, awaiting_seat, COUNT(*) AS n FROM appointment"
            " GROUP BY status, awaiting_seat"
        )
        count = {(r["status"], bool(r["awaiting_seat"])): r["n"] for r in rows}
        texts = await db.fetch("SELECT COUNT(*) AS n FROM outbox_message")
        print(
            f"at the end, of {seats} seats: {count.get(('confirmed', False), 0)} confirmed,"
            f" {count.get(('pending_confirmation', False), 0)} held unconfirmed;"
            f" {count.get(('pending_confirmation', True), 0)} holds waiting for codes"
            f" (no seat); {texts[0]['n']} texts queued"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
