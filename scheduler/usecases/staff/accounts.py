"""Staff use cases: accounts, sign-in with lockout, sessions, office scoping, and
the clerk's list of SMS that did not reach a couple. One transaction each, with
its audit row; ``now`` is always passed in.

Roles rank clerk < admin < superadmin. Clerks and admins see only the offices
they are assigned to; another office's objects read as "not found" (404), never
"forbidden", so that their existence is not revealed.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from scheduler.db import audit
from scheduler.db.audit import NamedActor
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.security_tables import LoginFailure
from scheduler.db.tables import Office, OutboxMessage, Staff, StaffOffice, StaffSession
from scheduler.domain import login_throttle
from scheduler.domain.addresses import client_key
from scheduler.domain.identity import mask_phone
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import hash_token, keyed_hash
from scheduler.notify.scrub import is_scrubbed
from scheduler.settings import Settings

ROLES = ("clerk", "admin", "superadmin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
SESSION_LIFETIME = timedelta(hours=12)  # a working day
IDLE_TIMEOUT = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
SESSION_KINDS = ("cookie", "bearer")
FAILURE_STATUSES = ("failed", "dead", "undelivered")
RECENT_FAILURES = timedelta(days=7)
LIST_LIMIT = 200

_hasher = PasswordHasher()


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    display_name: str
    role: str
    offices: frozenset[int]
    office_codes: tuple[str, ...]


@dataclass(frozen=True)
class SignedIn:
    token: str
    member: StaffMember
    expires_at: datetime


class LoginRefused(Exception):
    """Wrong credentials (``invalid-credentials``) or too many failures of this account
    name from this address (``login-throttled``, 429 with the seconds to wait)."""

    def __init__(self, slug: str, status: int, retry_after: int = 0) -> None:
        super().__init__(slug)
        self.slug = slug
        self.status = status
        self.retry_after = retry_after


def can_see_office(staff: StaffMember, office_id: int | None) -> bool:
    return staff.role == "superadmin" or (office_id is not None and office_id in staff.offices)


def has_role(staff: StaffMember, minimum: str) -> bool:
    return _RANK[staff.role] >= _RANK[minimum]


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_staff(
    *,
    username: str,
    password: str,
    role: str,
    office_codes: list[str],
    now: datetime,
    display_name: str = "",
) -> int:
    """A new account (the command line's create-staff). Refuses weak passwords."""
    name = normalize_username(username)
    if not USERNAME.fullmatch(name):
        raise DomainError("invalid-input", field="username", reason="staff-username")
    if role not in ROLES:
        raise DomainError("invalid-input", field="role", reason="staff-role")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH or password.lower() == name:
        raise DomainError("invalid-input", field="password", reason="staff-weak-password")
    if role != "superadmin" and not office_codes:
        raise DomainError("invalid-input", field="office", reason="staff-office-required")
    codes = sorted({c.strip().upper() for c in office_codes})
    offices = await Office.select(Office.id, Office.code).where(Office.code.is_in(codes or [""]))
    if len(offices) != len(codes):
        raise DomainError("invalid-input", field="office", reason="staff-office-unknown")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    try:
        async with write_transaction():
            rows = await Staff.insert(
                Staff(
                    username=name,
                    display_name=display_name.strip()[:120] or name,
                    password_hash=password_hash,
                    role=role,
                    created_at=now,
                )
            ).returning(Staff.id)
            staff_id = int(rows[0]["id"])
            for office in offices:
                await StaffOffice.insert(StaffOffice(staff=staff_id, office=office["id"]))
            after = {"username": name, "role": role, "offices": codes}
            await audit.record(
                NamedActor("command-line"),
                "staff.create",
                object_type="staff",
                object_id=staff_id,
                after=after,
                now=now,
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise DomainError(
                "invalid-input", field="username", reason="staff-username-taken"
            ) from exc
        raise
    return staff_id


async def login(
    username: str,
    password: str,
    *,
    kind: str,
    ip: str | None,
    now: datetime,
    settings: Settings,
) -> SignedIn:
    """Check the password and open a session. Failures make this account name wait
    from this client address only (growing delays, domain/login_throttle.py): the
    right password from another address always works, so nobody can lock a clerk
    out by failing on purpose.

    An unknown username costs the same password check as a known one (against a
    dummy hash), is throttled the same way and reads the same: a caller cannot
    tell which usernames exist.
    """
    assert kind in SESSION_KINDS
    name = normalize_username(username)[:64]
    key = _throttle_key(settings.secret_key, name, ip)
    at = int(now.timestamp())
    waiting = await LoginFailure.select(LoginFailure.blocked_until).where(LoginFailure.key == key)
    if waiting and waiting[0]["blocked_until"] > at:
        # Refused without checking the password: a wait is no oracle for guesses.
        row = await Staff.select(Staff.id).where(Staff.username == name).first()
        async with write_transaction():
            await audit.record(
                NamedActor(name, row["id"] if row else None),
                "staff.login.throttled",
                object_type="staff",
                object_id=row["id"] if row else "",
                ip=ip,
                now=now,
            )
        raise LoginRefused("login-throttled", 429, waiting[0]["blocked_until"] - at)
    row = await Staff.select().where(Staff.username == name).first()
    stored = row["password_hash"] if row is not None else _dummy_hash()
    valid = await asyncio.to_thread(_verify, stored, password)
    if row is None or not valid or not row["active"]:
        await _failed(name, row, key, ip, now)
    assert row is not None
    return await _open_session(row, password, kind, ip, now, key)


def _throttle_key(secret_key: str, name: str, ip: str | None) -> str:
    """The (account name, client) pair, keyed-hashed: the table holds neither."""
    value = f"{name}|{client_key(ip)}"
    return keyed_hash(secret_key, "login", value)[:64]


async def _failed(
    name: str, row: dict[str, Any] | None, key: str, ip: str | None, now: datetime
) -> None:
    at = int(now.timestamp())
    forget_before = at - int(login_throttle.FORGET_AFTER.total_seconds())
    async with write_transaction():
        # One statement: parallel failures of one pair each count (no lost update).
        counted = await LoginFailure.raw(
            "INSERT INTO login_failure (key, failures, blocked_until, last_failure)"
            " VALUES ({}, 1, 0, {}) ON CONFLICT (key) DO UPDATE SET"
            " failures = CASE WHEN login_failure.last_failure < {} THEN 1"
            " ELSE login_failure.failures + 1 END, last_failure = excluded.last_failure"
            " RETURNING failures",
            key,
            at,
            forget_before,
        )
        failures = int(counted[0]["failures"])
        delay = int(login_throttle.delay_after(failures).total_seconds())
        if delay:
            await LoginFailure.update({LoginFailure.blocked_until: at + delay}).where(
                LoginFailure.key == key
            )
        await audit.record(
            NamedActor(name, row["id"] if row else None),
            "staff.login.failed",
            object_type="staff",
            object_id=row["id"] if row else "",
            after={"failures": failures, "wait_seconds": delay} if delay else None,
            ip=ip,
            now=now,
        )
    if delay:
        raise LoginRefused("login-throttled", 429, delay)
    raise LoginRefused("invalid-credentials", 401)


async def purge_login_failures(now: datetime) -> int:
    """Forget pairs whose last failure is a day old (part of the rate counters' purge)."""
    before = int((now - login_throttle.FORGET_AFTER).timestamp())
    rows = (
        await LoginFailure.delete()
        .where(LoginFailure.last_failure < before)
        .returning(LoginFailure.id)
    )
    return len(rows)


async def _open_session(
    row: dict[str, Any], password: str, kind: str, ip: str | None, now: datetime, key: str
) -> SignedIn:
    token = secrets.token_urlsafe(32)
    expires_at = now + SESSION_LIFETIME
    values: dict[Any, Any] = {Staff.failed_logins: 0, Staff.locked_until: None}
    if _hasher.check_needs_rehash(row["password_hash"]):
        values[Staff.password_hash] = await asyncio.to_thread(_hasher.hash, password)
    async with write_transaction():
        await Staff.update(values).where(Staff.id == row["id"])
        await LoginFailure.delete().where(LoginFailure.key == key)
        await StaffSession.delete().where(
            (StaffSession.staff == row["id"]) & (StaffSession.expires_at < now)
        )
        session = StaffSession(
            token_hash=hash_token(token),
            staff=row["id"],
            kind=kind,
            created_at=now,
            expires_at=expires_at,
            last_seen_at=now,
        )
        await StaffSession.insert(session)
        member = await _member(row)
        await audit.record(
            member,
            "staff.login",
            object_type="staff",
            object_id=member.id,
            after={"kind": kind},
            ip=ip,
            now=now,
        )
    return SignedIn(token, member, expires_at)


async def _member(row: dict[str, Any]) -> StaffMember:
    offices = await StaffOffice.select(StaffOffice.office, StaffOffice.office.code).where(
        StaffOffice.staff == row["id"]
    )
    return StaffMember(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        offices=frozenset(o["office"] for o in offices),
        office_codes=tuple(sorted(o["office.code"] for o in offices)),
    )


async def authenticate(token: str, kind: str, now: datetime) -> StaffMember | None:
    """The staff member a session token belongs to, if it is live; refreshes last_seen_at."""
    session = (
        await StaffSession.select(
            StaffSession.id,
            StaffSession.expires_at,
            StaffSession.last_seen_at,
            *StaffSession.staff.all_columns(),
        )
        .where((StaffSession.token_hash == hash_token(token)) & (StaffSession.kind == kind))
        .first()
    )
    if session is None or session["expires_at"] <= now or not session["staff.active"]:
        return None
    if session["last_seen_at"] + IDLE_TIMEOUT <= now:
        return None
    if now - session["last_seen_at"] >= TOUCH_EVERY:
        async with write_transaction():
            await StaffSession.update({StaffSession.last_seen_at: now}).where(
                StaffSession.id == session["id"]
            )
    staff = {k.removeprefix("staff."): v for k, v in session.items() if k.startswith("staff.")}
    return await _member(staff)


async def logout(token: str, kind: str, *, ip: str | None, now: datetime) -> bool:
    """End a session (idempotent: an unknown or ended token is no error)."""
    async with write_transaction():
        session = (
            await StaffSession.select(
                StaffSession.id, StaffSession.staff, StaffSession.staff.username
            )
            .where((StaffSession.token_hash == hash_token(token)) & (StaffSession.kind == kind))
            .first()
        )
        if session is None:
            return False
        await StaffSession.delete().where(StaffSession.id == session["id"])
        actor = NamedActor(session["staff.username"], session["staff"])
        await audit.record(
            actor,
            "staff.logout",
            object_type="staff",
            object_id=session["staff"],
            after={"kind": kind},
            ip=ip,
            now=now,
        )
    return True


# --- SMS that did not reach a couple (issue 3, item 7) ---------------------------------


def _root_key(key: str) -> str:
    return key.split(":resend:", 1)[0]


async def sms_failures(
    member: StaffMember, *, now: datetime, default_tz: str
) -> list[dict[str, Any]]:
    """Messages that failed, went dead or were undelivered in the last week, and any
    still waiting for a clerk's call, newest first; only those of the member's offices.
    ``default_tz``: the zone of a message with no office (settings.default_timezone)."""
    scope, args = "", []
    if member.role != "superadmin":
        if not member.offices:
            return []
        scope = " AND a.office IN (" + ", ".join("{}" for _ in member.offices) + ")"
        args = sorted(member.offices)
    rows = await OutboxMessage.raw(
        "SELECT m.id, m.key, m.to_phone, m.template, m.status, m.error_code, m.error_text,"  # noqa: S608 - placeholders only
        " m.payload, m.needs_call, m.created_at, m.status_at, o.code AS office_code, o.timezone"
        " FROM outbox_message m LEFT JOIN appointment a ON a.id = m.appointment_id"
        " LEFT JOIN office o ON o.id = a.office"
        " WHERE (m.needs_call = {} OR (m.status IN ('failed', 'dead', 'undelivered')"
        " AND m.created_at >= {}))" + scope + " ORDER BY m.created_at DESC, m.id DESC LIMIT {}",
        True,
        now - RECENT_FAILURES,
        *args,
        LIST_LIMIT,
    )
    resends = await _resend_counts(rows)
    return [_failure_view(r, resends.get(_root_key(r["key"]), 0), default_tz) for r in rows]


async def _resend_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How often each listed message's original was resent (resends come after it)."""
    if not rows:
        return {}
    since = min(r["created_at"] for r in rows)
    keys = await OutboxMessage.select(OutboxMessage.key).where(
        OutboxMessage.key.like("%:resend:%") & (OutboxMessage.created_at >= since)
    )
    counts: dict[str, int] = {}
    for row in keys:
        root = _root_key(row["key"])
        counts[root] = counts.get(root, 0) + 1
    return counts


def _failure_view(row: dict[str, Any], resends: int, default_tz: str) -> dict[str, Any]:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload or "{}")
    moment = row["status_at"] or row["created_at"]
    local = moment.astimezone(ZoneInfo(row["timezone"] or default_tz))
    return {
        "id": row["id"],
        "time": f"{local:%Y-%m-%d %H:%M}",
        "office": row["office_code"],
        "phone": mask_phone(row["to_phone"]),
        "template": row["template"],
        "status": row["status"],
        "error_code": row["error_code"],
        "error_text": row["error_text"],
        "reference": payload.get("reference") if isinstance(payload, dict) else None,
        "needs_call": bool(row["needs_call"]),
        "resends": resends,
    }


async def _visible_message(member: StaffMember, message_id: int) -> dict[str, Any]:
    """The message, with its office; another office's message does not exist (404)."""
    rows = await OutboxMessage.raw(
        "SELECT m.*, a.office AS office_id FROM outbox_message m"
        " LEFT JOIN appointment a ON a.id = m.appointment_id WHERE m.id = {}",
        message_id,
    )
    if not rows or not can_see_office(member, rows[0]["office_id"]):
        raise DomainError("not-found")
    return rows[0]


async def resend_sms(
    member: StaffMember, message_id: int, attempt: int, *, ip: str | None, now: datetime
) -> int | None:
    """Queue a fresh, urgent copy of a failed message as ``<key>:resend:<attempt>``.

    ``attempt`` is the number the clerk's page showed (resends so far + 1): a
    double-clicked button queues one copy, not two. Returns the new message's id,
    or None when that copy already exists.
    """
    async with write_transaction():
        row = await _visible_message(member, message_id)
        if row["status"] not in FAILURE_STATUSES and not row["needs_call"]:
            raise DomainError("not-pending", reason="staff-sms-not-failed")
        if is_scrubbed(row):  # its code is masked: resending would text "******"
            raise DomainError("not-pending", reason="staff-sms-code-scrubbed")
        key = f"{_root_key(row['key'])}:resend:{attempt}"
        if attempt < 1 or len(key) > (OutboxMessage.key.length or 0):
            raise DomainError("invalid-input", field="attempt")
        copy = OutboxMessage(
            key=key,
            to_phone=row["to_phone"],
            template=row["template"],
            locale=row["locale"],
            payload=row["payload"],
            body=row["body"],
            status="pending",
            due_at=now,
            created_at=now,
            urgent=True,
            validity_seconds=row["validity_seconds"],
            appointment_id=row["appointment_id"],
        )
        inserted = await (
            OutboxMessage.insert(copy).on_conflict(action="DO NOTHING").returning(OutboxMessage.id)
        )
        if not inserted:
            return None
        await OutboxMessage.update({OutboxMessage.needs_call: False}).where(
            OutboxMessage.id == message_id
        )
        await audit.record(
            member,
            "sms.resend",
            office_id=row["office_id"],
            object_type="outbox_message",
            object_id=message_id,
            before={"status": row["status"], "needs_call": bool(row["needs_call"])},
            after={"needs_call": False, "resend_id": inserted[0]["id"], "resend_key": key},
            ip=ip,
            now=now,
        )
    return int(inserted[0]["id"])


async def mark_called(
    member: StaffMember, message_id: int, *, ip: str | None, now: datetime
) -> bool:
    """The clerk phoned the couple: the message no longer needs a call. False if it did not."""
    async with write_transaction():
        row = await _visible_message(member, message_id)
        changed = await (
            OutboxMessage.update({OutboxMessage.needs_call: False})
            .where((OutboxMessage.id == message_id) & OutboxMessage.needs_call.eq(True))
            .returning(OutboxMessage.id)
        )
        if changed:
            await audit.record(
                member,
                "sms.called",
                office_id=row["office_id"],
                object_type="outbox_message",
                object_id=message_id,
                before={"needs_call": True},
                after={"needs_call": False},
                ip=ip,
                now=now,
            )
    return bool(changed)
