"""Business days for application deadlines (R-BIZ-1).

An application for LINE notification messages or Chat Plus must be in 6 business days before
the start date, one for Call Plus 11; the start date itself is not counted, and the day of
submission counts only if the application is in by 17:00 JST. Otherwise (later that day, or on
a closed day) it counts from the next business day, which moves the start one business day
later. So: ``start = submission business day + N business days``. The source's worked example
(submitted by Mon 2021-11-01 17:00 -> start Tue 11/9; after that -> Wed 11/10) holds only when
weekends are the sole closed days (it counts Culture Day, Wed 11/3, as a business day), hence
configurable calendars: ``weekends``, ``jp_holidays`` (plus Japanese national holidays) and
``jp_holidays_year_end`` (plus 12/29-1/3).

Japanese national holidays are computed, not listed, for 2000-2099: fixed days, Happy Monday
days, the equinox formula, substitute holidays (振替休日) and sandwiched days (国民の休日). A
year is computed the first time it is asked for and then cached; importing builds nothing.
The equinox days are the published astronomical formula (the official dates are announced a
year ahead and have agreed with it throughout this range so far)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Final

JST: Final = timezone(timedelta(hours=9), "JST")
CUTOFF: Final = time(17, 0)  # R-BIZ-1: "17時まで" - 17:00:00 itself is still in time
HOLIDAY_YEARS: Final = range(2000, 2100)

_ONE_DAY = timedelta(days=1)


class Product(StrEnum):
    NOTIFICATION = "notification"
    CHAT_PLUS = "chat_plus"
    CALL_PLUS = "call_plus"


# R-BIZ-1: business days the application must precede the start date by.
LEAD_BUSINESS_DAYS: Final = MappingProxyType({Product.NOTIFICATION: 6, Product.CHAT_PLUS: 6, Product.CALL_PLUS: 11})


# --- Japanese national holidays ---------------------------------------------------------------


def _nth_monday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7 + 7 * (n - 1))


def _equinox_day(year: int, base_micro: int) -> int:
    # day = int(base + 0.242194 * (Y - 1980) - int((Y - 1980) / 4)), in integer micro-days so
    # no float rounding can move a day (valid 1980-2099).
    y = year - 1980
    return (base_micro + 242_194 * y - 1_000_000 * (y // 4)) // 1_000_000


def vernal_equinox(year: int) -> date:
    return date(year, 3, _equinox_day(year, 20_843_100))


def autumnal_equinox(year: int) -> date:
    return date(year, 9, _equinox_day(year, 23_248_800))


def _named_holidays(year: int) -> dict[date, str]:
    """国民の祝日 of ``year`` (the days the holiday law names), without substitutes."""
    h: dict[date, str] = {
        date(year, 1, 1): "元日",
        _nth_monday(year, 1, 2): "成人の日",
        date(year, 2, 11): "建国記念の日",
        vernal_equinox(year): "春分の日",
        date(year, 4, 29): "昭和の日" if year >= 2007 else "みどりの日",
        date(year, 5, 3): "憲法記念日",
        date(year, 5, 5): "こどもの日",
        autumnal_equinox(year): "秋分の日",
        date(year, 11, 3): "文化の日",
        date(year, 11, 23): "勤労感謝の日",
    }
    if year >= 2007:
        h[date(year, 5, 4)] = "みどりの日"
    if year <= 2018:
        h[date(year, 12, 23)] = "天皇誕生日"
    elif year >= 2020:
        h[date(year, 2, 23)] = "天皇誕生日"
    if year == 2019:
        h[date(2019, 5, 1)] = "天皇の即位の日"
        h[date(2019, 10, 22)] = "即位礼正殿の儀の行われる日"
    # Days moved for the Tokyo Olympics (2020, and again 2021).
    moved = {
        2020: {"海の日": date(2020, 7, 23), "スポーツの日": date(2020, 7, 24), "山の日": date(2020, 8, 10)},
        2021: {"海の日": date(2021, 7, 22), "スポーツの日": date(2021, 7, 23), "山の日": date(2021, 8, 8)},
    }.get(year, {})
    marine = date(year, 7, 20) if year <= 2002 else _nth_monday(year, 7, 3)
    h[moved.get("海の日", marine)] = "海の日"
    if year >= 2016:
        h[moved.get("山の日", date(year, 8, 11))] = "山の日"
    h[date(year, 9, 15) if year <= 2002 else _nth_monday(year, 9, 3)] = "敬老の日"
    sports = "スポーツの日" if year >= 2020 else "体育の日"
    h[moved.get("スポーツの日", _nth_monday(year, 10, 2))] = sports
    return h


@cache
def _holidays(year: int) -> MappingProxyType[date, str]:
    if year not in HOLIDAY_YEARS:
        raise ValueError(f"Japanese holidays are computed for {HOLIDAY_YEARS.start}-{HOLIDAY_YEARS.stop - 1} only")
    named = _named_holidays(year)
    result = dict(named)
    for day in sorted(named):
        if day.weekday() != 6:
            continue
        # 振替休日: a holiday on a Sunday gives the next day that is not itself a holiday
        # (before 2007: the Monday, if it was not a holiday already).
        sub = day + _ONE_DAY
        if year >= 2007:
            while sub in named:
                sub += _ONE_DAY
        if sub not in named and sub.year == year:  # (12/31 is never a holiday)
            result.setdefault(sub, "振替休日")
    for day in sorted(named):
        # 国民の休日: an ordinary day between two named holidays (before 2007 not a Sunday).
        mid = day + _ONE_DAY
        if mid + _ONE_DAY in named and mid not in named and (year >= 2007 or mid.weekday() != 6):
            result.setdefault(mid, "国民の休日")
    return MappingProxyType(dict(sorted(result.items())))


def japanese_holidays(year: int) -> MappingProxyType[date, str]:
    """Every national holiday of ``year`` (2000-2099) with its name, in date order."""
    return _holidays(year)


def holiday_name(day: date) -> str | None:
    return _holidays(day.year).get(day)


def is_japanese_holiday(day: date) -> bool:
    return day in _holidays(day.year)


def is_year_end(day: date) -> bool:
    """12/29-1/3, the usual Japanese year-end closure."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


