"""A local stand-in for Reddit's OAuth API, answering with JSON shaped like Reddit's own.

It speaks the parts praw uses to read a subreddit: the token endpoint (HTTP basic auth with the app's
id and secret; `password` and `client_credentials` grants), subreddit listings (`top` with `t`, `hot`,
`new`; `limit`/`after` paging), a post's comment page (a two-element array: the post Listing and a
Listing of t1 things whose `replies` is "" or a nested Listing, with `more` stubs), and `about`.
Reddit's refusals are reproduced: a nonexistent subreddit redirects to search, a private or
quarantined one is 403, a banned one 404, a wrong app secret 401, a wrong password `invalid_grant`,
and after `rate_limit_after` API requests every answer is 429. Responses carry `x-ratelimit-*`
headers so praw's own rate limiter runs as it does against Reddit.

    with FakeRedditServer([FakeSubreddit("WritingPrompts", posts)]) as server:
        reddit = praw.Reddit(..., oauth_url=server.url, reddit_url=server.url)
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

Access = Literal["public", "private", "quarantined", "banned"]
RATE_LIMIT_WINDOW = 1000  # Reddit's budget: 1000 requests per 600-second window per OAuth client


@dataclass
class FakeMore:
    """A "load more comments" stub (`kind: more`) listing the ids Reddit left out."""

    id: str
    children: list[str]
    count: int | None = None


@dataclass
class FakeComment:
    id: str
    body: str
    author: str | None = "a_writer"  # None: the account was deleted ("[deleted]")
    score: int = 1
    created_utc: float = 1_717_000_000.0
    stickied: bool = False
    distinguished: str | None = None
    replies: list[FakeComment | FakeMore] = field(default_factory=list)
    has_permalink: bool = True  # older comments come without a `permalink` field


@dataclass
class FakePost:
    id: str
    title: str
    comments: list[FakeComment | FakeMore] = field(default_factory=list)
    score: int = 100
    created_utc: float = 1_717_000_000.0
    author: str | None = "a_prompter"
    stickied: bool = False
    distinguished: str | None = None
    selftext: str = ""
    comments_status: int | None = None  # answer the comment page with this HTTP status instead


@dataclass
class FakeSubreddit:
    name: str
    posts: list[FakePost] = field(default_factory=list)
    access: Access = "public"

    @property
    def fullname(self) -> str:
        return f"t5_{_base36(sum(map(ord, self.name)) * 7919)}"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50]


def _listing(children: list[dict[str, Any]], *, after: str | None = None) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {"after": after, "dist": len(children) or None, "modhash": None, "geo_filter": "",
                 "children": children, "before": None},
    }


class FakeRedditServer:
    """A threaded HTTP server on 127.0.0.1 that answers like Reddit's API. Use as a context manager."""

    def __init__(
        self,
        subreddits: list[FakeSubreddit],
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        username: str | None = None,
        password: str | None = None,
        rate_limit_after: int | None = None,
        ratelimit_remaining: float | None = None,
        ratelimit_reset: int = 10,
    ) -> None:
        self.subreddits = {sub.name.lower(): sub for sub in subreddits}
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.rate_limit_after = rate_limit_after
        # None: report the real remaining budget; a number: always report that (0 = budget spent).
        self.ratelimit_remaining = ratelimit_remaining
        self.ratelimit_reset = ratelimit_reset
        self.requests: list[RecordedRequest] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._api_calls = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FakeRedditServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-reddit", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server with `with FakeRedditServer(...) as server`"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what the client asked ---------------------------------------------------------------------
    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if method is None or r.method == method]

    def api_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path != "/api/v1/access_token"]

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            if request.path != "/api/v1/access_token":
                self._api_calls += 1
            return self._api_calls

    # -- responses ---------------------------------------------------------------------------------
    def rate_headers(self, used: int) -> dict[str, str]:
        remaining = self.ratelimit_remaining
        if remaining is None:
            remaining = max(RATE_LIMIT_WINDOW - used, 0)
        return {"x-ratelimit-used": str(used), "x-ratelimit-remaining": f"{float(remaining):.1f}",
                "x-ratelimit-reset": str(self.ratelimit_reset)}

    def token(self, headers: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization", "") != f"Basic {expected}":
            return 401, {"message": "Unauthorized", "error": 401}
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return 200, {"error": "invalid_grant"}
        elif grant != "client_credentials":
            return 200, {"error": "unsupported_grant_type"}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}

    def find_subreddit(self, name: str) -> FakeSubreddit | None:
        return self.subreddits.get(name.lower())

    def refusal(self, name: str) -> tuple[int, Any, dict[str, str]] | None:
        """Reddit's answer for a subreddit that cannot be read, or None when it can."""
        sub = self.find_subreddit(name)
        if sub is None:
            location = f"{self.url}/subreddits/search.json?q={quote(name)}"
            return 302, {}, {"Location": location}
        if sub.access == "private":
            return 403, {"reason": "private", "message": "Forbidden", "error": 403}, {}
        if sub.access == "quarantined":
            return 403, {"reason": "quarantined", "quarantine_message": "This community is quarantined.",
                         "message": "Forbidden", "error": 403}, {}
        if sub.access == "banned":
            return 404, {"reason": "banned", "message": "Not Found", "error": 404}, {}
        return None

    def listing(self, sub: FakeSubreddit, sort: str, query: dict[str, str], raw: bool) -> tuple[int, Any]:
        posts = list(sub.posts)
        if sort == "top":
            if query.get("t", "day") not in {"hour", "day", "week", "month", "year", "all"}:
                return 400, {"message": "Bad Request", "error": 400}
            posts.sort(key=lambda p: -p.score)
        elif sort == "new":
            posts.sort(key=lambda p: -p.created_utc)
        limit = max(1, min(int(query.get("limit", 25)), 100))
        start = 0
        if query.get("after"):
            names = [f"t3_{p.id}" for p in posts]
            start = names.index(query["after"]) + 1 if query["after"] in names else len(posts)
        page = posts[start:start + limit]
        after = f"t3_{page[-1].id}" if page and start + limit < len(posts) else None
        return 200, _listing([self.post_thing(sub, p, raw) for p in page], after=after)

    def comment_page(self, post_id: str, query: dict[str, str], raw: bool) -> tuple[int, Any]:
        for sub in self.subreddits.values():
            for post in sub.posts:
                if post.id == post_id:
                    if sub.access != "public":
                        return self.refusal(sub.name)[:2]  # type: ignore[index]
                    if post.comments_status is not None:
                        return post.comments_status, {"message": "error", "error": post.comments_status}
                    top = list(post.comments)
                    if query.get("sort") == "top":
                        # Reddit keeps the stickied comment first; the rest by score.
                        top.sort(key=lambda c: (not getattr(c, "stickied", False), -getattr(c, "score", 0)))
                    children = [self.thing(sub, post, c, 0, f"t3_{post.id}", raw) for c in top]
                    return 200, [_listing([self.post_thing(sub, post, raw)]), _listing(children)]
        return 404, {"message": "Not Found", "error": 404}

    def about(self, sub: FakeSubreddit) -> dict[str, Any]:
        return {"kind": "t5", "data": {
            "display_name": sub.name, "display_name_prefixed": f"r/{sub.name}", "name": sub.fullname,
            "id": sub.fullname[3:], "title": sub.name, "subreddit_type": "public", "subscribers": 19_000_000,
            "public_description": "A place to share writing prompts and stories.", "over18": False,
            "quarantine": False, "url": f"/r/{sub.name}/", "created_utc": 1_233_000_000.0, "lang": "en",
            "user_is_banned": False, "user_is_moderator": False, "submission_type": "self",
        }}

    @staticmethod
    def _text(value: str, raw: bool) -> str:
        # Without raw_json=1 Reddit escapes &, < and > in text fields (a legacy of its HTML origins).
        return value if raw else value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    @staticmethod
    def _html(markdown: str, raw: bool) -> str:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in markdown.split("\n\n") if p.strip())
        rendered = f'<div class="md">{paragraphs}</div>'
        return rendered if raw else html.escape(rendered, quote=False)

    def post_thing(self, sub: FakeSubreddit, post: FakePost, raw: bool) -> dict[str, Any]:
        permalink = f"/r/{sub.name}/comments/{post.id}/{_slug(post.title)}/"
        return {"kind": "t3", "data": {
            "approved_at_utc": None, "subreddit": sub.name, "selftext": self._text(post.selftext, raw),
            "author_fullname": f"t2_{_base36(sum(map(ord, post.author or '')) * 104729)}" if post.author else None,
            "saved": False, "gilded": 0, "clicked": False, "title": self._text(post.title, raw),
            "link_flair_richtext": [], "subreddit_name_prefixed": f"r/{sub.name}", "hidden": False,
            "link_flair_css_class": "wp", "downs": 0, "hide_score": False, "name": f"t3_{post.id}",
            "quarantine": False, "upvote_ratio": 0.97, "subreddit_type": "public", "ups": post.score,
            "total_awards_received": 0, "is_original_content": False, "is_meta": False,
            "link_flair_text": "Writing Prompt", "score": post.score, "is_self": True,
            "selftext_html": self._html(post.selftext, raw) if post.selftext else None,
            "edited": False, "author_flair_css_class": None, "created": post.created_utc,
            "archived": False, "no_follow": False, "over_18": False, "spoiler": False, "locked": False,
            "subreddit_id": sub.fullname, "id": post.id, "author": post.author or "[deleted]",
            "num_comments": _count(post.comments), "send_replies": True, "permalink": permalink,
            "url": f"https://www.reddit.com{permalink}", "stickied": post.stickied,
            "distinguished": post.distinguished, "created_utc": post.created_utc, "media": None,
            "is_video": False, "domain": f"self.{sub.name}", "num_crossposts": 0,
        }}

    def thing(self, sub: FakeSubreddit, post: FakePost, item: FakeComment | FakeMore, depth: int,
              parent: str, raw: bool) -> dict[str, Any]:
        if isinstance(item, FakeMore):
            count = item.count if item.count is not None else len(item.children)
            return {"kind": "more", "data": {"count": count, "name": f"t1_{item.id}", "id": item.id,
                                             "parent_id": parent, "depth": depth, "children": item.children}}
        replies = [self.thing(sub, post, r, depth + 1, f"t1_{item.id}", raw) for r in item.replies]
        data: dict[str, Any] = {
            "subreddit_id": sub.fullname, "approved_at_utc": None, "author_is_blocked": False,
            "comment_type": None, "awarders": [], "mod_reason_by": None, "banned_by": None,
            "author_flair_type": "text", "total_awards_received": 0, "subreddit": sub.name,
            "likes": None, "replies": _listing(replies) if replies else "", "user_reports": [],
            "saved": False, "id": item.id, "banned_at_utc": None, "mod_reason_title": None, "gilded": 0,
            "archived": False, "collapsed_reason_code": None, "no_follow": False,
            "author": item.author or "[deleted]", "can_mod_post": False, "created_utc": item.created_utc,
            "send_replies": True, "parent_id": parent, "score": item.score, "approved_by": None,
            "mod_note": None, "all_awardings": [], "collapsed": False, "body": self._text(item.body, raw),
            "edited": False, "top_awarded_type": None, "author_flair_css_class": None,
            "name": f"t1_{item.id}", "is_submitter": False, "downs": 0, "author_flair_richtext": [],
            "author_patreon_flair": False, "body_html": self._html(item.body, raw), "removal_reason": None,
            "collapsed_reason": None, "distinguished": item.distinguished, "associated_award": None,
            "stickied": item.stickied, "author_premium": False, "can_gild": True, "gildings": {},
            "unrepliable_reason": None, "author_flair_text_color": None, "score_hidden": False,
            "permalink": f"/r/{sub.name}/comments/{post.id}/{_slug(post.title)}/{item.id}/",
            "subreddit_type": "public", "locked": False, "report_reasons": None, "created": item.created_utc,
            "author_flair_text": None, "treatment_tags": [], "link_id": f"t3_{post.id}",
            "subreddit_name_prefixed": f"r/{sub.name}", "controversiality": 0, "depth": depth,
            "author_flair_background_color": None, "collapsed_because_crowd_control": None,
            "mod_reports": [], "num_reports": None, "ups": item.score,
        }
        if not item.has_permalink:
            del data["permalink"]
        if item.author:
            data["author_fullname"] = f"t2_{_base36(sum(map(ord, item.author)) * 104729)}"
        return {"kind": "t1", "data": data}


