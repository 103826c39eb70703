"""Rules: artifacts that make a critique unfit to teach from. Each rule is one small function.

A rule reads a Context (the cleaned critique, the story, the configuration, and text pieces computed
once) and returns Evidence for every offending span it found, or nothing. The engine decides which rules
run and turns evidence into a verdict.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from coach.domain.records import Evidence
from coach.domain.validation import reasons as R
from coach.domain.validation.cleaners import RESIDUAL_METHOD_RES
from coach.domain.validation.config import DEFAULT_CONFIG, ValidatorConfig
from coach.domain.validation.text import (
    SECOND_PERSON_RE,
    Span,
    excerpt,
    mask_spans,
    ngrams,
    paragraphs,
    quotations,
    sentences,
    story_lower,
    story_ngrams,
    word_keys,
    words,
)


@dataclass
class Context:
    text: str
    story: str
    config: ValidatorConfig
    finish_reason: str | None = None

    @functools.cached_property
    def quotes(self) -> list[Span]:
        return quotations(self.text)

    @functools.cached_property
    def masked(self) -> str:
        """The critique with the inside of every quotation blanked: the critic's own words only."""
        return mask_spans(self.text, self.quotes)

    @functools.cached_property
    def words(self) -> list[Span]:
        return words(self.text)

    @functools.cached_property
    def sentences(self) -> list[Span]:
        # Split the masked text so a quoted "What?" does not end a sentence; report the real text.
        return [Span(s.start, s.end, self.text[s.start:s.end]) for s in sentences(self.masked)]

    @functools.cached_property
    def paragraphs(self) -> list[Span]:
        return paragraphs(self.text)

    @functools.cached_property
    def second_person_story(self) -> bool:
        """A story told in the second person, whose "you" is no sign of a critique."""
        told = mask_spans(self.story, quotations(self.story))
        count = len(SECOND_PERSON_RE.findall(told))
        return count >= 5 and count / max(len(words(told)), 1) >= 0.02


def evidence(ctx: Context, rule: str, reason: str, start: int, end: int, detail: str = "") -> Evidence:
    return Evidence(
        rule=rule, reason=reason, span=excerpt(ctx.text, start, end), start=start, end=end, detail=detail
    )


def _first(ctx: Context, items: list[Evidence]) -> list[Evidence]:
    return items[: ctx.config.max_evidence_per_rule]


# --- error text and refusals --------------------------------------------------------------------------

_ERROR_RES = (
    re.compile(r"\A\s*(?:[\w.-]+\s+){0,2}(?:error|exception)\b\s*[:\-–(]", re.IGNORECASE),
    re.compile(
        r"\berror (?:communicating|connecting|contacting|calling|generating)\b"
        r"|\bTraceback \(most recent call last\)"
        r"|\b(?:openai|httpx|requests|urllib3|botocore)\.[\w.]*(?:Error|Exception|Timeout)\b"
        r"|\b(?:APIError|APIConnectionError|RateLimitError|ServiceUnavailableError|Timeout(?:Error)?)\b:"
        r"|\b(?:rate limit|quota)(?: has been| was)? (?:exceeded|reached)\b"
        r"|\b(?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)\b"
        r"|\b(?:status code|HTTP(?: status)?|error code)[: ]+[45]\d\d\b"
        r"|\A\s*\{\s*\"error\"|\bconnection (?:error|refused|reset|aborted|timed out)\b"
        r"|\brequest timed out\b|\bmax(?:imum)? retries exceeded\b|\bmaximum context length\b"
        r"|\b(?:invalid|incorrect) api key\b|\bthe server had an error\b",
        re.IGNORECASE,
    ),
    re.compile(r"\A\s*(?:none|null|undefined|nan|n/a|\[\]|\{\})\s*\Z", re.IGNORECASE),
)

