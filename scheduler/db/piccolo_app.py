"""The Piccolo app that owns the tables and migrations."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from scheduler.db.blackout_tables import BLACKOUT_TABLES
from scheduler.db.couple_tables import COUPLE_TABLES
from scheduler.db.holiday_tables import HOLIDAY_TABLES
from scheduler.db.lottery_tables import LOTTERY_TABLES
from scheduler.db.office_tables import OFFICE_TABLES
from scheduler.db.policy_tables import POLICY_TABLES
from scheduler.db.precheck_tables import PRECHECK_TABLES
from scheduler.db.queue_tables import QUEUE_TABLES
from scheduler.db.rule_tables import RULE_TABLES
from scheduler.db.security_tables import SECURITY_TABLES
from scheduler.db.tables import ALL_TABLES
from scheduler.db.waitlist_tables import WAITLIST_TABLES

APP_CONFIG = AppConfig(
    app_name="scheduler",
    migrations_folder_path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations"),
    table_classes=[
        *ALL_TABLES,
        *QUEUE_TABLES,
        *BLACKOUT_TABLES,
        *OFFICE_TABLES,
        *PRECHECK_TABLES,
        *WAITLIST_TABLES,
        *LOTTERY_TABLES,
        *POLICY_TABLES,
        *SECURITY_TABLES,
        *RULE_TABLES,
        *COUPLE_TABLES,
        *HOLIDAY_TABLES,
    ],
    migration_dependencies=[],
    commands=[],
)
