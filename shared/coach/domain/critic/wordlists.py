"""Word lists behind the style signals.

Each list is small on purpose: it names the words the signals look for and the exceptions that keep
them from firing on clean prose. All entries are lowercase.
"""

from __future__ import annotations


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words ending in -ly that are not manner adverbs (adjectives, nouns, verbs, names).
NOT_ADVERBS: frozenset[str] = _set(
    """
    only early family lovely ugly holy jolly silly belly bully jelly folly dolly gully rally tally ally
    italy july lily emily molly holly polly sally kelly billy shelly nelly wally
    reply supply apply rely imply comply multiply ply fly sly butterfly firefly dragonfly
    friendly unfriendly lonely lively likely unlikely elderly costly deadly cowardly orderly disorderly
    scholarly worldly otherworldly heavenly ghostly ghastly sickly surly burly curly woolly wooly wily
    unruly homely manly unmanly womanly motherly fatherly brotherly sisterly neighborly neighbourly
    kingly queenly princely beastly bubbly crinkly prickly wobbly cuddly smelly chilly hilly frilly
    measly stately timely untimely lowly comely shapely leisurely gnarly pearly oily wiry
    daily weekly monthly yearly hourly nightly quarterly
    assembly anomaly monopoly melancholy homily
    dally sully gangly grisly gristly bristly prickly steely saintly sprightly
    unsightly unseemly seemly godly ungodly earthly unearthly courtly lordly miserly
    niggardly dastardly portly
    """
)

# Verbs that normally introduce or follow a line of dialogue.
TAG_VERBS: frozenset[str] = _set(
    """
    said says say asked asks ask replied replies reply answered answers whispered whispers shouted shouts
    yelled yells called calls cried cries murmured murmurs muttered mutters added adds continued
    continues told tells repeated repeats screamed screams
    """
)

# Speech verbs that call attention to themselves, and actions that cannot speak a line.
SAID_BOOKISMS: frozenset[str] = _set(
    """
    opined hissed chortled snarled growled exclaimed retorted interjected queried ejaculated expostulated
    intoned purred barked spat sneered snapped quipped chirped grunted bellowed hollered mused pondered
    declared stated uttered articulated conjectured surmised averred asserted remarked vociferated
    chimed cooed gushed giggled chuckled laughed smiled grinned nodded shrugged sighed smirked snorted
    scoffed huffed admonished rejoined inquired enquired chided scolded beamed frowned winked breathed
    """
)

# Words that put a character's perception between the reader and the thing perceived.
FILTER_WORDS: frozenset[str] = _set(
    """
    saw see sees heard hear hears felt feel feels noticed notice notices realized realised realize realise
    realizes realises realizing realising knew wondered wonders wondering watched watches watching
    """
)

# Two-word filter phrases ("seemed to", "began to").
FILTER_PHRASES: tuple[str, ...] = (
    "seemed to", "seems to", "began to", "begins to", "started to", "starts to", "could see", "could hear",
    "could feel", "could tell", "decided to",
)

# After "felt"/"feel", these introduce a concrete sensation ("felt the rough bark"), a weaker signal.
DETERMINERS: frozenset[str] = _set(
    "the a an his her its my their our your this that these those some each every"
)

# Verbs that report an emotional state instead of showing it.
TELLING_VERBS: frozenset[str] = _set(
    "was were is am are felt feel feels feeling seemed seems looked looks grew grows became become becomes"
)

INTENSIFIERS: frozenset[str] = _set(
    """
    so very really quite incredibly extremely utterly deeply completely too suddenly rather somewhat
    terribly truly totally absolutely increasingly strangely oddly overwhelmingly more most
    """
)

EMOTIONS: frozenset[str] = _set(
    """
    angry sad happy afraid scared nervous anxious excited furious terrified jealous lonely depressed upset
    worried frightened ashamed embarrassed guilty hopeful hopeless miserable elated overjoyed confused
    frustrated annoyed irritated disappointed relieved proud bored surprised shocked horrified content glad
    joyful grateful heartbroken devastated panicked uneasy tense calm determined enraged livid giddy
    melancholic sorrowful gleeful fearful apprehensive distraught desperate helpless resentful bitter
    thrilled delighted amused curious nostalgic hurt betrayed humiliated insecure overwhelmed stressed
    """
)

# Forms of "to be" that introduce a passive verb phrase.
BE_FORMS: frozenset[str] = _set("am is are was were be been being")

# Irregular past participles (regular ones end in -ed).
IRREGULAR_PARTICIPLES: frozenset[str] = _set(
    """
    known seen taken given made done found held told sold built brought bought caught taught thought
    written driven broken chosen spoken stolen forgotten hidden beaten bitten eaten torn worn sworn thrown
    shown drawn grown blown flown left kept lost met paid sent spent struck hung shot put set cut hit hurt
    led fed bound wound ground shaken woken forbidden frozen ridden sunk sung swung spun stung stuck laid
    lit dealt meant heard understood forgiven sewn sown shorn slain slung split spread swept won withdrawn
    woven bent burnt dug fought sought shut slit overcome overtaken overheard mistaken undertaken begun
    """
)