_REFUSAL_ANYWHERE_RE = re.compile(
    r"\bas an ai\b|\bas a (?:large )?language model\b|\bI(?:'m| am) (?:just |only )?an? (?:AI|language model)\b"
    r"|\bagainst (?:my|openai's|the) (?:usage |content )?polic(?:y|ies)\b"
    r"|\bI(?:'m| am) (?:unable|not able) to (?:help|assist|comply)\b|\bI must (?:respectfully )?decline\b",
    re.IGNORECASE,
)
_REFUSAL_OPENING_RE = re.compile(
    r"^(?:(?:I'm|I am|I’m) sorry|sorry|apologies|unfortunately|I apologi[sz]e)\b[^.!?]{0,80}?"
    r"\b(?:can't|cannot|can’t|won't|unable|not able|not comfortable)\b"
    r"|^I (?:can't|can’t|cannot|can not|won't|will not|am unable to|'m unable to|am not able to)\s+"
    r"(?:provide|give|offer|write|create|produce|assist|comply|fulfil|fulfill|critique|review|evaluate|"
    r"complete|generate|continue|help(?: you)? with|do that|engage)\b",
    re.IGNORECASE,
)


def rule_error_text(ctx: Context) -> list[Evidence]:
    for pattern in _ERROR_RES:
        m = pattern.search(ctx.text)
        if m:
            end = ctx.text.find("\n", m.start())
            return [evidence(ctx, "error_text", R.ERROR_TEXT, m.start(), end if end > 0 else len(ctx.text),
                             "an error message, not a critique")]
    return []


def rule_refusal(ctx: Context) -> list[Evidence]:
    m = _REFUSAL_ANYWHERE_RE.search(ctx.text)
    if m:
        return [evidence(ctx, "refusal", R.REFUSAL, m.start(), m.end(), "the model declined or spoke as an AI")]
    for sent in ctx.sentences[:2]:
        m = _REFUSAL_OPENING_RE.search(sent.text.strip())
        if m:
            return [evidence(ctx, "refusal_opening", R.REFUSAL, sent.start, sent.end, "opens by refusing")]
    return []


# --- length and truncation ----------------------------------------------------------------------------

_DANGLING_WORDS = frozenset((
    "the", "a", "an", "and", "or", "but", "nor", "of", "to", "in", "on", "at", "with", "for", "from",
    "by", "as", "that", "which", "who", "whom", "whose", "your", "you", "my", "his", "her", "their",
    "its", "our", "is", "are", "was", "were", "be", "been", "being", "this", "these", "those", "than",
    "then", "if", "when", "while", "because", "so", "into", "onto", "about", "like", "very", "more",
    "most", "less", "such", "some", "any", "each", "every", "both", "either", "neither", "not", "no",
))


def rule_truncated(ctx: Context) -> list[Evidence]:
    if (ctx.finish_reason or "").lower() == "length":
        tail = max(len(ctx.text) - 80, 0)
        return [evidence(ctx, "finish_reason_length", R.TRUNCATED_OUTPUT, tail, len(ctx.text),
                         "generation stopped at the token limit (finish_reason=length)")]
    if not ctx.config.flag_unterminated_ending or not ctx.words:
        return []
    stripped = ctx.text.rstrip()
    last = ctx.words[-1]
    dangling_mark = stripped[-1] in ",;:-–—(\u2014"
    dangling_word = last.end == len(stripped) and last.text.lower() in _DANGLING_WORDS
    if dangling_mark or dangling_word:
        start = max(len(stripped) - 80, 0)
        return [evidence(ctx, "unterminated_ending", R.TRUNCATED_OUTPUT, start, len(stripped),
                         "ends mid-sentence")]
    return []


def rule_too_short(ctx: Context) -> list[Evidence]:
    count = len(ctx.words)
    if count < ctx.config.min_words:
        return [evidence(ctx, "too_short", R.TOO_SHORT, 0, len(ctx.text),
                         f"{count} words, fewer than {ctx.config.min_words}")]
    return []


def rule_too_long(ctx: Context) -> list[Evidence]:
    count = len(ctx.words)
    if count > ctx.config.max_words:
        cut = ctx.words[ctx.config.max_words].start
        return [evidence(ctx, "too_long", R.TOO_LONG, cut, len(ctx.text),
                         f"{count} words, more than {ctx.config.max_words}")]
    return []


# --- lists, headings and labels -----------------------------------------------------------------------

