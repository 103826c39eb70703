"""Near-duplicate critiques: MinHash signatures of word shingles and a banded LSH index over them.

Comparing every critique with every kept one is quadratic, and exact-Jaccard candidate filters degrade
on templated critiques, whose shingles are shared by many. A MinHash signature is a fixed 256 bytes per
critique whatever its length; the fraction of equal values between two signatures estimates the Jaccard
similarity of their shingle sets, and locality-sensitive hashing (LSH) of signature bands finds candidate
pairs in time linear in the number of critiques.

Signatures are one-permutation MinHash (Li, Owen & Zhang 2012): each shingle is hashed once with
blake2b, the hash picks one of 64 bins and the bin keeps its smallest rank; an empty bin borrows the rank
of the first non-empty bin along a fixed pseudo-random probe sequence ("optimal densification",
Shrivastava 2017), which keeps P(two signatures agree in a bin) = Jaccard, with about the variance of 64
independent hashes. One hash per shingle instead of 64 makes a signature several times cheaper in pure
Python; blake2b (not `hash()`, which is salted per process) makes it the same in every process, so
signatures can be computed in shards, stored, and compared later.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata
from collections.abc import Iterator

DEFAULT_SIMILARITY = 0.8
DEFAULT_SHINGLE_WORDS = 3
SIGNATURE_VALUES = 64
SIGNATURE_BYTES = SIGNATURE_VALUES * 4  # 64 x little-endian uint32
BANDS = 16
ROWS = SIGNATURE_VALUES // BANDS  # 4 values per band

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_PACK = struct.Struct(f"<{SIGNATURE_VALUES}I")
_PROBE_SEED = b"coach-minhash-probe"
_EMPTY = 0xFFFFFFFF  # every value of the signature of a critique with no words
_UNSET = 1 << 32  # larger than any rank
# Band keys are folded below 2**30, the smallest Python int object (28 bytes); a folded collision
# only adds a candidate, which the signature comparison then rejects.
_BAND_KEY_MODULUS = (1 << 30) - 1


# -- text -------------------------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return _WORD.findall(folded)


def story_fingerprint(text: str) -> str:
    """Equal for the same story posted twice (case, punctuation, quotes and spacing ignored)."""
    return hashlib.sha256(" ".join(_words(text)).encode("utf-8")).hexdigest()


def shingles(text: str, size: int = DEFAULT_SHINGLE_WORDS) -> frozenset[str]:
    words = _words(text)
    if len(words) <= size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


# -- signatures -------------------------------------------------------------------------------------------

def critique_signature(text: str, *, shingle_words: int = DEFAULT_SHINGLE_WORDS) -> bytes:
    """The MinHash signature of a critique's word shingles: 64 uint32 values, 256 bytes, stable everywhere."""
    ranks = [_UNSET] * SIGNATURE_VALUES
    for shingle in shingles(text, shingle_words):
        value = int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "little")
        slot, rank = value % SIGNATURE_VALUES, value >> 32  # independent bits of one hash
        if rank < ranks[slot]:
            ranks[slot] = rank
    if all(rank == _UNSET for rank in ranks):
        return _PACK.pack(*[_EMPTY] * SIGNATURE_VALUES)  # no words: equal only to another empty critique
    filled = list(ranks)
    for slot, rank in enumerate(ranks):
        if rank == _UNSET:
            filled[slot] = ranks[next(s for s in _probes(slot) if ranks[s] != _UNSET)]
    return _PACK.pack(*filled)


def _probe_stream(slot: int, length: int) -> bytes:
    """`length` probes of a bin, one byte each (256 is a multiple of 64, so `byte % 64` is uniform);
    a longer stream starts with the shorter one."""
    stream = hashlib.shake_128(_PROBE_SEED + bytes([slot])).digest(length)
    return bytes(b % SIGNATURE_VALUES for b in stream)


# The first 256 probes of every bin, computed once: when 10 of the 64 bins are filled, an empty bin runs
# past them with probability (54/64)^256 < 1e-18; only a critique of a few words may need more.
_FIRST_PROBES = tuple(_probe_stream(slot, 256) for slot in range(SIGNATURE_VALUES))


