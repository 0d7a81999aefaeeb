"""Member register rows: validation per row, keyed hashes only, CSV in UTF-8 or Shift_JIS."""

from itertools import pairwise

import pytest

from tsunagu.linking.domain import (
    factor_hash,
    hash_password,
    normalize_phone_jp,
    parse_birth_date,
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