# --- calendars --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Which days are closed. ``extra_closed`` adds company-specific days."""

    name: str
    weekends: bool = True
    national_holidays: bool = False
    year_end: bool = False
    extra_closed: frozenset[date] = field(default_factory=frozenset)

    def is_business_day(self, day: date) -> bool:
        if self.weekends and day.weekday() >= 5:
            return False
        if self.year_end and is_year_end(day):
            return False
        if day in self.extra_closed:
            return False
        return not (self.national_holidays and is_japanese_holiday(day))

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        day += _ONE_DAY
        while not self.is_business_day(day):
            day += _ONE_DAY
        return day

    def previous_business_day(self, day: date) -> date:
        """The last business day strictly before ``day``."""
        day -= _ONE_DAY
        while not self.is_business_day(day):
            day -= _ONE_DAY
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """``n`` business days after ``day`` (``n`` >= 0; 0 gives ``day`` itself)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        for _ in range(n):
            day = self.next_business_day(day)
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days in ``[start, end)``."""
        n, day = 0, start
        while day < end:
            n += self.is_business_day(day)
            day += _ONE_DAY
        return n


WEEKENDS: Final = BusinessCalendar("weekends")
JP_HOLIDAYS: Final = BusinessCalendar("jp_holidays", national_holidays=True)
JP_HOLIDAYS_YEAR_END: Final = BusinessCalendar("jp_holidays_year_end", national_holidays=True, year_end=True)
CALENDARS: Final = MappingProxyType({c.name: c for c in (WEEKENDS, JP_HOLIDAYS, JP_HOLIDAYS_YEAR_END)})


def calendar_named(name: str) -> BusinessCalendar:
    try:
        return CALENDARS[name]
    except KeyError:
        raise ValueError(f"unknown calendar {name!r}; one of {sorted(CALENDARS)}") from None


def _calendar(calendar: BusinessCalendar | str) -> BusinessCalendar:
    return calendar if isinstance(calendar, BusinessCalendar) else calendar_named(calendar)


# --- R-BIZ-1 ----------------------------------------------------------------------------------


def submission_day(submitted_at: datetime, calendar: BusinessCalendar | str) -> date:
    """The business day a submission counts for: its own JST day when that is a business day
    and it is in by 17:00 JST (inclusive), else the next business day."""
    if submitted_at.tzinfo is None or submitted_at.utcoffset() is None:
        raise ValueError("submitted_at must be timezone-aware")
    cal = _calendar(calendar)
    local = submitted_at.astimezone(JST)
    day = local.date()
    if cal.is_business_day(day) and local.time() <= CUTOFF:
        return day
    return cal.next_business_day(day)


def earliest_start(product: Product | str, submitted_at: datetime, calendar: BusinessCalendar | str) -> date:
    """R-BIZ-1: the first start date an application submitted at ``submitted_at`` allows."""
    lead = LEAD_BUSINESS_DAYS[Product(product)]
    cal = _calendar(calendar)
    return cal.add_business_days(submission_day(submitted_at, cal), lead)


def submission_deadline(product: Product | str, start: date, calendar: BusinessCalendar | str) -> datetime:
    """R-BIZ-1 the other way round: the last moment (JST) to apply for a start on ``start``,
    which must be a business day."""
    cal = _calendar(calendar)
    if not cal.is_business_day(start):
        raise ValueError(f"{start} is not a business day in calendar {cal.name!r}")
    day = start
    for _ in range(LEAD_BUSINESS_DAYS[Product(product)]):
        day = cal.previous_business_day(day)
    return datetime.combine(day, CUTOFF, JST)
