// Shared by the pages: fetch with the API key, and reading server-sent events.
"use strict";

// The API key, when the server runs with --auth: asked once, kept for this tab only (sessionStorage),
// sent as "Authorization: Bearer ...". Without auth the server never answers 401 and nothing is asked.
const API_KEY_ITEM = "omnimini-api-key";

function apiKey() { return sessionStorage.getItem(API_KEY_ITEM) || ""; }
function setApiKey(key) {
  if (key) sessionStorage.setItem(API_KEY_ITEM, key.trim()); else sessionStorage.removeItem(API_KEY_ITEM);
}

// fetch() with the key; on 401 asks for a (new) key and tries again, until the user cancels.
async function apiFetch(url, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
    const r = await fetch(url, { ...options, headers });
    if (r.status !== 401) return r;
    const entered = window.prompt(`${await errorText(r.clone())}\n\nThis server needs an API key (kept in this tab only):`);
    if (!entered || !entered.trim()) return r;
    setApiKey(entered);
    document.dispatchEvent(new CustomEvent("omnimini-api-key"));
  }
}

// Read a server-sent-events response from fetch(): calls onData(object) for each `data: {...}` line.
async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onData(JSON.parse(data));
      }
    }
  }
}

// The message of an OpenAI-style error envelope, or the status line.
async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (e) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}
