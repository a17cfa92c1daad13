"""Duplicate removal across all sources: the first occurrence is kept, later ones name it.

Exact duplicates compare a normalized hash; near duplicates compare MinHash signatures of word
shingles through an LSH index (datasketch), verified by the signatures' Jaccard estimate. The
index holds the kept records only, so a later near duplicate always names a kept record, and it
can be saved and passed to the next run: records indexed earlier count as earlier.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llm_assets.cleaning.normalize import dedup_key

DEFAULT_NEAR_DUP_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5
DEFAULT_NEAR_DUP_COLUMNS = ("text", "response")
MINHASH_SEED = 1
# datasketch's default permutation scheme since 2.0: h -> a*fmix32(h) + b mod 2^32.
_SCHEME = "affine32"
_WORD = re.compile(r"\w+")
# Shingles per block when hashing; bounds the (shingles x num_perm) matrix to ~32 MiB.
_BLOCK_SHINGLES = 1 << 16
# Fixed odd multipliers that mix the token hashes of a shingle position by position.
_POSITION_MULTIPLIERS = np.random.default_rng(20261122).integers(
    1, 1 << 63, size=64, dtype=np.uint64
) | np.uint64(1)


def mark_exact_duplicates(
    records: pd.DataFrame,
    first_of: dict[Hashable, str] | None = None,
    keys: Sequence[Hashable] | None = None,
) -> pd.Series:
    """For each record, '<source>/<record_id>' of the earlier record it repeats, else <NA>.

    `first_of` (content key -> first record) carries what earlier batches kept, and is updated;
    `keys` are the records' `dedup_key(text, response)` when already computed."""
    if keys is None:
        keys = [
            dedup_key(text, response)
            for text, response in zip(records["text"], records["response"], strict=True)
        ]
    if first_of is None:
        first_of = {}
    duplicate_of: list[str | None] = []
    for key, source, record_id in zip(keys, records["source"], records["record_id"], strict=True):
        if key in first_of:
            duplicate_of.append(first_of[key])
        else:
            first_of[key] = f"{source}/{record_id}"
            duplicate_of.append(None)
    return pd.Series(duplicate_of, index=records.index, dtype="string")


@functools.cache
def _lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's (bands, rows) for the threshold, memoized: it integrates numerically."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


class _BandTables:
    """LSH buckets in compact arrays: per band, sorted (band hash, position) arrays plus a small
    dict of recent insertions merged in now and then. About 12 bytes per record and band, where
    datasketch's in-memory storage takes a set per bucket (~300 bytes): a million kept records
    fit in ~100 MB instead of gigabytes."""

    MERGE_AT = 1 << 15

    def __init__(self, bands: int, rows: int) -> None:
        self.bands, self.rows = bands, rows
        self._multipliers = _POSITION_MULTIPLIERS[:rows]
        self.hashes = [np.empty(0, dtype=np.uint64) for _ in range(bands)]
        self.positions = [np.empty(0, dtype=np.int64) for _ in range(bands)]
        self.recent: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        self._recent_count = 0

    def band_hashes(self, signatures: np.ndarray) -> np.ndarray:
        """(records, bands) uint64 hashes of each band's rows of the (records, num_perm) input."""
        used = signatures[:, : self.bands * self.rows].astype(np.uint64)
        banded = used.reshape(len(signatures), self.bands, self.rows) * self._multipliers
        return banded.sum(axis=2, dtype=np.uint64)

    def build(self, signatures: np.ndarray) -> None:
        hashes = self.band_hashes(signatures)
        for band in range(self.bands):
            order = np.argsort(hashes[:, band], kind="stable")
            self.hashes[band] = hashes[order, band]
            self.positions[band] = order.astype(np.int64)
        self.recent = [{} for _ in range(self.bands)]
        self._recent_count = 0

    def candidates(self, signature: np.ndarray) -> set[int]:
        found: set[int] = set()
        for band, value in enumerate(self.band_hashes(signature[None, :])[0]):
            sorted_hashes = self.hashes[band]
            left = int(np.searchsorted(sorted_hashes, value, side="left"))
            right = int(np.searchsorted(sorted_hashes, value, side="right"))
            found.update(self.positions[band][left:right].tolist())
            found.update(self.recent[band].get(int(value), ()))
        return found

    def insert(self, position: int, signature: np.ndarray) -> None:
        for band, value in enumerate(self.band_hashes(signature[None, :])[0]):
            self.recent[band].setdefault(int(value), []).append(position)
        self._recent_count += 1
        if self._recent_count >= self.MERGE_AT:
            self._merge()

    def _merge(self) -> None:
        for band in range(self.bands):
            pairs = [(h, p) for h, ps in self.recent[band].items() for p in ps]
            if not pairs:
                continue
            extra = np.array(pairs, dtype=np.uint64)
            hashes = np.concatenate([self.hashes[band], extra[:, 0]])
            positions = np.concatenate([self.positions[band], extra[:, 1].astype(np.int64)])
            order = np.argsort(hashes, kind="stable")
            self.hashes[band], self.positions[band] = hashes[order], positions[order]
        self.recent = [{} for _ in range(self.bands)]
        self._recent_count = 0


