// The gallery: newest first, a page at a time (lazy thumbnails), pending images polled until they settle.
import { get } from "./api.js";
import { card } from "./cards.js";

const PAGE = 60;
const POLL_MS = 1000;

export function setupGallery({ grid, more, onOpen }) {
  let cursor = null;
  const pending = new Map(); // id -> <li>

  function render(item) {
    const li = card(item, { onOpen: item.status === "ready" ? onOpen : undefined });
    if (item.status === "pending") pending.set(item.id, li);
    return li;
  }

  async function load(reset = false) {
    if (reset) { grid.replaceChildren(); cursor = null; pending.clear(); }
    const page = await get("/images", { limit: PAGE, cursor });
    for (const item of page.items) grid.append(render(item));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }

  function prepend(item) {
    if (grid.querySelector(`[data-id="${item.id}"]`)) return;
    grid.prepend(render(item));
  }

  async function poll() {
    for (const [id, li] of [...pending]) {
      try {
        const item = await get(`/images/${id}`);
        if (item.status !== "pending") {
          pending.delete(id);
          li.replaceWith(render(item));
        }
      } catch (error) {
        if (error.status === 404) { pending.delete(id); li.remove(); }
      }
    }
    setTimeout(poll, POLL_MS);
  }

  more.addEventListener("click", () => load());
  // Load the next page before the user reaches the end.
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && cursor) load();
  }, { rootMargin: "600px" }).observe(more);
  setTimeout(poll, POLL_MS);
  return { load, prepend };
}
