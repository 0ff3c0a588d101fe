"""Command line: python -m scheduler {serve,worker,migrate,seed-demo,create-staff,reseal}."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from scheduler.settings import SettingsError, get_settings


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="scheduler")
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")


async def seed_demo(path: Path) -> None:
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.kernel.clock import utcnow
    from scheduler.usecases.calendar import slots
    from scheduler.usecases.offices import seed

    settings = get_settings()
    await open_engine(settings)
    try:
        count = await seed.load_offices(path)
        planned = await slots.generate_slots(utcnow())
    finally:
        await close_engine()
    print(f"loaded {count} offices; {planned} slots in the booking window")


def read_password(from_stdin: bool) -> str:
    """The new account's password: one line on stdin, or typed twice at a prompt."""
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise SystemExit("the two passwords differ")
    return password


async def create_staff(args: argparse.Namespace, password: str) -> int:
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.kernel.clock import utcnow
    from scheduler.kernel.errors import DomainError
    from scheduler.kernel.i18n import translate
    from scheduler.usecases.staff import accounts as staff

    await open_engine(get_settings())
    try:
        staff_id = await staff.create_staff(
            username=args.username,
            password=password,
            role=args.role,
            office_codes=args.office,
            display_name=args.display_name,
            now=utcnow(),
        )
    except DomainError as exc:
        print(translate("en", exc.key, **exc.params), file=sys.stderr)
        return 1
    finally:
        await close_engine()
    print(f"created staff {staff_id}: {args.username} ({args.role})")
    return 0


def serve(workers: int) -> int:
    import uvicorn

    settings = get_settings()
    if workers > 1 and settings.is_sqlite:
        # Boards (in-memory ticks) and SQLite's write lock work within one process.
        print("--workers > 1 needs PostgreSQL: SQLite runs one process", file=sys.stderr)
        return 2
    # Each worker process imports scheduler.asgi and runs the app's lifespan: its
    # own database pool, its own board listener (and jobs, unless JOBS_ENABLED=false).
    uvicorn.run(
        "scheduler.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        # X-Forwarded-For is believed only from TRUSTED_PROXIES (uvicorn's default
        # would trust 127.0.0.1 only, so behind a proxy on another host every couple
        # had the proxy's address and shared its per-address limits).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        log_level=settings.log_level.lower(),
        log_config=None,  # our handlers (JSON, masking, request ids), set in scheduler.asgi
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser(
        "serve", help="run the web server (and jobs, unless JOBS_ENABLED=false)"
    )
    serve_cmd.add_argument("--workers", type=int, default=1)
    sub.add_parser("worker", help="run the jobs only (slot generation, holds, SMS dispatch)")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("reseal", help="re-seal personal data sealed with an old DATA_KEYS key")
    seed_cmd = sub.add_parser("seed-demo", help="load demo offices and generate their slots")
    seed_cmd.add_argument("--file", type=Path, default=None)
    staff_cmd = sub.add_parser("create-staff", help="create a staff account (the first superadmin)")
    staff_cmd.add_argument("--username", required=True)
    staff_cmd.add_argument("--role", required=True, choices=("clerk", "admin", "superadmin"))
    staff_cmd.add_argument("--office", action="append", default=[], metavar="CODE")
    staff_cmd.add_argument("--display-name", default="")
    staff_cmd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    from scheduler.observability.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return serve(args.workers)
    elif args.command == "worker":
        from scheduler.jobs.worker import run_worker

        asyncio.run(run_worker(settings))
    elif args.command == "migrate":
        asyncio.run(migrate())
    elif args.command == "reseal":
        from scheduler.usecases.privacy.personal_data import reseal_command

        return asyncio.run(reseal_command(settings))
    elif args.command == "seed-demo":
        asyncio.run(seed_demo(args.file or Path(settings.demo_offices_file)))
    elif args.command == "create-staff":
        return asyncio.run(create_staff(args, read_password(args.password_stdin)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