@dataclass
class NearDuplicateIndex:
    """The kept records' keys and MinHash signatures, in the order they were kept, with an LSH.

    Persist it with `save`/`load` (a NumPy .npz: keys, signatures, parameters) or pickle; the
    LSH is rebuilt from the signatures on first use, so it is never stored. Signatures live in
    one growing (records, num_perm) uint32 array: 512 bytes a record at 128 permutations.
    """

    threshold: float = DEFAULT_NEAR_DUP_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    seed: int = MINHASH_SEED
    keys: list[str] = field(default_factory=list)
    initial_signatures: InitVar[np.ndarray | None] = None
    # Content digest per key: a re-read record with unchanged content is not hashed again.
    digests: list[str] = field(default_factory=list, repr=False)
    _signatures: np.ndarray = field(init=False, repr=False, compare=False)
    _lsh: _BandTables | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self, initial_signatures: np.ndarray | None) -> None:
        if initial_signatures is None:
            initial_signatures = np.empty((0, self.num_perm), dtype=np.uint32)
        self._signatures = np.ascontiguousarray(initial_signatures, dtype=np.uint32)
        if len(self._signatures) != len(self.keys):
            raise ValueError(f"{len(self.keys)} keys but {len(self._signatures)} signatures")

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_signatures": self.signatures.copy(), "_lsh": None}

    @property
    def signatures(self) -> np.ndarray:
        """(len(self), num_perm) uint32 signatures of the kept records."""
        return self._signatures[: len(self.keys)]

    @property
    def rows(self) -> np.ndarray:
        """The signatures, one row per kept record (`rows[position]`)."""
        return self.signatures

    def lsh(self) -> _BandTables:
        """The banded LSH over every kept signature (built on first use), with datasketch's
        optimal (bands, rows) for the threshold."""
        if self._lsh is None:
            self._lsh = _BandTables(*_lsh_bands(self.threshold, self.num_perm))
            self._lsh.build(self.signatures)
        return self._lsh

    def candidates(self, signature: np.ndarray) -> list[int]:
        """Positions of kept signatures that share an LSH band with `signature`."""
        return sorted(self.lsh().candidates(signature))

    def add(self, key: str, signature: np.ndarray, digest: str = "") -> None:
        """Index a kept record."""
        position = len(self.keys)
        lsh = self.lsh()
        if position == len(self._signatures):
            grown = np.empty((max(1024, 2 * position), self.num_perm), dtype=np.uint32)
            grown[:position] = self._signatures[:position]
            self._signatures = grown
        self._signatures[position] = signature
        self.keys.append(key)
        self.digests.append(digest)
        lsh.insert(position, signature)

    def digest_by_key(self) -> dict[str, str]:
        return dict(zip(self.keys, self.digests or [""] * len(self.keys), strict=True))

    def keep_only(self, keys: set[str]) -> int:
        """Drop every indexed record whose key is not in `keys` (deleted at the source, forgotten,
        or filtered out this run); returns how many were dropped. The LSH is rebuilt lazily."""
        digests = self.digests or [""] * len(self.keys)
        kept = [i for i, key in enumerate(self.keys) if key in keys]
        dropped = len(self.keys) - len(kept)
        if dropped:
            self._signatures = self.signatures[kept].copy()
            self.keys = [self.keys[i] for i in kept]
            self.digests = [digests[i] for i in kept]
            self._lsh = None
        return dropped

    def save(self, path: str | Path) -> None:
        """Write keys, signatures and parameters to `path` (.npz)."""
        np.savez_compressed(
            path,
            keys=np.array(self.keys, dtype=str),
            digests=np.array(self.digests or [""] * len(self.keys), dtype=str),
            signatures=self.signatures,
            params=np.array([self.threshold, self.num_perm, self.shingle_size, self.seed]),
        )

    @classmethod
    def load(cls, path: str | Path) -> NearDuplicateIndex:
        """Read an index written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            threshold, num_perm, shingle_size, seed = data["params"].tolist()
            return cls(
                threshold=float(threshold),
                num_perm=int(num_perm),
                shingle_size=int(shingle_size),
                seed=int(seed),
                keys=[str(key) for key in data["keys"]],
                initial_signatures=data["signatures"].astype(np.uint32),
                digests=[str(d) for d in data["digests"]] if "digests" in data else [],
            )


class _Vocabulary(dict[str, int]):
    """Word -> stable 64-bit hash, each distinct word hashed once."""

    def __missing__(self, token: str) -> int:
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        value = self[token] = int.from_bytes(digest, "little")
        return value


def _token_hashes(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the case-folded word tokens of all texts, concatenated, and each text's
    token count. Hashes are stable across processes (blake2b), computed once per distinct word."""
    vocabulary = _Vocabulary()
    hashes: list[int] = []
    lengths: list[int] = []
    for text in texts:
        tokens = _WORD.findall(text.casefold())
        hashes.extend(map(vocabulary.__getitem__, tokens))
        lengths.append(len(tokens))
    return np.array(hashes, dtype=np.uint64), np.array(lengths, dtype=np.int64)