def _probes(slot: int) -> Iterator[int]:
    """The bins an empty bin borrows from, in order: the same sequence for every critique, so two critiques
    agree in a borrowed bin exactly when they agree in the bin both borrowed from."""
    yield from _FIRST_PROBES[slot]
    length = len(_FIRST_PROBES[slot])
    while True:
        yield from _probe_stream(slot, length * 4)[length:]
        length *= 4


def _values(signature: bytes) -> tuple[int, ...]:
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"a critique signature is {SIGNATURE_BYTES} bytes, not {len(signature)}")
    return _PACK.unpack(signature)


def estimate_similarity(a: bytes, b: bytes) -> float:
    """The Jaccard similarity two signatures estimate: the fraction of their 64 values that agree."""
    return _agreeing(_values(a), _values(b)) / SIGNATURE_VALUES


def _agreeing(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(x == y for x, y in zip(a, b, strict=True))


def _band_keys(signature: bytes) -> list[int]:
    step = ROWS * 4
    return [int.from_bytes(signature[start:start + step], "little") % _BAND_KEY_MODULUS
            for start in range(0, SIGNATURE_BYTES, step)]


# -- the index --------------------------------------------------------------------------------------------

class NearDuplicateIndex:
    """Kept critiques, indexed so a new one finds the kept ones it nearly repeats.

    Why LSH: the 64 values are cut into 16 bands of 4; two critiques become candidates when any band
    is equal, so a new critique is compared only with the kept ones in its 16 buckets instead of with all
    of them. Two critiques of Jaccard similarity s share a band with probability 1 - (1 - s^4)^16, so
    at the default threshold 0.8 a true pair is missed 0.02% of the time (1.2% at 0.7, 0.0007% at 0.85),
    while pairs at s = 0.3 are compared only 12% of the time. A candidate is confirmed when the
    signatures' estimated similarity (agreeing values / 64) reaches the threshold; the estimate has a
    standard error of about sqrt(s(1 - s) / 64), 0.05 at s = 0.8, so pairs near the threshold fall either
    side of it, the documented price of a fixed-size signature.

    The caller adds items in story-id order; an item that duplicates a kept one is not indexed, so later
    items are compared with kept critiques only. Memory per kept item: its 256-byte signature in one
    shared buffer, its id, and one 60-bit int key in each of 16 band dictionaries (about 1.5 KB in all).
    """

    def __init__(self, threshold: float = DEFAULT_SIMILARITY) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("the similarity threshold must be in (0, 1]")
        self.threshold = threshold
        # Agreeing values needed: the smallest count whose fraction reaches the threshold.
        self._needed = math.ceil(threshold * SIGNATURE_VALUES - 1e-9)
        self._ids: list[str] = []
        self._signatures = bytearray()
        # Per band: key -> position of the one kept item in that bucket, or a list when several share it.
        self._buckets: list[dict[int, int | list[int]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, story_id: str, signature: bytes) -> tuple[str, float] | None:
        """(kept story id, estimated similarity) when the critique nearly repeats a kept one, else None
        (and the critique is kept). Among several matches: the most similar, then the smallest id."""
        values = _values(signature)
        keys = _band_keys(signature)
        candidates: set[int] = set()
        for bucket, key in zip(self._buckets, keys, strict=True):
            found = bucket.get(key)
            if isinstance(found, int):
                candidates.add(found)
            elif found is not None:
                candidates.update(found)
        best: tuple[int, str] | None = None  # (agreeing values, kept id)
        for position in candidates:
            start = position * SIGNATURE_BYTES
            agreeing = _agreeing(values, _PACK.unpack_from(self._signatures, start))
            if agreeing < self._needed:
                continue
            kept_id = self._ids[position]
            if best is None or agreeing > best[0] or (agreeing == best[0] and kept_id < best[1]):
                best = (agreeing, kept_id)
        if best is not None:
            return best[1], best[0] / SIGNATURE_VALUES
        self._keep(story_id, signature, keys)
        return None

    def _keep(self, story_id: str, signature: bytes, keys: list[int]) -> None:
        position = len(self._ids)  # one int object, shared by the 16 buckets that hold it
        self._ids.append(story_id)
        self._signatures += signature
        for bucket, key in zip(self._buckets, keys, strict=True):
            found = bucket.get(key)
            if found is None:
                bucket[key] = position
            elif isinstance(found, int):
                bucket[key] = [found, position]
            else:
                found.append(position)
