"""An in-repo English sentence grammar for the synthetic corpus (no external text).

Twelve sentence templates with word lists give short (6-10 words, about 1.5-4 s of
speech), natural-ish sentences such as "Bob put the big blue box behind the barn." or
the GRID-like "Place red by F nine again.". The word lists favour sounds that move the
lips visibly: bilabials (b, p, m), labiodentals (f, v), rounded vowels (oo, oh, ow)
and open vowels (a, ah).

Every template is built so that two different slot choices never give the same text
and no two templates can give the same text (each has its own fixed words or word
order), so the number of distinct sentences is exactly the sum over templates of
the product of the slot list sizes (:meth:`SentenceGrammar.capacity`).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from avse.errors import InputError

_NAMES_A = ("Bob", "Pam", "Mike", "Fiona", "Paul", "Molly", "Victor", "Bella",
            "Peter", "Maya", "Phil", "Vera", "Bruno", "Mabel", "Owen", "Ava")
_NAMES_B = ("Ben", "Polly", "Mark", "Martha", "Oliver", "Rosa", "Tom", "Wendy",
            "Simon", "Laura", "Frank", "Nora", "Hugo", "Emma", "Morgan", "Bernard")
_NAMES = _NAMES_A + _NAMES_B
_RELATIVES = ("mother", "father", "brother", "sister", "uncle", "aunt", "neighbour", "boss",
              "friend", "cousin", "grandma", "grandpa", "teacher", "doctor", "plumber", "barber")
_ADJ = ("big", "small", "old", "new", "warm", "soft", "round", "bumpy", "heavy", "smooth",
        "tiny", "broken", "shiny", "wooden", "empty", "huge", "cheap", "fancy", "woolly",
        "polished")
_COLOURS = ("blue", "brown", "purple", "pink", "white", "black", "maroon", "violet",
            "orange", "yellow", "green", "grey", "red", "olive", "golden", "silver")
_NOUNS = (("box", "boxes"), ("map", "maps"), ("ball", "balls"), ("boat", "boats"),
          ("book", "books"), ("bag", "bags"), ("bowl", "bowls"), ("spoon", "spoons"),
          ("rope", "ropes"), ("cup", "cups"), ("lamp", "lamps"), ("pipe", "pipes"),
          ("mop", "mops"), ("vase", "vases"), ("fork", "forks"), ("coat", "coats"),
          ("bottle", "bottles"), ("pot", "pots"), ("basket", "baskets"), ("drum", "drums"),
          ("whistle", "whistles"), ("mirror", "mirrors"), ("pillow", "pillows"),
          ("blanket", "blankets"), ("umbrella", "umbrellas"), ("broom", "brooms"),
          ("puppet", "puppets"), ("phone", "phones"), ("scarf", "scarves"),
          ("knife", "knives"), ("balloon", "balloons"), ("shovel", "shovels"))
_NOUN_SG = tuple(s for s, _ in _NOUNS)
_NOUN_PL = tuple(p for _, p in _NOUNS)
_FOOD_ADJ = ("fresh", "ripe", "sweet", "sour", "big", "small", "warm", "baked", "frozen",
             "fine", "plump", "soft")
_FOODS = ("plums", "apples", "potatoes", "muffins", "bananas", "peppers", "mangoes", "beans",
          "olives", "pumpkins", "melons", "biscuits", "waffles", "noodles", "mushrooms",
          "peaches")
_V_PAST = ("put", "moved", "found", "painted", "dropped", "wrapped", "brought", "packed",
           "polished", "fixed", "opened", "carried", "pushed", "pulled", "washed", "borrowed",
           "bought", "hid", "left", "placed")
_V_BASE = ("move", "find", "paint", "drop", "wrap", "bring", "pack", "polish", "fix", "open",
           "carry", "push", "pull", "wash", "borrow", "buy", "hide", "leave", "place", "put")
_PREP = ("in", "on", "under", "behind", "beside", "near", "inside", "below")
_PLACES = ("barn", "park", "pool", "cupboard", "garage", "bathroom", "market", "office",
           "museum", "van", "tub", "wardrobe", "porch", "bench", "bed", "sofa", "fountain",
           "bridge", "window", "oven", "piano", "table", "shelf", "mailbox")
_TIMES = ("on Monday", "on Friday", "this morning", "by noon", "at four", "before dawn",
          "every evening", "last week", "in May", "at midnight", "tomorrow", "yesterday",
          "on Thursday", "after lunch", "before supper", "next summer")
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "fifteen", "twenty", "forty", "fifty", "ninety")
_ANIMALS = ("owl", "fox", "moose", "puppy", "mouse", "bat", "beaver", "bumblebee", "pony",
            "goat", "wolf", "frog", "monkey", "pigeon", "buffalo", "mole")
_ANIMAL_VERBS = ("jumped", "ran", "flew", "walked", "hopped", "crawled", "rolled", "wandered",
                 "bounced", "moved", "paused", "wobbled")
_PATHS = ("across", "over", "into", "past", "around", "through", "along", "toward")
_SCENE_ADJ = ("foggy", "muddy", "windy", "quiet", "frozen", "sunny", "busy", "old", "empty",
              "dark")
_SCENES = ("moor", "meadow", "bridge", "pond", "road", "farm", "harbour", "valley", "forest",
           "field", "beach", "mountain")
_TRAVEL = ("walked", "drove", "rode", "flew", "went", "moved", "hurried", "wandered")
_DESTINATIONS = ("market", "beach", "museum", "office", "farm", "library", "harbour", "bakery",
                 "village", "palace", "zoo", "hospital", "airport", "pub", "bank", "opera")
_ARRIVES = ("arrives", "leaves", "wakes up", "comes home", "gets back", "falls asleep",
            "phones", "moves out")
# GRID-like commands (Cooke et al. 2006 style): command colour preposition letter digit adverb
_G_CMD = ("bin", "lay", "place", "set", "put", "move")
_G_COLOUR = ("blue", "green", "red", "white", "pink", "brown", "black", "grey")
_G_PREP = ("at", "by", "in", "with")
_G_LETTER = tuple("BCDEFGHJKLMNOPQRSTUVXYZ")  # no A, I (read as words) and no W
_G_DIGIT = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_G_ADVERB = ("again", "now", "please", "soon")

# (pattern, slot lists); ``{}`` fields are filled in order
TEMPLATES: Tuple[Tuple[str, Tuple[Sequence[str], ...]], ...] = (
    ("{} {} the {} {} {} {} the {}.", (_NAMES, _V_PAST, _ADJ, _COLOURS, _NOUN_SG, _PREP, _PLACES)),
    ("Please {} the {} {} {} the {}.", (_V_BASE, _COLOURS, _NOUN_SG, _PREP, _PLACES)),
    ("{} bought {} {} {} {}.", (_NAMES, _NUMBERS, _FOOD_ADJ, _FOODS, _TIMES)),
    ("My {} {} the {} {} {}.", (_RELATIVES, _V_PAST, _ADJ, _NOUN_SG, _TIMES)),
    ("Why did {} {} the {} {} {}?", (_NAMES, _V_BASE, _COLOURS, _NOUN_SG, _TIMES)),
    ("{} and {} {} {} {} {} the {}.", (_NAMES_A, _NAMES_B, _V_PAST, _NUMBERS, _NOUN_PL, _PREP,
                                      _PLACES)),
    ("The {} {} {} the {} {}.", (_ANIMALS, _ANIMAL_VERBS, _PATHS, _SCENE_ADJ, _SCENES)),
    ("{} {} {} {} {} {}.", (_G_CMD, _G_COLOUR, _G_PREP, _G_LETTER, _G_DIGIT, _G_ADVERB)),
    ("Would you {} {} {} {} for {}?", (_V_BASE, _NUMBERS, _COLOURS, _NOUN_PL, _NAMES)),
    ("{} {} to the {} with my {} {}.", (_NAMES, _TRAVEL, _DESTINATIONS, _ADJ, _NOUN_SG)),
    ("{} {} {} are {} the {}.", (_NUMBERS, _COLOURS, _NOUN_PL, _PREP, _PLACES)),
    ("Remember to {} the {} before {} {}.", (_V_BASE, _NOUN_SG, _NAMES, _ARRIVES)),
)


def _template_size(slots: Tuple[Sequence[str], ...]) -> int:
    size = 1
    for s in slots:
        size *= len(s)
    return size


def _fill(pattern: str, words: Sequence[str]) -> str:
    text = pattern.format(*words)
    return text[0].upper() + text[1:]


def _distinct_ints(rng: np.random.Generator, size: int, k: int) -> List[int]:
    """``k`` distinct integers from ``range(size)`` in random order."""
    if k <= 0:
        return []
    if 3 * k >= size:
        return [int(i) for i in rng.permutation(size)[:k]]
    seen: Dict[int, None] = {}
    while len(seen) < k:
        for i in rng.integers(0, size, size=2 * (k - len(seen)) + 8):
            if len(seen) == k:
                break
            seen.setdefault(int(i), None)
    return list(seen)


class SentenceGrammar:
    """The fixed template grammar; see the module docstring."""

    templates = TEMPLATES

    @classmethod
    def template_sizes(cls) -> List[int]:
        """Number of distinct sentences of each template."""
        return [_template_size(slots) for _, slots in cls.templates]

    @classmethod
    def capacity(cls) -> int:
        """Number of distinct sentences the grammar can produce."""
        return sum(cls.template_sizes())

    def sentence(self, template: int, index: int) -> str:
        """Sentence number ``index`` (``0 <= index < template_sizes()[template]``)."""
        pattern, slots = self.templates[template]
        if not 0 <= index < _template_size(slots):
            raise InputError(f"sentence index {index} out of range for template {template}")
        words = []
        for s in reversed(slots):
            index, r = divmod(index, len(s))
            words.append(s[r])
        return _fill(pattern, words[::-1])

    def sample(self, rng: np.random.Generator) -> str:
        """A random sentence: a template uniformly, then each slot uniformly."""
        pattern, slots = self.templates[int(rng.integers(len(self.templates)))]
        return _fill(pattern, [s[int(rng.integers(len(s)))] for s in slots])


def _allocate(n: int, sizes: List[int], order: Sequence[int]) -> List[int]:
    """Split ``n`` as evenly as possible over templates without exceeding their sizes."""
    counts = [0] * len(sizes)
    left = n
    open_ = [t for t in order if sizes[t] > 0]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        nxt = []
        for j, t in enumerate(open_):
            want = share + (1 if j < extra else 0)
            take = min(want, sizes[t] - counts[t])
            counts[t] += take
            left -= take
            if counts[t] < sizes[t]:
                nxt.append(t)
        open_ = nxt
    return counts


def make_sentences(n: int, seed: int) -> List[str]:
    """``n`` distinct sentences, spread evenly over the templates, in random order.

    The result depends only on ``(n, seed)``.

    Raises:
        InputError: ``n`` negative or above :meth:`SentenceGrammar.capacity`.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"number of sentences must be a non-negative integer, got {n!r}")
    grammar = SentenceGrammar()
    cap = grammar.capacity()
    if n > cap:
        raise InputError(f"asked for {n} distinct sentences but the grammar can make only {cap}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5E47])
    sizes = grammar.template_sizes()
    counts = _allocate(int(n), sizes, [int(t) for t in rng.permutation(len(sizes))])
    out = []
    for t, k in enumerate(counts):
        out.extend(grammar.sentence(t, i) for i in _distinct_ints(rng, sizes[t], k))
    order = rng.permutation(len(out))
    return [out[i] for i in order]
