"""Tokenizer parity: the bundle's tokenizer gives open_clip's token ids, string for string."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fuzz import examples

from imagesearch.model.tokenizer import ClipTokenizer, build_bpe_tokenizer

open_clip_tokenizer = pytest.importorskip("open_clip.tokenizer")
pytestmark = pytest.mark.export

HANDWRITTEN = [
    "",
    " ",
    "a",
    "A photo of a cat.",
    "a photo of a dog",
    "The quick brown fox jumps over the lazy dog!",
    "naïve café résumé façade jalapeño",
    "Crème brûlée à la française",
    "Ærøskøbing, Åland, Ølstykke",
    "straße STRASSE ß ẞ",
    "İstanbul ıi IÍ",
    "ΣΊΣΥΦΟΣ σίσυφος",
    "Москва — столица России",
    "日本語のテキストと漢字",
    "中文字符和标点，。！",
    "한국어 텍스트입니다",
    "ภาษาไทย",
    "العربية من اليمين",
    "עברית",
    "हिन्दी देवनागरी",
    "emoji 🐶🐱🐭 and 👨‍👩‍👧‍👦 family",
    "flags 🇫🇷🇯🇵 skin 👍🏽",
    "🎉🎉🎉",
    "e\u0301 vs é (combining accent)",
    "ﬁnance ﬂow ﬀ ligatures",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３",
    "“curly quotes” and ‘single’ and „low“",
    "don't won't it's we're they've I'm you'll he'd",
    "DON'T WON'T IT'S",
    "&amp; &lt;b&gt; &quot;entities&quot; &#39;x&#39; &nbsp;",
    "&amp;amp; double escaped &amp;lt;",
    "<b>html</b> <br/> <a href='x'>link</a>",
    "x<start_of_text>y <end_of_text> z",
    "<START_OF_TEXT> upper specials",
    "tabs\tand\nnewlines\r\nand   runs     of spaces",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "zero\u200bwidth\u200djoiner",
    "control \x00 \x07 \x1f chars",
    "numbers 1234567890 3.14159 1e10 -42 +7",
    "①②③ ⅷ ½ ²³",
    "punctuation!!! ??? ... --- ___ *** ### @@@",
    "$100 €50 £20 ¥1000 ₹",
    "email@example.com https://example.com/path?q=1&b=2",
    "snake_case camelCase kebab-case PascalCase",
    "C++ C# F# .NET node.js",
    "mojibake: Ã©tÃ© â€œquotedâ€\x9d",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "'s 't 're 've 'm 'll 'd",
    "'ſ 'K long s and kelvin",
    "math ∑∫∂√∞≈≠≤≥ arrows →←↑↓",
    "box ┌─┐│└┘ blocks █▓▒░",
    "music ♩♪♫ cards ♠♥♦♣",
    "a" * 500,
    "word " * 100,
    "🐶" * 80,
    "日本" * 60,
    "The picture shows " + ", ".join(f"item {i}" for i in range(60)),
]

_WORDS = [
    "photo",
    "Dog",
    "café",
    "東京",
    "🐈",
    "naïve",
    "don't",
    "&amp;",
    "NYC",
    "42",
    "ﬁ",
    "“q”",
    "x-ray",
    "ÅÄÖ",
]
_SEPARATORS = [" ", "  ", "\t", "\n", ", ", "-", "", " . ", "\u3000"]


def _generated(count: int, *, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 12))]
        text = ""
        for word in words:
            text += word + rng.choice(_SEPARATORS)
        out.append(text.upper() if rng.random() < 0.2 else text)
    return out


STRINGS = (
    HANDWRITTEN
    + _generated(200)
    + ["".join(p) for p in itertools.permutations(["é", "🐶", "a", " ", "'s"], 3)]
)


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    build_bpe_tokenizer(Path(open_clip_tokenizer.default_bpe())).save(str(path))
    return path


@pytest.fixture(scope="session")
def ours(tokenizer_file: Path) -> ClipTokenizer:
    return ClipTokenizer(tokenizer_file, context_length=77)


@pytest.fixture(scope="session")
def theirs() -> object:
    return open_clip_tokenizer.SimpleTokenizer()


def test_at_least_200_strings() -> None:
    assert len(set(STRINGS)) >= 200


def test_token_ids_identical(ours: ClipTokenizer, theirs: object) -> None:
    expected = theirs(STRINGS).numpy()  # type: ignore[operator]
    actual = ours(STRINGS)
    assert actual.dtype == np.int64 and actual.shape == (len(STRINGS), 77)
    mismatches = [s for s, a, e in zip(STRINGS, actual, expected, strict=True) if not np.array_equal(a, e)]
    assert not mismatches


def test_encode_without_context_limit(ours: ClipTokenizer, theirs: object) -> None:
    for text in HANDWRITTEN:
        assert ours.encode(text) == theirs.encode(text), text  # type: ignore[attr-defined]


def test_truncation_keeps_end_token(ours: ClipTokenizer, theirs: object) -> None:
    long_text = "a very long caption " * 40
    for length in (4, 16, 77):
        ids = ours([long_text], context_length=length)
        assert ids.shape == (1, length)
        assert ids[0, 0] == ours.sot_token_id and ids[0, -1] == ours.eot_token_id
        np.testing.assert_array_equal(ids, theirs([long_text], context_length=length).numpy())  # type: ignore[operator]


@pytest.mark.parametrize("clean", ["whitespace", "canonicalize"])
def test_other_clean_modes(tokenizer_file: Path, clean: str) -> None:
    ours = ClipTokenizer(tokenizer_file, context_length=77, clean=clean)
    theirs = open_clip_tokenizer.SimpleTokenizer(clean=clean)
    np.testing.assert_array_equal(ours(HANDWRITTEN), theirs(HANDWRITTEN).numpy())


@settings(max_examples=examples(400), deadline=None)
@given(st.text(max_size=120))
def test_random_unicode_identical(ours: ClipTokenizer, theirs: object, text: str) -> None:
    np.testing.assert_array_equal(ours([text]), theirs([text]).numpy())  # type: ignore[operator]