# Words ending in -ed after "was" that describe a state, not an action done to someone.
STATE_WORDS: frozenset[str] = _set(
    """
    tired annoyed excited interested bored scared worried married surprised confused pleased amazed
    ashamed embarrassed exhausted frightened terrified disappointed relieved satisfied shocked stunned
    thrilled delighted depressed determined devoted convinced concerned drunk naked wicked sacred rugged
    beloved crooked jagged ragged wretched aged learned dogged blessed cursed supposed used related
    involved dressed prepared finished done gone closed opened locked crowded packed armed aimed based
    red bed shed need seed speed deed weed breed indeed greed bleed freed agreed exceed proceed succeed
    hundred kindred sacred scared fed-up tied
    """
)

# Narration fillers: words that soften or pad a sentence without adding meaning.
CRUTCH_WORDS: frozenset[str] = _set(
    """
    very really just quite suddenly somehow actually basically literally totally definitely certainly
    somewhat
    """
)

CRUTCH_PHRASES: tuple[str, ...] = ("kind of", "sort of", "all of a sudden", "a bit")

# Common words of five or more letters whose nearby repetition is unremarkable.
REPETITION_STOPWORDS: frozenset[str] = _set(
    """
    about above across after again against along already although always among another anyone anything
    around because before behind being below beneath beside besides between beyond cannot could couldn
    doesn during either enough every everyone everything first from going gonna maybe might myself
    nothing other others ourselves perhaps rather right seemed should shouldn since someone something
    still their theirs them themselves there these thing things those though through toward towards under
    until upon where whether which while whole would wouldn yourself years little think thought words
    again never without looked looking moment another hands other himself herself itself
    """
) | TAG_VERBS

# Sensory vocabulary: a sentence dense in these words is likely concrete imagery.
SENSORY_WORDS: frozenset[str] = _set(
    """
    red blue green yellow black white grey gray silver gold golden amber crimson scarlet pale dark
    bright dim shadow shadows light glow glowed glint gleam flicker flickered smoke ash dust rust mud
    salt sweat blood bone bones skin hair teeth breath cold warm hot wet damp dry rough smooth sharp
    soft hard sticky slick brittle cracked frozen bitter sour sweet smell smelled scent stink stench
    taste tasted hum hummed buzz buzzed creak creaked crackle crackled rattle rattled hiss thud thump
    clatter roar whisper rain snow wind fog mist frost ice stone glass iron wood bark leaves grass moss
    river sea waves tide sand shore window door floor ceiling wall walls lamp candle fire flame flames
    embers coffee bread steam kitchen linen velvet wool cloth paper ink
    """
)

# Vivid action verbs (past tense) that carry manner on their own.
VIVID_VERBS: frozenset[str] = _set(
    """
    slammed shattered clawed crept drifted lunged staggered stumbled scrambled hurled flung snatched
    gripped clutched seized yanked tugged shoved dragged hauled slumped sagged hunched crouched
    sprinted bolted darted lurched trudged shuffled plodded limped swayed trembled shuddered flinched
    winced gasped choked spat scraped scratched splintered crumpled crumbled buckled rattled clattered
    hissed hammered pounded throbbed seeped trickled spilled gushed swirled flickered blazed smouldered
    smoldered glittered shimmered glinted scorched singed smeared tangled twisted coiled curled
    snapped cracked split sliced gouged
    """
)

# Openings that editors see too often (matched against the first words of the first sentence).
CLICHE_OPENINGS: tuple[tuple[str, str], ...] = (
    (r"\b(?:woke|wakes|awoke|awake|waking)\b", "waking up"),
    (r"\balarm(?:\s+clock)?\b", "an alarm going off"),
    (r"\bdark and stormy\b", "a dark and stormy night"),
    (r"\bonce upon a time\b", "once upon a time"),
    (r"\bmy name is\b", "the narrator giving their name"),
    (r"\b(?:dictionary|webster'?s?)\b.*\bdefin", "a dictionary definition"),
    (r"\bmirror\b", "a look in the mirror"),
    (r"^(?:the )?(?:sun|rain|wind|snow|weather)\b", "the weather"),
    (r"^it was\b", "a plain 'it was'"),
)

# Abbreviations whose trailing period does not end a sentence.
ABBREVIATIONS: frozenset[str] = _set(
    "mr mrs ms dr st jr sr vs etc prof capt gen col lt sgt mt no e.g i.e a.m p.m fig"
)

# Bookisms that are actions, not ways of speaking: nobody can smile a sentence.
NON_SPEECH_TAGS: frozenset[str] = _set(
    "laughed smiled grinned nodded shrugged sighed smirked snorted scoffed huffed beamed frowned winked "
    "giggled chuckled breathed"
)

# Words a quoted fragment should not end on: it would read as cut off mid-thought.
DANGLING: frozenset[str] = _set(
    "a an the and or but of to in on at for with from by as that which who whose than so if my his her "
    "their our your its other into onto over under through across toward towards upon about like "
    "is are was were be been being has have had"
)

# Words a quoted fragment should not start on when it could start at the word that matters.
WEAK_STARTS: frozenset[str] = _set("and or but so then of to with that which")

# Pronouns that can stand as the subject right before a verb.
SUBJECT_PRONOUNS: frozenset[str] = _set("he she they it i we you who")

# "like" as a verb or a filler, not a comparison: "I like it", "would like to", "like that".
NOT_SIMILE_BEFORE: frozenset[str] = _set("i you we they would 'd not don't didn't do does did")
NOT_SIMILE_AFTER: frozenset[str] = _set("to it that this me him her them you us i he she they we what so")
