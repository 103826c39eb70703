"""Reddit stories through the real praw client, against a local server that answers like Reddit's API."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import praw
import prawcore.sessions
import pytest

from coach.adapters.reddit import default_user_agent, make_reddit
from coach.adapters.sources import load_stories
from coach.domain.records import SourceSpec
from coach.errors import SourceError
from tests.fakes.reddit_server import FakeComment, FakeMore, FakePost, FakeRedditServer, FakeSubreddit

CLIENT = {"client_id": "fake-client-id", "client_secret": "fake-client-secret"}
SCRIPT_APP = {**CLIENT, "username": "coach_builder", "password": "correct horse"}

LIGHTHOUSE = (
    "The keeper had not spoken to anyone in *eleven* years, which was why the knock surprised her.\n"
    "She opened the door &amp; found the sea standing there, dripping.\n\n"
    "&#x200B;\n\n"
    "\"You're late,\" she said. The sea said nothing; it never did. It came in, sat by the stove, "
    "and for the first time in [a long while](https://example.com/while) the lamp burned steady.\n\n"
    "---\n\n"
    "In the morning the beach was wider than she remembered, and the boats lay on their sides like "
    "tired dogs. She made two cups of tea out of habit and drank them both."
)
LIGHTHOUSE_PLAIN = (
    "The keeper had not spoken to anyone in eleven years, which was why the knock surprised her. "
    "She opened the door & found the sea standing there, dripping.\n\n"
    "\"You're late,\" she said. The sea said nothing; it never did. It came in, sat by the stove, "
    "and for the first time in a long while the lamp burned steady.\n\n"
    "* * *\n\n"
    "In the morning the beach was wider than she remembered, and the boats lay on their sides like "
    "tired dogs. She made two cups of tea out of habit and drank them both."
)
CLOCKMAKER = (
    "Every clock in the shop stopped at 3:17, and Mr. Abernathy, who had built most of them, sat down "
    "on the floor and laughed until he cried. Forty years he had waited for them to agree on anything. "
    "Now they did, and it was the hour his daughter had left, and he understood at last that the "
    "clocks had never been wrong, only patient."
)
ROBOT = (
    "\"I am a bot,\" said the unit in the corner, \"and I would like to be a gardener.\" Nobody on "
    "the station had asked it anything, but it said this every morning at six, and every morning the "
    "quartermaster wrote it down. On the ninetieth morning she handed it a trowel and a pot of soil "
    "from the hydroponics bay, and it stood very still for a long time, holding them."
)
REPLY_STORY = (
    "This reply to a story is long enough to pass the length filter, but replies to replies are "
    "conversation, not stories, so it must never be collected. " * 3
)


def _prompts() -> list[FakePost]:
    return [
        FakePost("1a2b3c", "[WP] The sea comes to visit the lighthouse keeper", score=900,
                 created_utc=1_717_100_000.0, comments=[
            FakeComment("am0001", "**Welcome to the Prompt!** All top-level comments must be a story.\n\n"
                        "*I am a bot, and this action was performed automatically.*",
                        author="AutoModerator", stickied=True, distinguished="moderator", score=1),
            FakeComment("k1sea", LIGHTHOUSE, author="tidewriter", score=412, created_utc=1_717_101_000.0,
                        replies=[
                            FakeComment("k1r1", "This is lovely!", author="reader_one", score=30,
                                        replies=[FakeComment("k1r2", REPLY_STORY, author="tidewriter")]),
                            FakeComment("k1r3", REPLY_STORY, author="reader_two", score=12),
                            FakeMore("k1m1", ["k1r4", "k1r5"]),
                        ]),
            FakeComment("k1bot", "Here is a summary of this thread for you.\n\n"
                        "^(I'm a bot | beep boop | [feedback](https://example.com))",
                        author="helpful_summariser", score=2),
            FakeComment("k1del", "[deleted]", author=None, score=5),
            FakeComment("k1rem", "[removed]", author=None, score=3),
            FakeComment("k1short", "Ha! Great prompt.", author="drive_by", score=8),
            FakeMore("k1more", ["k1x1", "k1x2", "k1x3"], count=57),
        ]),
        FakePost("4d5e6f", "[WP] Every clock in the world stops at the same minute", score=640,
                 created_utc=1_717_200_000.0, comments=[
            FakeComment("k2clock", CLOCKMAKER, author="hourhand", score=88, created_utc=1_717_201_000.0),
            FakeComment("k2mod", "Reminder: this prompt is part of the weekly contest. " * 8,
                        author="a_moderator", distinguished="moderator", score=1),
            FakeComment("k2robot", ROBOT, author="gardenbot_fan", score=51, created_utc=1_717_202_000.0),
            FakeComment("k2wiki", "**Clock**\n\nA clock is a device for measuring and indicating time. " * 5,
                        author="WikiSummarizerBot", score=4),
        ]),
        FakePost("7g8h9i", "[WP] The vanished thread", score=300, comments_status=500,
                 comments=[FakeComment("k3lost", CLOCKMAKER)]),
    ]


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if anything tries to reach beyond this machine (Reddit itself, PyPI's update check).

    prawcore turns a refused connection into its own error, so attempts are recorded and checked after.
    """
    outside: list[object] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            outside.append(address)
            raise OSError(f"test tried to reach {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert outside == [], f"connections beyond loopback: {outside}"


@pytest.fixture(autouse=True)
def no_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    # prawcore waits a few random seconds before retrying a 5xx; the retries still happen, instantly.
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: 0)


