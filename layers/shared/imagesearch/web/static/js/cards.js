// Image cards shared by the gallery and the result grids.

export function escapeText(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const day = (item) => new Date(item.created_at).toLocaleDateString(undefined, { dateStyle: "medium" });

function dateText(item) {
  const title = new Date(item.created_at).toLocaleString();
  return `<time class="date" datetime="${escapeText(item.created_at)}" title="${escapeText(title)}">${escapeText(day(item))}</time>`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "14 Jul 2024" and "10:30" from an EXIF `taken_at` as the camera wrote it: read from the text, never moved
 * to the browser's time zone (a naive wall-clock time has no zone to move from). */
export function takenParts(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(value || "");
  if (!match) return null;
  const [, year, month, dayOfMonth, hour, minute] = match;
  return { day: `${Number(dayOfMonth)} ${MONTHS[Number(month) - 1]} ${year}`, time: hour ? `${hour}:${minute}` : "" };
}

/** "Lisbon, Portugal" (the town and its country), or what the place has of them. */
export function placeText(place) {
  if (!place) return "";
  return [place.city, place.country || place.country_code].filter(Boolean).join(", ") || place.region || "";
}

/** Date taken, place, camera, and the tags (the user's, then the automatic ones, muted): for the card, its
 * tooltip and its label. */
function photoFacts(item) {
  const taken = takenParts(item.taken_at);
  const place = placeText(item.place);
  const camera = [item.camera, item.lens].filter(Boolean).join(", ");
  const tooltip = [taken && `taken ${taken.day} ${taken.time}`.trim(), place, camera].filter(Boolean).join(" · ");
  const parts = [];
  if (taken) parts.push(`<time class="taken" datetime="${escapeText(item.taken_at)}">${escapeText(taken.day)}</time>`);
  if (place) parts.push(`<span class="place">${escapeText(place)}</span>`);
  const autoTags = (item.auto_tags || []).slice(0, 3);
  const tags = (item.tags || []).slice(0, 4);
  if (tags.length || autoTags.length) {
    const chips = [
      ...tags.map((tag) => `<span class="tag" title="Your tag">${escapeText(tag)}</span>`),
      ...autoTags.map((tag) => `<span class="tag auto" title="Automatic tag">${escapeText(tag)}</span>`),
    ];
    parts.push(`<span class="tags">${chips.join("")}</span>`);
  }
  const label = [
    taken && `taken ${taken.day}`, place, camera && `camera ${camera}`,
    tags.length && `tags ${tags.join(", ")}`, autoTags.length && `automatic tags ${autoTags.join(", ")}`,
  ].filter(Boolean).join(", ");
  return { html: parts.join(" "), tooltip, label };
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
 * when it was added; `note` is a line of text under it; `actions` ({ name, text, label, pressed, onClick(item) }) are buttons under it.
 */
export function card(item, { score, onOpen, date = false, note = "", actions = [] } = {}) {
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
  const facts = photoFacts(item);
  const noted = note ? `<span class="note">${escapeText(note)}</span>` : "";
  button.innerHTML = `${picture}<span class="meta"><span class="title">${escapeText(title)}</span> ${badge} ${scoreText} ${when} ${facts.html} ${noted}</span>`;
  button.setAttribute("aria-label", `${title}${item.status ? `, ${status}` : ""}${score !== undefined ? `, score ${Number(score).toFixed(3)}` : ""}${dated ? `, added ${day(item)}` : ""}${facts.label ? `, ${facts.label}` : ""}${note ? `, ${note}` : ""}`);
  if (facts.tooltip) button.title = facts.tooltip;
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
