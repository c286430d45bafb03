"""Query understanding: dates and cameras written in a text query become filters.

"beach 2023" searches "beach" among photos taken in 2023; "sunset july 2021" searches "sunset" in July
2021; "canon eos portraits" searches "portraits" among photos from a camera matching "canon eos". The
structured part is taken out of the text that goes to the text tower and the keyword branch.

Nothing is guessed that the user did not write:
- a year is four digits from 1900 to 2099 standing alone ("2023"), or a range ("2019-2021",
  "2019 to 2021"); a month only next to its year ("july 2021", "jul 2021", "2021-07"); a day only as an
  ISO date ("2021-07-14"). A month name alone ("may flowers") stays text, and so does any other number.
- a camera is a maker's name from a short list (canon, nikon, sony, ...), with the model words that follow
  it when they look like a model (they hold a digit, or are one of that maker's series: "eos", "coolpix",
  "iphone"...). Words that could be common nouns are only cameras with their maker ("google pixel", not
  "pixel").
- at most one date and one camera are taken; a second stays text, and so does anything inside a
  "quoted phrase" or after a minus. When taking them would leave no text, nothing is taken: the query is
  searched as written.

The dates are wall-clock ranges [after, before), as the `taken_after` / `taken_before` filters take them:
a photo's time as its camera wrote it compares with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from imagesearch.search.schemas import Interpreted, SearchFilters

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

# Maker names as people type them -> the words that stand for the maker, and that maker's series names
# (model words without a digit). Makers whose name is also a common word are absent ("apple" is in
# "apple pie"): their series ("iphone") names them.
MAKERS: dict[str, set[str]] = {
    "canon": {"eos", "powershot", "ixus", "rebel"},
    "nikon": {"coolpix", "z"},
    "sony": {"alpha", "cybershot", "cyber-shot", "xperia"},
    "fujifilm": {"finepix", "instax"},
    "fuji": {"finepix", "instax"},
    "olympus": {"om-d", "pen", "tough"},
    "panasonic": {"lumix"},
    "lumix": set(),
    "leica": {"q", "m", "sl", "cl"},
    "pentax": {"k"},
    "ricoh": {"gr", "theta"},
    "hasselblad": set(),
    "gopro": {"hero"},
    "dji": {"mavic", "mini", "osmo", "pocket", "air"},
    "samsung": {"galaxy"},
    "iphone": {"pro", "max", "plus", "mini"},
    "huawei": {"mate", "p"},
    "xiaomi": {"redmi", "mi"},
}
# Two-word makers whose first word alone means something else.
PAIRED_MAKERS = {("google", "pixel"), ("apple", "iphone")}

_TOKEN = re.compile(r"\S+")
_YEAR = r"(19|20)\d\d"
_YEAR_ONLY = re.compile(rf"^{_YEAR}$")
_YEAR_RANGE = re.compile(rf"^({_YEAR})[-–]({_YEAR})$")
_YEAR_MONTH = re.compile(rf"^({_YEAR})-(0[1-9]|1[0-2])$")
_ISO_DATE = re.compile(rf"^({_YEAR})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_PUNCTUATION = ",.;:!?()[]\"'"


@dataclass(frozen=True)
class Interpretation:
    """What a query was understood to say: the filters it implies and the text that remains."""

    taken_after: datetime | None
    taken_before: datetime | None
    camera: str | None
    remaining_text: str

    @property
    def understood(self) -> bool:
        return self.taken_after is not None or self.camera is not None


def _wall(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day)


def _next_month(year: int, month: int) -> datetime:
    return _wall(year + 1, 1) if month == 12 else _wall(year, month + 1)


def _word(token: str) -> str:
    return token.strip(_PUNCTUATION).lower()


def _date_at(words: list[str], i: int) -> tuple[int, datetime, datetime] | None:
    """(words used, after, before) for a date starting at words[i], or None."""
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    third = words[i + 2] if i + 2 < len(words) else ""
    if m := _ISO_DATE.match(word):
        year, month, day = int(m.group(1)), int(m.group(3)), int(m.group(4))
        try:
            start = _wall(year, month, day)
        except ValueError:  # 2021-02-30
            return None
        return 1, start, start + timedelta(days=1)
    if m := _YEAR_MONTH.match(word):
        year, month = int(m.group(1)), int(m.group(3))
        return 1, _wall(year, month), _next_month(year, month)
    if m := _YEAR_RANGE.match(word):
        first, last = int(m.group(1)), int(m.group(3))
        return (1, _wall(first), _wall(last + 1)) if first <= last else None
    if word in MONTHS and _YEAR_ONLY.match(nxt):
        year, month = int(nxt), MONTHS[word]
        return 2, _wall(year, month), _next_month(year, month)
    if _YEAR_ONLY.match(word):
        ranged = nxt in ("to", "-", "–", "through", "until") and _YEAR_ONLY.match(third)
        if ranged and int(third) >= int(word):
            return 3, _wall(int(word)), _wall(int(third) + 1)
        if nxt in MONTHS and not (i + 2 < len(words) and _YEAR_ONLY.match(third)):
            year, month = int(word), MONTHS[nxt]
            return 2, _wall(year, month), _next_month(year, month)
        return 1, _wall(int(word)), _wall(int(word) + 1)
    return None


def _camera_at(words: list[str], i: int) -> tuple[int, str] | None:
    """(words used, camera text) for a camera starting at words[i], or None."""
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if (word, nxt) in PAIRED_MAKERS:
        used, series = 2, MAKERS.get(nxt, set())
    elif word in MAKERS:
        used, series = 1, MAKERS[word]
    else:
        return None
    while i + used < len(words):
        model = words[i + used]
        if model in series or (any(c.isdigit() for c in model) and not _YEAR_ONLY.match(model)):
            used += 1
        else:
            break
    return used, " ".join(words[i : i + used])


def _quoted(tokens: list[str]) -> list[bool]:
    """Whether each token is part of a "quoted phrase" (an unclosed quote runs to the end)."""
    inside, flags = False, []
    for token in tokens:
        quotes = token.count('"')
        flags.append(inside or quotes > 0)
        inside = inside != (quotes % 2 == 1)
    return flags


def interpret(query: str, *, dates: bool = True, cameras: bool = True) -> Interpretation:
    """The dates and camera written in `query`, and the rest of it (see the module's rules); `dates` or
    `cameras` False leaves those as text (the request's own filters already say)."""
    tokens = _TOKEN.findall(query)
    words = [_word(token) for token in tokens]
    taken: tuple[datetime, datetime] | None = None
    camera: str | None = None
    kept: list[str] = []
    quoted = _quoted(tokens)
    i = 0
    while i < len(tokens):
        if quoted[i] or tokens[i].startswith("-"):
            kept.append(tokens[i])
            i += 1
            continue
        date = _date_at(words, i) if dates and taken is None else None
        if date is not None:
            used, after, before = date
            taken = (after, before)
            i += used
            continue
        found = _camera_at(words, i) if cameras and camera is None else None
        if found is not None:
            used, camera = found
            i += used
            continue
        kept.append(tokens[i])
        i += 1
    remaining = " ".join(kept)
    if not remaining.strip(_PUNCTUATION + " ") or (taken is None and camera is None):
        return Interpretation(None, None, None, query.strip())
    return Interpretation(
        taken_after=taken[0] if taken else None,
        taken_before=taken[1] if taken else None,
        camera=camera,
        remaining_text=remaining,
    )


def understood(
    query: str | None, filters: SearchFilters, *, parse: bool = True
) -> tuple[str | None, SearchFilters, Interpreted | None]:
    """(text to search, filters, what was understood) for a request's query and filters. Dates are taken
    from the text only when the request sets neither taken_after nor taken_before, a camera only when it
    sets no camera: what the request says outright wins."""
    if not parse or not query:
        return query, filters, None
    has_dates = filters.taken_after is not None or filters.taken_before is not None
    result = interpret(query, dates=not has_dates, cameras=filters.camera is None)
    if not result.understood:
        return query, filters, None
    changes = {
        name: value
        for name, value in (
            ("taken_after", result.taken_after),
            ("taken_before", result.taken_before),
            ("camera", result.camera),
        )
        if value is not None
    }
    interpreted = Interpreted(
        taken_after=result.taken_after,
        taken_before=result.taken_before,
        camera=result.camera,
        remaining_text=result.remaining_text,
    )
    return result.remaining_text, filters.model_copy(update=changes), interpreted
