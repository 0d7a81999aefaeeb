"""Phone normalisation for notification messages: LINE's hash example, and the fast path is
identical to the phonenumbers library on generated numbers (bench/phone_hash.py runs 1,000,000)."""

import random

import pytest

from tsunagu.notifications.phone import library_reference, line_hash, region_of, to_e164


def test_lines_published_hash_example():
    assert line_hash("+818000001234") == "d41e0ad70dddfeb68f149ad6fc61574b9c5780ab7bcb2fba5517771ffbb2409c"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("090-1234-5678", "+819012345678"),
        ("09012345678", "+819012345678"),
        ("+81 90 1234 5678", "+819012345678"),
        ("０９０－１２３４－５６７８", "+819012345678"),
        ("03-1234-5678", "+81312345678"),
        ("0120-123-456", "+81120123456"),
        ("07000000000", None),
        ("not a number", None),
        ("", None),
        ("+66 81 234 5678", "+66812345678"),
    ],
)
def test_realistic_inputs_normalise_to_e164(raw, e164):
    assert to_e164(raw) == e164


def test_region_of_a_number():
    assert region_of("+819012345678") == "JP"
    assert region_of("+66812345678") == "TH"


def generated(n: int, seed: int = 7) -> list[str]:
    """Shapes businesses send: mobile and landline, separators, full width, +81, junk."""
    rnd = random.Random(seed)
    full = str.maketrans("0123456789-+", "０１２３４５６７８９－＋")
    out = []
    for _ in range(n):
        kind = rnd.random()
        if kind < 0.6:
            d = f"0{rnd.choice('6789')}0{rnd.randrange(10**8):08d}"
        elif kind < 0.8:
            d = f"0{rnd.randrange(1, 10)}{rnd.randrange(10**8):08d}"
        elif kind < 0.9:
            d = f"0120{rnd.randrange(10**6):06d}"
        else:
            d = "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(5, 14)))
        style = rnd.random()
        if style < 0.3:
            s = f"{d[:3]}-{d[3:7]}-{d[7:]}"
        elif style < 0.45:
            s = "+81 " + d[1:] if d.startswith("0") else d
        elif style < 0.55:
            s = d.translate(full)
        elif style < 0.6:
            s = f" {d[:3]} {d[3:7]} {d[7:]} "
        elif style < 0.65:
            s = f"({d[:3]}){d[3:7]}-{d[7:]}"
        elif style < 0.7:
            s = "+81" + d
        else:
            s = d
        out.append(s)
    return out


def test_fast_path_equals_the_library_on_generated_numbers():
    for raw in generated(20_000):
        assert to_e164(raw) == library_reference(raw), raw
