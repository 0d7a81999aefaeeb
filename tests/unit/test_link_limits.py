"""The link page's attempt limits as pure rules (issue 16; R-LINK-1, R-LINK-3): the sliding
window log and the two-bucket estimate behind distributed-guessing detection."""

from __future__ import annotations

from tsunagu.linking.domain import MESSAGES, sliding_admit, sliding_estimate


def test_a_sliding_window_never_holds_more_than_the_limit_across_a_fixed_boundary():
    hits: list[str] = []
    # 3 per 10 s: three at 8-9 s (the end of a fixed window), then attempts at 10-18 s.
    for i, t in enumerate((8000, 8500, 9000)):
        admitted = sliding_admit(hits, t, 10_000, 3, f"t{i}")
        assert admitted is not None
        hits = admitted
    for t in (10_000, 10_500, 11_000, 17_999):
        assert sliding_admit(hits, t, 10_000, 3, "x") is None  # a fixed window would let these in
    later = sliding_admit(hits, 18_001, 10_000, 3, "y")  # the first one left the window
    assert later is not None and later[-1] == "18001:y" and len(later) == 3
    assert sliding_admit(later, 18_002, 10_000, 3, "z") is None


def test_old_hits_are_dropped_from_the_log():
    assert sliding_admit(["1:a", "2:b"], 100_000, 1000, 1, "c") == ["100000:c"]


def test_the_two_bucket_estimate_weights_the_previous_bucket_by_what_is_left_of_it():
    assert sliding_estimate(10, 0, 3600 * 5, 3600) == 10  # at the start of a bucket: all of the last one
    assert sliding_estimate(10, 4, 3600 * 5 + 1800, 3600) == 9  # half-way: half of it
    assert sliding_estimate(0, 7, 3600 * 5 + 3599, 3600) == 7


def test_the_two_member_facing_messages_of_r_link_1_stay():
    assert "古い可能性" in MESSAGES["phone_mismatch"]  # R-LINK-1: the registered phone may be outdated
    assert "登録されていません" in MESSAGES["birth_date_not_registered"]
    assert "連携状況が変わりました" in MESSAGES["nonce_stale"]
