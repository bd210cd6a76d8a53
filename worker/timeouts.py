"""The start-up check that the broker will not redeliver a turn that is still running."""

from __future__ import annotations

from shared.config import Settings


def check_timeouts(settings: Settings) -> None:
    """Refuse settings under which the broker would redeliver a turn that is still running."""
    longest_task_s = settings.longest_task_s
    visibility_s = settings.lane_visibility_timeout_s
    if visibility_s <= longest_task_s + settings.max_countdown_s:
        name = "FLEX_VISIBILITY_TIMEOUT_S" if settings.lane == "flex" else "VISIBILITY_TIMEOUT_S"
        raise ValueError(
            f"EDITQUEUE_{name}={visibility_s} must exceed the "
            f"longest task ({longest_task_s:.0f}s) plus the longest countdown "
            f"({settings.max_countdown_s:.0f}s), or running turns get redelivered"
        )
