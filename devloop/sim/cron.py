"""When a CronJob schedule fires next, in UTC, as the CronJob controller's cron library
(robfig/cron) reads it: five fields, names, ranges, steps, lists, the @ descriptors
and `@every <duration>`. When both day fields are restricted, either may match."""

from __future__ import annotations

import calendar
import re
import time

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
SEARCH_YEARS = 5


def _value(text: str, field: int) -> int:
    names = MONTHS if field == 3 else DAYS if field == 4 else []
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if field == 3 else 0)
    number = int(text)
    return 0 if field == 4 and number == 7 else number


def _field(text: str, field: int) -> set[int]:
    low, high = BOUNDS[field]
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _value(first, field), _value(last, field)
        else:
            start = _value(body, field)
            end = high if step_text else start
        out.update(range(start, end + 1, step))
    return out


def _every(schedule: str) -> float:
    text = schedule.split(None, 1)[1].strip()
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"bad @every duration: {text!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * unit[u] for n, u in parts)


def next_run(schedule: str, after: float) -> float:
    """The first time strictly after `after` (seconds since the epoch) the schedule fires."""
    s = schedule.strip()
    if s.startswith("@every "):
        return after + max(1.0, _every(s))
    fields = MACROS.get(s, s).split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields: {schedule!r}")
    minutes, hours, days, months, weekdays = (_field(f, i) for i, f in enumerate(fields))
    any_day, any_weekday = fields[2] in ("*", "?"), fields[4] in ("*", "?")
    t = (int(after) // 60 + 1) * 60  # whole minutes, strictly later
    limit = after + SEARCH_YEARS * 366 * 86400
    while t <= limit:
        tm = time.gmtime(t)
        if tm.tm_mon not in months:
            year, month = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year, tm.tm_mon + 1)
            t = calendar.timegm((year, month, 1, 0, 0, 0))
            continue
        weekday = (tm.tm_wday + 1) % 7  # gmtime: Monday is 0; cron: Sunday is 0
        day_ok = tm.tm_mday in days
        weekday_ok = weekday in weekdays
        # Vixie cron: with both day fields restricted, either one matching is enough.
        both = not (any_day or any_weekday)
        if not ((day_ok or weekday_ok) if both else (day_ok and weekday_ok)):
            t = calendar.timegm((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0)) + 86400
            continue
        if tm.tm_hour not in hours:
            t = calendar.timegm((tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, 0, 0)) + 3600
            continue
        if tm.tm_min not in minutes:
            t += 60
            continue
        return float(t)
    raise ValueError(f"{schedule!r} does not fire within {SEARCH_YEARS} years")
