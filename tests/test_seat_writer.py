"""One writer of the caps (issue 15, item 2): scheduler/db/seats.py is the only module
that writes the seat counters (slot.booked/held/waiting, office_day.booked/held,
onsite_window.people, hall_count.people), the caps they are held to (capacity,
blocked, reduced_capacity) or creates their rows.

The scan reads every module's source (migrations excluded, they build the schema):
the SQL text of its string literals (adjacent literals and f-strings joined, a
placeholder standing for each interpolation) and its Piccolo calls. It must find
every kind of write inside seats.py too, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "scheduler"
WRITER = PACKAGE / "db" / "seats.py"

TABLES = {"slot", "office_day", "onsite_window", "hall_count"}
CLASSES = {"Slot", "OfficeDay", "OnsiteWindow", "HallCount"}
# Counters and the caps they are checked against.
COLUMNS = {
    "booked",
    "held",
    "waiting",
    "people",
    "capacity",
    "blocked",
    "reduced_capacity",
    "day_covered",
    "share_covered",
}
# Piccolo writes: ``Slot.update(...)``, ``HallCount.insert(...)``, ``Slot.objects()`` (then save).
PICCOLO_WRITES = {"update", "insert", "objects"}

_UPDATE = re.compile(
    r"\bUPDATE\s+\"?(\w+|\{\})\"?\s+(?:AS\s+\w+\s+)?SET\s+(.*?)(?=\bWHERE\b|\bFROM\b|\bRETURNING\b|$)",
    re.IGNORECASE | re.DOTALL,
)
_SET_TARGET = re.compile(r"(?:^|,)\s*(?:\w+\.)?\"?(\w+|\{\})\"?\s*=(?!=)")
_INSERT = re.compile(r"\bINSERT\s+INTO\s+\"?(\w+)\"?", re.IGNORECASE)


def _text(node: ast.AST) -> str | None:
    """The SQL a string literal or f-string spells, ``{}`` for each interpolation."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "{}"
            for part in node.values
        )
    return None


def writes(source: str) -> set[str]:
    """What ``source`` writes of the caps, as short labels (``UPDATE slot``, ``Slot.update``)."""
    found: set[str] = set()
    tree = ast.parse(source)
    inside_fstring = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    for node in ast.walk(tree):
        text = None if id(node) in inside_fstring else _text(node)
        if text is not None:
            for table, assignments in _UPDATE.findall(text):
                targets = {t.lower() for t in _SET_TARGET.findall(assignments)}
                # A table or column given at run time could be any of them.
                if (table.lower() in TABLES or table == "{}") and (
                    targets & COLUMNS or "{}" in targets
                ):
                    found.add(f"UPDATE {table.lower()}")
            for table in _INSERT.findall(text):
                if table.lower() in TABLES:
                    found.add(f"INSERT INTO {table.lower()}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if (
                isinstance(receiver, ast.Name)
                and receiver.id in CLASSES
                and node.func.attr in PICCOLO_WRITES
            ):
                found.add(f"{receiver.id}.{node.func.attr}")
            # A generic insert helper handed one of the tables by name.
            if node.func.attr == "insert" and isinstance(receiver, ast.Call):
                found.add("<table>.insert")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "insert_rows" and node.args:
                name = _text(node.args[0])
                if name is None or name in TABLES:
                    found.add(f"insert_rows({name})")
            # A new row object carrying a counter value of its own.
            if node.func.id in CLASSES and {k.arg for k in node.keywords} & COLUMNS - {"capacity"}:
                found.add(f"{node.func.id}(counter=...)")
        # ``from scheduler.db.tables import Slot as S`` would hide S.update from the scan.
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in CLASSES and alias.asname not in (None, alias.name):
                    found.add(f"import {alias.name} as {alias.asname}")
    return found


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts
    )


def test_only_seats_writes_the_counters_and_caps() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(found)
        for path in _modules()
        if path != WRITER and (found := writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, (
        "seat counters and caps are written only by scheduler/db/seats.py; "
        f"move these writes there: {offenders}"
    )


def test_the_scan_finds_every_write_in_seats() -> None:
    """Not vacuous: the scan sees the writes it forbids elsewhere where they live."""
    found = writes(WRITER.read_text(encoding="utf-8"))
    assert {
        "UPDATE slot",
        "UPDATE office_day",
        "UPDATE onsite_window",
        "UPDATE hall_count",
        "UPDATE {}",  # the set-based net changes of reschedule runs
        "Slot.update",
        "OfficeDay.update",
        "OnsiteWindow.update",
        "HallCount.insert",
        "<table>.insert",  # new slots, days and hall windows
    } <= found


def test_the_scan_catches_each_shape_of_write() -> None:
    """Each shape a write could take elsewhere is seen (and harmless SQL is not)."""
    shapes = {
        '"UPDATE slot SET booked = booked + 1 WHERE id = {}"': "UPDATE slot",
        '"update office_day set held = held - 1"': "UPDATE office_day",
        '"UPDATE slot SET waiting = waiting + 1 WHERE id = {}"': "UPDATE slot",
        '"UPDATE slot SET waiting = 0"': "UPDATE slot",
        "Slot.update({Slot.waiting: 0})": "Slot.update",
        "Slot(office=1, waiting=2)": "Slot(counter=...)",
        '"UPDATE onsite_window SET people = people + {} WHERE office = {}"': "UPDATE onsite_window",
        'f"UPDATE {table} SET {column} = {column} + v.n FROM v"': "UPDATE {}",
        '"UPDATE slot AS s SET capacity = {} WHERE s.id = {}"': "UPDATE slot",
        '("UPDATE hall_count SET people = people - {}"\n " WHERE day = {}")': "UPDATE hall_count",
        '"INSERT INTO hall_count (office, day) VALUES ({}, {})"': "INSERT INTO hall_count",
        "Slot.update({Slot.blocked: True})": "Slot.update",
        "OfficeDay.update({OfficeDay.capacity: 3})": "OfficeDay.update",
        "OnsiteWindow.insert(OnsiteWindow(office=1))": "OnsiteWindow.insert",
        "HallCount.objects().get(HallCount.id == 1)": "HallCount.objects",
        'insert_rows("office_day", ("office", "day"), rows)': "insert_rows(office_day)",
        "Slot(office=1, booked=3)": "Slot(counter=...)",
        "type(rows[0]).insert(*rows)": "<table>.insert",
    }
    for code, label in shapes.items():
        assert label in writes(code), code
    assert writes('"UPDATE appointment SET slot = {} WHERE id = {}"') == set()
    assert writes('"SELECT booked, capacity FROM slot WHERE id = {}"') == set()
    assert writes("Slot.select(Slot.booked).where(Slot.id == 1)") == set()
