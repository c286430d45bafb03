// Image cards shared by the gallery and the result grids.

export function escapeText(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A focusable card for an image record or a search result; `onOpen(item)` on click or Enter. */
export function card(item, { score, onOpen } = {}) {
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
  button.innerHTML = `${picture}<span class="meta"><span class="title">${escapeText(title)}</span> ${badge} ${scoreText}</span>`;
  button.setAttribute("aria-label", `${title}${item.status ? `, ${status}` : ""}${score !== undefined ? `, score ${Number(score).toFixed(3)}` : ""}`);
  if (onOpen) button.addEventListener("click", () => onOpen(item));
  li.append(button);
  return li;
}
