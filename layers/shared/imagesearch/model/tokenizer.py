"""open_clip's SimpleTokenizer without torch: the same cleaning and splitting in Python, the BPE in Rust.

open_clip cleans the text (ftfy, HTML unescape twice, whitespace collapse, lower case), splits it with one
regular expression, maps each piece to byte-level characters and applies CLIP's BPE merges with a "</w>"
end-of-word marker. Cleaning and splitting stay in Python with the same `ftfy` and `regex` calls, because
Rust's Unicode tables and case folding differ in corner cases; Hugging Face `tokenizers` does the per-word
byte mapping and BPE, where it matches exactly. The BPE table is the file written at export time
(`build_bpe_tokenizer`), so the runtime never needs open_clip. Parity is tested on hundreds of strings.
"""

from __future__ import annotations

import gzip
import html
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import ftfy
import numpy as np
import regex
from tokenizers import Tokenizer, models, pre_tokenizers

from imagesearch.model.manifest import CleanMode

SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
_SPECIAL_TOKENS = (SOT_TOKEN, EOT_TOKEN)

# open_clip/tokenizer.py, SimpleTokenizer.pat; special tokens typed by a user become special ids there too.
_PATTERN = regex.compile(
    "|".join(_SPECIAL_TOKENS) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _basic_clean(text: str) -> str:
    text = ftfy.fix_text(text)
    return html.unescape(html.unescape(text)).strip()


def _whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


def _clean_lower(text: str) -> str:
    return _whitespace_clean(_basic_clean(text)).lower()


def _clean_whitespace(text: str) -> str:
    return _whitespace_clean(_basic_clean(text))


def _clean_canonicalize(text: str) -> str:
    text = _basic_clean(text).replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split()).strip()


CLEAN_FUNCTIONS: dict[CleanMode, Callable[[str], str]] = {
    "lower": _clean_lower,
    "whitespace": _clean_whitespace,
    "canonicalize": _clean_canonicalize,
}


def build_bpe_tokenizer(merges_file: Path) -> Tokenizer:
    """A `tokenizers` BPE model equal to SimpleTokenizer's, from open_clip's bpe_simple_vocab_16e6.txt.gz."""
    lines = gzip.open(merges_file).read().decode("utf-8").split("\n")
    # SimpleTokenizer keeps merges 1..48894: with 512 byte symbols and 2 specials that makes 49408 ids
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_symbols = list(_bytes_to_unicode().values())
    vocab_list = byte_symbols + [s + "</w>" for s in byte_symbols] + ["".join(m) for m in merges]
    vocab_list += list(_SPECIAL_TOKENS)
    vocab = {token: i for i, token in enumerate(vocab_list)}
    pairs = [(m[0], m[1]) for m in merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs, end_of_word_suffix="</w>"))
    # Splitting is done in Python (see module docstring); this only maps each word to byte symbols.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (copied from open_clip)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


class ClipTokenizer:
    """Text -> int64 token ids (n, context_length): start token, BPE ids, end token, zero padding."""

    def __init__(self, tokenizer_file: Path, *, context_length: int, clean: str = "lower") -> None:
        if clean not in CLEAN_FUNCTIONS:
            raise ValueError(f"unknown tokenizer clean mode {clean!r}")
        self._bpe = Tokenizer.from_file(str(tokenizer_file))
        self._clean = CLEAN_FUNCTIONS[cast(CleanMode, clean)]
        self.context_length = context_length
        special_ids = [self._bpe.token_to_id(token) for token in _SPECIAL_TOKENS]
        if any(i is None for i in special_ids):
            raise ValueError(f"{tokenizer_file} lacks the CLIP start/end tokens")
        self._special_ids = dict(
            zip(_SPECIAL_TOKENS, [int(i) for i in special_ids if i is not None], strict=True)
        )
        self.sot_token_id = self._special_ids[SOT_TOKEN]
        self.eot_token_id = self._special_ids[EOT_TOKEN]

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without start/end tokens (SimpleTokenizer.encode)."""
        return self._encode_many([text])[0]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> np.ndarray:
        """Token ids as open_clip's tokenizer returns them, as an int64 array (n, context_length)."""
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        result = np.zeros((len(texts), length), dtype=np.int64)
        for row, ids in enumerate(self._encode_many(texts)):
            tokens = [self.sot_token_id, *ids, self.eot_token_id]
            if len(tokens) > length:
                # open_clip truncates and overwrites the last kept id with the end token
                tokens = tokens[:length]
                tokens[-1] = self.eot_token_id
            result[row, : len(tokens)] = tokens
        return result

    def _encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        # Each text becomes runs of ordinary words separated by special tokens; all runs go to Rust at once.
        runs: list[list[str]] = []
        layouts: list[list[int | str]] = []  # per text: a run index, or a special token
        for text in texts:
            layout: list[int | str] = []
            current: list[str] = []
            for word in _PATTERN.findall(self._clean(text)):
                if word in self._special_ids:
                    if current:
                        layout.append(len(runs))
                        runs.append(current)
                        current = []
                    layout.append(word)
                else:
                    current.append(word)
            if current:
                layout.append(len(runs))
                runs.append(current)
            layouts.append(layout)
        encoded = self._bpe.encode_batch(runs, is_pretokenized=True, add_special_tokens=False) if runs else []
        out: list[list[int]] = []
        for layout in layouts:
            ids: list[int] = []
            for part in layout:
                if isinstance(part, str):
                    ids.append(self._special_ids[part])
                else:
                    ids.extend(encoded[part].ids)
            out.append(ids)
        return out


def trimmed_length(ids: np.ndarray) -> int:
    """Columns of token ids (n, context_length) that hold every row's tokens up to its end-of-text token,
    the highest id of a row (as open_clip pools): what an unpadded causal text tower needs."""
    return int(ids.argmax(axis=1).max()) + 1 if ids.size else 1
