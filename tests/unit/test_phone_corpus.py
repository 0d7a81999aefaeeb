"""A differential corpus of awkward phone inputs: ``to_e164`` gives the same E.164 as
``phonenumbers`` (parse + is_valid_number + format) or refuses where it refuses, for every one,
except the deliberate differences listed below (issue 15, item 6)."""

from __future__ import annotations

import unicodedata

import phonenumbers
import pytest

from tsunagu.domain.phone import library_reference, to_e164

# National numbers in their usual groupings: valid mobile, landline, toll-free, IP phone, and
# invalid ones (wrong length, unassigned ranges).
GROUPS = [
    ("090", "1234", "5678"),
    ("080", "9876", "5432"),
    ("070", "1111", "2222"),
    ("03", "1234", "5678"),
    ("06", "6543", "2109"),
    ("0120", "123", "456"),
    ("050", "3123", "4567"),
    ("090", "1234", "567"),  # one digit short
    ("090", "1234", "56789"),  # one digit long
    ("070", "0000", "0000"),  # unassigned
]
SEPARATORS = [
    "",
    "-",
    " ",
    "\u3000",  # ideographic space
    "\u30fc",  # katakana long-vowel mark typed as a dash
    "\u2010",  # hyphen
    "\u2015",  # horizontal bar
    "\uff0d",  # full-width hyphen-minus
    "\u2212",  # minus sign
    "\u2013",  # en dash
    "\u2014",  # em dash
    ".",
    "/",
    "~",
    "\t",
    "\u00a0",  # no-break space
    "\u200b",  # zero-width space
    "--",
]
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def _corpus() -> list[str]:
    out: list[str] = []
    for a, b, c in GROUPS:
        for sep in SEPARATORS:
            out.append(f"{a}{sep}{b}{sep}{c}")
        out += [
            f"({a}) {b}-{c}",
            f"{a}({b}){c}",
            f"（{a}）{b}－{c}".translate(FULL_WIDTH),
            f"{a}-{b}-{c}".translate(FULL_WIDTH),
            f"{a}ー{b}ー{c}".translate(FULL_WIDTH),
            f"+81 {a[1:]} {b} {c}",
            f"+81-{a[1:]}-{b}-{c}",
            f"+81{a}{b}{c}",  # the trunk 0 kept after +81
            f"+81 {a[1:]} {b} {c}".translate(FULL_WIDTH),
            f"0081{a[1:]}{b}{c}",
            f"010 81 {a[1:]} {b} {c}",
            " " * 40 + f"{a}-{b}-{c}" + " " * 40,  # padded far past any field length
            f"\u3000{a}{b}{c}\u3000",
            f"{a}-{b}-{c}\n",
        ]
    return out


NASTY = [
    "",
    " ",
    "-",
    "+",
    "++819012345678",
    "+",
    "()",
    "0",
    "00",
    "0" * 30,
    "9" * 30,
    "1" * 200,
    "+81",
    "+810",
    "+819",
    "090-1234-5678#",
    "*090-1234-5678",
    "#090-1234-5678",
    "090-1234-5678;",
    "090-1234-5678,",
    "090,1234,5678",
    "090_1234_5678",
    "090+1234+5678",
    "090=1234=5678",
    "090:1234:5678",
    "[090]1234-5678",
    "［090］1234-5678",
    "090-1234-5678\x00",
    "\x00090-1234-5678",
    "090-1234-5678\u0301",  # combining accent
    "090-1234-5678\ufeff",  # byte-order mark
    "\u202e090-1234-5678",  # right-to-left override
    "090-1234-5678\U0001f4f1",  # emoji
    "☎090-1234-5678",
    "090-1234-5678 \u260e",
    # circled, parenthesised, superscript, subscript digits, numerals and fractions: refused, as
    # phonenumbers refuses them
    "⓪⑨⓪-①②③④-⑤⑥⑦⑧",
    "⓪⑨⓪①②③④⑤⑥⑦⑧",
    "⁰⁹⁰-¹²³⁴-⁵⁶⁷⁸",
    "₀₉₀-₁₂₃₄-₅₆₇₈",
    "090-1234-567⑧",
    "090-1234-567⁸",
    "090-1234-567½",
    "090-1234-567Ⅷ",
    "⑴⑵⑶",
    "+⑧①90-1234-5678",
    "０９０１２３４５６７⑧",
    # IP, foreign and international forms
    "+1 650 253 0000",
    "+44 20 7946 0958",
    "+66 81 234 5678",
    "+886 912 345 678",
    "+62 812 3456 7890",
    "+82 10 1234 5678",
    "+8190123456789",
    "+81 3 1234 567",
    "+81 (0) 90 1234 5678",
    "81 90 1234 5678",
    "8190-1234-5678",
    "+81  90  1234  5678",
    "+ 81 90 1234 5678",
    "＋８１９０１２３４５６７８",
    "+８１ ９０ １２３４ ５６７８",
    "090-1234-5678 ",
    " 090-1234-5678",
    "090 - 1234 - 5678",
    "090--1234--5678",
    "090-1234--5678",
    "-090-1234-5678",
    "090-1234-5678-",
    "(090)(1234)(5678)",
    "((090))1234-5678",
    "090)1234(5678",
    "0 9 0 1 2 3 4 5 6 7 8",
    "0-9-0-1-2-3-4-5-6-7-8",
    "09012345678" * 2,
    "0120-12-3456",
    "0570-123-456",
    "0800-123-4567",
    "0990-123-456",
    "020-1234-5678",
    "060-1234-5678",
    "0312345678",
    "031234567",
    "0312345",
]

