// Near-duplicate groups (GET /duplicates): shown on demand, a page of groups at a time, each with its
// images (oldest first) and how many pHash bits each differs from the group's first.
import { get } from "./api.js";
import { card } from "./cards.js";

const PAGE = 10;

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function distanceNote(image, index) {
  if (index === 0) return "first of the group";
  const bits = `${plural(image.distance, "bit")} apart`;
  return image.similarity === null || image.similarity === undefined ? bits : `${bits}, similarity ${image.similarity.toFixed(3)}`;
}

function groupItem(group, onOpen) {
  const li = document.createElement("li");
  li.className = "duplicate-group";
  li.dataset.group = group.group;
  const heading = document.createElement("h3");
  heading.textContent = `${plural(group.size, "near-duplicate")}`;
  const grid = document.createElement("ul");
  grid.className = "grid";
  grid.setAttribute("aria-label", `Group of ${plural(group.size, "image")}`);
  grid.append(...group.images.map((image, index) => card(image, { onOpen, note: distanceNote(image, index) })));
  li.append(heading, grid);
  return li;
}

export function setupDuplicates({ toggle, view, info, list, more, onOpen }) {
  let cursor = null;

  async function load(reset = false) {
    if (reset) { list.replaceChildren(); cursor = null; }
    info.textContent = "loading…";
    try {
      const page = await get("/duplicates", { limit: PAGE, cursor });
      list.append(...page.items.map((group) => groupItem(group, onOpen)));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const shown = list.children.length;
      info.textContent = shown ? `${plural(shown, "group")} of near-duplicates${cursor ? " so far" : ""}` : "no near-duplicates";
    } catch (error) {
      info.textContent = error.message;
    }
  }

  // Opening the view (again) loads it afresh: uploads since may have made new groups.
  toggle.addEventListener("click", () => {
    const open = view.hidden;
    view.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide duplicates" : "Show duplicates";
    if (open) load(true);
  });
  more.addEventListener("click", () => load());
  return { load };
}
