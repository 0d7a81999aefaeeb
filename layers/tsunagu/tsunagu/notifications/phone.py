"""Phone numbers for LINE notification messages (R-PNP-2, R-PNP-4; line-platform.md 4.3):
normalise to E.164 and hash as LINE requires (SHA-256 of the E.164 string, lowercase hex).

Digits are ASCII or full-width; separators are the ones ``phonenumbers`` reads (spaces, the
ideographic space, parentheses, and the dashes ``-`` ``‐`` ``―`` ``−`` ``ー`` ``－``, the
katakana long-vowel mark being a common slip for a dash). Two deliberate differences from the
library, which would otherwise send a message to a stranger: letters are refused, never read as
a keypad (``090-1234-ABCD``, ``tel:``, ``ext.``), and so are the digits of other scripts and
styles (Arabic-Indic ``٥``, Devanagari ``५``, mathematical ``𝟓``), which the library reads as
digits; circled and superscript digits are refused, as the library does.

A fast path handles the shapes most businesses send - a Japanese number written with those
digits, spaces or dashes, domestic (0...) or +81 - by checking the national number against the
library's own JP metadata patterns (the rule ``is_valid_number`` applies); anything else goes
through ``phonenumbers`` itself. Apart from the two differences above, the result is identical
to ``phonenumbers`` parse + validate + format (tests/unit/test_phone_corpus.py runs a corpus of
awkward inputs; bench/phone_hash.py a million generated numbers)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import cache
from typing import Any

# Japanese mobile numbers (070/080/090 + a non-zero digit + 7 digits): the library's own
# metadata for JP mobile, restricted to the ranges that are valid in every case.
_MOBILE_NSN = re.compile(r"[789]0[1-9][0-9]{7}")
# The commonest shape of all, a JP mobile number (070/080/090, 3-4-4 with optional hyphens or
# spaces, domestic or +81): always valid for the library's JP mobile description.
_MOBILE_EXPRESS = re.compile(r" *(?:0|\+81[ -]?)([789]0)[ -]?([1-9][0-9]{3})[ -]?([0-9]{4}) *")
# ASCII digits, spaces and hyphens only: nothing for the library to reinterpret.
_SIMPLE = re.compile(r"\+?[0-9][0-9 -]*[0-9]")
_STRIP = str.maketrans("", "", " -")
# The longest phone number accepted as typed, before spaces and dashes are dropped: 40 is room
# for any real number written with separators, and keeps a padded 100-character "number" (or a
# pasted paragraph) from being normalised into an accepted one. Both the batch API (R-PNP-4) and
# the member register / link page (R-LINK-1) refuse longer input.
MAX_PHONE_CHARS = 40
# Full-width digits and plus, the ideographic space, and the dashes phonenumbers reads as
# punctuation, mapped to their ASCII shapes (never NFKC: it turns ① and ² into digits).
_TO_ASCII = str.maketrans(
    {
        **{chr(0xFF10 + d): str(d) for d in range(10)},
        "\uff0b": "+",
        "\u3000": " ",
        **dict.fromkeys("\u2010\u2015\u2212\u30fc\uff0d", "-"),
    }
)


_JP_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


@cache
def _jp_rules() -> tuple[tuple[re.Pattern[str], frozenset[int]], list[tuple[re.Pattern[str], frozenset[int]]]]:
    """The library's JP number descriptions: (pattern, possible lengths) for the general shape
    and for each number type."""
    from phonenumbers.data.region_JP import PHONE_METADATA_JP as meta

    def rule(desc: Any) -> tuple[re.Pattern[str], frozenset[int]]:
        return re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ())

    types = [rule(d) for d in (getattr(meta, t) for t in _JP_TYPES) if d is not None and d.national_number_pattern]
    return rule(meta.general_desc), types


def to_ascii(raw: str) -> str:
    """``raw`` with full-width digits and plus, the ideographic space and the dashes above in
    their ASCII shapes; every other character as it is (no NFKC: ``①`` and ``²`` stay what they
    are, so a digits-only check refuses them)."""
    return raw if raw.isascii() else raw.translate(_TO_ASCII)


def _jp_valid(nsn: str) -> bool:
    (general, general_lengths), types = _jp_rules()
    n = len(nsn)
    if (general_lengths and n not in general_lengths) or general.fullmatch(nsn) is None:
        return False
    return any((not lengths or n in lengths) and pattern.fullmatch(nsn) is not None for pattern, lengths in types)


def to_e164(raw: str, region: str = "JP") -> str | None:
    """The E.164 form of ``raw`` read in ``region``, or None when it is not a valid number."""
    text = to_ascii(raw)
    if not text.isascii() and _foreign_digits(text):
        return None
    if any(ch.isalpha() for ch in text):
        # phonenumbers reads letters as a keypad ("090-1234-ABCD" -> ...2223): a typo or a
        # vanity number would reach a stranger, so letters are refused, never converted.
        return None
    if region == "JP":
        m = _MOBILE_EXPRESS.fullmatch(text)
        if m is not None:
            return "+81" + m.group(1) + m.group(2) + m.group(3)
    text = text.strip()
    if region == "JP" and _SIMPLE.fullmatch(text):
        digits = text.translate(_STRIP)
        if digits[:1] == "0" and digits[1:2] not in ("0", "") and _jp_valid(digits[1:]):
            return "+81" + digits[1:]
        if digits.startswith("+81") and digits[3:4] not in ("0", "") and _jp_valid(digits[3:]):
            return digits
    return _library_e164(raw, region)


def _foreign_digits(text: str) -> bool:
    """A digit or number sign other than ASCII 0-9 (full width is already mapped): another
    script's digits (the library would read them), circled, superscript, fractions, numerals."""
    return any(not ch.isascii() and unicodedata.category(ch) in ("Nd", "No", "Nl") for ch in text)


def _library_e164(raw: str, region: str) -> str | None:
    import phonenumbers

    try:
        n = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return str(phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164))


def library_reference(raw: str, region: str = "JP") -> str | None:
    """The baseline the fast path must equal (tests and bench/phone_hash.py)."""
    return _library_e164(raw, region)


def region_of(e164: str) -> Any:
    """ISO region of an E.164 number ("JP", "TH", "TW", "ID", ...)."""
    if e164.startswith("+81") and _MOBILE_NSN.fullmatch(e164, 3):
        return "JP"
    import phonenumbers

    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))


def line_hash(e164: str) -> str:
    """LINE's ``to`` for notification messages: SHA-256 of the E.164 string, lowercase hex."""
    return hashlib.sha256(e164.encode()).hexdigest()
