"""How every number a person reads is written: the one formatting module of pages, emails and command-line tables.

Money is held as integer cents in a stated currency (`sheet_templates.money`); here it becomes
text for people, through Babel's CLDR data for the configured locale: thousands separators, the
currency's own decimals (two for EUR, none for JPY), negatives as finance writes them (in
parentheses, CLDR's accounting pattern), with the currency's symbol, or its ISO code wherever
currencies mix. Counts are whole numbers; ratios have two decimals; months are named ("Dec 2026")
and quarters written "Q3 FY2027". Workbooks use the Excel number formats below, built from the
same rules (`excel_money_format`, `EXCEL_COUNT`, `EXCEL_RATIO`, `EXCEL_PERCENT`).

The locale is a setting (`LOCALE`); `Formats(locale)` is cheap and immutable.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import (
    NumberPattern,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    parse_pattern,
)

from sheet_templates.calendar import FiscalCalendar, FiscalMonth

DEFAULT_LOCALE = "en_US"
_MONTH_KEY = re.compile(r"m(0[1-9]|1[0-2])")
_QUARTER_KEY = re.compile(r"Q([1-4])")


@cache
def _locale(name: str) -> Locale:
    """The parsed locale, once per name (Babel parses a locale given as text on every call)."""
    return Locale.parse(name)


@cache
def _pattern(text: str) -> NumberPattern:
    """A parsed number pattern, once per pattern (a page formats tens of thousands of amounts)."""
    return parse_pattern(text)


def checked_locale(name: str) -> str:
    """A locale name as Babel knows it ("en_GB", "de-DE" → "de_DE"); ValueError naming it if CLDR has none."""
    try:
        return str(Locale.parse(str(name).replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"locale {name!r} is not one CLDR describes; write it as en_US, en_GB or de_DE") from exc


@cache
def _code_pattern(locale: str) -> str:
    """The locale's accounting pattern with the currency's ISO code in place of its symbol ("¤¤ #,##0.00")."""
    pattern = Locale.parse(locale).currency_formats["accounting"].pattern
    pattern = pattern.replace("¤", "¤¤")
    pattern = re.sub(r"¤¤(?=[#0-9])", "¤¤\u00a0", pattern)
    return re.sub(r"(?<=[#0-9])¤¤", "\u00a0¤¤", pattern)


def digits(currency: str) -> int:
    """The currency's own number of decimals (2 for EUR, 0 for JPY), from CLDR."""
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Formats:
    """Numbers, money, months and quarters as text for people, in one locale."""

    locale: str = DEFAULT_LOCALE

    def money(self, cents: Any, currency: str, *, code: bool = False) -> str:
        """Cents in `currency` for people: "$8,575.00", "(€1,250.50)", "¥1,235"; with `code`, "EUR 8,575.00".

        Exact: the cents become a Decimal, never a float; a currency without decimals is rounded
        half away from zero to its whole units as CLDR says it is written. '' for no amount.
        """
        if cents is None or cents == "":
            return ""
        value = Decimal(int(cents)) / 100
        if code:
            pattern = _code_pattern(self.locale)
            return format_currency(value, currency, pattern, locale=_locale(self.locale), currency_digits=True)
        return format_currency(value, currency, locale=_locale(self.locale), format_type="accounting")

    def amount(self, cents: Any, currency: str) -> str:
        """Cents as a number in `currency`'s decimals, with separators and negatives in parentheses ("(1,250.50)").

        For a table whose header names the currency.
        """
        if cents is None or cents == "":
            return ""
        value = Decimal(int(cents)) / 100
        places = digits(currency)
        fraction = "0" * places
        text = format_decimal(
            abs(value), _pattern(f"#,##0{'.' + fraction if places else ''}"), locale=_locale(self.locale)
        )
        return f"({text})" if value < 0 else text

    def count(self, value: Any) -> str:
        """A count as a whole number with separators (473.65 won opportunities read as 474)."""
        if value is None or value == "":
            return ""
        return format_decimal(round(Decimal(str(value))), _pattern("#,##0"), locale=_locale(self.locale))

    def ratio(self, value: Any, places: int = 2) -> str:
        """A ratio (ROI, cost per lead in units, pipeline per spend) with `places` decimals; '' for none."""
        if value is None or value == "" or _not_finite(value):
            return ""
        return format_decimal(Decimal(str(value)), _pattern(f"#,##0.{'0' * places}"), locale=_locale(self.locale))

    def percent(self, value: Any, places: int = 1) -> str:
        """A fraction as a percentage ("84.2%"); '' for none."""
        if value is None or value == "" or _not_finite(value):
            return ""
        return format_percent(Decimal(str(value)), _pattern(f"#,##0.{'0' * places}%"), locale=_locale(self.locale))

    def compact(self, value: Any, places: int = 2) -> str:
        """A number in the locale's short form, for a chart's axis and bar labels: "1M", "2.5M", "500K"; '' for none.

        Up to `places` decimals of the shortened number, trailing zeros dropped (1.25M, 2.5M, 1M).
        """
        if value is None or value == "" or _not_finite(value):
            return ""
        number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))  # a short number is rounded too: 19.58
        return format_compact_decimal(number, format_type="short", locale=_locale(self.locale), fraction_digits=places)

    def month(self, month: FiscalMonth | str, calendar: FiscalCalendar | None = None) -> str:
        """A fiscal month by name ("Dec 2026"): a `FiscalMonth`, or its key ("m12") in `calendar`'s year."""
        if isinstance(month, str):
            found = _MONTH_KEY.fullmatch(month)
            if found is None or calendar is None:
                return month
            month = calendar.months[int(found.group(1)) - 1]
        return format_date(month.first_day, "MMM y", locale=_locale(self.locale))

    def period(self, key: str, calendar: FiscalCalendar) -> str:
        """A month key ("m03") or quarter key ("Q3") of `calendar`'s year as people read it."""
        quarter = _QUARTER_KEY.fullmatch(key)
        if quarter is not None:
            return self.quarter(int(quarter.group(1)), calendar.year)
        return self.month(key, calendar)

    def quarter(self, quarter: int | str, year: int) -> str:
        """A fiscal quarter as "Q3 FY2027"."""
        number = int(str(quarter).lstrip("Qq"))
        return f"Q{number} FY{year}"

    def date(self, day: dt.date | str | None) -> str:
        """A date as "Dec 7, 2026" (the locale's medium form)."""
        if day is None or day == "":
            return ""
        if isinstance(day, str):
            day = dt.date.fromisoformat(day[:10])
        return format_date(day, "medium", locale=_locale(self.locale))

    def moment(self, when: dt.datetime | str | None) -> str:
        """A time stamp as "Dec 7, 2026, 2:05 PM" in en_US (to the minute, as stored: UTC)."""
        if when is None or when == "":
            return ""
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        where = _locale(self.locale)
        return f"{format_date(when, 'medium', locale=where)}, {format_time(when, 'short', locale=where)}"


def _not_finite(value: Any) -> bool:
    try:
        return not Decimal(str(value)).is_finite()
    except ArithmeticError:
        return True


def words(code: str) -> str:
    """A machine code ("cell.allowed_value", "plan.approved") as words, for codes no table describes."""
    last = str(code).rsplit(".", 1)[-1]
    text = last.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# The Excel number formats of the same rules, for workbooks: separators, negatives in parentheses for money.
EXCEL_COUNT = "#,##0"
EXCEL_RATIO = "#,##0.00"
EXCEL_PERCENT = "0.0%"


def excel_money_format(currency: str | None = None) -> str:
    """The Excel number format of money in `currency` (its own decimals): "#,##0.00;(#,##0.00)"."""
    places = 2 if currency is None else digits(currency)
    number = "#,##0" + ("." + "0" * places if places else "")
    return f"{number}_);({number})"
