"""Failed staff sign-ins per account name and client address
(scheduler/usecases/staff/accounts.py)."""

from __future__ import annotations

from piccolo.columns import BigInt, Integer, Serial, Varchar
from piccolo.table import Table


class LoginFailure(Table):
    """``key``: keyed hash of (username typed, client address key), so the table holds
    neither. Epoch seconds: until when sign-ins of this pair wait, and the last
    failure (rows a day old are forgotten and purged)."""

    id: Serial
    key = Varchar(length=80, unique=True)
    failures = Integer(default=0)
    blocked_until = BigInt(default=0)
    last_failure = BigInt(default=0, index=True)


SECURITY_TABLES: list[type[Table]] = [LoginFailure]
