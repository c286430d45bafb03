// One search box: text (hybrid by default), or an image dropped on it (query by example). A text search
// comes with facet chips that narrow it (filters.js, facets.js), and "More like this / Less like this" on a
// result turns the grid into recommendations (refine.js).
import { post, postForm, get } from "./api.js";
import { card } from "./cards.js";
import { renderFacets } from "./facets.js";
import { setupFilters } from "./filters.js";
import { setupRefine } from "./refine.js";

const LIMIT = 40;
const FACETS = ["tags", "year", "month"];

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function setupSearch({ form, box, info, results, facets, refineBar, similar, similarResults }) {
  const field = (name) => form.elements.namedItem(name);
  const filters = setupFilters(form, refresh);
  const refine = setupRefine(refineBar, refined);
  let showing = null; // "search", "example" or "recommend": what the results grid holds
  let latest = 0; // only the newest request's answer is shown

  function actions(item) {
    const title = item.title || item.filename || "untitled";
    const kind = refine.kindOf(item.id);
    return [
      { name: "positive", text: "More like this", label: `More like this: ${title}`, pressed: kind === "positive", onClick: (it) => refine.mark(it, "positive") },
      { name: "negative", text: "Less like this", label: `Less like this: ${title}`, pressed: kind === "negative", onClick: (it) => refine.mark(it, "negative") },
    ];
  }

  function show(response, text) {
    results.replaceChildren(...response.results.map((r) => card(r, { score: r.score, date: true, onOpen: openSimilar, actions: actions(r) })));
    info.textContent = text;
  }

  /** Send a request; its answer is rendered unless a newer request went out meanwhile. */
  async function load(pending, request, render) {
    const ticket = ++latest;
    info.textContent = pending;
    similar.hidden = true;
    try {
      const response = await request();
      if (ticket === latest) render(response);
    } catch (error) {
      if (ticket === latest) info.textContent = error.message;
    }
  }

  async function search() {
    const query = field("query").value.trim();
    if (!query) return;
    const sort = field("sort").value;
    const body = { query, mode: field("mode").value, sort, limit: LIMIT, filters: filters.request(), facets: FACETS };
    await load("searching…", () => post("/search", body), (response) => {
      showing = "search";
      renderFacets(facets, response.facets, filters);
      const order = sort === "relevance" ? "" : `, ${sort} first`;
      show(response, response.results.length
        ? `${response.results.length} results in ${Math.round(response.took_ms)} ms (${response.mode}${order}, model ${response.model})`
        : "no results");
    });
  }

  async function recommend() {
    const { positive, negative } = refine.examples();
    const body = { positive, negative, limit: LIMIT, filters: filters.request() };
    await load("finding more like these…", () => post("/recommend", body), (response) => {
      showing = "recommend";
      facets.hidden = true;
      const found = response.results.length ? plural(response.results.length, "recommendation") : "no recommendations";
      show(response, `${found} (${positive.length} liked, ${negative.length} disliked)`);
    });
  }

  /** The filters changed: run again what is on screen (recommendations, or the text search). */
  function refresh() {
    return refine.active() ? recommend() : search();
  }

  /** The examples changed: recommendations while one is liked, else back to the search (or just mark). */
  function refined() {
    if (refine.active() || showing === "recommend") return refresh();
    for (const button of results.querySelectorAll("[data-action]")) {
      const id = button.closest("li").querySelector(".card").dataset.id;
      button.setAttribute("aria-pressed", String(refine.kindOf(id) === button.dataset.action));
    }
  }

  /** The search form (submit, mode, sort): a new text search, which starts the examples over. */
  function run(event) {
    event?.preventDefault();
    refine.reset();
    return search();
  }

  async function openSimilar(item) {
    similar.hidden = false;
    similar.querySelector("h2").textContent = `Similar to “${item.title || item.filename || "this image"}”`;
    try {
      const response = await get(`/images/${item.id}/similar`, { limit: 20 });
      similarResults.replaceChildren(...response.results.map((r) => card(r, { score: r.score, onOpen: openSimilar })));
      similar.scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (error) {
      similarResults.replaceChildren();
      info.textContent = error.message;
    }
  }

  async function byExample(file) {
    refine.reset();
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("limit", String(LIMIT));
    await load(`searching by ${file.name}…`, () => postForm("/search/image", body), (response) => {
      showing = "example";
      facets.hidden = true;
      show(response, response.results.length
        ? `${response.results.length} results in ${Math.round(response.took_ms)} ms (${response.mode}, model ${response.model})`
        : "no similar images");
    });
  }

  form.addEventListener("submit", run);
  field("mode").addEventListener("change", run);
  field("sort").addEventListener("change", run);
  for (const name of ["dragenter", "dragover"]) box.addEventListener(name, (e) => { e.preventDefault(); box.classList.add("drag"); });
  box.addEventListener("dragleave", () => box.classList.remove("drag"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    box.classList.remove("drag");
    const file = [...e.dataTransfer.files][0];
    if (file) byExample(file);
  });
  return { run, openSimilar };
}