@pytest.fixture
def server() -> Iterator[FakeRedditServer]:
    with FakeRedditServer([FakeSubreddit("WritingPrompts", _prompts())], **_account()) as fake:
        yield fake


def _account() -> dict[str, str]:
    return {"username": SCRIPT_APP["username"], "password": SCRIPT_APP["password"]}


def _client(fake: FakeRedditServer, credentials: dict[str, str] | None = None) -> praw.Reddit:
    return make_reddit(credentials or SCRIPT_APP, oauth_url=fake.url, reddit_url=fake.url)


def _spec(**overrides: object) -> SourceSpec:
    fields = {"kind": "reddit", "listing": "top", "time_filter": "week", "post_limit": 10, "min_chars": 200}
    return SourceSpec(**{**fields, **overrides})


def test_scrape_stores_exactly_the_story_replies_with_their_provenance(server: FakeRedditServer) -> None:
    result = load_stories(_spec(), reddit=_client(server))

    assert [s.story_id for s in result.stories] == ["reddit-k1sea", "reddit-k2clock", "reddit-k2robot"]
    sea = result.stories[0]
    assert sea.source == "reddit"
    assert sea.title == "The sea comes to visit the lighthouse keeper"
    assert sea.text == LIGHTHOUSE_PLAIN
    assert sea.provenance.model_dump() == {
        "path": None,
        "post_id": "1a2b3c",
        "prompt": "[WP] The sea comes to visit the lighthouse keeper",
        "comment_id": "k1sea",
        "permalink": "https://www.reddit.com/r/WritingPrompts/comments/1a2b3c/"
                     "wp_the_sea_comes_to_visit_the_lighthouse_keeper/k1sea/",
        "score": 412,
        "created_utc": 1_717_101_000.0,
    }
    assert result.stories[1].text == CLOCKMAKER
    assert result.stories[2].text == ROBOT  # a robot narrator is not a bot
    assert result.skipped == {"bot": 2, "comments_failed": 1, "deleted": 2, "distinguished": 1,
                              "stickied": 1, "too_short": 1}
    assert result.decode_errors == 0
    assert len(result.warnings) == 1 and "7g8h9i" in result.warnings[0]


def test_usernames_are_never_stored(server: FakeRedditServer) -> None:
    dumped = load_stories(_spec(), reddit=_client(server)).model_dump_json()
    for name in ("tidewriter", "hourhand", "gardenbot_fan", "coach_builder"):
        assert name not in dumped