def _count(items: list[FakeComment | FakeMore]) -> int:
    total = 0
    for item in items:
        if isinstance(item, FakeMore):
            total += item.count if item.count is not None else len(item.children)
        else:
            total += 1 + _count(item.replies)
    return total


_LISTING_PATH = re.compile(r"^/r/([^/]+)/(top|hot|new)/?$")
_ABOUT_PATH = re.compile(r"^/r/([^/]+)/about/?$")
_COMMENTS_PATH = re.compile(r"^/comments/([a-z0-9]+)(?:/[^/]*)?/?$")


def _handler_for(fake: FakeRedditServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes; don't stall on ACKs
        server_version = "fake-reddit/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests read `fake.requests` instead

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _parse(self) -> RecordedRequest:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length).decode() if length else ""
            form = {k: v[-1] for k, v in parse_qs(raw_body, keep_blank_values=True).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            return RecordedRequest(self.command, parts.path, query, headers, form)

        def do_POST(self) -> None:
            request = self._parse()
            fake._record(request)
            if request.path == "/api/v1/access_token":
                status, payload = fake.token(request.headers, request.form)
                self._send(status, payload)
                return
            self._api(request)

        def do_GET(self) -> None:
            request = self._parse()
            self._api(request, used=fake._record(request))

        def _subreddit_or_refuse(self, name: str, limits: dict[str, str]) -> Any:
            """The subreddit, or None after answering as Reddit does for a banned/private/unknown one."""
            refused = fake.refusal(name)
            if refused:
                self._send(refused[0], refused[1], {**limits, **refused[2]})
                return None
            sub = fake.find_subreddit(name)
            assert sub is not None
            return sub

        def _api(self, request: RecordedRequest, used: int | None = None) -> None:
            used = used if used is not None else fake._api_calls
            limits = fake.rate_headers(used)
            auth = request.headers.get("authorization", "")
            if not auth.startswith("bearer ") or auth[len("bearer "):] not in fake.tokens:
                self._send(401, {"message": "Unauthorized", "error": 401},
                           {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
                return
            if fake.rate_limit_after is not None and used > fake.rate_limit_after:
                self._send(429, {"message": "Too Many Requests", "error": 429},
                           {**fake.rate_headers(RATE_LIMIT_WINDOW), "x-ratelimit-remaining": "0.0",
                            "retry-after": str(fake.ratelimit_reset)})
                return
            raw = request.query.get("raw_json") == "1"
            if match := _LISTING_PATH.match(request.path):
                if sub := self._subreddit_or_refuse(match.group(1), limits):
                    status, payload = fake.listing(sub, match.group(2), request.query, raw)
                    self._send(status, payload, limits)
            elif match := _ABOUT_PATH.match(request.path):
                if sub := self._subreddit_or_refuse(match.group(1), limits):
                    self._send(200, fake.about(sub), limits)
            elif match := _COMMENTS_PATH.match(request.path):
                status, payload = fake.comment_page(match.group(1), request.query, raw)
                self._send(status, payload, limits)
            else:
                self._send(404, {"message": "Not Found", "error": 404}, limits)

    return Handler
