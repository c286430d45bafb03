"""POST /search's filters as query parameters (GET /images): the fields of SearchFilters, flat.

Each field of SearchFilters is a parameter of the same name, validated as POST /search validates it. A field
that is an object (near, bbox) is its values in the object's field order, comma-separated:
`near=38.72,-9.14,25` is lat, lon, radius_km and `bbox=48,1.5,49.5,3.5` is min_lat, min_lon, max_lat, max_lon
(latitude first, as everywhere in this API; not GeoJSON's longitude-first order). A filter added to
SearchFilters becomes a parameter here with no code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    model_validator,
)

from imagesearch.search.schemas import SearchFilters

# Plain ASCII decimals: float() would also take "nan", "1_0" and digits of other scripts ("٤٨").
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_MAX_LENGTH = 200


def _object_fields() -> dict[str, type[BaseModel]]:
    """SearchFilters' fields whose value is an object (a model), with that model."""
    found: dict[str, type[BaseModel]] = {}
    for name, field in SearchFilters.model_fields.items():
        for kind in get_args(field.annotation) or (field.annotation,):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found[name] = kind
    return found


OBJECT_FIELDS = _object_fields()


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")  # the outer error says it again


def _messages(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc'])}: {_message(issue['msg'])}"
        if issue["loc"]
        else _message(issue["msg"])
        for issue in error.errors()
    )


def _parse_object(model: type[BaseModel]) -> Any:
    names = list(model.model_fields)

    def parse(text: str | None) -> dict[str, Any] | None:
        if text is None:
            return None
        parts = [part.strip(" ") for part in text.split(",")]  # not str.strip(): ASCII only
        if len(parts) != len(names) or not all(_NUMBER.fullmatch(part) for part in parts):
            raise ValueError(f"give {','.join(names)}: {len(names)} numbers separated by commas")
        values = dict(zip(names, (float(part) for part in parts), strict=True))
        try:
            model.model_validate(values)
        except ValidationError as e:
            raise ValueError(_messages(e)) from None
        return values

    return parse


def _query_fields() -> dict[str, Any]:
    """SearchFilters' fields, each object field as a string parsed into the object's values."""
    fields: dict[str, Any] = {}
    for name, field in SearchFilters.model_fields.items():
        if name in OBJECT_FIELDS:
            model = OBJECT_FIELDS[name]
            fields[name] = (
                Annotated[str | None, AfterValidator(_parse_object(model))],
                Field(
                    default=None,
                    max_length=_MAX_LENGTH,
                    description=f"{field.description or name}: {','.join(model.model_fields)}",
                ),
            )
        else:
            fields[name] = (field.annotation, field)
    return fields


class FilterQueryBase(BaseModel):
    """The filters of a query string; `filters()` is them as POST /search takes them."""

    _filters: SearchFilters = PrivateAttr(default_factory=SearchFilters)

    @model_validator(mode="after")
    def _as_search_filters(self) -> FilterQueryBase:
        values: dict[str, Any] = {}
        for name in self.model_fields_set & set(SearchFilters.model_fields):
            values[name] = getattr(self, name)  # an object field: its values, parsed by the field
        try:
            self._filters = SearchFilters.model_validate(values)
        except ValidationError as e:
            raise ValueError(_messages(e)) from None
        return self

    def filters(self) -> SearchFilters:
        return self._filters


if TYPE_CHECKING:
    FilterQuery = FilterQueryBase
else:
    FilterQuery = create_model("FilterQuery", __base__=FilterQueryBase, **_query_fields())
