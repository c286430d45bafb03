// The API client: base URL, the API key (kept in localStorage), problem+json errors as exceptions.

const KEY_STORAGE = "imagesearch.apiKey";
export const base = (window.IMAGESEARCH_API || "").replace(/\/$/, "");
const listeners = { unauthorized: [] };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function apiKey() { return localStorage.getItem(KEY_STORAGE) || ""; }
export function setApiKey(key) { key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE); }
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

// Authorization, not X-API-Key: behind API Gateway the key authorizer caches its verdict by this header
// alone, so a request without it is refused at the edge (docs/edge-auth.md).
export function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// 401 from the functions, 403 from the key authorizer at the edge: either way the key does not hold.
const refused = (status) => status === 401 || status === 403;

async function parse(response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (refused(response.status)) listeners.unauthorized.forEach((fn) => fn());
    throw new ApiError(response.status, body);
  }
  return body;
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const url = `${base}${path}${query.toString() ? `?${query}` : ""}`;
  return parse(await fetch(url, { headers: headers() }));
}

export async function post(path, body) {
  const response = await fetch(`${base}${path}`, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body),
  });
  return parse(response);
}

export async function postForm(path, form) {
  return parse(await fetch(`${base}${path}`, { method: "POST", headers: headers(), body: form }));
}

/** XHR, for upload progress (fetch has no upload progress events). Resolves with the parsed body. */
export function send(method, url, body, { headers: extra = {}, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(extra)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let parsed = {};
      try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : {}; } catch { parsed = {}; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed);
      else {
        if (refused(xhr.status)) listeners.unauthorized.forEach((fn) => fn());
        reject(new ApiError(xhr.status, parsed));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: "network error" }));
    xhr.send(body);
  });
}
