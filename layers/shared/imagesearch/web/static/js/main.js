// Wires the page together.
import { apiKey, onUnauthorized, setApiKey } from "./api.js";
import { setupDuplicates } from "./duplicates.js";
import { setupGallery } from "./gallery.js";
import { setupSearch } from "./search.js";
import { setupUploads } from "./upload.js";

const $ = (id) => document.getElementById(id);

function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 3000);
}

const search = setupSearch({
  form: $("search-form"), box: $("search-drop"), info: $("search-info"), understood: $("understood"),
  results: $("results"), facets: $("facets"),
  refineBar: {
    bar: $("refine"), lists: { positive: $("refine-positive"), negative: $("refine-negative") },
    hint: $("refine-hint"), clear: $("refine-clear"),
  },
  similar: $("similar"), similarResults: $("similar-results"),
});
const gallery = setupGallery({ grid: $("gallery"), more: $("more"), onOpen: (item) => search.openSimilar(item) });
setupDuplicates({
  toggle: $("duplicates-toggle"), view: $("duplicates-view"), info: $("duplicates-info"), list: $("duplicates"),
  more: $("duplicates-more"), onOpen: (item) => search.openSimilar(item),
});
setupUploads({ dropzone: $("dropzone"), input: $("files"), list: $("uploads"), onUploaded: (image) => gallery.prepend(image) });

// The key field appears when the API asks for credentials (auth on), or when a key is already stored.
const keyForm = $("key-form");
keyForm.hidden = !apiKey();
$("api-key").value = apiKey();
onUnauthorized(() => { keyForm.hidden = false; toast("This API needs an API key"); $("api-key").focus(); });
keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  setApiKey($("api-key").value.trim());
  toast("API key saved in this browser");
  gallery.load(true).catch((error) => toast(error.message));
});

gallery.load(true).catch((error) => toast(error.message));
