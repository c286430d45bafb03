// The search filters: the tag field (comma-separated; an image must have all of them) and the date range,
// and the place and automatic tags picked with facet chips (no field: the pressed chip shows them).
// Facet chips set and clear them; a change in a field re-runs what is on screen.

const iso = (date) => date.toISOString().replace(".000Z", "Z");

/** 00:00 UTC of a yyyy-mm-dd day, `days` later; undefined for no day. */
function dayStart(value, days = 0) {
  if (!value) return undefined;
  const date = new Date(`${value}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return iso(date);
}

/** The first and the last day (yyyy-mm-dd) of a year ("2026") or month ("2026-03") facet value. */
export function dayRange(facet, value) {
  const [year, month] = value.split("-").map(Number);
  const first = facet === "year" ? Date.UTC(year, 0, 1) : Date.UTC(year, month - 1, 1);
  const last = facet === "year" ? Date.UTC(year, 11, 31) : Date.UTC(year, month, 0);
  return [first, last].map((time) => new Date(time).toISOString().slice(0, 10));
}

export function setupFilters(form, onChange) {
  const field = (name) => form.elements.namedItem(name);
  let place = ""; // a `place` facet value ("Lisbon, Portugal"), or none
  const autoTags = new Set(); // images with any of these

  function tags() {
    return [...new Set(field("tag").value.split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean))];
  }

  /** The `filters` of a search or recommend request (the day in "To" included). */
  function request() {
    const list = tags();
    return {
      tags: list.length ? list : undefined,
      tags_mode: list.length > 1 ? "all" : undefined,
      created_after: dayStart(field("after").value),
      created_before: dayStart(field("before").value, 1),
      place: place || undefined,
      auto_tags: autoTags.size ? [...autoTags] : undefined,
    };
  }

  function isActive(facet, value) {
    if (facet === "tags") return tags().includes(value);
    if (facet === "place") return place === value;
    if (facet === "auto_tags") return autoTags.has(value);
    const [first, last] = dayRange(facet, value);
    return field("after").value === first && field("before").value === last;
  }

  /** A facet chip's click: narrow to its value, or take the filter off when it is on already. */
  function toggle(facet, value) {
    const on = !isActive(facet, value);
    if (facet === "tags") {
      field("tag").value = (on ? [...tags(), value] : tags().filter((tag) => tag !== value)).join(", ");
    } else if (facet === "place") {
      place = on ? value : "";
    } else if (facet === "auto_tags") {
      if (on) autoTags.add(value); else autoTags.delete(value);
    } else {
      [field("after").value, field("before").value] = on ? dayRange(facet, value) : ["", ""];
    }
    onChange();
  }

  for (const name of ["tag", "after", "before"]) field(name).addEventListener("change", onChange);
  return { request, isActive, toggle };
}