# The library reads these as phone numbers; tsunagu refuses them on purpose (a letter read from
# a keypad, or another script's digit, would send the message to a stranger). Each is listed with
# what the library makes of it, and the test checks both sides.
DELIBERATE_DIFFERENCES = {
    # letters: keypad conversion, "tel:" and extension suffixes
    "090-1234-ABCD": "+819012342223",
    "0120-FLOWER": "+81120356937",
    "tel:090-1234-5678": "+819012345678",
    "090-1234-5678 ext 12": "+819012345678",
    "090-1234-5678 x12": "+819012345678",
    "TEL 090-1234-5678": "+819012345678",
    "電話 090-1234-5678": "+819012345678",
    # other scripts' and styles' decimal digits
    "090-1234-٥٦٧٨": "+819012345678",  # Arabic-Indic
    "٠٩٠١٢٣٤٥٦٧٨": "+819012345678",
    "۰۹۰-۱۲۳۴-۵۶۷۸": "+819012345678",  # Extended Arabic-Indic (Persian)
    "०९०-१२३४-५६७८": "+819012345678",  # Devanagari
    "০৯০১২৩৪৫৬৭৮": "+819012345678",  # Bengali
    "๐๙๐๑๒๓๔๕๖๗๘": "+819012345678",  # Thai
    "𝟎𝟗𝟎-𝟏𝟐𝟑𝟒-𝟓𝟔𝟕𝟖": "+819012345678",  # mathematical bold
    "𝟘𝟡𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠": "+819012345678",  # mathematical double-struck
    "+٨١ ٩٠ ١٢٣٤ ٥٦٧٨": "+819012345678",
}

CORPUS = _corpus() + NASTY


def test_the_corpus_is_big_and_varied():
    assert len(CORPUS) >= 200
    assert len(set(CORPUS)) > 0.95 * len(CORPUS)
    accepted = sum(1 for raw in CORPUS if library_reference(raw) is not None)
    assert 0.3 * len(CORPUS) < accepted < 0.8 * len(CORPUS)  # both answers well represented


@pytest.mark.parametrize("raw", CORPUS, ids=lambda raw: raw.encode("unicode_escape").decode()[:40])
def test_the_same_answer_as_phonenumbers(raw):
    assert to_e164(raw) == library_reference(raw)


@pytest.mark.parametrize("raw", sorted(DELIBERATE_DIFFERENCES), ids=lambda raw: raw.encode("unicode_escape").decode())
def test_deliberate_differences_are_refused_where_the_library_reads_a_number(raw):
    assert library_reference(raw) == DELIBERATE_DIFFERENCES[raw]
    assert to_e164(raw) is None


def test_only_letters_and_foreign_digits_differ():
    """Every listed difference is a letter or a non-ASCII, non-full-width digit."""
    full_width = {chr(0xFF10 + d) for d in range(10)}

    def reason(raw: str) -> bool:
        return any(
            (ch.isalpha() and ch != "ー")
            or (unicodedata.category(ch) == "Nd" and not ch.isascii() and ch not in full_width)
            for ch in raw
        )

    assert all(reason(raw) for raw in DELIBERATE_DIFFERENCES)
    assert not any(reason(raw) for raw in CORPUS if library_reference(raw) is not None)


def test_full_width_and_long_vowel_dash_are_accepted():
    assert to_e164("090-1234-567８") == "+819012345678"
    assert to_e164("090ー1234ー5678") == "+819012345678"
    assert to_e164("０９０ー１２３４ー５６７８") == "+819012345678"


def test_padding_does_not_change_the_answer():
    for raw in ("090-1234-5678", "03-1234-5678", "+66 81 234 5678", "090-1234-567"):
        for pad in (" " * 50, "\u3000" * 5):
            assert to_e164(pad + raw + pad) == to_e164(raw)


def test_the_library_is_the_pinned_one():
    # The project pins phonenumberslite; its metadata (no geocoding) is what the fast path reads.
    assert phonenumbers.__version__ == "9.0.42"