_LIST_ITEM_RE = re.compile(
    r"^[ \t]*(?:[-*•●▪◦‣+]|\d{1,2}[.)]|\(\d{1,2}\)|\(?[a-hA-H]\)|[ivx]{1,4}[.)])[ \t]+\S.*$", re.MULTILINE
)
_HEADING_RE = re.compile(r"^[ \t]*#{1,6}[ \t]+\S.*$", re.MULTILINE)
_ANNOTATION_WORDS = (
    r"(?:positives?|negatives?|praise|criticisms?|critique|compliments?|strengths?|weakness(?:es)?|pros?|cons?"
    r"|improvements?|areas? (?:for|of|to) improve(?:ment)?|what works|what (?:doesn't|does not|didn't) work"
    r"|what (?:could|can|might) (?:be )?improved?|needs work|suggestions?|top bun|bottom bun|(?:top|bottom) slice"
    r"|the filling|good|bad|the good|the bad|likes|dislikes)"
)
# A short "Label:" at the start of a line (bold or not), followed by text or by nothing.
_LABEL_LINE_RE = re.compile(
    r"^[ \t]*(?:\*\*|__)?(?P<label>[A-Z][\w'’ ,&/-]{0,38}?)(?:\*\*|__)?[ \t]*:(?:\*\*|__)?(?:[ \t]+\S.*)?[ \t]*$"
    r"|^[ \t]*(?:\*\*|__)(?P<bold>[^*_\n]{1,50})(?:\*\*|__)[ \t]*$",
    re.MULTILINE,
)
_ANNOTATION_LABEL_RE = re.compile(rf"^{_ANNOTATION_WORDS}(?:\s*(?:#?\d+|one|two|three))?$", re.IGNORECASE)
_INLINE_ENUM_RE = re.compile(r"(?:(?<=\s)|^)(?:\(\d{1,2}\)|\d{1,2}\)|\((?:i|ii|iii|iv|v|vi)\))(?=\s)")


def _label_lines(ctx: Context) -> list[tuple[re.Match[str], str]]:
    found = []
    for m in _LABEL_LINE_RE.finditer(ctx.text):
        label = (m.group("label") or m.group("bold") or "").strip()
        if label and len(label.split()) <= 6:
            found.append((m, label))
    return found


