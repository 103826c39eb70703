"""Rules: artifacts that make a critique unfit to teach from. Each rule is one small function.

A rule reads a Context (the cleaned critique, the story, the configuration, and text pieces computed
once) and returns Evidence for every offending span it found, or nothing. The engine decides which rules
run and turns evidence into a verdict.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable

from coach.domain.records import Evidence
from coach.domain.validation import reasons as R
from coach.domain.validation.cleaners import RESIDUAL_METHOD_RES, has_method_hint
from coach.domain.validation.context import (
    BLOCKQUOTE_RE,
    Context,
    evidence,
    first,
    match_lines,
    word_set,
)
from coach.domain.validation.text import WORD_RE, Span, count_words, story_lower, story_ngrams

# --- error text and refusals --------------------------------------------------------------------------

# Every error pattern contains one of these; most critiques contain none, so a substring test decides.
_ERROR_HINTS = ("error", "exception", "traceback", "rate limit", "quota", "server", "gateway", "unavailable",
                "status", "http", "{", "connection", "timed out", "retries", "context length", "api key")
_BARE_VALUE_RE = re.compile(r"\A\s*(?:none|null|undefined|nan|n/a|\[\]|\{\})\s*\Z", re.IGNORECASE)

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
        r"|\b(?:an|unexpected) error (?:occurred|has occurred|was encountered)|\bencountered an error\b"
        r"|\brequest timed out\b|\bmax(?:imum)? retries exceeded\b|\bmaximum context length\b"
        r"|\b(?:invalid|incorrect) api key\b|\bthe server had an error\b",
        re.IGNORECASE,
    ),
    _BARE_VALUE_RE,
)

_ERROR_HEAD_CHARS = 400
_REFUSAL_ANYWHERE_RE = re.compile(
    r"(?=[aAiI])(?:\bas an ai\b|\bas a (?:large )?language model\b"
    r"|\bI(?:'m| am) (?:just |only )?an? (?:AI|language model)\b"
    r"|\bagainst (?:my|openai's|the) (?:usage |content )?polic(?:y|ies)\b"
    r"|\bI(?:'m| am) (?:unable|not able) to (?:help|assist|comply)\b|\bI must (?:respectfully )?decline\b)",
    re.IGNORECASE,
)
# Every refusal pattern contains one of these.
_REFUSAL_HINTS = (" ai", "language model", "polic", "unable", "not able", "decline", "sorry", "apolog",
                  "unfortunately", "can't", "can’t", "cannot", "can not", "won't", "will not", "comfortable")
_REFUSE_VERBS = (
    r"(?:provide|give|offer|write|create|produce|assist|comply|fulfil|fulfill|critique|review|evaluate|assess"
    r"|complete|generate|continue|help(?: you)? with|do that|do this|engage|share|comment)"
)
# A refusal opens the reply: "I'm sorry, but I can't provide ...", "I cannot critique ...".
_REFUSE = r"I(?:'m|’m| am)?\s+(?:can't|can’t|cannot|can not|won't|will not|unable to|not able to|not comfortable)"
_REFUSAL_OPENING_RE = re.compile(
    r"^(?:(?:(?:I'm|I am|I’m) sorry|sorry|apologies|unfortunately|I apologi[sz]e)\b[,.!]?\s*(?:but\s+)?)?"
    + _REFUSE + r"\s+(?:\w+\s+){0,2}?" + _REFUSE_VERBS + r"\b",
    re.IGNORECASE,
)


def rule_error_text(ctx: Context) -> list[Evidence]:
    # Error text leads the output (a failure written in place of a critique): look at the head only.
    head = ctx.text[:_ERROR_HEAD_CHARS]
    low = head.lower()
    if not any(hint in low for hint in _ERROR_HINTS) and not _BARE_VALUE_RE.match(head):
        return []
    for pattern in _ERROR_RES:
        m = pattern.search(head)
        if m:
            end = ctx.text.find("\n", m.start())
            return [evidence(ctx, "error_text", R.ERROR_TEXT, m.start(), end if end > 0 else len(ctx.text),
                             "an error message, not a critique")]
    return []


def rule_refusal(ctx: Context) -> list[Evidence]:
    low = ctx.text.lower()
    if not any(hint in low for hint in _REFUSAL_HINTS):
        return []
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


_LAST_WORD_RE = re.compile(r"[^\W_]+\Z")


def rule_truncated(ctx: Context) -> list[Evidence]:
    if (ctx.finish_reason or "").lower() == "length":
        tail = max(len(ctx.text) - 80, 0)
        return [evidence(ctx, "finish_reason_length", R.TRUNCATED_OUTPUT, tail, len(ctx.text),
                         "generation stopped at the token limit (finish_reason=length)")]
    if not ctx.config.flag_unterminated_ending or not ctx.word_count:
        return []
    stripped = ctx.text.rstrip()
    last = _LAST_WORD_RE.search(stripped[-40:])
    dangling_mark = stripped[-1] in ",;:-–—("
    dangling_word = last is not None and last.group().lower() in _DANGLING_WORDS
    if dangling_mark or dangling_word:
        start = max(len(stripped) - 80, 0)
        return [evidence(ctx, "unterminated_ending", R.TRUNCATED_OUTPUT, start, len(stripped),
                         "ends mid-sentence")]
    return []


def rule_too_short(ctx: Context) -> list[Evidence]:
    count = ctx.word_count
    if count < ctx.config.min_words:
        return [evidence(ctx, "too_short", R.TOO_SHORT, 0, len(ctx.text),
                         f"{count} words, fewer than {ctx.config.min_words}")]
    return []


def rule_too_long(ctx: Context) -> list[Evidence]:
    count = ctx.word_count
    if count > ctx.config.max_words:
        cut = next(itertools.islice(WORD_RE.finditer(ctx.text), ctx.config.max_words, None)).start()
        return [evidence(ctx, "too_long", R.TOO_LONG, cut, len(ctx.text),
                         f"{count} words, more than {ctx.config.max_words}")]
    return []


# --- lists, headings and labels -----------------------------------------------------------------------

_LIST_ITEM_RE = re.compile(
    r"[ \t]*(?:[-*•●▪◦‣+]|\d{1,2}[.)]|\(\d{1,2}\)|\(?[a-hA-H]\)|[ivx]{1,4}[.)])[ \t]+\S.*"
)
_HEADING_RE = re.compile(r"[ \t]*#{1,6}[ \t]+\S.*")
_ANNOTATION_WORDS = (
    r"(?:positives?|negatives?|praise|criticisms?|critique|compliments?|strengths?|weakness(?:es)?|pros?|cons?"
    r"|improvements?|areas? (?:for|of|to) improve(?:ment)?|what works|what (?:doesn't|does not|didn't) work"
    r"|what (?:could|can|might) (?:be )?improved?|needs work|suggestions?|top bun|bottom bun|(?:top|bottom) slice"
    r"|the filling|good|bad|the good|the bad|likes|dislikes)"
)
_ANNOTATION_LABEL_RE = re.compile(rf"^{_ANNOTATION_WORDS}(?:\s*(?:#?\d+|one|two|three))?$", re.IGNORECASE)
_INLINE_ENUM_RE = re.compile(r"(?=[(\d])(?:(?<=\s)|^)(?:\(\d{1,2}\)|\d{1,2}\)|\((?:i|ii|iii|iv|v|vi)\))(?=\s)")


def rule_list_format(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    items = match_lines(ctx, _LIST_ITEM_RE)
    if len(items) >= cfg.min_list_items:
        return first(ctx, [evidence(ctx, "list_items", R.LIST_FORMAT, m.start, m.end,
                                     f"{len(items)} list items") for m in items])
    headings = match_lines(ctx, _HEADING_RE) if "#" in ctx.text else []
    if headings:
        return first(ctx, [evidence(ctx, "headings", R.LIST_FORMAT, m.start, m.end, "a heading")
                            for m in headings])
    labels = [(m, label) for m, label in ctx.label_lines
              if not _ANNOTATION_LABEL_RE.match(label) and not _LINE_REFERENCE_RE.match(m.text)]
    if len(labels) >= cfg.min_label_lines:
        return first(ctx, [evidence(ctx, "section_labels", R.LIST_FORMAT, m.start, m.end,
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
    r"(?:[-–—:]\s*|\(\s*)(?:positive|negative)\b\s*\)?[.!]?[ \t]*$", re.IGNORECASE
)


def rule_annotation_labels(ctx: Context) -> list[Evidence]:
    found = [evidence(ctx, "annotation", R.ANNOTATION_LABELS, m.start(), m.end(), "an annotation label")
             for m in _PAREN_ANNOTATION_RE.finditer(ctx.masked)]
    if "positive" in ctx.folded or "negative" in ctx.folded:
        for start, line in ctx.lines:
            m = _TRAILING_ANNOTATION_RE.search(ctx.masked, start, start + len(line))
            if m:
                found.append(evidence(ctx, "trailing_annotation", R.ANNOTATION_LABELS, m.start(), m.end(),
                                      "a line ends with a positive/negative label"))
    found += [evidence(ctx, "label_line", R.ANNOTATION_LABELS, m.start, m.end, f"labelled '{label}'")
              for m, label in ctx.label_lines if _ANNOTATION_LABEL_RE.match(label)]
    if len(found) >= ctx.config.min_annotations:
        return first(ctx, sorted(found, key=lambda e: e.start or 0))
    return []


# --- line-by-line quoting -----------------------------------------------------------------------------

_LINE_LEAD_RE = re.compile(r"[ \t]*(?:[-*•>]|\d{1,2}[.)])?[ \t]*")
_LINE_REFERENCE_RE = re.compile(
    r"[ \t]*(?:[-*•]\s*)?(?:line|sentence|paragraph|para|stanza)\s+\d+\s*[:.)\-–—]", re.IGNORECASE
)
_AFTER_QUOTE_COMMENT_RE = re.compile(r"\s*(?:[-–—:]|\(|->|=>)\s*\S")


def rule_line_by_line_quoting(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    text = ctx.text
    quote_starts = {q.start: q for q in ctx.story_quotes}
    # Lines (and paragraphs) that open with a quotation of three or more words.
    led: list[Span] = []
    for start, line in ctx.lines if quote_starts else ():
        q = quote_starts.get(start + _LINE_LEAD_RE.match(line).end())  # type: ignore[union-attr]
        if q is not None and len(q.text.split()) >= 3:
            led.append(q)
    if len(led) >= cfg.min_quote_led_lines:
        return first(ctx, [evidence(ctx, "quote_led_lines", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"{len(led)} lines open with a quotation") for q in led])
    blocks = match_lines(ctx, BLOCKQUOTE_RE) if ">" in text else []
    refs = match_lines(ctx, _LINE_REFERENCE_RE)
    if len(blocks) >= 2 or len(refs) >= 2:
        hits = blocks if len(blocks) >= 2 else refs
        return first(ctx, [evidence(ctx, "quoted_lines", R.LINE_BY_LINE_QUOTING, m.start, m.end,
                                     "the story is taken line by line") for m in hits])
    pairs = [q for q in ctx.story_quotes if _AFTER_QUOTE_COMMENT_RE.match(text, q.end)]
    if len(pairs) >= cfg.min_quote_comment_pairs:
        return first(ctx, [evidence(ctx, "quote_comment_pairs", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"{len(pairs)} quotations each followed by a comment") for q in pairs])
    quotes = ctx.story_quotes
    if len(quotes) >= cfg.min_quotes_for_fraction and ctx.word_count:
        share = sum(count_words(q.text) for q in quotes) / ctx.word_count
        if share >= cfg.max_quoted_fraction:
            return [evidence(ctx, "quoted_share", R.LINE_BY_LINE_QUOTING, quotes[0].start, quotes[-1].end,
                             f"{share:.0%} of the words are quotations of the story")]
    long_quotes = [q for q in quotes if count_words(q.text) > cfg.max_copied_run]
    if long_quotes:
        return first(ctx, [evidence(ctx, "long_quotation", R.LINE_BY_LINE_QUOTING, q.start, q.end,
                                     f"quotes {count_words(q.text)} words of the story at once")
                            for q in long_quotes])
    return []


# --- third person -------------------------------------------------------------------------------------

_THIRD_PERSON_RE = re.compile(
    r"\b(?:the|this|our|its|that)\s+(?:story'?s\s+|piece'?s\s+)?(?:author|writer|storyteller|poet|novelist)s?"
    r"(?:['’]s|s['’])?\b",
    re.IGNORECASE,
)
_AUTHOR_WORDS = ("author", "writer", "storyteller", "poet", "novelist")
# Imperatives ("Try cutting ...", "Consider ...") address the writer as directly as "you" does.
_IMPERATIVE_RE = re.compile(
    r"[\W_]*(?:try|consider|cut|keep|let|give|trust|think about|look at|read|make|use|replace|remove|delete"
    r"|add|show|move|drop|start|open|end|resist|avoid|vary|trim|tighten|break|combine|save|lean|slow|speed)\b",
    re.IGNORECASE,
)
# "As the writer, you ..." and "you, the author," address the writer directly.
_ADDRESSED_BEFORE_RE = re.compile(r"(?:\bas|\byou(?:['’]re| are)?,?|\bto you,?)\s*$", re.IGNORECASE)
_ADDRESSED_AFTER_RE = re.compile(r"^,?\s*(?:you|your)\b", re.IGNORECASE)


def rule_third_person(ctx: Context, *, check_second_person: bool = True) -> list[Evidence]:
    cfg = ctx.config
    found: list[Evidence] = []
    story = story_lower(ctx.story)
    mentions = _THIRD_PERSON_RE.finditer(ctx.masked) if any(w in ctx.folded for w in _AUTHOR_WORDS) else ()
    for m in mentions:
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
        return first(ctx, found)
    if check_second_person and cfg.require_second_person and cfg.min_second_person:
        count = sum(1 for ws in ctx.sentence_words for w in ws if w in _SECOND_PERSON_WORDS)
        if count < cfg.min_second_person:
            count += sum(1 for s in ctx.sentences if _IMPERATIVE_RE.match(ctx.masked, s.start, s.end))
        if count < cfg.min_second_person:
            opening = ctx.sentences[0] if ctx.sentences else Span(0, len(ctx.text), ctx.text)
            return [evidence(ctx, "no_second_person", R.THIRD_PERSON, opening.start, opening.end,
                             "never addresses the writer as 'you'")]
    return []


# --- story continuation or retelling ------------------------------------------------------------------

# Words that show a sentence is about the writing (craft) or judges it (evaluation, advice). A sentence
# with none of them, and no "you", is narrating rather than critiquing.
_CRITIQUE_WORDS = word_set("""
    story stories tale piece prose sentence sentences paragraph paragraphs line lines dialogue dialog pace
    pacing scene scenes character characters characterisation characterization narrator narrators narration
    narrative reader readers reader's opening ending endings beginning climax tension voice tone image images
    imagery metaphor metaphors simile similes detail details description descriptions descriptive word words
    wording verb verbs adverb adverbs adjective adjectives tense tenses pov perspective rhythm structure plot
    premise theme themes title draft revise revision revising rewrite rewriting beat beats tag tags exposition
    backstory conflict arc arcs stakes reveal reveals twist subtext showing telling show tell moment moments
    chapter chapters section sections passage passages phrase phrases phrasing syntax clause clauses
    repetition cliche cliché cliches clichés genre motif motifs symbol symbols symbolism symbolic humour humor
    payoff setup set-up worldbuilding world-building epistolary format poem poetic lyrical cadence register
    diction mood atmosphere protagonist resolution conclusion closing punchline understatement restraint
    specificity concrete abstract sensory emotional emotion
    works worked effective effectively strong stronger strongest strongly weak weaker weakens weaken vivid
    vividly clear clearer clearly confusing confused powerful compelling memorable lovely beautiful
    beautifully great nice well better best favourite favorite enjoy enjoyed brilliant clever subtle precise
    precisely earn earns earned land lands shine shines sings drag drags sag sags rushed overdone overwritten
    gorgeous deft deftly skill skilful skillful skilfully skillfully impressive impressed impresses suggest
    suggests suggested suggestion suggestions consider try perhaps maybe instead recommend recommended trust
    cut trim tighten sharpen vary reads i'd