def test_the_scrape_speaks_reddits_api_the_expected_way(server: FakeRedditServer) -> None:
    load_stories(_spec(), reddit=_client(server))

    token = server.requests[0]
    assert (token.method, token.path) == ("POST", "/api/v1/access_token")
    assert token.form["grant_type"] == "password" and token.form["username"] == "coach_builder"
    assert token.headers["authorization"].startswith("Basic ")
    listing = server.requests[1]
    assert listing.path == "/r/WritingPrompts/top"
    assert listing.query["t"] == "week" and listing.query["limit"] == "10"
    # One comment page per post (the failing one is retried by praw), no "load more" or deeper fetches.
    assert server.paths("GET") == ["/r/WritingPrompts/top", "/comments/1a2b3c/", "/comments/4d5e6f/",
                                   "/comments/7g8h9i/", "/comments/7g8h9i/", "/comments/7g8h9i/"]
    assert "/api/morechildren" not in server.paths()
    for request in server.requests:
        assert request.headers["user-agent"].startswith(default_user_agent("coach_builder"))


def test_hot_and_new_listings_and_stickied_posts(server: FakeRedditServer) -> None:
    server.subreddits["writingprompts"].posts.insert(0, FakePost(
        "0mod01", "[OT] Monthly contest announcement", stickied=True, distinguished="moderator",
        comments=[FakeComment("k0x", CLOCKMAKER)]))
    hot = load_stories(_spec(listing="hot"), reddit=_client(server))
    assert hot.skipped["stickied_post"] == 1
    assert "reddit-k0x" not in {s.story_id for s in hot.stories}
    new = load_stories(_spec(listing="new"), reddit=_client(server))
    assert [s.story_id for s in new.stories] == ["reddit-k2clock", "reddit-k2robot", "reddit-k1sea"]
    assert "/r/WritingPrompts/hot" in server.paths() and "/r/WritingPrompts/new" in server.paths()


def test_stories_taken_by_earlier_builds_are_skipped_as_duplicates(server: FakeRedditServer) -> None:
    first = load_stories(_spec(), reddit=_client(server))
    again = load_stories(_spec(), reddit=_client(server), seen_ids={s.story_id for s in first.stories})
    assert again.stories == []
    assert again.skipped["seen_in_earlier_build"] == 3


def test_the_story_limit_stops_before_fetching_more_posts(server: FakeRedditServer) -> None:
    result = load_stories(_spec(), limit=1, reddit=_client(server))
    assert [s.story_id for s in result.stories] == ["reddit-k1sea"]
    assert "/comments/4d5e6f/" not in server.paths()


def test_length_limits_apply_to_the_plain_text(server: FakeRedditServer) -> None:
    result = load_stories(_spec(min_chars=200, max_chars=400), reddit=_client(server))
    assert [s.story_id for s in result.stories] == ["reddit-k2clock", "reddit-k2robot"]
    assert result.skipped["too_long"] == 1


def test_paging_follows_after_until_the_post_limit() -> None:
    posts = [FakePost(f"p{i:04d}", f"[WP] Prompt {i}", score=1000 - i, comments=[
        FakeComment(f"c{i:04d}", CLOCKMAKER.replace("3:17", f"3:{i:02d}"))]) for i in range(130)]
    with FakeRedditServer([FakeSubreddit("WritingPrompts", posts)]) as fake:
        result = load_stories(_spec(post_limit=120, time_filter="all"), reddit=_client(fake, CLIENT))
        listings = [r for r in fake.requests if r.path == "/r/WritingPrompts/top"]
    assert len(result.stories) == 120
    assert [r.query.get("after") for r in listings] == [None, "t3_p0099"]


