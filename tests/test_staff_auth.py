"""Staff sign-in: passwords, growing delays (never a lockout), sessions (cookie and
bearer), guards, audit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from litestar import get

from scheduler.db.tables import AuditLog, Staff, StaffSession
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import hash_token
from scheduler.settings import get_settings
from scheduler.usecases.staff import accounts as staff
from scheduler.usecases.staff.accounts import LoginRefused
from scheduler.web.auth import (
    COOKIE,
    LOGIN_ATTEMPTS_PER_MINUTE,
    require_staff,
    requires_role,
    safe_next,
)
from tests.helpers import make_office

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with test-sized costs: the code paths are the same, the seconds are not."""
    monkeypatch.setattr(
        staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    staff._dummy_hash.cache_clear()
    yield
    staff._dummy_hash.cache_clear()


async def make_staff(
    username: str = "li.clerk", role: str = "clerk", offices: tuple[str, ...] = ("GZ-TH",)
) -> int:
    return await staff.create_staff(
        username=username, password=PASSWORD, role=role, office_codes=list(offices), now=NOW
    )


async def api_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/staff/login", json={"username": username, "password": password}
    )


async def page_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/staff/login", params={"next": "/staff/sms"})
    assert page.status_code == 200
    data = {"username": username, "password": password, "next": "/staff/sms"}
    return await client.post(
        "/staff/login", data={**data, "_csrf_token": client.cookies.get("csrftoken") or ""}
    )


async def actions(username: str) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(AuditLog.actor_name == username)
    return [r["action"] for r in sorted(rows, key=lambda r: r["action"])]


@pytest.fixture
async def office(db: None) -> int:
    return await make_office(code="GZ-TH", days_ahead=3)


async def test_create_staff_refuses_weak_passwords_and_bad_input(office: int) -> None:
    for kwargs, field in [
        ({"password": "short"}, "password"),
        ({"password": "0123456789"}, None),  # 10 characters are enough
        ({"username": "x"}, "username"),
        ({"role": "root"}, "role"),
        ({"office_codes": []}, "office"),
        ({"office_codes": ["NOPE"]}, "office"),
    ]:
        base = {"username": "li.clerk", "password": PASSWORD, "role": "clerk"}
        args: dict[str, Any] = base | {"office_codes": ["GZ-TH"]} | kwargs
        if field is None:
            await staff.create_staff(**args, now=NOW)
            continue
        with pytest.raises(DomainError) as refused:
            await staff.create_staff(**args, now=NOW)
        assert refused.value.slug == "invalid-input" and refused.value.field == field
    with pytest.raises(DomainError, match="invalid-input"):
        await make_staff("LI.CLERK")  # usernames are case-insensitive: taken
    row = await Staff.select().where(Staff.username == "li.clerk").first()
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]


def run_cli(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "create-staff", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )


async def test_create_staff_command(client: httpx.AsyncClient, office: int) -> None:
    weak = run_cli("--username", "boss", "--role", "superadmin", password="123456789")
    assert weak.returncode == 1 and "too weak" in weak.stderr
    made = run_cli("--username", "boss", "--role", "superadmin", password=PASSWORD)
    assert made.returncode == 0, made.stderr
    clerk = run_cli("--username", "wang", "--role", "clerk", "--office", "gz-th", password=PASSWORD)
    assert clerk.returncode == 0, clerk.stderr
    resp = await api_login(client, "boss", PASSWORD)
    assert resp.status_code == 200 and resp.json()["staff"]["role"] == "superadmin"
    resp = await api_login(client, "wang", PASSWORD)
    assert resp.json()["staff"]["offices"] == ["GZ-TH"]
    assert await actions("command-line") == ["staff.create", "staff.create"]


