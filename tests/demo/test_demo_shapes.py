"""The shapes generator: deterministic by seed, labels that match the pixels, captions that name them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from imagesearch.demo.shapes import (
    BACKGROUNDS,
    COLORS,
    SHAPES,
    SIZES,
    ShapeSample,
    caption_variants,
    generate,
    make_scene,
    partial_captions,
    render,
    sample,
)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    """The palette name closest to a colour."""
    return min(palette, key=lambda name: float(np.linalg.norm(rgb - np.asarray(palette[name]))))


def object_fraction(item: ShapeSample) -> float:
    """Share of the picture that is clearly not background."""
    values = pixels(item.image)
    distance = np.linalg.norm(values - np.asarray(item.scene.background_rgb, dtype=np.float32), axis=-1)
    return float((distance > 60).mean())


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    first, again, other = generate(40, seed=7), generate(40, seed=7), generate(40, seed=8)
    assert [s.scene for s in first] == [s.scene for s in again]
    assert all(a.image.tobytes() == b.image.tobytes() for a, b in zip(first, again, strict=True))
    assert sum(a.scene.main == b.scene.main for a, b in zip(first, other, strict=True)) == 0


def test_a_sample_does_not_depend_on_count_start_or_image_size() -> None:
    many = generate(30, seed=3)
    assert [s.scene for s in generate(10, seed=3, start=20)] == [s.scene for s in many[20:]]
    assert sample(25, seed=3).image.tobytes() == many[25].image.tobytes()
    big = sample(25, seed=3, size=256)
    assert big.scene == many[25].scene and big.image.size == (256, 256)
    # the same drawing at any size: the large picture scaled down matches the small one, noise aside
    small = pixels(big.image.resize((64, 64), Image.Resampling.BOX))
    assert np.abs(small - pixels(many[25].image)).mean() < 8


def test_companions_never_change_the_main_object() -> None:
    plain = generate(200, seed=5)
    mixed = generate(200, seed=5, companion_rate=0.5)
    assert [s.scene.main for s in plain] == [s.scene.main for s in mixed]
    companions = [s.scene.companion for s in mixed if s.scene.companion is not None]
    assert 30 < len(companions) < 100  # asked for half; beside many large shapes no second one fits
    for item in mixed:
        companion = item.scene.companion
        if companion is not None:
            assert companion.shape != item.shape and companion.color != item.color
            assert companion.size == "small"
            assert f"and a small {companion.color} {companion.shape}" in item.caption
            assert {companion.shape, companion.color} <= set(item.tags)


def test_every_attribute_value_occurs() -> None:
    scenes = [make_scene(i, seed=11) for i in range(600)]
    assert set(Counter(s.main.shape for s in scenes)) == set(SHAPES)
    assert set(Counter(s.main.color for s in scenes)) == set(COLORS)
    assert set(Counter(s.main.size for s in scenes)) == set(SIZES)
    assert set(Counter(s.background for s in scenes)) == set(BACKGROUNDS)


@pytest.mark.parametrize("size", [64, 256])
def test_labels_match_the_pixels(size: int) -> None:
    covered: dict[tuple[str, str], list[float]] = {}
    for item in generate(200, seed=21, size=size):
        main = item.scene.main
        # the centre of every shape is inside it (a star's too: its inner radius is 40% of the outer)
        centre = pixels(item.image)[int(main.y * size), int(main.x * size)]
        assert nearest(centre, COLORS) == item.color, item.caption
        corner = pixels(item.image)[:3, :3].mean(axis=(0, 1))
        assert nearest(corner, BACKGROUNDS) == item.background, item.caption
        covered.setdefault((item.shape, item.size), []).append(object_fraction(item))
    for shape in SHAPES:  # every large shape covers more of the picture than any small one of its kind
        assert max(covered[shape, "small"]) < min(covered[shape, "large"]), shape


def test_captions_and_tags_name_the_attributes() -> None:
    item = next(s for s in generate(50, seed=2) if s.color == "orange")
    assert item.caption == f"a {item.size} orange {item.shape} on a {item.background} background"
    assert item.title == f"{item.size.capitalize()} orange {item.shape}"
    assert item.tags == (item.shape, "orange", item.size, f"{item.background} background")
    variants = caption_variants(item)
    assert variants[0] == item.caption and len(variants) == len(set(variants)) >= 10
    assert "orange " + item.shape in variants and f"an orange {item.shape}" in variants
    assert all("orange" in v and item.shape in v for v in variants)
    partial = partial_captions(item)
    assert "something orange" in partial and f"a {item.shape}" in partial
    assert all(("orange" in p) != (item.shape in p) for p in partial)  # one attribute each


def test_render_refuses_tiny_images() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        render(make_scene(0, seed=0), size=4)
