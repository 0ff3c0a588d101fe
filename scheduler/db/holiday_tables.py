"""Holiday notices loaded by a superadmin (issue 12). The shipped notices are files
in config/holidays/; a row for a year supersedes the file and older rows of the
same year (the newest ``version`` wins, old versions stay as history)."""

from __future__ import annotations

from piccolo.columns import JSON, Date, Integer, Serial, Timestamptz, Varchar
from piccolo.table import Table


class HolidayNotice(Table):
    """One loaded version of a year's notice; ``notice`` holds it whole, in the shape
    of the files and the API (scheduler/domain/holidays.py ``Notice.as_data``)."""

    id: Serial
    year = Integer(index=True)
    version = Integer()  # unique with year (raw index in the migration)
    notice = JSON(default="{}")
    title = Varchar(length=200)
    document_number = Varchar(length=64, default="")
    published_on = Date()
    url = Varchar(length=500, default="")
    loaded_by = Varchar(length=64)
    loaded_at = Timestamptz()


HOLIDAY_TABLES: list[type[Table]] = [HolidayNotice]
