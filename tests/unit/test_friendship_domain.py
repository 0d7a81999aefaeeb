"""Friend state transitions: newest event wins, counters move consistently."""

from tsunagu.messaging.friendship import FriendSnapshot, FriendState, apply_event


def test_first_follow_makes_a_friend_and_counts_one():
    t = apply_event(None, "follow", 100)
    assert t is not None
    assert t.new == FriendSnapshot(FriendState.FRIEND, 100, 100)
    assert (t.friends_delta, t.blocked_delta) == (1, 0)


def test_unfollow_of_a_friend_moves_one_from_friends_to_blocked():
    t = apply_event(FriendSnapshot(FriendState.FRIEND, 100, 100), "unfollow", 200)
    assert t is not None
    assert t.new.state is FriendState.BLOCKED
    assert t.new.since_ms == 200
    assert (t.friends_delta, t.blocked_delta) == (-1, 1)


def test_unblock_moves_one_back_to_friends():
    t = apply_event(FriendSnapshot(FriendState.BLOCKED, 200, 200), "follow", 300)
    assert t is not None
    assert (t.new.state, t.friends_delta, t.blocked_delta) == (FriendState.FRIEND, 1, -1)


def test_a_late_older_event_never_overwrites_a_newer_state():
    current = FriendSnapshot(FriendState.BLOCKED, 200, 200)
    assert apply_event(current, "follow", 150) is None
    assert apply_event(current, "follow", 200) is None


def test_a_newer_event_with_the_same_state_keeps_since_and_counts_nothing():
    t = apply_event(FriendSnapshot(FriendState.FRIEND, 100, 100), "follow", 300)
    assert t is not None
    assert (t.new.since_ms, t.new.last_event_ms, t.friends_delta, t.blocked_delta) == (100, 300, 0, 0)


def test_first_seen_as_unfollow_counts_a_block_only():
    t = apply_event(None, "unfollow", 100)
    assert t is not None
    assert (t.new.state, t.friends_delta, t.blocked_delta) == (FriendState.BLOCKED, 0, 1)
