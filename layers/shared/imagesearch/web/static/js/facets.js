// Facet chips above the results ("beach 12"): a click narrows the search to that tag, automatic tag, place,
// year or month, and a chip whose filter is on (aria-pressed) takes it off again.

const GROUPS = { tags: "Tags", auto_tags: "Auto labels", place: "Places", year: "Years", month: "Months" };

function chip(facet, { value, count }, filters) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "chip";
  const number = document.createElement("span");
  number.className = "count";
  number.textContent = count;
  button.append(value, " ", number);
  button.setAttribute("aria-pressed", String(filters.isActive(facet, value)));
  button.addEventListener("click", () => filters.toggle(facet, value));
  return button;
}

function group(facet, label, counts, filters) {
  const div = document.createElement("div");
  div.className = "facet";
  div.setAttribute("role", "group");
  div.setAttribute("aria-label", label);
  const name = document.createElement("span");
  name.className = "facet-name";
  name.setAttribute("aria-hidden", "true");
  name.textContent = label;
  div.append(name, ...counts.map((count) => chip(facet, count, filters)));
  return div;
}

/** Show a response's `facets` in `container` (hidden when there are none). */
export function renderFacets(container, facets, filters) {
  const groups = Object.entries(GROUPS)
    .filter(([facet]) => facets?.[facet]?.length)
    .map(([facet, label]) => group(facet, label, facets[facet], filters));
  container.replaceChildren(...groups);
  container.hidden = !groups.length;
}
