"""Outlines of the demo shapes: polygon corners for a centre, a radius and a rotation (pixels)."""

from __future__ import annotations

import math

# Circumradius of each outline per unit of radius: chosen so every shape covers a similar area for one
# radius; the generator keeps the whole outline inside the picture with it.
EXTENT = {"circle": 1.0, "square": 1.2, "triangle": 1.25, "hexagon": 1.05, "star": 1.25, "cross": 1.16}

Point = tuple[float, float]


def outline(shape: str, cx: float, cy: float, r: float, rotation: float) -> list[Point]:
    """Polygon corners of a shape other than a circle, at the circumradius `EXTENT[shape] * r`."""
    extent = EXTENT[shape] * r
    if shape == "square":
        points = _ring(4, extent, 45)
    elif shape == "triangle":
        points = _ring(3, extent, 90)
    elif shape == "hexagon":
        points = _ring(6, extent, 0)
    elif shape == "star":
        outer, inner = _ring(5, extent, 90), _ring(5, 0.4 * extent, 90 + 36)
        points = [p for pair in zip(outer, inner, strict=True) for p in pair]
    elif shape == "cross":
        arm, half = 1.1 * r, 0.36 * r  # a plus sign of twelve corners; extent = hypot(arm, half)
        quarter = [(half, -arm), (half, -half), (arm, -half)]
        points = [_turn(p, 90 * k) for k in range(4) for p in quarter]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [(cx + px, cy + py) for px, py in (_turn(p, rotation) for p in points)]


def _ring(corners: int, radius: float, start: float) -> list[Point]:
    step = 360 / corners
    return [
        (
            radius * math.cos(math.radians(start + k * step)),
            -radius * math.sin(math.radians(start + k * step)),
        )
        for k in range(corners)
    ]


def _turn(point: Point, degrees: float) -> Point:
    a = math.radians(degrees)
    x, y = point
    return x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)