def test_application_only_oauth_without_an_account(server: FakeRedditServer) -> None:
    result = load_stories(_spec(), reddit=_client(server, CLIENT))
    assert len(result.stories) == 3
    assert server.requests[0].form["grant_type"] == "client_credentials"


def test_credentials_from_environment(server: FakeRedditServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_ID", "fake-client-id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "fake-client-secret")
    monkeypatch.setenv("REDDIT_USERNAME", "coach_builder")
    monkeypatch.setenv("REDDIT_PASSWORD", "correct horse")
    reddit = make_reddit(oauth_url=server.url, reddit_url=server.url)
    assert len(load_stories(_spec(), reddit=reddit).stories) == 3
    assert server.requests[0].form["username"] == "coach_builder"


def test_credentials_from_praw_ini(server: FakeRedditServer, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: pytest.TempPathFactory) -> None:
    _isolate_praw_config(monkeypatch, tmp_path)
    (tmp_path / "praw.ini").write_text(
        "[coach]\nclient_id=fake-client-id\nclient_secret=fake-client-secret\n"
        "username=coach_builder\npassword=correct horse\n", encoding="utf-8")
    reddit = make_reddit(oauth_url=server.url, reddit_url=server.url)
    assert len(load_stories(_spec(), reddit=reddit).stories) == 3


def test_no_credentials_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    _isolate_praw_config(monkeypatch, tmp_path)
    with pytest.raises(SourceError) as caught:
        make_reddit()
    assert caught.value.code == "reddit_credentials_missing"
    assert "REDDIT_CLIENT_ID" in caught.value.message and "\n" not in caught.value.message


def test_a_secret_without_client_secret_is_a_clear_error() -> None:
    with pytest.raises(SourceError) as caught:
        make_reddit({"client_id": "abc"})
    assert caught.value.code == "reddit_credentials_missing"
    assert "client_secret" in caught.value.message


def _isolate_praw_config(monkeypatch: pytest.MonkeyPatch, config_home) -> None:
    for var in ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USERNAME", "REDDIT_PASSWORD", "APPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.chdir(config_home)
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # praw caches praw.ini once per process


@pytest.mark.parametrize(("credentials", "detail"), [
    ({**SCRIPT_APP, "client_secret": "wrong"}, "HTTP 401"),
    ({**SCRIPT_APP, "password": "wrong"}, "invalid_grant"),
])
def test_bad_credentials_end_the_scrape(server: FakeRedditServer, credentials: dict[str, str],
                                        detail: str) -> None:
    with pytest.raises(SourceError) as caught:
        load_stories(_spec(), reddit=_client(server, credentials))
    assert caught.value.code == "reddit_auth_failed"
    assert detail in caught.value.message
    assert server.paths("GET") == []


@pytest.mark.parametrize(("subreddit", "access", "words"), [
    ("NoSuchPlaceXyz", None, "does not exist"),
    ("SecretGarden", "private", "private"),
    ("GoneForGood", "banned", "banned"),
    ("Quarantined", "quarantined", "quarantined"),
])
def test_unreadable_subreddits_end_the_scrape(subreddit: str, access: str | None, words: str) -> None:
    subs = [FakeSubreddit("WritingPrompts", _prompts())]
    if access:
        subs.append(FakeSubreddit(subreddit, _prompts(), access=access))  # type: ignore[arg-type]
    with FakeRedditServer(subs) as fake:
        with pytest.raises(SourceError) as caught:
            load_stories(_spec(subreddit=subreddit), reddit=_client(fake, CLIENT))
        assert not any(p.startswith("/comments/") for p in fake.paths())
    assert caught.value.code == "reddit_subreddit_unavailable"
    assert f"r/{subreddit}" in caught.value.message and words in caught.value.message


def test_fake_server_answers_about_like_reddit(server: FakeRedditServer) -> None:
    reddit = _client(server)
    assert reddit.subreddit("WritingPrompts").subreddit_type == "public"
    with pytest.raises(prawcore.Redirect):
        _ = reddit.subreddit("NoSuchPlaceXyz").subreddit_type