def rule_list_format(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    items = list(_LIST_ITEM_RE.finditer(ctx.text))
    if len(items) >= cfg.min_list_items:
        return _first(ctx, [evidence(ctx, "list_items", R.LIST_FORMAT, m.start(), m.end(),
                                     f"{len(items)} list items") for m in items])
    headings = list(_HEADING_RE.finditer(ctx.text))
    if headings:
        return _first(ctx, [evidence(ctx, "headings", R.LIST_FORMAT, m.start(), m.end(), "a heading")
                            for m in headings])
    labels = [(m, label) for m, label in _label_lines(ctx) if not _ANNOTATION_LABEL_RE.match(label)]
    if len(labels) >= cfg.min_label_lines:
        return _first(ctx, [evidence(ctx, "section_labels", R.LIST_FORMAT, m.start(), m.end(),
                                     f"{len(labels)} lines start with a 'Label:'") for m, _ in labels])
    for para in ctx.paragraphs:
        enums = list(_INLINE_ENUM_RE.finditer(ctx.masked, para.start, para.end))
        if len(enums) >= cfg.min_inline_enumerators:
            return [evidence(ctx, "inline_enumeration", R.LIST_FORMAT, enums[0].start(), para.end,
                             f"{len(enums)} numbered points inside one paragraph")]
    return []


_PAREN_ANNOTATION_RE = re.compile(
    r"[(\[]\s*(?:positive|negative|neutral|praise|criticism|critique|compliment|strength|weakness|improvement"
    r"|needs work|suggestion|pro|con|good|bad|plus|minus|\+|-|✓|✗|✔|✘)\s*[)\]]",
    re.IGNORECASE,
)
_TRAILING_ANNOTATION_RE = re.compile(
    r"(?:[-–—:]\s*|\(\s*)(?:positive|negative)\b\s*\)?[.!]?[ \t]*$", re.IGNORECASE | re.MULTILINE
)


def rule_annotation_labels(ctx: Context) -> list[Evidence]:
    found = [evidence(ctx, "annotation", R.ANNOTATION_LABELS, m.start(), m.end(), "an annotation label")
             for m in _PAREN_ANNOTATION_RE.finditer(ctx.masked)]
    found += [evidence(ctx, "trailing_annotation", R.ANNOTATION_LABELS, m.start(), m.end(),
                       "a line ends with a positive/negative label")
              for m in _TRAILING_ANNOTATION_RE.finditer(ctx.masked)]
    found += [evidence(ctx, "label_line", R.ANNOTATION_LABELS, m.start(), m.end(), f"labelled '{label}'")
              for m, label in _label_lines(ctx) if _ANNOTATION_LABEL_RE.match(label)]
    if len(found) >= ctx.config.min_annotations:
        return _first(ctx, sorted(found, key=lambda e: e.start or 0))
    return []


# --- line-by-line quoting -----------------------------------------------------------------------------

_LINE_LEAD_RE = re.compile(r"^[ \t]*(?:[-*•>]|\d{1,2}[.)])?[ \t]*", re.MULTILINE)
_BLOCKQUOTE_RE = re.compile(r"^[ \t]*>[ \t]*\S.*$", re.MULTILINE)
_LINE_REFERENCE_RE = re.compile(
    r"^[ \t]*(?:[-*•]\s*)?(?:line|sentence|paragraph|para|stanza)\s+\d+\s*[:.)\-–—]", re.IGNORECASE | re.MULTILINE
)
_AFTER_QUOTE_COMMENT_RE = re.compile(r"\s*(?:[-–—:]|\(|->|=>)\s*\S")
_OPEN_QUOTES = "\"“‘'"


def rule_line_by_line_quoting(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    text = ctx.text
    quote_starts = {q.start: q for q in ctx.quotes}
    # Lines (and paragraphs) that open with a quotation of three or more words.
    led: list[Span] = []
    for m in _LINE_LEAD_RE.finditer(text):
        q = quote_starts.get(m.end())
        if q is not None and len(q.text.split()) >= 3:
            led.append(q)
    if len(led) >= cfg.min_quote_led_lines:
        return _first(ctx, [evidence(ctx, "quote_led_lines", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"{len(led)} lines open with a quotation") for q in led])
    blocks = list(_BLOCKQUOTE_RE.finditer(text))
    refs = list(_LINE_REFERENCE_RE.finditer(text))
    if len(blocks) >= 2 or len(refs) >= 2:
        hits = blocks if len(blocks) >= 2 else refs
        return _first(ctx, [evidence(ctx, "quoted_lines", R.LINE_BY_LINE_QUOTING, m.start(), m.end(),
                                     "the story is taken line by line") for m in hits])
    pairs = [q for q in ctx.quotes if _AFTER_QUOTE_COMMENT_RE.match(text, q.end)]
    if len(pairs) >= cfg.min_quote_comment_pairs:
        return _first(ctx, [evidence(ctx, "quote_comment_pairs", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"{len(pairs)} quotations each followed by a comment") for q in pairs])
    if len(ctx.quotes) >= cfg.min_quotes_for_fraction and ctx.words:
        quoted = sum(len(word_keys(q.text)) for q in ctx.quotes)
        share = quoted / len(ctx.words)
        if share >= cfg.max_quoted_fraction:
            q = ctx.quotes[0]
            return [evidence(ctx, "quoted_share", R.LINE_BY_LINE_QUOTING, q.start, ctx.quotes[-1].end,
                             f"{share:.0%} of the words are quotations")]
    long_quotes = [q for q in ctx.quotes if len(word_keys(q.text)) > cfg.max_copied_run]
    if long_quotes:
        return _first(ctx, [evidence(ctx, "long_quotation", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"quotes {len(word_keys(q.text))} words of the story at once")
                            for q in long_quotes])
    return []


# --- third person -------------------------------------------------------------------------------------

_THIRD_PERSON_RE = re.compile(
    r"\b(?:the|this|our|its|that)\s+(?:story'?s\s+|piece'?s\s+)?(?:author|writer|storyteller|poet|novelist)s?"
    r"(?:['’]s|s['’])?\b",
    re.IGNORECASE,
)
# "As the writer, you ..." and "you, the author," address the writer directly.
_ADDRESSED_BEFORE_RE = re.compile(r"(?:\bas|\byou(?:['’]re| are)?,?|\bto you,?)\s*$", re.IGNORECASE)
_ADDRESSED_AFTER_RE = re.compile(r"^,?\s*(?:you|your)\b", re.IGNORECASE)


def rule_third_person(ctx: Context, *, check_second_person: bool = True) -> list[Evidence]:
    cfg = ctx.config
    found: list[Evidence] = []
    story = story_lower(ctx.story)
    for m in _THIRD_PERSON_RE.finditer(ctx.masked):
        before = ctx.masked[max(m.start() - 12, 0):m.start()]
        after = ctx.masked[m.end():m.end() + 8]
        if _ADDRESSED_BEFORE_RE.search(before) or _ADDRESSED_AFTER_RE.match(after):
            continue
        # A character the story itself calls "the writer" may be discussed by that name.
        if m.group().lower().replace("’", "'") in story:
            continue
        found.append(evidence(ctx, "author_in_third_person", R.THIRD_PERSON, m.start(), m.end(),
                              "speaks about the writer instead of to them"))
    if len(found) >= cfg.min_third_person_mentions:
        return _first(ctx, found)
    if check_second_person and cfg.min_second_person:
        count = len(SECOND_PERSON_RE.findall(ctx.masked))
        if count < cfg.min_second_person:
            first = ctx.sentences[0] if ctx.sentences else Span(0, len(ctx.text), ctx.text)
            return [evidence(ctx, "no_second_person", R.THIRD_PERSON, first.start, first.end,
                             f"addresses the writer as 'you' {count} times")]
    return []


# --- story continuation or retelling ------------------------------------------------------------------

_CRAFT_RE = re.compile(
    r"\b(?:story|stories|tale|piece|prose|sentences?|paragraphs?|lines?|dialogue|dialog|pac(?:e|ing)|scenes?"
    r"|characters?|characteri[sz]ation|narrat(?:or|ors|ion|ive)|readers?|reader's|opening|endings?|beginning"
    r"|climax|tension|voice|tone|images?|imagery|metaphors?|similes?|details?|descriptions?|descriptive"
    r"|words?|wording|verbs?|adverbs?|adjectives?|tenses?|point of view|pov|perspective|rhythm|structure|plot"
    r"|premise|themes?|title|draft|revis(?:e|ion|ing)|rewrit(?:e|ing)|beats?|tags?|exposition|backstory"
    r"|conflict|arcs?|stakes|reveal|twist|subtext|showing|telling|show|tell|moments?|chapters?|sections?"
    r"|passages?|phras(?:e|es|ing)|syntax|clauses?|repetition|clich[eé]s?|genre|motifs?|symbol\w*|humou?r"
    r"|payoff|set-?up|world-?building|epistolary|format|poem|poetic|lyrical|cadence|register|diction|mood"
    r"|atmosphere|protagonist|reveals?|resolution|conclusion|closing|final (?:line|image|paragraph)|punchline"
    r"|understatement|restraint|specificity|concrete|abstract|sensory|emotional|emotion)\b",
    re.IGNORECASE,
)
_JUDGEMENT_RE = re.compile(
    r"\b(?:works?|worked|effective(?:ly)?|strong(?:er|est|ly)?|weak(?:er|ens?)?|vivid(?:ly)?|clear(?:er|ly)?"
    r"|confus(?:ing|ed)|powerful|compelling|memorable|lovely|beautiful(?:ly)?|great|nice|well|better|best"
    r"|favou?rite|enjoy(?:ed)?|brilliant|clever|subtle|precise(?:ly)?|earn(?:s|ed)|lands?|shines?|sings|drags?"
    r"|sags?|rushed|overdone|overwritten|heavy-handed|gorgeous|deft(?:ly)?|skil(?:l|lful|fully)|impress\w*"
    r"|suggest\w*|consider|try|perhaps|maybe|instead|recommend\w*|trust|cut|trim|tighten|sharpen|vary"
    r"|I think|I'd|I would|I found|I love|I loved|I liked|I wanted|I wish|as a reader|for me|reads)\b",
    re.IGNORECASE,
)
_WRITER_DIRECTED_RE = re.compile(
    r"\b(?:your (?:story|prose|writing|draft|opening|ending|dialogue|narrator|use|choice|sentences?|lines?|"
    r"title|piece|reader|characters?|protagonist|voice)|you (?:could|might|should|may|can|write|wrote|"
    r"handle|let|give|use|chose|choose|manage|build|show|tell|trust|keep|leave|end|open)|you've written"
    r"|you're writing)\b",
    re.IGNORECASE,
)
_TAG_RE = re.compile(
    r"[\"”’]\s*,?\s*(?:(?:he|she|they|I|we|you|[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+)?"
    r"(?:said|says|asked|asks|replied|whispered|shouted|muttered|murmured|answered|called|cried|added)\b"
    r"|(?:said|asked|replied|whispered|shouted|muttered|murmured|answered)\s*,?\s*[\"“]",
)


def _is_critique_sentence(ctx: Context, span: Span) -> bool:
    masked = ctx.masked[span.start:span.end]
    if _CRAFT_RE.search(masked) or _JUDGEMENT_RE.search(masked):
        return True
    if ctx.second_person_story:
        return bool(_WRITER_DIRECTED_RE.search(masked))
    return bool(SECOND_PERSON_RE.search(masked))


def rule_story_continuation(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    found: list[Evidence] = []
    # 1. Wording copied from the story, outside quotation marks.
    n = cfg.overlap_ngram
    keys_spans = words(ctx.masked)
    keys = [w.text.lower().replace("’", "'") for w in keys_spans]
    story_set = story_ngrams(ctx.story, n)
    if len(keys) >= n and story_set:
        copied = [False] * len(keys)
        for i, gram in enumerate(ngrams(keys, n)):
            if gram in story_set:
                for j in range(i, i + n):
                    copied[j] = True
        best_run, best_end, run = 0, 0, 0
        for i, flag in enumerate(copied):
            run = run + 1 if flag else 0
            if run > best_run:
                best_run, best_end = run, i
        share = sum(copied) / max(len(ctx.words), 1)
        if best_run > cfg.max_copied_run or share >= cfg.max_copied_fraction:
            start = keys_spans[best_end - best_run + 1].start
            found.append(evidence(ctx, "story_overlap", R.STORY_CONTINUATION, start, keys_spans[best_end].end,
                                  f"{share:.0%} of the words copied from the story, longest run {best_run}"))
    # 2. Runs of narrative: sentences with no sign of a critique in them.
    long_sentences = [s for s in ctx.sentences if len(s.text.split()) >= 4]
    narrative = [not _is_critique_sentence(ctx, s) for s in long_sentences]
    run_start, best = None, None
    for i, is_narrative in enumerate([*narrative, False]):
        if is_narrative and run_start is None:
            run_start = i
        elif not is_narrative and run_start is not None:
            run = long_sentences[run_start:i]
            run_words = sum(len(s.text.split()) for s in run)
            if len(run) >= cfg.min_narrative_run and run_words >= cfg.min_narrative_run_words and (
                best is None or run_words > best[2]
            ):
                best = (run[0].start, run[-1].end, run_words, len(run))
            run_start = None
    if best is not None:
        found.append(evidence(ctx, "narrative_run", R.STORY_CONTINUATION, best[0], best[1],
                              f"{best[3]} sentences in a row tell a story instead of critiquing one"))
    elif len(long_sentences) >= cfg.min_sentences_for_fraction and narrative:
        share = sum(narrative) / len(narrative)
        if share >= cfg.max_narrative_fraction:
            first = next(s for s, flag in zip(long_sentences, narrative, strict=True) if flag)
            found.append(evidence(ctx, "narrative_share", R.STORY_CONTINUATION, first.start, first.end,
                                  f"{share:.0%} of the sentences narrate"))
    # 3. New dialogue with speech tags, in sentences that do not read as critique.
    story = story_lower(ctx.story)
    invented = []
    for s in ctx.sentences:
        if not _TAG_RE.search(ctx.text, s.start, s.end) or _is_critique_sentence(ctx, s):
            continue
        inside = [q for q in ctx.quotes if s.start <= q.start < s.end]
        if inside and all(q.text[1:-1].strip().lower().replace("’", "'") not in story for q in inside):
            invented.append(s)
    if len(invented) >= cfg.min_invented_dialogue:
        found.append(evidence(ctx, "invented_dialogue", R.STORY_CONTINUATION, invented[0].start,
                              invented[-1].end, f"{len(invented)} lines of new dialogue"))
    return _first(ctx, found)


# --- repetition loops ---------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\S+")
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)\]*]*$")
_PUNCT_STRIP = "\"'“”‘’()[]*_.,;:!?…-–—"


