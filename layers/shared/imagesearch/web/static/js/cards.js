// Image cards shared by the gallery and the result grids.

export function escapeText(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const day = (item) => new Date(item.created_at).toLocaleDateString(undefined, { dateStyle: "medium" });

function dateText(item) {
  const title = new Date(item.created_at).toLocaleString();
  return `<time class="date" datetime="${escapeText(item.created_at)}" title="${escapeText(title)}">${escapeText(day(item))}</time>`;
}

/** A small toggle button beside a card; its click stays off the card (no open). */
function actionButton(item, { name, text, label, pressed, onClick }) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.action = name;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.setAttribute("aria-pressed", String(Boolean(pressed)));
  button.addEventListener("click", (event) => { event.stopPropagation(); onClick(item); });
  return button;
}

/**
 * A focusable card for an image record or a search result; `onOpen(item)` on click or Enter. `date` shows
 * when it was added; `actions` ({ name, text, label, pressed, onClick(item) }) are buttons under it.
 */
export function card(item, { score, onOpen, date = false, actions = [] } = {}) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "card";
  button.dataset.id = item.id;
  const title = item.title || item.filename || "untitled";
  const status = item.status || "ready";
  const picture = item.thumbnail_url
    ? `<img src="${escapeText(item.thumbnail_url)}" alt="${escapeText(title)}" loading="lazy" decoding="async" width="256" height="256">`
    : `<span class="placeholder">${status === "failed" ? escapeText(item.error || "failed") : "processing…"}</span>`;
  const badge = item.status ? `<span class="badge ${escapeText(status)}">${escapeText(status)}</span>` : "";
  const scoreText = score !== undefined ? `<span class="score">score ${Number(score).toFixed(3)}</span>` : "";
  const dated = date && Boolean(item.created_at);
  const when = dated ? dateText(item) : "";
  button.innerHTML = `${picture}<span class="meta"><span class="title">${escapeText(title)}</span> ${badge} ${scoreText} ${when}</span>`;
  button.setAttribute("aria-label", `${title}${item.status ? `, ${status}` : ""}${score !== undefined ? `, score ${Number(score).toFixed(3)}` : ""}${dated ? `, added ${day(item)}` : ""}`);
  if (onOpen) button.addEventListener("click", () => onOpen(item));
  li.append(button);
  if (actions.length) {
    const bar = document.createElement("div");
    bar.className = "card-actions";
    bar.append(...actions.map((action) => actionButton(item, action)));
    li.append(bar);
  }
  return li;
}
