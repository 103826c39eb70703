"""Stories from Reddit through praw: the top-level replies to a subreddit's posts.

Reddit's rules for API clients are kept by leaning on praw: OAuth with script-app credentials, a
descriptive user agent, and prawcore's rate limiter, which paces requests from the `x-ratelimit-*`
headers Reddit returns (no sleeps of our own). Only the first level of each comment tree is read
(`replace_more(limit=0)` makes no extra requests); replies to replies are conversation, not stories.
Usernames are read only to recognise bots and are never stored.

Failures that end the scrape raise `SourceError` with a stable code the state machine's Fail cause shows:
`reddit_credentials_missing`, `reddit_auth_failed`, `reddit_subreddit_unavailable`,
`reddit_rate_limited`, `reddit_unavailable`. A post whose comments cannot be loaded is skipped and
counted under `comments_failed`.
"""

from __future__ import annotations

import configparser
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import praw
import prawcore
from praw.exceptions import PRAWException
from praw.models import Comment, Submission

from coach import __version__
from coach.domain.records import Provenance, SourceSpec, Story
from coach.domain.reddit_text import decode_entities, is_bot, is_deleted, markdown_to_plain, prompt_title
from coach.errors import SourceError

PRAW_SITE = "coach"
REDDIT_WEB = "https://www.reddit.com"
ENV_CREDENTIALS = {
    "client_id": "REDDIT_CLIENT_ID",
    "client_secret": "REDDIT_CLIENT_SECRET",
    "username": "REDDIT_USERNAME",
    "password": "REDDIT_PASSWORD",
}
_SUBREDDIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")


def default_user_agent(username: str | None = None) -> str:
    """Reddit asks for `<platform>:<app id>:<version> (by /u/<name>)`; generic agents get throttled."""
    agent = f"python:creative-writing-coach:v{__version__} (fiction critique dataset builder"
    return f"{agent}; by /u/{username})" if username else f"{agent})"


def _credentials_from_env() -> dict[str, str] | None:
    found = {key: os.environ[var] for key, var in ENV_CREDENTIALS.items() if os.environ.get(var)}
    return found or None


def make_reddit(
    credentials: dict[str, Any] | None = None, *, user_agent: str | None = None, **praw_kwargs: Any
) -> praw.Reddit:
    """A praw client for a Reddit script app.

    `credentials` holds client_id, client_secret and optionally username/password (the Secrets Manager
    secret in the cloud). When None: the REDDIT_CLIENT_ID / REDDIT_CLIENT_SECRET / REDDIT_USERNAME /
    REDDIT_PASSWORD environment variables, else the `[coach]` site of praw.ini. Without username and
    password praw uses application-only OAuth, which is enough to read public subreddits.
    `praw_kwargs` go to praw's config (e.g. oauth_url, reddit_url, timeout, ratelimit_seconds).
    """
    settings: dict[str, Any] = {"check_for_updates": False, **praw_kwargs}
    creds = credentials if credentials is not None else _credentials_from_env()
    try:
        if creds is None:
            return praw.Reddit(PRAW_SITE, user_agent=user_agent or default_user_agent(), **settings)
        client_id, client_secret = creds.get("client_id"), creds.get("client_secret")
        if not client_id or not client_secret:
            missing = " and ".join(k for k in ("client_id", "client_secret") if not creds.get(k))
            raise SourceError(
                f"Reddit credentials have no {missing}: give both of the script app's id and secret",
                code="reddit_credentials_missing",
            )
        account = {k: str(creds[k]) for k in ("username", "password") if creds.get(k)}
        agent = user_agent or creds.get("user_agent") or default_user_agent(account.get("username"))
        return praw.Reddit(
            client_id=str(client_id), client_secret=str(client_secret), user_agent=str(agent),
            **account, **settings,
        )
    except configparser.NoSectionError:
        raise SourceError(
            "no Reddit credentials: set REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (and REDDIT_USERNAME/"
            f"REDDIT_PASSWORD), or add a [{PRAW_SITE}] site to praw.ini",
            code="reddit_credentials_missing",
        ) from None
    except PRAWException as exc:
        raise SourceError(f"Reddit client not configured: {_first_line(exc)}",
                          code="reddit_credentials_missing") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _reason(exc: prawcore.ResponseException) -> str:
    """Reddit's own word for a refusal ("private", "banned", "quarantined"), when it gives one."""
    try:
        body = exc.response.json()
    except ValueError:
        return ""
    return str(body.get("reason") or "") if isinstance(body, dict) else ""


def map_reddit_error(exc: Exception, subreddit: str) -> SourceError:
    """A prawcore/praw failure as a one-line SourceError with a stable code."""
    where = f"r/{subreddit}"
    if isinstance(exc, prawcore.OAuthException):
        return SourceError(f"Reddit refused the credentials ({exc.error}): check the script app's id, "
                           "secret, username and password", code="reddit_auth_failed")
    if isinstance(exc, prawcore.InvalidToken | prawcore.InsufficientScope):
        return SourceError(f"Reddit rejected the access token ({type(exc).__name__}): check the app's "
                           "credentials and scopes", code="reddit_auth_failed")
    if isinstance(exc, prawcore.TooManyRequests):
        wait = f"; Reddit asks to wait {exc.retry_after} s" if exc.retry_after else ""
        return SourceError(f"Reddit is rate limiting this client (HTTP 429){wait}: run the build again later",
                           code="reddit_rate_limited")
    if isinstance(exc, prawcore.Redirect):
        why = "does not exist" if exc.path.startswith("/subreddits/search") else f"redirects to {exc.path}"
        return SourceError(f"{where} {why}: check the subreddit name", code="reddit_subreddit_unavailable")
    if isinstance(exc, prawcore.Forbidden | prawcore.NotFound | prawcore.UnavailableForLegalReasons):
        reason = _reason(exc) or ("not found" if isinstance(exc, prawcore.NotFound) else "forbidden")
        return SourceError(f"{where} is not readable ({reason}): choose a public subreddit",
                           code="reddit_subreddit_unavailable")
    if isinstance(exc, prawcore.ResponseException) and exc.response.status_code == 401:
        return SourceError("Reddit refused the credentials (HTTP 401): check the script app's client id and "
                           "secret", code="reddit_auth_failed")
    return SourceError(f"Reddit could not be reached or answered badly ({type(exc).__name__}: "
                       f"{_first_line(exc)}): try again later", code="reddit_unavailable")


