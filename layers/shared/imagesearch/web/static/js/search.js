// One search box: text (hybrid by default), or an image dropped on it (query by example). A text search
// comes with facet chips that narrow it (filters.js, facets.js), and "More like this / Less like this" on a
// result turns the grid into recommendations (refine.js).
import { post, postForm, get } from "./api.js";
import { card, takenParts } from "./cards.js";
import { renderFacets } from "./facets.js";
import { setupFilters } from "./filters.js";
import { setupRefine } from "./refine.js";

const LIMIT = 40;
const FACETS = ["tags", "year", "month", "place", "auto_tags"];

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A wall-clock bound ("2024-01-01T00:00:00") as a UTC date, to count days and months between bounds. */
const bound = (value) => (value ? new Date(`${value.slice(0, 19)}Z`) : null);
const whole = (date) => date.getUTCHours() === 0 && date.getUTCMinutes() === 0 && date.getUTCSeconds() === 0;
const shifted = (date, { years = 0, months = 0, days = 0 }) =>
  new Date(Date.UTC(date.getUTCFullYear() + years, date.getUTCMonth() + months, date.getUTCDate() + days));
const sameDay = (a, b) => a.getTime() === b.getTime();

/** "2023", "Jul 2021", "14 Jul 2021", "2019–2021", or "after 1 Jan 2020": the taken range understood. */
export function takenRange(after, before) {
  const [from, to] = [bound(after), bound(before)];
  const dayOf = (date) => takenParts(date.toISOString()).day;
  if (from && to && whole(from) && whole(to)) {
    const last = shifted(to, { days: -1 });
    if (from.getUTCMonth() === 0 && from.getUTCDate() === 1 && to.getUTCMonth() === 0 && to.getUTCDate() === 1) {
      const [first, end] = [from.getUTCFullYear(), last.getUTCFullYear()];
      return first === end ? String(first) : `${first}–${end}`;
    }
    if (from.getUTCDate() === 1 && sameDay(shifted(from, { months: 1 }), to)) return dayOf(from).replace(/^1 /, "");
    if (sameDay(shifted(from, { days: 1 }), to)) return dayOf(from);
    return `${dayOf(from)} to ${dayOf(last)}`;
  }
  if (from) return `after ${dayOf(from)}`;
  return to ? `before ${dayOf(to)}` : "";
}

/** "taken 2023 · camera canon · searching “beach”": what POST /search took from the query. */
export function understoodText(interpreted) {
  const taken = takenRange(interpreted.taken_after, interpreted.taken_before);
  return [
    taken && `taken ${taken}`,
    interpreted.camera && `camera ${interpreted.camera}`,
    `searching “${interpreted.remaining_text}”`,
  ].filter(Boolean).join(" · ");
}

export function setupSearch({ form, box, info, understood, results, facets, refineBar, similar, similarResults }) {
  const field = (name) => form.elements.namedItem(name);
  const filters = setupFilters(form, refresh);
  const refine = setupRefine(refineBar, refined);
  let showing = null; // "search", "example" or "recommend": what the results grid holds
  let latest = 0; // only the newest request's answer is shown
  let literal = false; // search the text as written (parse: false), until a new search is submitted
  const [understoodLine, asWritten] = understood.children;

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
    understood.hidden = true;
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
    if (literal) body.parse = false;
    await load("searching…", () => post("/search", body), (response) => {
      showing = "search";
      renderFacets(facets, response.facets, filters);
      const order = sort === "relevance" ? "" : `, ${field("sort").selectedOptions[0].textContent}`;
      show(response, response.results.length
        ? `${response.results.length} results in ${Math.round(response.took_ms)} ms (${response.mode}${order}, model ${response.model})`
        : "no results");
      if (response.interpreted) {
        understoodLine.textContent = `Understood: ${understoodText(response.interpreted)}`;
        asWritten.textContent = `Search “${query}” as written`;
        understood.hidden = false;
      }
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
    if (event?.type === "submit") literal = false;
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
  asWritten.addEventListener("click", () => { literal = true; refine.reset(); search(); });
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
