"""Query understanding: the dates and cameras a user writes become filters, and nothing else does."""

from __future__ import annotations

from datetime import datetime

import pytest

from imagesearch.search.query_parse import interpret


def wall(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day)


@pytest.mark.parametrize(
    ("query", "after", "before", "camera", "remaining"),
    [
        ("beach 2023", wall(2023, 1, 1), wall(2024, 1, 1), None, "beach"),
        ("sunset july 2021", wall(2021, 7, 1), wall(2021, 8, 1), None, "sunset"),
        ("sunset Jul 2021", wall(2021, 7, 1), wall(2021, 8, 1), None, "sunset"),
        ("snow december 2020", wall(2020, 12, 1), wall(2021, 1, 1), None, "snow"),
        ("party 2021-07", wall(2021, 7, 1), wall(2021, 8, 1), None, "party"),
        ("party 2021-07-14", wall(2021, 7, 14), wall(2021, 7, 15), None, "party"),
        ("dogs 2019-2021", wall(2019, 1, 1), wall(2022, 1, 1), None, "dogs"),
        ("cats 2019 to 2021", wall(2019, 1, 1), wall(2022, 1, 1), None, "cats"),
        ("canon eos portraits", None, None, "canon eos", "portraits"),
        ("Canon EOS R5 portraits", None, None, "canon eos r5", "portraits"),
        ("iphone 14 pro night shots", None, None, "iphone 14 pro", "night shots"),
        ("google pixel 7 sunsets", None, None, "google pixel 7", "sunsets"),
        ("nikon z6 2020 birds", wall(2020, 1, 1), wall(2021, 1, 1), "nikon z6", "birds"),
        ("birds, 2020!", wall(2020, 1, 1), wall(2021, 1, 1), None, "birds,"),
    ],
)
def test_written_dates_and_cameras_become_filters(
    query: str, after: datetime | None, before: datetime | None, camera: str | None, remaining: str
) -> None:
    result = interpret(query)
    assert (result.taken_after, result.taken_before, result.camera, result.remaining_text) == (
        after,
        before,
        camera,
        remaining,
    )
    assert result.understood


@pytest.mark.parametrize(
    "query",
    [
        "red circle",
        "may flowers",  # a month alone is a word
        "pixel art",  # a series name alone is a word
        "apple pie",
        "2023",  # nothing would be left to search
        "canon",
        "route 66 sign",  # other numbers stay text
        "1850 map",  # outside 1900-2099
        '"canon 2023" report',  # quoted phrases are left as they are
        "beach -2023",  # so are exclusions
        "party 2021-02-30",  # no such day
        "dogs 2021-2019",  # a backwards range
        "",
        "  ☃ 写真 ",
    ],
)
def test_nothing_is_guessed(query: str) -> None:
    result = interpret(query)
    assert not result.understood
    assert (result.taken_after, result.taken_before, result.camera) == (None, None, None)
    assert result.remaining_text == query.strip()


def test_one_date_and_one_camera_at_most_the_rest_stays_text() -> None:
    result = interpret("trip jul 2022 jul 2023 canon sony")
    assert (result.taken_after, result.taken_before) == (wall(2022, 7, 1), wall(2022, 8, 1))
    assert result.camera == "canon"
    assert result.remaining_text == "trip jul 2023 sony"
