"""Friend state from follow / unfollow events.

LINE may deliver events twice and out of order (line-platform.md 1.6), so a transition is
decided by the event's own timestamp: an event older than the last applied one changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FriendState(StrEnum):
    FRIEND = "friend"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class FriendSnapshot:
    state: FriendState
    since_ms: int  # timestamp of the event that set the state
    last_event_ms: int


@dataclass(frozen=True, slots=True)
class Transition:
    new: FriendSnapshot
    friends_delta: int
    blocked_delta: int


def apply_event(current: FriendSnapshot | None, event_type: str, timestamp_ms: int) -> Transition | None:
    """The state change ``event_type`` causes, or None when it is stale or changes nothing."""
    if current is not None and timestamp_ms <= current.last_event_ms:
        return None
    target = FriendState.FRIEND if event_type == "follow" else FriendState.BLOCKED
    if current is None:
        friends = 1 if target is FriendState.FRIEND else 0
        blocked = 1 - friends
        return Transition(FriendSnapshot(target, timestamp_ms, timestamp_ms), friends, blocked)
    if current.state is target:
        # Same state, newer event: keep "since" but remember the newer timestamp.
        return Transition(FriendSnapshot(target, current.since_ms, timestamp_ms), 0, 0)
    sign = 1 if target is FriendState.FRIEND else -1
    return Transition(FriendSnapshot(target, timestamp_ms, timestamp_ms), sign, -sign)
