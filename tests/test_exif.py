"""imagesearch.exif: what a photo's EXIF says, from every format that carries it; odd EXIF never raises."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from support.exif import exif_block, photo_with_exif, photo_with_exif_bytes
from support.images import make_image, make_picture

from imagesearch.exif import read_exif
from imagesearch.images.thumbnails import make_thumbnail
from imagesearch.imaging import open_image

FULL: dict[str, Any] = {
    "taken": "2024:07:14 10:30:00",
    "offset": "+02:00",
    "make": "Canon",
    "model": "Canon EOS R5",
    "lens": "RF24-105mm F4 L IS USM",
    "gps": (48.8584, -2.2945),
}


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP", "PNG", "AVIF", "HEIF"])
def test_every_format_that_carries_exif_gives_every_field(fmt: str) -> None:
    exif = read_exif(photo_with_exif(fmt=fmt, **FULL))

    assert exif.taken_at_local == datetime(2024, 7, 14, 10, 30)
    assert exif.taken_at == datetime(2024, 7, 14, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    assert (exif.camera_make, exif.camera_model, exif.lens) == (
        "Canon",
        "Canon EOS R5",
        "RF24-105mm F4 L IS USM",
    )
    assert exif.latitude == pytest.approx(48.8584, abs=1e-5)
    assert exif.longitude == pytest.approx(-2.2945, abs=1e-5)  # W is negative
    assert exif.problems == ()


def test_without_an_offset_the_time_is_wall_clock_only_never_guessed() -> None:
    exif = read_exif(photo_with_exif(taken="2024:07:14 10:30:00"))
    assert exif.taken_at_local == datetime(2024, 7, 14, 10, 30)
    assert exif.taken_at is None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "JPEG"])
def test_no_exif_is_no_fields_and_no_problem(fmt: str) -> None:
    exif = read_exif(make_image(fmt=fmt))
    assert exif == type(exif)()


@pytest.mark.parametrize(
    ("tags", "field", "problem"),
    [
        ({"taken": "0000:00:00 00:00:00"}, "taken_at_local", "taken_at"),
        ({"taken": "    :  :     :  :  "}, "taken_at_local", "taken_at"),
        ({"taken": "2024:02:30 10:00:00"}, "taken_at_local", "taken_at"),
        ({"taken": "0001:01:01 00:00:00", "offset": "+02:00"}, "taken_at_local", "plausible"),
        (
            {
                "gps_raw": {
                    1: "N",
                    2: (IFDRational(48, 0), IFDRational(0, 1), IFDRational(0, 1)),
                    3: "E",
                    4: (IFDRational(2, 1), IFDRational(0, 1), IFDRational(0, 1)),
                }
            },
            "latitude",
            "latitude",
        ),
        (
            {
                "gps_raw": {
                    2: (IFDRational(48, 1), IFDRational(0, 1), IFDRational(0, 1)),
                    4: (IFDRational(2, 1), IFDRational(0, 1), IFDRational(0, 1)),
                }
            },
            "latitude",
            "reference",
        ),
        (
            {
                "gps_raw": {
                    1: "N",
                    2: (IFDRational(95, 1), IFDRational(0, 1), IFDRational(0, 1)),
                    3: "E",
                    4: (IFDRational(2, 1), IFDRational(0, 1), IFDRational(0, 1)),
                }
            },
            "latitude",
            "out of range",
        ),
    ],
)
def test_odd_values_leave_their_field_empty_and_say_why(
    tags: dict[str, Any], field: str, problem: str
) -> None:
    exif = read_exif(photo_with_exif(make="Nikon", **tags))
    assert getattr(exif, field) is None
    assert exif.camera_make == "Nikon"  # the rest is kept
    assert any(problem in p for p in exif.problems), exif.problems


def test_a_bad_offset_keeps_the_wall_clock_time() -> None:
    exif = read_exif(photo_with_exif(taken="2024:07:14 10:30:00", offset="+99:99"))
    assert exif.taken_at_local == datetime(2024, 7, 14, 10, 30) and exif.taken_at is None
    assert exif.problems


@pytest.mark.parametrize(
    ("fmt", "size"), [("PNG", 1_000_000), ("WEBP", 1_000_000), ("TIFF", 1_000_000), ("JPEG", 60_000)]
)  # a JPEG's APP1 segment holds 64 KiB
def test_a_megabyte_maker_note_is_read_past(fmt: str, size: int) -> None:
    exif = read_exif(
        photo_with_exif(fmt=fmt, make="Sony", taken="2023:01:02 03:04:05", maker_note=b"\x07" * size)
    )
    assert exif.camera_make == "Sony" and exif.taken_at_local == datetime(2023, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("cut", [10, 30, 60])
def test_a_truncated_block_gives_empty_fields_and_a_reason(cut: int) -> None:
    raw = exif_block(**FULL)
    data = photo_with_exif_bytes(raw[:cut])
    exif = read_exif(data)
    assert exif.latitude is None and exif.taken_at_local is None
    assert exif.problems  # logged on ingestion
    open_image(data, max_pixels=10_000_000)  # and the picture itself still decodes


def test_an_ifd_pointing_outside_the_block_gives_empty_fields() -> None:
    raw = bytearray(exif_block(make="Canon", taken="2024:07:14 10:30:00"))
    assert raw[6:8] == b"MM" and raw[16:18] == (0x010F).to_bytes(2, "big")  # IFD0's first entry: Make
    raw[20:24] = (0x7FFFFFFF).to_bytes(4, "big")  # its count made huge: the value lies nowhere
    exif = read_exif(photo_with_exif_bytes(bytes(raw)))
    assert exif.camera_make is None
    assert exif.problems


def test_control_characters_and_padding_are_dropped_from_names() -> None:
    exif = read_exif(photo_with_exif(make="  Canon\x00\x00 ", model="EOS\t 5D\x1b"))
    assert (exif.camera_make, exif.camera_model) == ("Canon", "EOS 5D")


def test_thumbnails_never_carry_exif() -> None:
    image = open_image(photo_with_exif(**FULL), max_pixels=10_000_000)
    assert image.getexif()  # the decoded original still has it...

    thumbnail = Image.open(io.BytesIO(make_thumbnail(image)))

    assert "exif" not in thumbnail.info and "xmp" not in thumbnail.info  # ...its thumbnail nothing
    assert not thumbnail.getexif()
    assert make_picture().size  # the factory's picture is what was thumbnailed
