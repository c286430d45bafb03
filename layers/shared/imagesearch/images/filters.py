"""The predicates of the image filters (SearchFilters in search/schemas.py) on table `images` aliased `i`.

Declared once, here below both users: POST /search pushes them into both branches (search/sql.py), and
GET /images into its listing (images/repository.py). A new filter is a SearchFilters field and its
predicate here, named as its `predicates()` names it; both endpoints then take it.
"""

from __future__ import annotations

from typing import Any, Protocol

from psycopg import sql


class ImageFilter(Protocol):
    """Filters that name their predicates (keys of FILTER_PREDICATES) and give their parameters."""

    def predicates(self) -> tuple[str, ...]: ...

    def parameters(self) -> dict[str, Any]: ...


# Each predicate only when its filter is set, so the planner sees plain predicates.
FILTER_PREDICATES: dict[str, sql.SQL] = {
    "tags_any": sql.SQL(" AND i.tags && %(tags)s::text[]"),
    "tags_all": sql.SQL(" AND i.tags @> %(tags)s::text[]"),
    "auto_tags": sql.SQL(" AND i.auto_tags && %(auto_tags)s::text[]"),  # GIN index images_auto_tags
    "created_after": sql.SQL(" AND i.created_at >= %(created_after)s"),
    "created_before": sql.SQL(" AND i.created_at < %(created_before)s"),
    # EXIF (migration 0007): the wall-clock time as written; the make and model, case-insensitively.
    "taken_after": sql.SQL(" AND i.taken_at_local >= %(taken_after)s"),
    "taken_before": sql.SQL(" AND i.taken_at_local < %(taken_before)s"),
    "camera": sql.SQL(
        " AND strpos(lower(coalesce(i.camera_make, '') || ' ' || coalesce(i.camera_model, '')),"
        " %(camera)s) > 0"
    ),
    # The box around the circle narrows by index (images_location); the haversine decides.
    "near": sql.SQL(
        " AND i.latitude BETWEEN %(near_min_lat)s AND %(near_max_lat)s"
        " AND i.longitude BETWEEN %(near_min_lon)s AND %(near_max_lon)s"
        " AND 2 * 6371.0088 * asin(least(1, sqrt(power(sin(radians(i.latitude - %(near_lat)s) / 2), 2)"
        " + cos(radians(%(near_lat)s)) * cos(radians(i.latitude))"
        " * power(sin(radians(i.longitude - %(near_lon)s) / 2), 2)))) <= %(near_radius_km)s"
    ),
    # min_lon > max_lon: the box crosses the 180th meridian.
    "bbox": sql.SQL(
        " AND i.latitude BETWEEN %(bbox_min_lat)s AND %(bbox_max_lat)s"
        " AND (i.longitude BETWEEN %(bbox_min_lon)s AND %(bbox_max_lon)s"
        " OR (%(bbox_min_lon)s > %(bbox_max_lon)s"
        " AND (i.longitude >= %(bbox_min_lon)s OR i.longitude <= %(bbox_max_lon)s)))"
    ),
    # The reverse-geocoded place (migration 0008), ignoring case and accents (unaccent, migration 0010: "Sao
    # Paulo" is São Paulo), by the number of names given: one is any of city, region, country and code;
    # "city, x" (a place facet's value: city, country) has x the region, country or code; "city, region,
    # country" field by field.
    "place_any": sql.SQL(
        " AND lower(unaccent(%(place_name)s::text)) IN (lower(unaccent(i.place_city)),"
        " lower(unaccent(i.place_region)), lower(unaccent(i.place_country)), lower(i.place_country_code))"
    ),
    "place_city_in": sql.SQL(
        " AND lower(unaccent(i.place_city)) = lower(unaccent(%(place_city)s::text))"
        " AND lower(unaccent(%(place_name)s::text)) IN (lower(unaccent(i.place_region)),"
        " lower(unaccent(i.place_country)), lower(i.place_country_code))"
    ),
    "place_full": sql.SQL(
        " AND lower(unaccent(i.place_city)) = lower(unaccent(%(place_city)s::text))"
        " AND lower(unaccent(i.place_region)) = lower(unaccent(%(place_region)s::text))"
        " AND lower(unaccent(%(place_country)s::text)) IN (lower(unaccent(i.place_country)),"
        " lower(i.place_country_code))"
    ),
}


def where(filters: ImageFilter) -> sql.Composed:
    """The ` AND ...` predicates of the filters that are set (empty when none is)."""
    return sql.Composed([FILTER_PREDICATES[name] for name in filters.predicates()])
