"""Rule sets as data (issue 12): added rule set versions, designated offices, and the
birth date and sex a pre-check asks of parties whose document carries neither."""

from __future__ import annotations

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Boolean, Date, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T23:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "rule sets, designated offices, pre-check birth date and sex"


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
    } | extra


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)
    manager.add_table(
        class_name="RuleSetVersion", tablename="rule_set_version", schema=None, columns=None
    )
    columns: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("jurisdiction", "Varchar", Varchar, _params(length=16, default="")),
        ("effective_from", "Date", Date, _params(default=None)),
        ("body", "JSON", JSON, _params(default="{}")),
        ("created_by", "Varchar", Varchar, _params(length=64, default="")),
        ("created_at", "Timestamptz", Timestamptz, _params(default=None)),
    ]
    for name, class_name, column_class, params in columns:
        manager.add_column(
            table_class_name="RuleSetVersion",
            tablename="rule_set_version",
            column_name=name,
            db_column_name=name,
            column_class_name=class_name,
            column_class=column_class,
            params=params,
            schema=None,
        )
    manager.add_column(
        table_class_name="Office",
        tablename="office",
        column_name="designated",
        db_column_name="designated",
        column_class_name="Boolean",
        column_class=Boolean,
        params=_params(default=False),
        schema=None,
    )
    manager.add_column(
        table_class_name="PrecheckParty",
        tablename="precheck_party",
        column_name="birth_date",
        db_column_name="birth_date",
        column_class_name="Date",
        column_class=Date,
        params=_params(default=None, null=True),
        schema=None,
    )
    manager.add_column(
        table_class_name="PrecheckParty",
        tablename="precheck_party",
        column_name="sex",
        db_column_name="sex",
        column_class_name="Varchar",
        column_class=Varchar,
        params=_params(length=6, default=""),
        schema=None,
    )

    return manager
