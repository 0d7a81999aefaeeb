"""Member register rows: validation per row, keyed hashes only, CSV in UTF-8 or Shift_JIS."""

import unicodedata
from itertools import pairwise

import pytest

from tsunagu.linking.domain import (
    LinkRefused,
    factor_hash,
    hash_password,
    normalize_login_id,
    normalize_otp,
    normalize_phone_jp,
    parse_birth_date,
    parse_member_number,
    parse_usage_code,
    password_matches,
)
from tsunagu.linking.members import csv_to_rows, decode_csv, parse_rows

KEY = b"k" * 32


def test_a_row_is_stored_as_hashes_only():
    rec = parse_rows(
        [
            {
                "member_number": "1234567",
                "phone": "090-1234-5678",
                "birth_date": "19710401",
                "login_id": "taro",
                "password": "correct horse",
                "lines": [{"line_id": "L1", "usage_code": "1111 2222 3333 4444", "monthly_base_fee": 3000}],
            }
        ],
        KEY,
    ).records[0]
    assert rec.phone_hash == factor_hash(KEY, "phone", "09012345678")
    assert rec.birth_hash == factor_hash(KEY, "birth", "19710401")
    assert rec.lines[0].usage_code_hash == factor_hash(KEY, "usage_code", "1111222233334444")
    assert password_matches("correct horse", rec.password_hash) and not password_matches("x", rec.password_hash)
    assert "09012345678" not in repr(rec) and "19710401" not in repr(rec) and "correct horse" not in repr(rec)


def test_the_same_phone_hashes_differently_for_another_account():
    assert factor_hash(KEY, "phone", "09012345678") != factor_hash(b"j" * 32, "phone", "09012345678")


def test_bad_rows_are_reported_by_row_and_code_and_the_rest_imported():
    rows = [
        {"member_number": "1234567", "phone": "090-1234-5678"},
        {"member_number": "12", "phone": "090"},
        {"member_number": "2345678", "birth_date": "1971-04-01"},
        {"member_number": "3456789", "unexpected": "x"},
        {"member_number": "1234567"},
    ]
    parsed = parse_rows(rows, KEY)
    assert [r.member_number for r in parsed.records] == ["1234567"]
    assert [(e.row, e.code) for e in parsed.errors] == [
        (2, "member_number_format"),
        (3, "birth_date_format"),
        (4, "invalid_row"),
        (5, "duplicate_member"),
    ]
    assert all("1971-04-01" not in e.message for e in parsed.errors)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("090-1234-5678", "09012345678"),
        ("０９０１２３４５６７８", "09012345678"),
        ("+81 90 1234 5678", "09012345678"),
        ("099-222-3333", "0992223333"),
    ],
)
def test_japanese_phone_numbers_normalise(raw, expected):
    assert normalize_phone_jp(raw) == expected


@pytest.mark.parametrize("raw", ["1971041", "19710431", "1971/04/01", "abcdefgh"])
def test_birth_dates_must_be_8_digit_real_dates(raw):
    with pytest.raises(Exception) as e:
        parse_birth_date(raw)
    assert e.value.code == "birth_date_format"


def test_csv_groups_lines_by_member_and_reads_shift_jis():
    text = (
        "member_number,phone,birth_date,line_id,usage_code,monthly_base_fee\r\n"
        "N0123456789,09012345678,19800101,L1,1111222233334444,3000\r\n"
        "N0123456789,,,L2,5555666677778888,1500\r\n"
    )
    rows, lines = csv_to_rows(decode_csv(text.encode("cp932")))
    assert lines == [2]
    assert [ln["line_id"] for ln in rows[0]["lines"]] == ["L1", "L2"]
    assert decode_csv("\ufeffmember_number\r\n".encode()) == "member_number\r\n"


def test_csv_with_unknown_columns_is_refused():
    with pytest.raises(Exception) as e:
        csv_to_rows("member_number,shoe_size\r\n1,2\r\n")
    assert e.value.code == "csv_columns"


def test_scrypt_hashes_are_salted():
    assert hash_password("same") != hash_password("same")


def test_import_batches_hold_at_most_1000_members_and_100_passwords():
    from tsunagu.linking.members import batches

    rows = [{"member_number": str(1000 + i), **({"password": "pw-123456"} if i % 2 else {})} for i in range(2_500)]
    cuts = batches(rows)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(rows)
    assert all(a == prev_b for (_, prev_b), (a, _) in pairwise(cuts))
    for a, b in cuts:
        assert b - a <= 1000 and sum(1 for r in rows[a:b] if r.get("password")) <= 100
    plain = [{"member_number": str(1000 + i)} for i in range(2_500)]
    assert batches(plain) == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert batches([]) == []