# Failures that will hit every later request too: they end the scrape instead of skipping one post.
_FATAL = (prawcore.OAuthException, prawcore.InvalidToken, prawcore.InsufficientScope,
          prawcore.TooManyRequests, prawcore.RequestException, prawcore.InvalidInvocation)


def _is_fatal(exc: Exception) -> bool:
    if isinstance(exc, _FATAL):
        return True
    return isinstance(exc, prawcore.ResponseException) and exc.response.status_code == 401


def _field(thing: Any, name: str, default: Any = None) -> Any:
    # Read what Reddit sent without touching praw's lazy attributes: a missing one would trigger a fetch.
    return vars(thing).get(name, default)


def subreddit_name(raw: str) -> str:
    name = raw.strip().removeprefix("/").removeprefix("r/").strip("/")
    if not _SUBREDDIT_NAME.match(name):
        raise SourceError(f"'{raw}' is not a subreddit name: use letters, digits and underscores, "
                          "like WritingPrompts", code="reddit_subreddit_invalid")
    return name


def _listing(reddit: praw.Reddit, spec: SourceSpec, name: str) -> Iterator[Submission]:
    subreddit = reddit.subreddit(name)
    if spec.listing == "top":
        return subreddit.top(time_filter=spec.time_filter, limit=spec.post_limit)
    if spec.listing == "hot":
        return subreddit.hot(limit=spec.post_limit)
    return subreddit.new(limit=spec.post_limit)


def _load_comments(submission: Submission) -> list[Comment]:
    submission.comment_sort = "top"
    forest = submission.comments  # the one request for this post's comment tree
    forest.replace_more(limit=0)  # drop "load more" stubs without fetching them
    return [c for c in forest if isinstance(c, Comment)]


def iter_reddit_stories(
    reddit: praw.Reddit, spec: SourceSpec, skipped: Counter[str], warnings: list[str]
) -> Iterator[Story]:
    """Yield one Story per top-level reply that is a story; count the rest in `skipped` by reason.

    Lazy: posts' comments are fetched only as the caller asks for more stories, so stopping early
    (a story limit) saves requests. Length limits and duplicates are the caller's business.
    """
    name = subreddit_name(spec.subreddit)
    posts = iter(_listing(reddit, spec, name))
    seen_posts = 0
    while True:
        try:
            post = next(posts)
        except StopIteration:
            if not seen_posts:
                warnings.append(f"r/{name} returned no posts for listing '{spec.listing}'")
            return
        except (prawcore.PrawcoreException, PRAWException) as exc:
            raise map_reddit_error(exc, name) from None
        seen_posts += 1
        if _field(post, "stickied") or _field(post, "distinguished"):
            skipped["stickied_post"] += 1
            continue
        try:
            replies = _load_comments(post)
        except (prawcore.PrawcoreException, PRAWException) as exc:
            if _is_fatal(exc):
                raise map_reddit_error(exc, name) from None
            skipped["comments_failed"] += 1
            warnings.append(f"skipped post {post.id}: its comments did not load ({_first_line(exc)})")
            continue
        prompt = str(_field(post, "title", "") or "")
        post_link = str(_field(post, "permalink", "") or "")
        for comment in replies:
            story = _story_from_comment(comment, post.id, prompt, skipped, post_link)
            if story is not None:
                yield story


def _story_from_comment(comment: Comment, post_id: str, prompt: str, skipped: Counter[str],
                        post_link: str = "") -> Story | None:
    body = _field(comment, "body")
    if _field(comment, "stickied"):
        skipped["stickied"] += 1
        return None
    if _field(comment, "distinguished"):
        skipped["distinguished"] += 1
        return None
    if is_deleted(body):
        skipped["deleted"] += 1
        return None
    author = _field(comment, "author")
    if is_bot(getattr(author, "name", None), body):
        skipped["bot"] += 1
        return None
    text = markdown_to_plain(body)
    if not text:
        skipped["empty_text"] += 1
        return None
    permalink = _field(comment, "permalink")
    if not permalink and post_link:  # older comments carry none: it is the post's link plus the comment id
        permalink = f"{post_link.rstrip('/')}/{comment.id}/"
    created = _field(comment, "created_utc")
    score = _field(comment, "score")
    return Story(
        story_id=f"reddit-{comment.id}",
        title=prompt_title(prompt),
        text=text,
        source="reddit",
        provenance=Provenance(
            post_id=post_id,
            prompt=" ".join(decode_entities(prompt).split()) or None,
            comment_id=comment.id,
            permalink=f"{REDDIT_WEB}{permalink}" if permalink else None,
            score=int(score) if score is not None else None,
            created_utc=float(created) if created is not None else None,
        ),
    )
