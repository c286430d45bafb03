// "More like this" / "Less like this": examples picked from the results, listed in the Refine bar. With a
// liked one or more, the results grid shows POST /recommend's answer (search.js); clearing goes back.

const MAX_EXAMPLES = 20; // the API's limit, liked and disliked together
const NAMES = { positive: "more like", negative: "less like" };
const WAITING = "Mark a result “More like this” to see recommendations.";

export function setupRefine({ bar, lists, hint, clear }, onChange) {
  const picked = { positive: new Map(), negative: new Map() }; // image id -> result
  const size = () => picked.positive.size + picked.negative.size;

  /** "positive", "negative" or null: where an image is. */
  const kindOf = (id) => Object.keys(picked).find((kind) => picked[kind].has(id)) ?? null;

  function chip(item, kind) {
    const title = item.title || item.filename || "untitled";
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chip";
    button.textContent = `${title} ✕`;
    button.setAttribute("aria-label", `Remove ${title} from ${NAMES[kind]}`);
    button.addEventListener("click", () => { picked[kind].delete(item.id); changed(); });
    li.append(button);
    return li;
  }

  function render() {
    for (const [kind, list] of Object.entries(lists)) {
      list.replaceChildren(...[...picked[kind].values()].map((item) => chip(item, kind)));
      list.parentElement.hidden = !picked[kind].size;
    }
    bar.hidden = !size();
    hint.textContent = WAITING;
    hint.hidden = picked.positive.size > 0;
  }

  function changed() { render(); onChange(); }

  /** Like ("positive") or dislike ("negative") a result; the same button again takes it back. */
  function mark(item, kind) {
    const was = kindOf(item.id);
    if (!was && size() >= MAX_EXAMPLES) {
      hint.textContent = `At most ${MAX_EXAMPLES} examples: remove one first.`;
      hint.hidden = false;
      return;
    }
    if (was) picked[was].delete(item.id);
    if (was !== kind) picked[kind].set(item.id, item);
    changed();
  }

  /** Forget every example (a new search starts over), without a change event. */
  function reset() {
    picked.positive.clear();
    picked.negative.clear();
    render();
  }

  const ids = (kind) => [...picked[kind].keys()].map((id) => ({ image_id: id }));

  clear.addEventListener("click", () => { reset(); onChange(); });
  return {
    mark, reset, kindOf,
    active: () => picked.positive.size > 0,
    examples: () => ({ positive: ids("positive"), negative: ids("negative") }),
  };
}
