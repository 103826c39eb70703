"""Stories taken by an earlier build: used again by default, left out (and counted) only when asked."""

from __future__ import annotations

import pytest

from coach.local.lambda_runtime import invoke
from coach.step_errors import NoStories


def _request(build_id: str, **extra) -> dict:
    return {"build_id": build_id, "source": {"kind": "samples"}, "limit": 4, **extra}


def test_a_second_build_of_the_same_source_gets_its_stories(aws):
    first = invoke("scraper", {"request": _request("d1")})
    second = invoke("scraper", {"request": _request("d2")})
    assert first["stories"] == second["stories"] == 4 and second["skipped"] == {}


def test_skip_seen_leaves_out_earlier_builds_stories_and_counts_them(aws):
    invoke("scraper", {"request": _request("d3")})
    fresh = invoke("scraper", {"request": _request("d4", skip_seen=True)})
    assert fresh["stories"] == 4 and fresh["skipped"] == {"seen_in_earlier_build": 4}
    rest = invoke("scraper", {"request": {"build_id": "d5", "source": {"kind": "samples"}, "skip_seen": True}})
    assert rest["skipped"] == {"seen_in_earlier_build": 8}
    with pytest.raises(NoStories, match=f"seen_in_earlier_build: {8 + rest['stories']}"):
        invoke("scraper", {"request": {"build_id": "d6", "source": {"kind": "samples"}, "skip_seen": True}})
