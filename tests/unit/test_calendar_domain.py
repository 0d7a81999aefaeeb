"""R-BIZ-1: business-day deadlines with the 17:00 JST cut-off, on configurable calendars, and the
Japanese national holidays they use (computed, checked here against the published lists)."""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tsunagu.billing.calendar import (
    JP_HOLIDAYS,
    JP_HOLIDAYS_YEAR_END,
    JST,
    WEEKENDS,
    BusinessCalendar,
    Product,
    autumnal_equinox,
    calendar_named,
    earliest_start,
    holiday_name,
    is_japanese_holiday,
    japanese_holidays,
    submission_day,
    submission_deadline,
    vernal_equinox,
)


def d(s: str) -> date:
    return date.fromisoformat(s)


def jst(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=JST)


# --- national holidays --------------------------------------------------------------------------

PUBLISHED = {
    2024: "01-01 01-08 02-11 02-12 02-23 03-20 04-29 05-03 05-04 05-05 05-06 07-15 08-11 08-12 09-16 09-22 "
    "09-23 10-14 11-03 11-04 11-23",
    2025: "01-01 01-13 02-11 02-23 02-24 03-20 04-29 05-03 05-04 05-05 05-06 07-21 08-11 09-15 09-23 10-13 "
    "11-03 11-23 11-24",
    2026: "01-01 01-12 02-11 02-23 03-20 04-29 05-03 05-04 05-05 05-06 07-20 08-11 09-21 09-22 09-23 10-12 11-03 11-23",
    2027: "01-01 01-11 02-11 02-23 03-21 03-22 04-29 05-03 05-04 05-05 07-19 08-11 09-20 09-23 10-11 11-03 11-23",
    # The accession year, and the two Olympic years with moved holidays.
    2019: "01-01 01-14 02-11 03-21 04-29 04-30 05-01 05-02 05-03 05-04 05-05 05-06 07-15 08-11 08-12 09-16 "
    "09-23 10-14 10-22 11-03 11-04 11-23",
    2020: "01-01 01-13 02-11 02-23 02-24 03-20 04-29 05-03 05-04 05-05 05-06 07-23 07-24 08-10 09-21 09-22 11-03 11-23",
    2021: "01-01 01-11 02-11 02-23 03-20 04-29 05-03 05-04 05-05 07-22 07-23 08-08 08-09 09-20 09-23 11-03 11-23",
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_holidays_match_the_published_list(year):
    expected = {date.fromisoformat(f"{year}-{md}") for md in PUBLISHED[year].split()}
    assert set(japanese_holidays(year)) == expected


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2026-05-06", "振替休日"),  # 5/3 is a Sunday; 5/4 and 5/5 are holidays themselves
        ("2026-09-22", "国民の休日"),  # between 敬老の日 (9/21) and 秋分の日 (9/23)
        ("2024-09-23", "振替休日"),  # 秋分の日 on a Sunday
        ("2023-01-02", "振替休日"),  # 元日 on a Sunday
        ("2009-09-22", "国民の休日"),
        ("2006-05-04", "国民の休日"),  # before みどりの日 moved to 5/4 (2007)
        ("2007-05-04", "みどりの日"),
        ("2018-12-24", "振替休日"),  # the last 12/23 天皇誕生日 fell on a Sunday
        ("2019-04-30", "国民の休日"),
        ("2019-05-01", "天皇の即位の日"),
        ("2021-08-09", "振替休日"),  # Olympic 山の日 on Sunday 8/8
        ("2026-01-12", "成人の日"),  # second Monday
        ("2002-07-20", "海の日"),  # a fixed day before Happy Monday reached it (2003)
        ("2003-07-21", "海の日"),
        ("2026-10-12", "スポーツの日"),
        ("2019-10-14", "体育の日"),
    ],
)
def test_named_special_days(day, name):
    assert holiday_name(d(day)) == name


@pytest.mark.parametrize(
    "day",
    ["2026-05-07", "2019-12-23", "2020-10-12", "2021-07-19", "2026-12-29", "2003-05-04", "2025-09-22"],
)
def test_not_holidays(day):
    # 2019 had no 天皇誕生日; 2020/2021 moved スポーツの日 and 海の日; year-end is not a national holiday;
    # 2003-05-04 was a plain Sunday (the old sandwich rule excluded Sundays).
    assert not is_japanese_holiday(d(day))


