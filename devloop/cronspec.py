"""Whether the API server would accept a CronJob schedule, and why not.

Kubernetes validates `spec.schedule` with robfig/cron v3's ParseStandard
(pkg/apis/batch/validation, validateScheduleFormat) and refuses any schedule containing
"TZ" (time zones go in `spec.timeZone`). This is ParseStandard's grammar and its error
texts (vendor/github.com/robfig/cron/v3/parser.go): five fields (minute 0-59, hour 0-23,
day of month 1-31, month 1-12 or jan-dec, day of week 0-6 or sun-sat), each a comma list
of `*`/`?`/N/N-M with an optional `/step`; or a descriptor (@yearly, @annually,
@monthly, @weekly, @daily, @midnight, @hourly, `@every <Go duration>`).

The embedded cluster has its own reading of the same sources (devloop/sim/cron.py); the
tests compare the two.
"""

from __future__ import annotations

import re

DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, min, max, names) per field, in order.
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(_DAYS)}),
)
_ATOI = re.compile(r"[+-]?[0-9]+")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")
_INT64_MAX = 2**63 - 1

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


def schedule_problem(schedule: str) -> str | None:
    """The API server's reason to refuse this schedule, or None."""
    reason = _parse_standard(schedule)
    if reason is None and "TZ" in schedule:
        reason = "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    return reason


def _parse_standard(spec: str) -> str | None:
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        return None  # the location is robfig's business; Kubernetes refuses TZ anyway
    if spec.startswith("@"):
        return _descriptor(spec)
    fields = go_fields(spec)
    if len(fields) != len(FIELDS):
        return f"expected exactly {len(FIELDS)} fields, found {len(fields)}: [{' '.join(fields)}]"
    for text, (_, low, high, names) in zip(fields, FIELDS, strict=True):
        for expr in (e for e in text.split(",") if e):
            reason = _range(expr, low, high, names)
            if reason:
                return reason
    return None


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> str | None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        first = _int_or_name(low_and_high[0], names)
        if isinstance(first, str):
            return first
        start = end = first
        if len(low_and_high) == 2:
            second = _int_or_name(low_and_high[1], names)
            if isinstance(second, str):
                return second
            end = second
        elif len(low_and_high) > 2:
            return f"too many hyphens: {expr}"
    step = 1
    if len(range_and_step) == 2:
        parsed = _atoi(range_and_step[1])
        if isinstance(parsed, str):
            return parsed
        step = parsed
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
    elif len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    if start < low:
        return f"beginning of range ({start}) below minimum ({low}): {expr}"
    if end > high:
        return f"end of range ({end}) above maximum ({high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    if step == 0:
        return f"step of range should be a positive number: {expr}"
    return None


def _int_or_name(expr: str, names: dict[str, int]) -> int | str:
    if expr.lower() in names:
        return names[expr.lower()]
    return _atoi(expr)


def _atoi(expr: str) -> int | str:
    """Go's strconv.Atoi, then robfig's refusal of negatives."""
    if not _ATOI.fullmatch(expr) or abs(int(expr)) > _INT64_MAX:
        reason = "invalid syntax" if not _ATOI.fullmatch(expr) else "value out of range"
        return f"failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: {reason}"
    number = int(expr)
    if number < 0:
        return f"negative number ({number}) not allowed: {expr}"
    return number


def _descriptor(spec: str) -> str | None:
    if spec in DESCRIPTORS:
        return None
    every = "@every "
    if spec.startswith(every):
        reason = go_duration_problem(spec[len(every) :])
        return f"failed to parse duration {spec}: {reason}" if reason else None
    return f"unrecognized descriptor: {spec}"


def go_duration_problem(text: str) -> str | None:
    """Why Go's time.ParseDuration refuses `text` (its error text), or None."""
    quoted = f'"{text}"'
    s = text
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s == "0":
        return None
    if not s:
        return f"time: invalid duration {quoted}"
    total = 0
    while s:
        match = _DURATION_PART.match(s)
        assert match is not None  # both groups may be empty
        number, unit = match.group(1), match.group(2)
        if number in ("", ".") or not any(c.isdigit() for c in number):
            return f"time: invalid duration {quoted}"
        if not unit:
            return f"time: missing unit in duration {quoted}"
        if unit not in _DURATION_UNITS:
            return f'time: unknown unit "{unit}" in duration {quoted}'
        whole, _, fraction = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale + (
            int(fraction) * scale // 10 ** len(fraction) if fraction else 0
        )
        if total > _INT64_MAX:
            return f"time: invalid duration {quoted}"
        s = s[match.end() :]
    return None