def _fmix32(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def shingle_hashes(
    token_hashes: np.ndarray, lengths: np.ndarray, shingle_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every run of `shingle_size` tokens inside each text (a text shorter than
    that is one shingle), concatenated, and each text's shingle count."""
    if not 1 <= shingle_size <= len(_POSITION_MULTIPLIERS):
        raise ValueError(f"shingle_size must be in 1..{len(_POSITION_MULTIPLIERS)}")
    total = len(token_hashes)
    # Position-weighted sum over each window, with uint64 wrap-around.
    windows = max(total - shingle_size + 1, 0)
    combined = np.zeros(windows, dtype=np.uint64)
    for offset in range(shingle_size):
        combined += token_hashes[offset : offset + windows] * _POSITION_MULTIPLIERS[offset]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    counts = np.where(lengths >= shingle_size, lengths - shingle_size + 1, (lengths > 0) * 1)
    positions = np.concatenate(
        [np.arange(s, s + c) for s, c, n in zip(starts, counts, lengths, strict=True) if n]
        or [np.empty(0, dtype=np.int64)]
    ).astype(np.int64)
    short = (lengths > 0) & (lengths < shingle_size)
    if short.any():
        # The window at a short text's start runs past it; recompute over the text alone.
        combined = np.concatenate([combined, np.zeros(int(short.sum()), dtype=np.uint64)])
        shingle_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for extra, text in enumerate(np.flatnonzero(short)):
            start, length = int(starts[text]), int(lengths[text])
            window = token_hashes[start : start + length] * _POSITION_MULTIPLIERS[:length]
            combined[windows + extra] = window.sum(dtype=np.uint64)
            positions[shingle_start[text]] = windows + extra
    selected = combined[positions]
    # Fold to 32 bits after a 64-bit avalanche (splitmix64 finalizer).
    selected = (selected ^ (selected >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    selected = (selected ^ (selected >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    selected = selected ^ (selected >> np.uint64(31))
    return (selected >> np.uint64(32)).astype(np.uint32), counts


def minhash_signatures(
    texts: Sequence[str], num_perm: int = DEFAULT_NUM_PERM, shingle_size: int = DEFAULT_SHINGLE_SIZE
) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash signatures of the texts' word shingles.

    Equal to datasketch's `MinHash(num_perm, seed=1)` (scheme 'affine32') updated with the same
    32-bit shingle hashes; computed for many texts at once with NumPy. A text without words gets
    the empty signature (all 0xFFFFFFFF).
    """
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=_SCHEME).permutations
    signatures = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    tokens, lengths = _token_hashes(texts)
    shingles, counts = shingle_hashes(tokens, lengths, shingle_size)
    mixed = _fmix32(shingles)
    ends = np.cumsum(counts)
    text = 0
    while text < len(texts):
        # A block of whole texts holding at most _BLOCK_SHINGLES shingles (or one large text).
        first_shingle = int(ends[text] - counts[text])
        last = int(np.searchsorted(ends, first_shingle + _BLOCK_SHINGLES, side="right"))
        last = max(last, text + 1)
        block = slice(text, last)
        block_counts = counts[block]
        block_shingles = mixed[first_shingle : int(ends[last - 1])]
        if len(block_shingles):
            # (num_perm, shingles) keeps each text's shingles contiguous: a fast reduceat.
            permuted = np.multiply.outer(a, block_shingles)
            permuted += b[:, None]
            nonempty = block_counts > 0
            offsets = (np.cumsum(block_counts) - block_counts)[nonempty]
            minima = np.minimum.reduceat(permuted, offsets, axis=1)
            signatures[np.arange(text, last)[nonempty]] = minima.T
        text = last
    return signatures


def near_duplicate_texts(records: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The text near-dedup compares for each record: the given columns joined, missing as empty."""
    parts = [
        records[column].map(lambda value: value if isinstance(value, str) else "")
        for column in columns
    ]
    return ["\n".join(values) for values in zip(*parts, strict=True)]


def check_index_settings(
    index: NearDuplicateIndex, threshold: float, num_perm: int, shingle_size: int
) -> None:
    if (index.threshold, index.num_perm, index.shingle_size) != (
        threshold,
        num_perm,
        shingle_size,
    ):
        raise ValueError(
            "the near-duplicate index was built with threshold="
            f"{index.threshold}, num_perm={index.num_perm}, shingle_size={index.shingle_size} "
            f"but this run asks for {threshold}, {num_perm}, {shingle_size}: use the same "
            "settings, or start a new index (delete the saved one) to re-index everything"
        )


def record_keys(records: pd.DataFrame) -> list[str]:
    """'<source>/<record_id>' of each record: how the ledger and the index name records."""
    return (records["source"].astype(str) + "/" + records["record_id"].astype(str)).tolist()


def signatures_to_hash(
    records: pd.DataFrame,
    digests: Sequence[str],
    indexed: dict[str, str],
    num_perm: int,
    shingle_size: int,
    columns: Sequence[str] = DEFAULT_NEAR_DUP_COLUMNS,
) -> list[np.ndarray | None]:
    """MinHash signatures of the records, None for a record an earlier run indexed with the
    same content (`indexed`: key -> content digest): it is not hashed again."""
    known = [
        indexed.get(key) == digest
        for key, digest in zip(record_keys(records), digests, strict=True)
    ]
    new = [position for position, is_known in enumerate(known) if not is_known]
    computed = minhash_signatures(
        near_duplicate_texts(records.iloc[new], columns), num_perm, shingle_size
    )
    signatures: list[np.ndarray | None] = [None] * len(records)
    for position, signature in zip(new, computed, strict=True):
        signatures[position] = signature
    return signatures


def assign_near_duplicates(
    keys: Sequence[str],
    digests: Sequence[str],
    signatures: Sequence[np.ndarray | None],
    index: NearDuplicateIndex,
) -> list[str | None]:
    """For each record in order, the key of the kept record it nearly repeats, else None (and it
    is indexed as kept). A None signature is a record already in `index` with this content."""
    empty = np.iinfo(np.uint32).max
    duplicate_of: list[str | None] = []
    for key, digest, signature in zip(keys, digests, signatures, strict=True):
        if signature is None or (signature == empty).all():
            duplicate_of.append(None)
            continue
        best: tuple[float, int] | None = None
        for candidate in index.candidates(signature):
            similarity = float(np.mean(index.rows[candidate] == signature))
            if similarity >= index.threshold and (best is None or (similarity, -candidate) > best):
                best = (similarity, -candidate)
        if best is None:
            index.add(key, signature, digest)
            duplicate_of.append(None)
        else:
            duplicate_of.append(index.keys[-best[1]])
    return duplicate_of


def forget_changed(index: NearDuplicateIndex, keys: Sequence[str], digests: Sequence[str]) -> int:
    """Drop indexed records whose content changed since they were indexed (they are compared
    afresh); returns how many."""
    indexed = index.digest_by_key()
    changed = {
        key
        for key, digest in zip(keys, digests, strict=True)
        if key in indexed and indexed[key] != digest
    }
    return index.keep_only(set(index.keys) - changed) if changed else 0


def mark_near_duplicates(
    records: pd.DataFrame,
    threshold: float = DEFAULT_NEAR_DUP_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    shingle_size: int = DEFAULT_SHINGLE_SIZE,
    index: NearDuplicateIndex | None = None,
    columns: Sequence[str] = DEFAULT_NEAR_DUP_COLUMNS,
) -> tuple[pd.Series, NearDuplicateIndex]:
    """For each record, '<source>/<record_id>' of the kept record it nearly repeats, else <NA>.

    Records are taken in order; a record whose estimated Jaccard similarity of word shingles
    (`shingle_size` words, `columns` joined) to a kept record is >= `threshold` is a duplicate of
    the most similar one (the earliest on ties), otherwise it is kept and indexed. Records in
    `index` (from earlier runs) count as earlier. Returns the marks and the updated index (the
    one passed in, extended in place, or a new one). Texts without words are never marked.
    """
    if index is None:
        index = NearDuplicateIndex(threshold, num_perm, shingle_size)
    check_index_settings(index, threshold, num_perm, shingle_size)
    keys = record_keys(records)
    digests = [dedup_key(*values) for values in zip(*(records[c] for c in columns), strict=True)]
    # A record indexed by an earlier run with the same content is its own entry: keep it, and
    # do not hash it again. A record whose content changed is indexed afresh.
    forget_changed(index, keys, digests)
    signatures = signatures_to_hash(
        records, digests, index.digest_by_key(), num_perm, shingle_size, columns
    )
    duplicate_of = assign_near_duplicates(keys, digests, signatures, index)
    return pd.Series(duplicate_of, index=records.index, dtype="string"), index
