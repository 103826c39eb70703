"""Model retirement: warn within 60 days, refuse to fine-tune within 14, say nothing when far off."""

from __future__ import annotations

from datetime import date

import pytest

from coach.domain.retirement import parse_shutdown, retirement_notice

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(("shutdown", "level", "days"), [
    (date(2027, 3, 1), None, None),  # 89 days: nothing to say yet
    (date(2027, 1, 31), "warn", 60),
    (date(2027, 1, 14), "warn", 43),  # gpt-4o-mini and its fine-tunes
    (date(2026, 12, 16), "refuse", 14),
    (date(2026, 12, 11), "refuse", 9),  # gpt-5 family
    (date(2026, 11, 1), "refuse", -31),  # already gone
])
def test_levels_by_days_left(shutdown, level, days):
    notice = retirement_notice("gpt-x", shutdown, TODAY)
    if level is None:
        assert notice is None
        return
    assert notice.level == level and notice.days_left == days
    assert shutdown.isoformat() in notice.message and "Bedrock" in notice.message


def test_unknown_dates_say_nothing():
    assert retirement_notice("my-llama", None, TODAY) is None
    assert parse_shutdown(None) is None and parse_shutdown("") is None and parse_shutdown("soon") is None
    assert parse_shutdown("2027-01-14") == date(2027, 1, 14)
    assert parse_shutdown(1_799_884_800) == date(2027, 1, 14)