def find_tail_loop(text: str, config: ValidatorConfig) -> tuple[int, int, int] | None:
    """(keep_until, loop_start, repeats) for a unit repeated at the end of the text, or None."""
    tokens = list(_TOKEN_RE.finditer(text))
    keys = [t.group().lower().strip(_PUNCT_STRIP) for t in tokens]
    n = len(keys)
    best: tuple[int, int] | None = None  # (covered tokens, period)
    for p in range(1, min(config.loop_max_period, n // 2) + 1):
        length = 0
        j = n - 1
        while j - p >= 0 and keys[j] == keys[j - p]:
            length += 1
            j -= 1
        covered = length + p
        repeats = covered // p
        needed = config.loop_min_repeats_long if p >= config.loop_long_unit else config.loop_min_repeats_short
        if repeats >= needed and (best is None or covered > best[0]):
            best = (covered, p)
    if best is None:
        return None
    covered, p = best
    start = n - covered
    cut = start + p - 1
    # Keep whole sentences: end the kept text at the first sentence end inside the second occurrence.
    for k in range(cut, min(start + 2 * p, n)):
        if _SENTENCE_END_RE.search(tokens[k].group()):
            cut = k
            break
    if cut >= n - 1:
        return None
    return tokens[cut].end(), tokens[start].start(), covered // p


def trim_repetition_loop(text: str, config: ValidatorConfig | None = None) -> tuple[str, bool]:
    """Cut a trailing repetition loop back to its first occurrence; (text, whether anything was cut)."""
    loop = find_tail_loop(text, config or DEFAULT_CONFIG)
    if loop is None:
        return text, False
    return text[:loop[0]].rstrip(), True


def rule_repetition_loop(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    loop = find_tail_loop(ctx.text, cfg)
    if loop is not None:
        _, start, repeats = loop
        return [evidence(ctx, "tail_loop", R.REPETITION_LOOP, start, len(ctx.text),
                         f"the ending repeats {repeats} times")]
    keyed = [(" ".join(word_keys(s.text)), s) for s in ctx.sentences]
    for (key, s), (next_key, t) in itertools.pairwise(keyed):
        if key and key == next_key and len(key.split()) >= cfg.min_consecutive_sentence_words:
            return [evidence(ctx, "repeated_sentence", R.REPETITION_LOOP, s.start, t.end,
                             "the same sentence twice in a row")]
    counts = Counter(key for key, _ in keyed if len(key.split()) >= 3)
    for key, count in counts.most_common(1):
        if count >= cfg.min_sentence_repeats:
            spans = [s for k, s in keyed if k == key]
            return [evidence(ctx, "repeated_sentence", R.REPETITION_LOOP, spans[0].start, spans[-1].end,
                             f"the same sentence {count} times")]
    grams = Counter(ngrams(word_keys(ctx.masked), cfg.phrase_ngram))
    for gram, count in grams.most_common(1):
        if count >= cfg.min_phrase_repeats:
            first_word = gram.split()[0]
            at = max(ctx.text.lower().find(first_word), 0)
            return [evidence(ctx, "repeated_phrase", R.REPETITION_LOOP, at, at + len(first_word),
                             f"the phrase '{gram}' {count} times")]
    return []


# --- method explanation left inside a paragraph -------------------------------------------------------


def rule_method_explanation(ctx: Context) -> list[Evidence]:
    found = [evidence(ctx, "method_talk", R.METHOD_EXPLANATION, s.start, s.end, "explains the feedback method")
             for s in ctx.sentences if any(p.search(s.text.strip()) for p in RESIDUAL_METHOD_RES)]
    return _first(ctx, found)


Rule = Callable[[Context], list[Evidence]]

# Content rules, run on every critique that is not empty, an error or a refusal.
CONTENT_RULES: tuple[tuple[str, Rule], ...] = (
    (R.TRUNCATED_OUTPUT, rule_truncated),
    (R.STORY_CONTINUATION, rule_story_continuation),
    (R.LINE_BY_LINE_QUOTING, rule_line_by_line_quoting),
    (R.ANNOTATION_LABELS, rule_annotation_labels),
    (R.LIST_FORMAT, rule_list_format),
    (R.REPETITION_LOOP, rule_repetition_loop),
    (R.METHOD_EXPLANATION, rule_method_explanation),
    (R.TOO_SHORT, rule_too_short),
    (R.TOO_LONG, rule_too_long),
)