# ---- typed input (issue 15 item 6): full-width forms are the same entry, styled digits are not,
# and padding never turns an over-long entry into an accepted one.
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("０９０－１２３４－５６７８", "09012345678"),  # full-width digits and hyphen
        ("090ー1234ー5678", "09012345678"),  # the katakana long-vowel mark typed as a dash
        ("090‐1234―5678", "09012345678"),
        ("（090）1234-5678", "09012345678"),
        ("＋８１ ９０ １２３４ ５６７８", "09012345678"),
        ("\u3000090 1234 5678\u3000", "09012345678"),
        (" " * 14 + "090-1234-5678" + " " * 13, "09012345678"),  # 40 characters as typed
    ],
)
def test_r_link_1_phone_forms_typed_on_a_japanese_keyboard(raw, expected):
    assert normalize_phone_jp(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "⓪⑨⓪-①②③④-⑤⑥⑦⑧",  # circled digits: NFKC would make them 09012345678
        "⁰⁹⁰-¹²³⁴-⁵⁶⁷⁸",  # superscript
        "₀₉₀₁₂₃₄₅₆₇₈",  # subscript
        "090-1234-٥٦٧٨",  # Arabic-Indic
        "०९०-१२३४-५६७८",  # Devanagari
        "𝟎𝟗𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖",  # mathematical bold
        "090-1234-567⑧",
        " " * 41 + "09012345678",  # padded past the 40 characters a typed number may have
        "090-1234-5678" + "-" * 28,
        "0" + "-" * 60 + "9012345678",
    ],
)
def test_r_link_1_styled_digits_and_padding_are_refused(raw):
    with pytest.raises(LinkRefused) as e:
        normalize_phone_jp(raw)
    assert e.value.code == "phone_format"


def test_the_register_reads_a_phone_number_as_the_notification_batch_does():
    """R-LINK-1 / R-PNP-4: the batch finds a linked member by hashing the domestic form of its
    E.164 number; the register must have hashed the same digits for the same input, and must
    never accept a digit form the batch refuses."""
    from tests.unit.test_phone_corpus import CORPUS, DELIBERATE_DIFFERENCES
    from tsunagu.notifications.phone import to_e164

    full_width = {chr(0xFF10 + d) for d in range(10)}
    both = 0
    for raw in CORPUS + sorted(DELIBERATE_DIFFERENCES):
        try:
            domestic = normalize_phone_jp(raw)
        except LinkRefused:
            continue
        assert all(ch.isascii() or ch in full_width for ch in raw if unicodedata.category(ch)[0] == "N"), raw
        e164 = to_e164(raw)
        if e164 is not None:
            both += 1
            assert e164 == "+81" + domestic[1:], raw
    assert both > 100
    for raw in DELIBERATE_DIFFERENCES:
        with pytest.raises(LinkRefused):
            normalize_phone_jp(raw)


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        (parse_member_number, "ｎ０１２３４５６７８９", "N0123456789"),  # R-LINK-14, full-width
        (parse_member_number, " 1234567 ", "1234567"),
        (parse_birth_date, "１９７１０４０１", "19710401"),  # R-LINK-2
        (parse_usage_code, "１１１１－２２２２－３３３３－４４４４", "1111222233334444"),  # R-LINK-9
        (parse_usage_code, "1111 2222 3333 4444", "1111222233334444"),
        (normalize_login_id, "ｔａｒｏ＿01 ", "taro_01"),  # R-LINK-9: the same ID in full width
        (normalize_login_id, "x" * 65, ""),  # longer than a login ID: matches nobody
        (normalize_otp, "１２３４５", "12345"),  # R-LINK-14
        (normalize_otp, "1" * 41, ""),
    ],
)
def test_other_typed_fields_read_full_width_forms(parse, raw, expected):
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw", "code"),
    [
        (parse_member_number, "①②③④⑤⑥⑦", "member_number_format"),
        (parse_member_number, "N⓪①②③④⑤⑥⑦⑧⑨", "member_number_format"),
        (parse_member_number, " " * 40 + "1234567", "member_number_format"),
        (parse_birth_date, "①⑨⑦①⓪④⓪①", "birth_date_format"),
        (parse_birth_date, "¹⁹⁷¹⁰⁴⁰¹", "birth_date_format"),
        (parse_birth_date, "19710401" + " " * 33, "birth_date_format"),
        (parse_usage_code, "①①①①②②②②③③③③④④④④", "usage_code_format"),
        (parse_usage_code, "1111-2222-3333-4444" + "-" * 22, "usage_code_format"),
        (parse_usage_code, "1-1-1-1-2-2-2-2-3-3-3-3-4-4-4-4" + " " * 10, "usage_code_format"),
    ],
)
def test_other_typed_fields_refuse_styled_digits_and_padding(parse, raw, code):
    with pytest.raises(LinkRefused) as e:
        parse(raw)
    assert e.value.code == code


def test_a_register_row_and_the_link_page_hash_a_full_width_login_id_alike():
    rec = parse_rows([{"member_number": "1234567", "login_id": "ｔａｒｏ"}], KEY).records[0]
    assert rec.login_id_hash == factor_hash(KEY, "login_id", normalize_login_id("taro"))


def test_a_padded_phone_in_a_register_row_is_refused_by_row():
    parsed = parse_rows([{"member_number": "1234567", "phone": "090-1234-5678" + " " * 60}], KEY)
    assert parsed.records == [] and [(e.row, e.code, e.field) for e in parsed.errors] == [(1, "phone_format", "phone")]


def test_register_keeps_segment_attributes_and_an_age_band_never_the_birth_date() -> None:
    from datetime import date

    from tsunagu.linking.domain import age_band
    from tsunagu.linking.members import MemberIn, to_record

    assert age_band("19710401", date(2026, 3, 31)) == "50s"  # 54 the day before the birthday
    assert age_band("19760401", date(2026, 4, 1)) == "50s"  # 50 on the day
    assert age_band("20100101", date(2026, 1, 1)) == "under_20"
    assert age_band("19500101", date(2026, 1, 1)) == "70_plus"
    rec = to_record(
        MemberIn(member_number="1234", birth_date="19860515", store=" S01 ", prefecture="鹿児島県"), b"k" * 32
    )
    assert (rec.store, rec.prefecture, rec.plan) == ("S01", "鹿児島県", None)
    assert rec.age_band in ("30s", "40s") and "19860515" not in repr(rec)