async def test_page_login_sets_a_safe_session_cookie(
    client: httpx.AsyncClient, office: int
) -> None:
    await make_staff()
    resp = await page_login(client, "li.clerk", PASSWORD)
    assert resp.status_code == 303 and resp.headers["location"] == "/staff/sms"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http:// in tests
    home = await client.get("/staff/")
    assert home.status_code == 200 and "li.clerk" in home.text
    stored = await StaffSession.select(StaffSession.kind, StaffSession.token_hash)
    assert [s["kind"] for s in stored] == ["cookie"]
    assert stored[0]["token_hash"] == hash_token(client.cookies[COOKIE])
    # Signing out ends the session server-side and clears the cookie.
    out = await client.post(
        "/staff/logout", data={"_csrf_token": client.cookies.get("csrftoken") or ""}
    )
    assert out.status_code == 303 and out.headers["location"] == "/staff/login"
    assert await StaffSession.count() == 0
    assert (await client.get("/staff/")).status_code == 303
    assert await actions("li.clerk") == ["staff.login", "staff.logout"]


async def test_login_page_refusal_is_shown_in_the_form(
    client: httpx.AsyncClient, office: int
) -> None:
    await make_staff()
    resp = await page_login(client, "li.clerk", "wrong password!")
    assert resp.status_code == 401
    assert "用户名或密码不正确" in resp.text and 'value="li.clerk"' in resp.text
    assert COOKIE not in resp.headers.get("set-cookie", "")


async def test_form_without_csrf_token_is_refused(client: httpx.AsyncClient, office: int) -> None:
    await make_staff()
    await client.get("/staff/login")
    resp = await client.post("/staff/login", data={"username": "li.clerk", "password": PASSWORD})
    assert resp.status_code == 403
    assert await StaffSession.count() == 0


