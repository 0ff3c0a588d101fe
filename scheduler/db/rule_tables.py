"""Rule set versions a superadmin added (issue 12). The shipped sets live in
config/rules/*.json and are never copied here: a table emptied or restored from an
old backup cannot lose the law."""

from __future__ import annotations

from piccolo.columns import JSON, Date, Serial, Timestamptz, Varchar
from piccolo.table import Table


class RuleSetVersion(Table):
    id: Serial
    jurisdiction = Varchar(length=16)
    effective_from = Date()
    body = JSON(default="{}")  # the whole rule set document (scheduler/domain/rules.py)
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz()


RULE_TABLES: list[type[Table]] = [RuleSetVersion]
