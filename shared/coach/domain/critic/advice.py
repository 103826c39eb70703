"""What to improve: a measured issue, or a finer suggestion for a clean story, as sentences of advice.

Each piece of advice quotes one exact short span of the story and points at a rewrite or a direction,
without writing the rewrite into the writer's story for them.
"""

from __future__ import annotations

from typing import Any

from coach.domain.critic import wordlists as wl
from coach.domain.critic.chooser import Chooser, number_word, per_1000
from coach.domain.critic.report import RankedNote
from coach.domain.critic.signals import WORD_RE, Analysis, dialogue_lines, phrase, sentence_start


class _IssueAdvice:
    """The phrasings of the advice on each note code, one method named after each code: given the quote
    and the note's figures `f`, the sentences the chooser picks from."""

    @staticmethod
    def dialogue_tag_adverbs(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        count = int(f["count"])
        many = (f"{number_word(count, capital=True)} of your dialogue tags lean" if count > 1
                else "One dialogue tag leans")
        return (
            f'{many} on an adverb. In "{quote}", the adverb tells the reader how the line sounds instead of '
            "letting the words do it; cut it, and if the manner matters, show it with a small gesture or "
            "sharpen the line itself.",
            f'Watch the adverbs attached to speech: "{quote}" explains the tone of a line the dialogue should '
            "carry on its own. A plain said is invisible, and a gesture (a hand on the table, a glance away) "
            "shows the manner better than an -ly word.",
        )

    @staticmethod
    def said_bookisms(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        if int(f.get("non_speech", 0)):
            return (
                f'In "{quote}", the tag is an action nobody can speak through; end the line with a full '
                "stop and give the gesture its own sentence, so the words and the movement each get "
                "their moment.",
                f'Your tags sometimes ask a gesture to deliver speech, as in "{quote}". Let said or asked do '
                "the quiet work, and put the smile or the nod in a separate sentence as a beat.",
            )
        return (
            f'Some tags work too hard: "{quote}" asks the verb to deliver what the line should deliver '
            "itself. Use said or asked, which readers skim past, and let the dialogue carry the heat.",
            f'Speech verbs like the one in "{quote}" pull the eye away from what is being said. Plain tags '
            "disappear on the page, so save the vivid verbs for the action around the dialogue.",
        )

    @staticmethod
    def adverbs(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        density = per_1000(f["density"])
        return (
            f'The narration leans on -ly adverbs, {density}. In "{quote}", a more exact verb could carry the '
            "manner on its own; go through the draft once looking only for -ly words and keep just the "
            "ones that earn their place.",
            f'You use a lot of adverbs in the narration ({density}). In "{quote}", ask what the adverb adds '
            "that a sharper verb or a concrete detail could not, and let the verb do the work.",
        )

    @staticmethod
    def filter_words(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        density = per_1000(f["density"])
        return (
            "Much of the story reaches the reader through a filter: verbs like saw, felt, noticed and "
            f'realized come {density}. "{quote}" puts the character\'s perception between us and the thing '
            "itself; cut the perceiving verb and give the thing directly, so we experience it as it happens.",
            f'The biggest lift would come from removing filter verbs ({density}). In "{quote}", we are told '
            "that the character perceives something instead of perceiving it ourselves; rewrite such "
            "sentences so the image or sound arrives on its own and the point of view stays close.",
        )

    @staticmethod
    def telling_emotion(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        count = int(f["count"])
        return (
            f'Emotions are named rather than shown {number_word(count)} times; "{quote}" tells us the feeling '
            "outright. Show it through what the body does, or what the character says or avoids saying, "
            "and let the reader name the feeling; that is where a scene gets its charge.",
            f'When you write "{quote}", you hand the reader a label instead of an experience, and it happens '
            f"{number_word(count)} times. Replace the named emotion with a physical reaction or an action (a hand that "
            "will not stay still, a question asked twice) and trust the reader to infer it.",
        )

    @staticmethod
    def passive_voice(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        density = per_1000(f["density"])
        return (
            f'The passive voice slows some sentences down ({density}). In "{quote}", the one who acts '
            "disappears or arrives late; put whoever does the action at the front of the sentence so it "
            "moves.",
            f'Watch the passive constructions, {density}: "{quote}" hides who is doing what. Rewrite with the '
            "actor as the subject and the sentence will gain energy and clarity.",
        )

    @staticmethod
    def crutch_words(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        density = per_1000(f["density"])
        return (
            f"Crutch words ({f['top']}) turn up {density} of narration. In \"{quote}\", try deleting the "
            "softener, and where the sentence goes flat, find a stronger word instead of propping up a "
            "weak one.",
            f'Small intensifiers and fillers ({f["top"]}) add up to {density}. In "{quote}", for example, '
            "the extra word adds nothing, and most such sentences get stronger when you simply cut it.",
        )

    @staticmethod
    def repeated_words(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        return (
            f"Some words come back too soon: {f['word']} appears {number_word(int(f['times']))} times within a "
            f'short stretch, for example in "{quote}". Unless the echo is deliberate, vary the second '
            "mention or restructure the sentence so the word is not needed.",
            f'Listen for echoes: {f["word"]} recurs {number_word(int(f["times"]))} times in quick succession (as in '
            f'"{quote}"). Reading the page aloud will catch these, and a synonym or a cut usually fixes them.',
        )

    @staticmethod
    def hard_sentences(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        return (
            f'A few long sentences ask a lot of the reader. The one beginning "{quote}" runs to {f["words"]} '
            "words; consider splitting it where the thought turns, so the clauses that matter land on "
            "their own.",
            f'Some sentences are very hard to read in one breath, such as the {f["words"]}-word one that '
            f'begins "{quote}". Break it at its natural hinge and the pacing will improve at once.',
        )

    @staticmethod
    def sentence_rhythm(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        kind = f.get("kind")
        if kind == "choppy":
            return (
                f"The rhythm needs work: your sentences average {f['mean']} words, and so "
                f'many short ones in a row (such as "{quote}") give every beat the same weight. Join some '
                "of them with and, while or as, and save the short sentence for the moment you want to hit "
                "hardest.",
                f'Your sentences are almost all short (average {f["mean"]} words), so lines like "{quote}" '
                "start to sound alike. Combine neighbouring actions into longer sentences and keep the "
                "short, blunt ones for the emotional turns, where their force will show.",
            )
        if kind == "long":
            return (
                f'Your sentences average {f["mean"]} words, which makes the prose dense. The one beginning '
                f'"{quote}" is a good place to start: split it, and let a short sentence follow a long one '
                "at the moments you want to land.",
                f'The long sentences (an average of {f["mean"]} words) blur the key moments together. Try '
                f'breaking the sentence that begins "{quote}" into two, and see how much sharper it lands.',
            )
        return (
            f"Most sentences run at a similar length (around {f['mean']} words), which gives the prose an "
            f'even beat that can lull. Near "{quote}", try a fragment, or let one sentence run long, so '
            "the pacing follows the tension.",
            f"Your sentence lengths hardly vary (around {f['mean']} words each). Around \"{quote}\", mix in a "
            "very short sentence after a long one; the contrast is what makes a moment feel important.",
        )

    @staticmethod
    def repeated_openers(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        length = int(f["length"])
        return (
            f'{number_word(length, capital=True)} sentences in a row begin the same way, starting at "{quote}", and '
            "the repetition flattens the rhythm. Vary the openings: start one with an action, another with "
            "a detail, or fold two sentences together.",
            f'Watch your sentence openings: from "{quote}" on, {number_word(length)} sentences in a row start with the '
            "same word. Lead with a place, a sound or a subordinate clause now and then, and the passage "
            "will flow.",
        )

    @staticmethod
    def opening_line(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        if f.get("kind") == "long":
            return (
                f'Your first sentence, beginning "{quote}", runs to {f["words"]} words before the reader has '
                "a foothold. Consider opening with a short, concrete line and letting the long sentence "
                "follow.",
                f'The opening sentence, the one that begins "{quote}", asks the reader to hold {f["words"]} '
                "words before anything happens; a shorter first line would hook them faster.",
            )
        return (
            f'Your opening, "{quote}", is a familiar way in, and readers decide quickly whether to stay. '
            "Start closer to the moment something changes, with an image or action only this story "
            "could have.",
            f'The first line, "{quote}", is the kind of opening editors see often. Try beginning in the '
            "middle of the first real event and folding the setup in afterwards.",
        )

    @staticmethod
    def long_paragraph(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        words = f["words"]
        return (
            f'The paragraph with "{quote}" in it runs to {words} words without a break. Give the reader air: '
            "break it where the focus shifts (a new action, a new place, a change of feeling) so each "
            "paragraph does one job.",
            f'At {words} words, the paragraph that holds "{quote}" is a wall of text. Paragraph breaks are '
            "a pacing tool; use them to isolate the moments that matter.",
        )

    @staticmethod
    def dialogue_balance(quote: str, f: dict[str, Any]) -> tuple[str, ...]:
        if f.get("kind") == "mostly_dialogue":
            share = f"{float(f['share']):.0%}"
            return (
                f"The story is almost all dialogue ({share} of the words). It moves fast, but the reader can "
                f'lose track of where we are and who is doing what; after a line like "{quote}", add one '
                "short beat of action or setting to anchor the scene.",
                f'With {share} of the words in dialogue, the voices carry everything. A glance, an object '
                f'or a gesture placed after "{quote}" would ground the exchange without slowing it down.',
            )
        return (
            f'There is no spoken dialogue in the story. That can be a deliberate choice, but around "{quote}" '
            "a single exchange would let the characters reveal themselves in their own words.",
            f'The story is told entirely in narration. Consider letting a character speak near "{quote}"; '
            "one line of dialogue can do the work of a paragraph of summary.",
        )


def issue_text(note: RankedNote, quote: str | None, chooser: Chooser) -> str | None:
    """One or two sentences about a measured issue, quoting the story and pointing at a rewrite."""
    code = note.note.code
    phrasings = getattr(_IssueAdvice, code, None)  # the method named after the code
    if quote is None or phrasings is None:
        return None
    return chooser.pick(f"issue-{code}", phrasings(quote, note.figures))


Suggestion = tuple[str, str, str]  # (kind, quote, text)


def soft_suggestions(analysis: Analysis, chooser: Chooser) -> list[Suggestion]:
    """(kind, quote, text) suggestions for a story with few measured issues; each names a real passage."""
    sentences = analysis.doc.sentences
    if not sentences:
        return []
    verse = [i for i, s in enumerate(sentences)
             if i > 0 and analysis.doc.paragraphs[s.paragraph].verse and len(s.words) >= 2]
    leading = (
        _line_break_suggestion(analysis, chooser, verse),
        _short_story_suggestion(analysis, chooser, verse),
        _remaining_habit_suggestion(analysis, chooser),
    )
    finer = (
        _ending_suggestion(analysis, chooser),
        _opening_suggestion(analysis, chooser),
        _dialogue_suggestion(analysis, chooser),
        _longest_sentence_suggestion(analysis, chooser),
    )
    out = [s for s in leading if s is not None]
    optional = [s for s in finer if s is not None]
    if optional:  # which finer point comes first varies from story to story
        shift = chooser.index("soft-order", len(optional))
        out.extend(optional[shift:] + optional[:shift])
    return out


def _line_break_suggestion(analysis: Analysis, chooser: Chooser, verse: list[int]) -> Suggestion | None:
    sentences = analysis.doc.sentences
    if verse:
        # A line ending on a function word is the first place to look; else the longest line.
        weak = [i for i in verse if sentences[i].words[-1].lower in wl.DANGLING]
        pick = weak[0] if weak else max(verse, key=lambda i: len(sentences[i].words))
        line = sentence_start(analysis, pick, 8)
        if line:
            return ("lines", line, chooser.pick("soft-verse", (
                "Read the piece aloud and listen to where each line ends: a break after a strong noun or verb "
                f'gives that word weight, while a break after a small word lets the line sag. Try the line "{line}" '
                "both ways and keep whichever lands harder.",
                f'Look at your line breaks. In "{line}", ask whether the break falls on the word you most want '
                "the reader to hold; moving it by one word can change the whole rhythm of the stanza.",
            )))
    return None


def _short_story_suggestion(analysis: Analysis, chooser: Chooser, verse: list[int]) -> Suggestion | None:
    total = len(analysis.doc.words)
    middle_quote = sentence_start(analysis, len(analysis.doc.sentences) // 2, 8)
    if total < 150 and middle_quote and not verse:
        return ("short", middle_quote, chooser.pick("soft-short", (
            f'At {total} words, this reads more as a moment than a story. Starting from "{middle_quote}", '
            "try building one full scene: a place the reader can see, a character who wants something, "
            "and a change by the end.",
            f'The piece is very short ({total} words), so the reader gets the idea behind "{middle_quote}" '
            "but not yet the experience of it. Expand the central moment with concrete detail and let "
            "something happen.",
        )))
    return None


def _remaining_habit_suggestion(analysis: Analysis, chooser: Chooser) -> Suggestion | None:
    """The first habit below the note thresholds that still has a quotable instance."""
    leftovers = [
        ("filter", [h for h in analysis.filters if h.kind != "weak"],
         "cut the perceiving verb and give the reader the thing perceived, directly"),
        ("telling", analysis.telling, "show the feeling through the body or an action instead of naming it"),
        ("adverb", analysis.adverbs, "look for a verb exact enough to make the adverb unnecessary"),
        ("passive", analysis.passives, "make the one who acts the subject of the sentence"),
    ]
    for name, hits, advice in leftovers:
        spans = (phrase(analysis.doc, h.start, h.end, min_words=3, max_words=6, target=4, prefer="left")
                 for h in hits)
        quote = next((q for q in spans if q), None)
        if quote:
            return ("habits", quote, chooser.pick(f"soft-{name}", (
                f'The habits that remain are few, but "{quote}" is worth a second look; {advice}.',
                f'It is a small thing, but in "{quote}", {advice}.',
            )))
    return None


def _ending_suggestion(analysis: Analysis, chooser: Chooser) -> Suggestion | None:
    last = len(analysis.doc.sentences) - 1
    end_quote = sentence_start(analysis, last, 8) if last > 0 else None
    if end_quote:
        return ("ending", end_quote, chooser.pick("soft-ending", (
            f'Look hard at your final sentence, which begins "{end_quote}". Ask whether it states what the '
            "story has already shown; if it does, end one beat earlier, on the image, and let the reader "
            "finish the thought.",
            f'Test the ending, the sentence that begins "{end_quote}", by reading the piece without it. If '
            "nothing is lost, cut it; if something is, make sure that is the one thing it says.",
        )))
    return None


def _opening_suggestion(analysis: Analysis, chooser: Chooser) -> Suggestion | None:
    first_quote = sentence_start(analysis, 0, 8)
    if first_quote and len(analysis.doc.words) >= 150:
        return ("opening", first_quote, chooser.pick("soft-opening", (
            f'Test your opening against the rest: "{first_quote}" works, but see whether the story could '
            "begin a paragraph later, at the first moment of change, with the setup folded in afterwards.",
            f'Consider whether "{first_quote}" is the strongest first line you have. Often the best opening '
            "sentence is hiding in the second or third paragraph of a draft.",
        )))
    return None


def _dialogue_suggestion(analysis: Analysis, chooser: Chooser) -> Suggestion | None:
    if analysis.doc.quotes:
        lines = [q for q in dialogue_lines(analysis) if 3 <= len(WORD_RE.findall(q)) <= 10]
        if lines:
            line = chooser.pick("soft-dialogue-line", lines)
            return ("dialogue", line, chooser.pick("soft-dialogue", (
                f'Read the dialogue aloud: in a line like "{line}", check that each speaker sounds like '
                "themselves and not like the narrator; a distinct rhythm or pet word per character helps.",
                f'Push the dialogue further. A line such as "{line}" could carry more subtext; let a '
                "character say less than they mean and make the reader hear the rest.",
            )))
    return None


def _longest_sentence_suggestion(analysis: Analysis, chooser: Chooser) -> Suggestion | None:
    lengths = analysis.sentence_lengths
    longest = max(range(len(lengths)), key=lambda i: lengths[i])
    if lengths[longest] >= 25:
        start = sentence_start(analysis, longest, 6)
        if start:
            return ("longest", start, chooser.pick("soft-longest", (
                f'Your longest sentence, beginning "{start}", runs to {lengths[longest]} words. Read it aloud; '
                "if you run out of breath before the turn, one cut at the hinge will sharpen it.",
                f'The sentence that begins "{start}" is {lengths[longest]} words long. It may be deliberate, '
                "but check that every clause earns its place, because long sentences are where pacing slips.",
            )))
    return None
