"""CronJob schedules as Kubernetes reads them: validation and when they fire.

The API server validates `spec.schedule` with robfig/cron v3 `ParseStandard`
(pkg/apis/batch/validation/validation.go, validateScheduleFormat) and then refuses any
schedule containing "TZ" ("cannot use TZ or CRON_TZ in schedule, use timeZone field
instead"). ParseStandard (vendor/github.com/robfig/cron/v3/parser.go) reads five fields
into bit sets (getField/getRange, with its error texts), or a descriptor
(parseDescriptor: @yearly … @hourly, `@every <time.ParseDuration>`). The CronJob
controller computes the next time from those bit sets (spec.go, SpecSchedule.Next): when
both day fields are restricted (neither has the star bit), either may match.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

STAR_BIT = 1 << 63
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = {m: i for i, m in enumerate(_MONTHS, 1)}
DOW_NAMES = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# Go's unicode.IsSpace, which strings.Fields splits on: Python's str.split() also splits on
# the separators U+001C-U+001F, which the API server keeps inside a field (and refuses).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_FIELD = re.compile(f"[^{_GO_SPACE}]+")


def go_fields(text: str) -> list[str]:
    """strings.Fields(text)."""
    return _GO_FIELD.findall(text)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """strconv.Quote(text), as Go's %q prints it in the API server's messages."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int
    names: dict[str, int]


MINUTES = Bounds(0, 59, {})
HOURS = Bounds(0, 23, {})
DOM = Bounds(1, 31, {})
MONTHS = Bounds(1, 12, MONTH_NAMES)
DOW = Bounds(0, 6, DOW_NAMES)
SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """ParseStandard's error text."""


def _bits(low: int, high: int, step: int) -> int:
    out = 0
    for i in range(low, high + 1, step):
        out |= 1 << i
    return out


def _all(b: Bounds) -> int:
    return _bits(b.low, b.high, 1) | STAR_BIT


@dataclass(frozen=True)
class Spec:
    minute: int
    hour: int
    dom: int
    month: int
    dow: int


@dataclass(frozen=True)
class Every:
    seconds: float


DESCRIPTORS = {
    "@yearly": Spec(1, 1, 1 << 1, 1 << 1, _all(DOW)),
    "@annually": Spec(1, 1, 1 << 1, 1 << 1, _all(DOW)),
    "@monthly": Spec(1, 1, 1 << 1, _all(MONTHS), _all(DOW)),
    "@weekly": Spec(1, 1, _all(DOM), _all(MONTHS), 1),
    "@daily": Spec(1, 1, _all(DOM), _all(MONTHS), _all(DOW)),
    "@midnight": Spec(1, 1, _all(DOM), _all(MONTHS), _all(DOW)),
    "@hourly": Spec(1, _all(HOURS), _all(DOM), _all(MONTHS), _all(DOW)),
}


def _atoi(expr: str) -> int:
    """strconv.Atoi (optional sign, decimal digits), then robfig's mustParseInt."""
    if not re.fullmatch(r"[+-]?[0-9]+", expr) or abs(int(expr)) >= 2**63:
        why = "invalid syntax" if not re.fullmatch(r"[+-]?[0-9]+", expr) else "value out of range"
        raise ScheduleError(
            f"failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: {why}"
        )
    value = int(expr)
    if value < 0:
        raise ScheduleError(f"negative number ({value}) not allowed: {expr}")
    return value


def _range(expr: str, b: Bounds) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = b.low, b.high, STAR_BIT
    else:
        named = b.names.get(low_and_high[0].lower())
        start = named if named is not None else _atoi(low_and_high[0])
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            named = b.names.get(low_and_high[1].lower())
            end = named if named is not None else _atoi(low_and_high[1])
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_and_high) == 1:
            end = b.high
        if step > 1:
            extra = 0
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < b.low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({b.low}): {expr}")
    if end > b.high:
        raise ScheduleError(f"end of range ({end}) above maximum ({b.high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _field(text: str, b: Bounds) -> int:
    out = 0
    for expr in text.split(","):
        if expr:
            out |= _range(expr, b)
    return out


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)([^0-9.]*)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds (error texts as Go writes them)."""
    quoted, rest, sign = f'"{text}"', text, 1
    if rest[:1] in ("+", "-"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ScheduleError(f"time: invalid duration {quoted}")
    total, pos = 0.0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        assert match is not None
        number, unit = match.groups()
        if not any(c.isdigit() for c in number):
            raise ScheduleError(f"time: invalid duration {quoted}")
        if not unit:
            raise ScheduleError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise ScheduleError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _UNITS[unit]
        pos = match.end()
    if total > (2**63 - 1) / 1e9:
        raise ScheduleError(f"time: invalid duration {quoted}")
    return sign * total


def parse_standard(spec: str) -> Spec | Every:
    """robfig/cron v3 ParseStandard."""
    if not spec:
        raise ScheduleError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        if spec in DESCRIPTORS:
            return DESCRIPTORS[spec]
        if spec.startswith("@every "):
            try:
                return Every(parse_duration(spec[len("@every ") :]))
            except ScheduleError as exc:
                raise ScheduleError(f"failed to parse duration {spec}: {exc}") from None
        raise ScheduleError(f"unrecognized descriptor: {spec}")
    fields = go_fields(spec)
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return Spec(
        _field(fields[0], MINUTES),
        _field(fields[1], HOURS),
        _field(fields[2], DOM),
        _field(fields[3], MONTHS),
        _field(fields[4], DOW),
    )


def validation_error(schedule: str) -> str | None:
    """validateScheduleFormat's message for spec.schedule, or None."""
    try:
        parse_standard(schedule)
    except ScheduleError as exc:
        return str(exc)
    if "TZ" in schedule:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    return None


def _has(bits: int, value: int) -> bool:
    return bool(bits & (1 << value))


def next_run(schedule: str, after: float) -> float:
    """The first time strictly after `after` (seconds since the epoch, UTC) it fires."""
    parsed = parse_standard(schedule.strip())
    if isinstance(parsed, Every):
        return after + max(1.0, parsed.seconds)
    both_restricted = not (parsed.dom & STAR_BIT or parsed.dow & STAR_BIT)
    t = (int(after) // 60 + 1) * 60  # whole minutes, strictly later
    limit = after + SEARCH_YEARS * 366 * 86400
    while t <= limit:
        tm = time.gmtime(t)
        if not _has(parsed.month, tm.tm_mon):
            year, month = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year, tm.tm_mon + 1)
            t = calendar.timegm((year, month, 1, 0, 0, 0))
            continue
        weekday = (tm.tm_wday + 1) % 7  # gmtime: Monday is 0; cron: Sunday is 0
        day_ok, weekday_ok = _has(parsed.dom, tm.tm_mday), _has(parsed.dow, weekday)
        if not ((day_ok or weekday_ok) if both_restricted else (day_ok and weekday_ok)):
            t = calendar.timegm((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0)) + 86400
            continue
        if not _has(parsed.hour, tm.tm_hour):
            t = calendar.timegm((tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, 0, 0)) + 3600
            continue
        if not _has(parsed.minute, tm.tm_min):
            t += 60
            continue
        return float(t)
    raise ValueError(f"{schedule!r} does not fire within {SEARCH_YEARS} years")
