// Chat with one model through the public API: POST /v1/chat/completions, streamed.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const status = $("status"), keyBox = $("api-key");
  let history = [], busy = false;
  keyBox.value = apiKey();                 // the same key as the arena pages: this tab only
  keyBox.addEventListener("change", () => setApiKey(keyBox.value));
  document.addEventListener("omnimini-api-key", () => { keyBox.value = apiKey(); });

  function add(role, text) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    div.textContent = text;
    $("log").appendChild(div);
    return div;
  }

  async function models() {
    const r = await apiFetch("/arena/api/chat-models");
    if (!r.ok) { status.textContent = await errorText(r); status.className = "error"; return; }
    const body = await r.json();
    for (const name of body.models) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = name;
      $("model").appendChild(opt);
    }
  }

  async function ask() {
    const text = $("prompt").value.trim();
    if (!text || busy) return;
    busy = true; $("send").disabled = true; status.textContent = ""; status.className = "";
    history.push({ role: "user", content: text });
    add("user", text);
    $("prompt").value = "";
    const box = add("assistant streaming", "");
    const messages = $("system").value.trim() ? [{ role: "system", content: $("system").value.trim() }, ...history] : history;
    const body = { model: $("model").value, messages, stream: true };
    const t = $("temperature").value;
    if (t !== "") body.temperature = Number(t);
    const headers = { "Content-Type": "application/json" };
    try {
      const r = await apiFetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(await errorText(r));
      await readEvents(r, (chunk) => {
        if (chunk.error) throw new Error(chunk.error.message);
        $("served-by").textContent = chunk.model;
        for (const c of chunk.choices || []) if (c.delta && c.delta.content) box.textContent += c.delta.content;
      });
      history.push({ role: "assistant", content: box.textContent });
    } catch (err) {
      history.pop();
      box.classList.add("error");
      status.textContent = err.message; status.className = "error";
    } finally {
      box.classList.remove("streaming");
      busy = false; $("send").disabled = false;
    }
  }

  $("send").addEventListener("click", ask);
  $("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); ask(); } });
  $("reset").addEventListener("click", () => { history = []; $("log").textContent = ""; $("served-by").textContent = ""; });
  models();
})();