async def test_wrong_password_and_unknown_user_read_the_same(
    client: httpx.AsyncClient, office: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_staff()
    checked: list[str] = []
    real_verify = staff._verify

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(staff, "_verify", spy)
    wrong = await api_login(client, "li.clerk", "not the password")
    unknown = await api_login(client, "nobody", "not the password")
    for resp in (wrong, unknown):
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["type"].endswith("/invalid-credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]
    # The unknown username cost a password check too (against the dummy hash).
    assert len(checked) == 2 and all(h.startswith("$argon2id$") for h in checked)
    assert await actions("li.clerk") == ["staff.login.failed"]
    assert await actions("nobody") == ["staff.login.failed"]


def _client_at(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failures_never_lock_the_clerk_out(app: Any, office: int) -> None:
    """An attacker hammering the account from one address waits longer and longer;
    the clerk, from the office's address, signs in with the right password at once."""
    await make_staff()
    async with _client_at(app, "198.51.100.66") as attacker, _client_at(app, "10.0.0.7") as clerk:
        answers = [await api_login(attacker, "li.clerk", f"guess {n}") for n in range(1, 7)]
        assert [r.status_code for r in answers] == [401, 401, 401, 401, 429, 429]
        assert answers[4].json()["type"].endswith("/login-throttled")
        assert int(answers[4].headers["retry-after"]) == 30
        # Still waiting: refused without a password check, even the right password.
        assert (await api_login(attacker, "li.clerk", PASSWORD)).status_code == 429
        signed = await api_login(clerk, "li.clerk", PASSWORD)
        assert signed.status_code == 200, signed.text
    row = await Staff.select().where(Staff.username == "li.clerk").first()
    assert row["locked_until"] is None
    assert "staff.login.throttled" in await actions("li.clerk")


async def test_delays_grow_and_a_success_starts_afresh(office: int) -> None:
    await make_staff()
    ip = "198.51.100.66"
    now, waits = NOW, []
    for attempt in range(8):
        with pytest.raises(LoginRefused) as refused:
            await staff.login(
                "li.clerk",
                f"wrong {attempt}",
                kind="bearer",
                ip=ip,
                now=now,
                settings=get_settings(),
            )
        waits.append(refused.value.retry_after)
        now += timedelta(seconds=refused.value.retry_after)
    assert waits == [0, 0, 0, 0, 30, 60, 120, 240]
    with pytest.raises(LoginRefused, match="login-throttled") as early:
        await staff.login(
            "li.clerk",
            PASSWORD,
            kind="bearer",
            ip=ip,
            now=now - timedelta(seconds=1),
            settings=get_settings(),
        )
    assert early.value.retry_after == 1
    await staff.login("li.clerk", PASSWORD, kind="bearer", ip=ip, now=now, settings=get_settings())
    with pytest.raises(LoginRefused, match="invalid-credentials"):
        await staff.login(
            "li.clerk", "wrong again", kind="bearer", ip=ip, now=now, settings=get_settings()
        )


async def test_the_longest_wait_is_fifteen_minutes_and_a_day_forgets(office: int) -> None:
    await make_staff()
    ip = "198.51.100.66"
    now = NOW
    for attempt in range(20):
        with pytest.raises(LoginRefused) as refused:
            await staff.login(
                "li.clerk",
                f"wrong {attempt}",
                kind="bearer",
                ip=ip,
                now=now,
                settings=get_settings(),
            )
        now += timedelta(seconds=refused.value.retry_after)
    assert refused.value.retry_after == 15 * 60
    with pytest.raises(LoginRefused, match="invalid-credentials"):  # a day later: afresh
        await staff.login(
            "li.clerk",
            "wrong",
            kind="bearer",
            ip=ip,
            now=now + timedelta(days=1),
            settings=get_settings(),
        )
    assert await staff.purge_login_failures(now + timedelta(days=2, seconds=1)) == 1


async def test_unknown_usernames_read_exactly_like_known_ones(app: Any, office: int) -> None:
    await make_staff()
    seen = {}
    for name in ("li.clerk", "nobody.here"):
        async with _client_at(app, "198.51.100.66") as client:
            answers = [await api_login(client, name, f"guess {n}") for n in range(6)]
        seen[name] = [
            (r.status_code, r.json()["type"], r.json()["detail"], r.headers.get("retry-after"))
            for r in answers
        ]
    assert seen["li.clerk"] == seen["nobody.here"]


async def test_inactive_account_cannot_sign_in(office: int) -> None:
    await make_staff()
    await Staff.update({Staff.active: False}).where(Staff.username == "li.clerk")
    with pytest.raises(LoginRefused, match="invalid-credentials"):
        await staff.login(
            "li.clerk", PASSWORD, kind="bearer", ip=None, now=NOW, settings=get_settings()
        )


async def test_bearer_token_works_until_logout(client: httpx.AsyncClient, office: int) -> None:
    await make_staff()
    resp = await api_login(client, "LI.Clerk ", PASSWORD)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["staff"]["username"] == "li.clerk"
    auth = {"Authorization": f"Bearer {body['token']}"}
    me = await client.get("/api/v1/staff/me", headers=auth)
    assert me.status_code == 200 and me.json()["offices"] == ["GZ-TH"]
    assert (await client.post("/api/v1/staff/logout", headers=auth)).status_code == 204
    after = await client.get("/api/v1/staff/me", headers=auth)
    assert after.status_code == 401
    assert await actions("li.clerk") == ["staff.login", "staff.logout"]


async def test_anonymous_api_is_401_problem(client: httpx.AsyncClient, office: int) -> None:
    for resp in (
        await client.get("/api/v1/staff/me"),
        await client.post("/api/v1/staff/logout"),
        await client.get("/api/v1/staff/me", headers={"Authorization": "Bearer not-a-token"}),
    ):
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["status"] == 401


async def test_anonymous_pages_redirect_to_login(client: httpx.AsyncClient, office: int) -> None:
    for path, back in (("/staff/", "%2Fstaff"), ("/staff/sms", "%2Fstaff%2Fsms")):
        resp = await client.get(path)
        assert resp.status_code == 303
        assert resp.headers["location"] == "/staff/login?next=" + back


def test_after_login_only_staff_pages_of_this_site() -> None:
    assert safe_next("/staff/sms?notice=called") == "/staff/sms?notice=called"
    for raw in (None, "", "//evil.example/staff/", "https://evil.example", "/manage", "/staff\\x"):
        assert safe_next(raw) == "/staff/"


async def test_tokens_work_only_as_issued(client: httpx.AsyncClient, office: int) -> None:
    """A page session cookie does not open the (CSRF-exempt) API, and a bearer token
    is no cookie."""
    await make_staff()
    cookie_session = await staff.login(
        "li.clerk", PASSWORD, kind="cookie", ip=None, now=NOW, settings=get_settings()
    )
    bearer = (await api_login(client, "li.clerk", PASSWORD)).json()["token"]
    client.cookies.set(COOKIE, cookie_session.token)
    assert (await client.get("/api/v1/staff/me")).status_code == 401
    cookie_auth = {"Authorization": f"Bearer {cookie_session.token}"}
    assert (await client.get("/api/v1/staff/me", headers=cookie_auth)).status_code == 401
    client.cookies.set(COOKIE, bearer)
    assert (await client.get("/staff/")).status_code == 303


async def test_sessions_expire(office: int) -> None:
    await make_staff()
    signed = await staff.login(
        "li.clerk", PASSWORD, kind="cookie", ip=None, now=NOW, settings=get_settings()
    )
    assert await staff.authenticate(signed.token, "cookie", NOW + timedelta(minutes=90))
    # Used 90 minutes in: idle for less than two hours at 3h.
    assert await staff.authenticate(signed.token, "cookie", NOW + timedelta(hours=3))
    assert (
        await staff.authenticate(signed.token, "cookie", NOW + timedelta(hours=5, minutes=1))
        is None
    )
    fresh = await staff.login(
        "li.clerk", PASSWORD, kind="cookie", ip=None, now=NOW, settings=get_settings()
    )
    for hours in range(1, 12):
        assert await staff.authenticate(fresh.token, "cookie", NOW + timedelta(hours=hours))
    assert await staff.authenticate(fresh.token, "cookie", NOW + timedelta(hours=12)) is None


async def test_login_attempts_are_limited_per_address(
    client: httpx.AsyncClient, office: int
) -> None:
    for n in range(LOGIN_ATTEMPTS_PER_MINUTE):
        resp = await api_login(client, f"nobody{n}", "whatever password")
        assert resp.status_code == 401
    limited = await api_login(client, "nobody", "whatever password")
    assert limited.status_code == 429 and limited.json()["type"].endswith("/rate-limited")
    # One counter for page and API sign-in.
    await client.get("/staff/login")
    page = await client.post(
        "/staff/login",
        data={"username": "x", "password": "y", "_csrf_token": client.cookies.get("csrftoken")},
    )
    assert page.status_code == 429


async def test_roles_and_offices(app: Any, client: httpx.AsyncClient, office: int) -> None:
    @get("/api/v1/staff/test-admin-only", guards=[require_staff, requires_role("admin")])
    async def admin_only() -> dict[str, bool]:
        return {"ok": True}

    app.register(admin_only)
    other = await make_office(code="SZ-FT", days_ahead=3)
    await make_staff("clerk1")
    await make_staff("admin1", role="admin")
    await make_staff("root", role="superadmin", offices=())
    tokens = {
        n: (await api_login(client, n, PASSWORD)).json()["token"] for n in ("clerk1", "admin1")
    }
    clerk = await client.get(
        "/api/v1/staff/test-admin-only", headers={"Authorization": f"Bearer {tokens['clerk1']}"}
    )
    assert clerk.status_code == 403 and clerk.headers["content-type"].startswith(PROBLEM)
    admin = await client.get(
        "/api/v1/staff/test-admin-only", headers={"Authorization": f"Bearer {tokens['admin1']}"}
    )
    assert admin.status_code == 200
    assert (await client.get("/api/v1/staff/test-admin-only")).status_code == 401
    members = {
        n: (
            await staff.login(n, PASSWORD, kind="bearer", ip=None, now=NOW, settings=get_settings())
        ).member
        for n in ("clerk1", "root")
    }
    assert staff.can_see_office(members["clerk1"], office)
    assert not staff.can_see_office(members["clerk1"], other)
    assert not staff.can_see_office(members["clerk1"], None)
    assert staff.can_see_office(members["root"], other)


async def test_login_page_tells_how_long_to_wait(app: Any, office: int) -> None:
    await make_staff()
    async with _client_at(app, "198.51.100.66") as client:
        pages = [await page_login(client, "li.clerk", f"guess {n}") for n in range(5)]
    assert [p.status_code for p in pages] == [401, 401, 401, 401, 429]
    assert "请 1 分钟后再试" in pages[-1].text and 'value="li.clerk"' in pages[-1].text
