// One search box: text (hybrid by default), or an image dropped on it (query by example).
import { post, postForm, get } from "./api.js";
import { card } from "./cards.js";

function dateFilter(value, endOfDay) {
  if (!value) return undefined;
  return new Date(`${value}T${endOfDay ? "23:59:59.999" : "00:00:00"}Z`).toISOString();
}

export function setupSearch({ form, box, info, results, similar, similarResults }) {
  const field = (name) => form.elements.namedItem(name);

  function filters() {
    const tag = field("tag").value.trim();
    return {
      tags: tag ? [tag] : undefined,
      created_after: dateFilter(field("after").value, false),
      created_before: dateFilter(field("before").value, true),
    };
  }

  function show(target, response, emptyText) {
    target.replaceChildren(...response.results.map((r) => card(r, { score: r.score, onOpen: openSimilar })));
    info.textContent = response.results.length
      ? `${response.results.length} results in ${Math.round(response.took_ms)} ms (${response.mode}, model ${response.model})`
      : emptyText;
  }

  async function run(event) {
    event?.preventDefault();
    const query = field("query").value.trim();
    if (!query) return;
    info.textContent = "searching…";
    similar.hidden = true;
    try {
      show(results, await post("/search", { query, mode: field("mode").value, limit: 40, filters: filters() }), "no results");
    } catch (error) {
      info.textContent = error.message;
    }
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
    info.textContent = `searching by ${file.name}…`;
    similar.hidden = true;
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("limit", "40");
    try {
      show(results, await postForm("/search/image", body), "no similar images");
    } catch (error) {
      info.textContent = error.message;
    }
  }

  form.addEventListener("submit", run);
  field("mode").addEventListener("change", run);
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