def test_an_invalid_subreddit_name_is_refused_before_any_request(server: FakeRedditServer) -> None:
    with pytest.raises(SourceError) as caught:
        load_stories(_spec(subreddit="not a sub!"), reddit=_client(server))
    assert caught.value.code == "reddit_subreddit_invalid"
    assert server.requests == []


@pytest.mark.parametrize("after", [0, 2])
def test_rate_limiting_ends_the_scrape(after: int) -> None:
    # after=2: the listing and the first post's comments load, then a comment page is refused.
    subs = [FakeSubreddit("WritingPrompts", _prompts())]
    with FakeRedditServer(subs, rate_limit_after=after) as fake, pytest.raises(SourceError) as caught:
        load_stories(_spec(), reddit=_client(fake, CLIENT))
    assert caught.value.code == "reddit_rate_limited"
    assert "429" in caught.value.message


def test_praw_waits_when_reddit_says_the_request_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    with FakeRedditServer([FakeSubreddit("WritingPrompts", _prompts())], ratelimit_remaining=0,
                          ratelimit_reset=120) as fake:
        load_stories(_spec(), reddit=_client(fake, CLIENT))
    # After each answer saying "0 remaining, window resets in 120 s", prawcore sleeps before the next call.
    assert len([p for p in pauses if p > 60]) >= 3


def test_an_unreachable_reddit_is_reported_as_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    reddit = make_reddit(CLIENT, oauth_url=url, reddit_url=url, timeout=2)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec(), reddit=reddit)
    assert caught.value.code == "reddit_unavailable"
    assert "\n" not in caught.value.message


def test_an_empty_listing_says_so() -> None:
    with FakeRedditServer([FakeSubreddit("QuietPlace", [])]) as fake:
        result = load_stories(_spec(subreddit="QuietPlace"), reddit=_client(fake, CLIENT))
    assert result.stories == []
    assert result.warnings == ["r/QuietPlace returned no posts for listing 'top'"]


def test_an_older_comment_without_a_permalink_gets_one_from_its_post() -> None:
    posts = _prompts()
    for post in posts:
        for comment in post.comments:
            if isinstance(comment, FakeComment):
                comment.has_permalink = False
    with FakeRedditServer([FakeSubreddit("WritingPrompts", posts)], **_account()) as fake:
        result = load_stories(_spec(), reddit=_client(fake))
    assert result.stories and all(s.provenance.permalink for s in result.stories)
    assert result.stories[0].provenance.permalink == (
        "https://www.reddit.com/r/WritingPrompts/comments/1a2b3c/"
        "wp_the_sea_comes_to_visit_the_lighthouse_keeper/k1sea/")


def test_praw_ini_points_the_build_at_another_reddit_endpoint_as_the_readme_says(
        monkeypatch: pytest.MonkeyPatch, tmp_path, server: FakeRedditServer) -> None:
    # praw's own convention: oauth_url / reddit_url in praw.ini (the current folder's is read too).
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "oauth_url" in readme and "reddit_url" in readme and "praw.ini" in readme
    (tmp_path / "praw.ini").write_text(f"[DEFAULT]\noauth_url = {server.url}\nreddit_url = {server.url}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # praw reads its ini files once per process
    monkeypatch.setenv("PRAW_ALLOW_ENDPOINT_OVERRIDE", "1")
    for key, value in (("REDDIT_CLIENT_ID", SCRIPT_APP["client_id"]),
                       ("REDDIT_CLIENT_SECRET", SCRIPT_APP["client_secret"]),
                       ("REDDIT_USERNAME", SCRIPT_APP["username"]), ("REDDIT_PASSWORD", SCRIPT_APP["password"])):
        monkeypatch.setenv(key, value)
    result = load_stories(_spec(), reddit=make_reddit())
    assert [s.story_id for s in result.stories] == ["reddit-k1sea", "reddit-k2clock", "reddit-k2robot"]