""")
_CRITIQUE_PHRASE_RE = re.compile(
    r"(?=[piafh])\b(?:point of view|i think|i would|i found|i love|i loved|i liked|i wanted|i wish|as a reader|for me"
    r"|heavy-handed)\b"
)
_SECOND_PERSON_WORDS = word_set("you your yours yourself yourselves you're you've you'll you'd")
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


def _is_critique_sentence(ctx: Context, index: int) -> bool:
    own = ctx.sentence_words[index]
    if not _CRITIQUE_WORDS.isdisjoint(own):
        return True
    span = ctx.sentences[index]
    if _CRITIQUE_PHRASE_RE.search(ctx.folded, span.start, span.end):
        return True
    if ctx.second_person_story:
        return bool(_WRITER_DIRECTED_RE.search(ctx.folded, span.start, span.end))
    return not _SECOND_PERSON_WORDS.isdisjoint(own)


def _copied_from_story(ctx: Context) -> Evidence | None:
    """Wording copied from the story outside quotation marks: a long run of it, or a large share."""
    cfg = ctx.config
    n = cfg.overlap_ngram
    story_set = story_ngrams(ctx.story, n)
    keys = ctx.own_words if ctx.tail_loop is None else WORD_RE.findall(ctx.folded, 0, ctx.loop_free_end)
    if len(keys) < n or not story_set:
        return None
    hits = [gram in story_set for gram in zip(*(keys[i:] for i in range(n)), strict=False)]
    total = ctx.word_count if ctx.loop_free_end == len(ctx.text) else count_words(ctx.text[:ctx.loop_free_end])
    # Each hit copies at most n words: few hits cannot add up to a long run or a large share.
    bound = sum(hits) * n
    if bound <= cfg.max_copied_run and bound < cfg.max_copied_fraction * max(total, 1):
        return None
    last_hit, run, best_run, best_end, copied = -n, 0, 0, 0, 0
    for j in range(len(keys)):
        if j < len(hits) and hits[j]:
            last_hit = j
        # Word j is copied when an n-gram starting at or before it (and reaching it) is in the story.
        if j - last_hit < n:
            copied += 1
            run += 1
            if run > best_run:
                best_run, best_end = run, j
        else:
            run = 0
    share = copied / max(total, 1)
    if best_run <= cfg.max_copied_run and share < cfg.max_copied_fraction:
        return None
    spans = list(WORD_RE.finditer(ctx.folded, 0, ctx.loop_free_end))
    start, end = spans[best_end - best_run + 1].start(), spans[best_end].end()
    return evidence(ctx, "story_overlap", R.STORY_CONTINUATION, start, end,
                    f"{share:.0%} of the words copied from the story, longest run {best_run}")


def _narrative_run(ctx: Context) -> Evidence | None:
    """Sentences in a row with no sign of a critique in them: the story continued or retold."""
    cfg = ctx.config
    indexes = [i for i, s in enumerate(ctx.sentences)
               if s.end <= ctx.loop_free_end and len(ctx.sentence_words[i]) >= 4]
    narrative = [not _is_critique_sentence(ctx, i) for i in indexes]
    run_start, best = None, None
    for k, is_narrative in enumerate([*narrative, False]):
        if is_narrative and run_start is None:
            run_start = k
        elif not is_narrative and run_start is not None:
            run = indexes[run_start:k]
            run_words = sum(len(ctx.sentence_words[i]) for i in run)
            if len(run) >= cfg.min_narrative_run and run_words >= cfg.min_narrative_run_words and (
                best is None or run_words > best[2]
            ):
                best = (ctx.sentences[run[0]].start, ctx.sentences[run[-1]].end, run_words, len(run))
            run_start = None
    if best is not None:
        return evidence(ctx, "narrative_run", R.STORY_CONTINUATION, best[0], best[1],
                        f"{best[3]} sentences in a row tell a story instead of critiquing one")
    # A short plot summary before the critique is how many editors open: the leading narration (too short
    # for a run, checked above) does not count towards the share.
    lead = next((k for k, flag in enumerate(narrative) if not flag), len(narrative))
    if lead < len(narrative):
        indexes, narrative = indexes[lead:], narrative[lead:]
    if len(indexes) >= cfg.min_sentences_for_fraction and narrative:
        share = sum(narrative) / len(narrative)
        if share >= cfg.max_narrative_fraction:
            sample = ctx.sentences[next(i for i, flag in zip(indexes, narrative, strict=True) if flag)]
            return evidence(ctx, "narrative_share", R.STORY_CONTINUATION, sample.start, sample.end,
                            f"{share:.0%} of the sentences narrate")
    return None


def _invented_dialogue(ctx: Context) -> Evidence | None:
    """New dialogue: tagged lines the story never had, or a critique made mostly of invented quotations."""
    cfg = ctx.config
    from_story = {q.start for q in ctx.story_quotes}
    invented_quotes = [q for q in ctx.quotes if q.start not in from_story and q.end <= ctx.loop_free_end]
    if not invented_quotes:
        return None
    invented = []
    for i, s in enumerate(ctx.sentences):
        if (any(s.start <= q.start < s.end for q in invented_quotes)
                and _TAG_RE.search(ctx.text, s.start, s.end) and not _is_critique_sentence(ctx, i)):
            invented.append(s)
    if len(invented) >= cfg.min_invented_dialogue:
        return evidence(ctx, "invented_dialogue", R.STORY_CONTINUATION, invented[0].start, invented[-1].end,
                        f"{len(invented)} lines of new dialogue")
    invented_words = sum(count_words(q.text) for q in invented_quotes)
    if (len(invented_quotes) >= cfg.min_quotes_for_fraction and ctx.word_count
            and invented_words / ctx.word_count >= cfg.max_quoted_fraction):
        return evidence(ctx, "invented_dialogue", R.STORY_CONTINUATION, invented_quotes[0].start,
                        invented_quotes[-1].end, f"{invented_words / ctx.word_count:.0%} of the words are new dialogue")
    return None


def rule_story_continuation(ctx: Context) -> list[Evidence]:
    found = [e for e in (_copied_from_story(ctx), _narrative_run(ctx), _invented_dialogue(ctx)) if e is not None]
    return first(ctx, found)


# --- repetition loops ---------------------------------------------------------------------------------

def rule_repetition_loop(ctx: Context) -> list[Evidence]:
    cfg = ctx.config
    loop = ctx.tail_loop
    if loop is not None:
        _, start, repeats = loop
        return [evidence(ctx, "tail_loop", R.REPETITION_LOOP, start, len(ctx.text),
                         f"the ending repeats {repeats} times")]
    keyed = [(tuple(own), s) for own, s in zip(ctx.sentence_words, ctx.sentences, strict=True)]
    for (key, s), (next_key, t) in itertools.pairwise(keyed):
        if key and key == next_key and len(key) >= cfg.min_consecutive_sentence_words:
            return [evidence(ctx, "repeated_sentence", R.REPETITION_LOOP, s.start, t.end,
                             "the same sentence twice in a row")]
    counts = Counter(key for key, _ in keyed if len(key) >= 3)
    for key, count in counts.most_common(1):
        if count >= cfg.min_sentence_repeats:
            spans = [s for k, s in keyed if k == key]
            return [evidence(ctx, "repeated_sentence", R.REPETITION_LOOP, spans[0].start, spans[-1].end,
                             f"the same sentence {count} times")]
    own_words = ctx.own_words
    n = cfg.phrase_ngram
    # A phrase said k times is made of words said at least k times: look for n such words in a row first.
    frequent = {w for w, c in Counter(own_words).items() if c >= cfg.min_phrase_repeats}
    run = longest = 0
    for word in own_words:
        run = run + 1 if word in frequent else 0
        longest = max(longest, run)
    if longest < n:
        return []
    grams = Counter(zip(*(own_words[i:] for i in range(n)), strict=False))
    for gram, count in grams.most_common(1):
        if count >= cfg.min_phrase_repeats:
            phrase = re.search(r"\W+".join(map(re.escape, gram)), ctx.folded)
            start, end = (phrase.start(), phrase.end()) if phrase else (0, 0)
            return [evidence(ctx, "repeated_phrase", R.REPETITION_LOOP, start, end,
                             f"the phrase '{' '.join(gram)}' {count} times")]
    return []


# --- method explanation left inside a paragraph -------------------------------------------------------


def rule_method_explanation(ctx: Context) -> list[Evidence]:
    if not has_method_hint(ctx.text, preamble=False):
        return []
    found = [evidence(ctx, "method_talk", R.METHOD_EXPLANATION, s.start, s.end, "explains the feedback method")
             for s in ctx.sentences
             if has_method_hint(s.text, preamble=False) and any(p.search(s.text.strip()) for p in RESIDUAL_METHOD_RES)]
    return first(ctx, found)


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
