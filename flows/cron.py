"""Checking a cron expression without a scheduler library, so loading the config imports no Prefect.

Five fields (minute, hour, day of month, month, day of week), each ``*``, a number, a range ``a-b``, a step
``*/n`` or ``a-b/n``, or a comma list of those; months and weekdays also by name (``jan``, ``mon``); day of
week 0-7 (both 0 and 7 are Sunday), ``n#k`` (the k-th weekday n of the month) and ``L`` as the day of month
(the last day). Macros ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually``. This is what Prefect's ``CronSchedule`` accepts for the usual schedules.

    >>> cron_error("0 3 * * mon-fri") is None
    True
    >>> cron_error("61 * * * *")
    'minute: 61 is out of 0-59'
"""

from __future__ import annotations

MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names whose index + lowest is their number)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def _value(text: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + lo
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"{value} is out of {lo}-{hi}")
    return value


def _item(item: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> None:
    if name == "day of month" and item.upper() == "L":
        return
    if name == "day of week" and "#" in item:
        day, _, nth = item.partition("#")
        _value(day, lo, hi, names)
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ValueError(f"{item!r}: the week after '#' must be 1-5")
        return
    base, slash, step = item.partition("/")
    if slash and (not step.isdigit() or int(step) < 1):
        raise ValueError(f"{item!r}: the step must be a positive number")
    if base == "*":
        return
    first, dash, last = base.partition("-")
    a = _value(first, lo, hi, names)
    if dash:
        b = _value(last, lo, hi, names)
        if b < a:
            raise ValueError(f"{base!r}: the range runs backwards")


def cron_error(expression: str) -> str | None:
    """None for a valid cron expression, else what is wrong with it (the field and the reason)."""
    text = expression.strip()
    if text.lower() in MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for field, (name, lo, hi, names) in zip(fields, _FIELDS, strict=True):
        for item in field.split(","):
            try:
                if not item:
                    raise ValueError("an empty list item")
                _item(item, name, lo, hi, names)
            except ValueError as exc:
                return f"{name}: {exc}"
    return None
