// Drag-and-drop (or chosen) files -> uploads with per-file progress. Large files go straight to storage
// through a presigned URL (Lambda takes at most 6 MB per request).
import { base, headers, post, send } from "./api.js";

const DIRECT_LIMIT = 5 * 1024 * 1024;
const CONCURRENCY = 3;

export function setupUploads({ dropzone, input, list, onUploaded }) {
  const queue = [];
  let running = 0;

  function pump() {
    while (running < CONCURRENCY && queue.length) {
      const job = queue.shift();
      running += 1;
      upload(job).finally(() => { running -= 1; pump(); });
    }
  }

  function add(files) {
    for (const file of files) {
      const row = document.createElement("li");
      row.innerHTML = `<span class="name"></span><progress max="1" value="0"></progress><span class="state">queued</span>`;
      row.querySelector(".name").textContent = file.name;
      list.prepend(row);
      queue.push({ file, row });
    }
    pump();
  }

  // Browsers other than Safari give HEIC and some AVIF files no type; the server decides from the bytes.
  const BY_SUFFIX = { heic: "image/heic", heif: "image/heic", avif: "image/avif" };
  const contentType = (file) => file.type || BY_SUFFIX[file.name.split(".").pop().toLowerCase()] || "image/jpeg";

  async function upload({ file, row }) {
    const bar = row.querySelector("progress");
    const state = row.querySelector(".state");
    const onProgress = (fraction) => { bar.value = fraction; state.textContent = `${Math.round(fraction * 100)}%`; };
    try {
      let image;
      if (file.size <= DIRECT_LIMIT) {
        const form = new FormData();
        form.append("file", file, file.name);
        image = await send("POST", `${base}/images`, form, { headers: headers(), onProgress });
      } else {
        const announced = await post("/uploads", { filename: file.name, content_type: contentType(file), size: file.size });
        image = announced.image;
        if (announced.upload_url) await send("PUT", announced.upload_url, file, { headers: announced.headers, onProgress });
      }
      bar.value = 1;
      state.textContent = "uploaded";
      row.dataset.id = image.id;
      onUploaded(image);
    } catch (error) {
      state.textContent = error.message;
      row.classList.add("failed");
    }
  }

  dropzone.addEventListener("click", () => input.click());
  dropzone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    dropzone.addEventListener(name, (e) => { e.preventDefault(); dropzone.classList.add("drag"); });
  }
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("drag"));
  dropzone.addEventListener("drop", (e) => {
    e.preventDefault();
    dropzone.classList.remove("drag");
    add([...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || f.type === ""));
  });
  return { add };
}