@pytest.mark.parametrize(
    ("year", "vernal", "autumnal"),
    [
        (2000, 20, 23),
        (2011, 21, 23),
        (2012, 20, 22),
        (2016, 20, 22),
        (2023, 21, 23),
        (2024, 20, 22),
        (2025, 20, 23),
        (2026, 20, 23),
        (2027, 21, 23),
        (2028, 20, 22),
    ],
)
def test_equinox_formula(year, vernal, autumnal):
    assert vernal_equinox(year) == date(year, 3, vernal)
    assert autumnal_equinox(year) == date(year, 9, autumnal)


def test_every_year_in_range_is_plausible():
    for year in range(2000, 2100):
        days = japanese_holidays(year)
        assert 15 <= len(days) <= 24, year
        assert list(days) == sorted(days)
        # A substitute never lands on another holiday or a Sunday.
        for day, name in days.items():
            if name == "振替休日":
                assert day.weekday() != 6


@pytest.mark.parametrize("year", [1999, 2100])
def test_holidays_outside_the_supported_range_refuse(year):
    with pytest.raises(ValueError, match="2000-2099"):
        japanese_holidays(year)


def test_import_builds_no_holiday_table():
    code = "import tsunagu.billing.calendar as c; print(c._holidays.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


# --- calendars ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "weekends", "jp_holidays", "year_end"),
    [
        ("2026-11-02", True, True, True),  # a Monday
        ("2026-11-03", True, False, False),  # Culture Day
        ("2026-11-07", False, False, False),  # Saturday
        ("2026-12-28", True, True, True),
        ("2026-12-29", True, True, False),
        ("2026-12-31", True, True, False),
        ("2027-01-01", True, False, False),
        ("2027-01-04", True, True, True),  # 1/4 is open again
        ("2026-01-02", True, True, False),  # a Friday
    ],
)
def test_which_days_each_calendar_closes(day, weekends, jp_holidays, year_end):
    assert WEEKENDS.is_business_day(d(day)) is weekends
    assert JP_HOLIDAYS.is_business_day(d(day)) is jp_holidays
    assert JP_HOLIDAYS_YEAR_END.is_business_day(d(day)) is year_end


def test_calendars_by_name_and_custom_closed_days():
    assert calendar_named("jp_holidays_year_end") is JP_HOLIDAYS_YEAR_END
    with pytest.raises(ValueError, match="unknown calendar"):
        calendar_named("lunar")
    shop = BusinessCalendar("shop", extra_closed=frozenset({d("2026-11-04")}))
    assert not shop.is_business_day(d("2026-11-04"))
    assert shop.next_business_day(d("2026-11-03")) == d("2026-11-05")
    assert WEEKENDS.business_days_between(d("2021-11-01"), d("2021-11-09")) == 6
    assert JP_HOLIDAYS.business_days_between(d("2021-11-01"), d("2021-11-09")) == 5
    assert WEEKENDS.add_business_days(d("2021-11-05"), 0) == d("2021-11-05")
    with pytest.raises(ValueError):
        WEEKENDS.add_business_days(d("2021-11-05"), -1)


# --- R-BIZ-1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted", "start"),
    [
        ("2021-11-01T09:00", "2021-11-09"),
        ("2021-11-01T16:59:59", "2021-11-09"),
        ("2021-11-01T17:00:00", "2021-11-09"),  # "17時まで": 17:00 itself is in time
        ("2021-11-01T17:00:01", "2021-11-10"),
        ("2021-11-01T23:59", "2021-11-10"),
        ("2021-11-02T00:00", "2021-11-10"),
    ],
)
def test_r_biz_1_source_example_holds_with_weekends_only(submitted, start):
    for product in (Product.NOTIFICATION, Product.CHAT_PLUS):
        assert earliest_start(product, jst(submitted), "weekends") == d(start)


@pytest.mark.parametrize(
    ("submitted", "start"),
    [("2021-11-01T17:00", "2021-11-10"), ("2021-11-01T17:01", "2021-11-11")],
)
def test_r_biz_1_same_example_with_national_holidays_moves_a_day(submitted, start):
    # Wed 2021-11-03 (Culture Day) is closed on this reading.
    assert earliest_start("notification", jst(submitted), JP_HOLIDAYS) == d(start)


@pytest.mark.parametrize(
    ("calendar", "in_time", "late"),
    [("weekends", "2021-11-16", "2021-11-17"), ("jp_holidays", "2021-11-17", "2021-11-18")],
)
def test_r_biz_1_call_plus_needs_11_business_days(calendar, in_time, late):
    assert earliest_start(Product.CALL_PLUS, jst("2021-11-01T17:00"), calendar) == d(in_time)
    assert earliest_start(Product.CALL_PLUS, jst("2021-11-01T17:30"), calendar) == d(late)


@pytest.mark.parametrize(
    ("submitted_at", "start"),
    [
        (datetime(2021, 11, 1, 8, 0, tzinfo=UTC), "2021-11-09"),  # 17:00 JST
        (datetime(2021, 11, 1, 8, 0, 1, tzinfo=UTC), "2021-11-10"),
        (datetime(2021, 10, 31, 20, 0, tzinfo=UTC), "2021-11-09"),  # already Mon 05:00 in Japan
        (datetime(2021, 11, 1, 3, 0, tzinfo=timezone(timedelta(hours=-5))), "2021-11-09"),  # 17:00 JST
        (datetime(2021, 11, 1, 3, 1, tzinfo=timezone(timedelta(hours=-5))), "2021-11-10"),
    ],
)
def test_r_biz_1_cut_off_is_17_jst_whatever_the_timezone(submitted_at, start):
    assert earliest_start("notification", submitted_at, WEEKENDS) == d(start)


@pytest.mark.parametrize("submitted", ["2021-10-30T10:00", "2021-10-31T23:00"])
def test_r_biz_1_a_closed_day_counts_as_the_next_business_day(submitted):
    assert submission_day(jst(submitted), WEEKENDS) == d("2021-11-01")
    assert earliest_start("chat_plus", jst(submitted), WEEKENDS) == d("2021-11-09")


@pytest.mark.parametrize(
    ("calendar", "start"),
    [
        ("weekends", "2026-01-05"),
        ("jp_holidays", "2026-01-06"),  # 1/1 closed
        ("jp_holidays_year_end", "2026-01-13"),  # 12/29-1/3 closed, and 成人の日 1/12
    ],
)
def test_r_biz_1_year_end(calendar, start):
    assert earliest_start("notification", jst("2025-12-26T10:00"), calendar) == d(start)


def test_r_biz_1_submitted_during_the_year_end_closure():
    assert submission_day(jst("2025-12-30T09:00"), JP_HOLIDAYS_YEAR_END) == d("2026-01-05")
    assert earliest_start("call_plus", jst("2025-12-30T09:00"), "jp_holidays_year_end") == d("2026-01-21")


def test_r_biz_1_naive_times_and_unknown_products_refuse():
    with pytest.raises(ValueError, match="aware"):
        earliest_start("notification", datetime(2021, 11, 1, 9), WEEKENDS)
    with pytest.raises(ValueError):
        earliest_start("sms", jst("2021-11-01T09:00"), WEEKENDS)


def test_r_biz_1_deadline_example():
    assert submission_deadline("notification", d("2021-11-09"), "weekends") == jst("2021-11-01T17:00")
    with pytest.raises(ValueError, match="not a business day"):
        submission_deadline("notification", d("2021-11-06"), "weekends")


@pytest.mark.parametrize("calendar", ["weekends", "jp_holidays", "jp_holidays_year_end"])
@pytest.mark.parametrize("product", list(Product))
def test_r_biz_1_deadline_and_earliest_start_agree_all_year(calendar, product):
    cal = calendar_named(calendar)
    day = d("2025-12-01")
    while day < d("2027-01-31"):
        if cal.is_business_day(day):
            deadline = submission_deadline(product, day, cal)
            assert earliest_start(product, deadline, cal) == day
            assert earliest_start(product, deadline + timedelta(microseconds=1), cal) == cal.next_business_day(day)
        day += timedelta(days=1)
