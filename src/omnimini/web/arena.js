// The blind battle: one battle per round, any number of turns, then one vote and the reveal.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const prompt = $("prompt"), send = $("send"), status = $("status");
  const voteButtons = ["vote-a", "vote-b", "vote-tie", "vote-bothbad"].map($);
  let battle = null, busy = false, voted = false;

  function say(text, kind = "") { status.textContent = text; status.className = kind; }
  function setVoting(on) { voteButtons.forEach((b) => { b.disabled = !on; }); }
  function add(side, role, text) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    div.textContent = text;            // model output is untrusted: text only, never HTML
    $(`log-${side}`).appendChild(div);
    return div;
  }

  async function newBattle() {
    const r = await apiFetch("/arena/api/battles", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    if (!r.ok) throw new Error(await errorText(r));
    return (await r.json()).id;
  }

  async function ask() {
    const text = prompt.value.trim();
    if (!text || busy || voted) return;
    busy = true; send.disabled = true; setVoting(false); say("Both models are answering…");
    try {
      if (!battle) battle = await newBattle();
      const answers = {};
      for (const side of ["a", "b"]) {
        add(side, "user", text);
        answers[side] = add(side, "assistant streaming", "");
      }
      prompt.value = "";
      const r = await apiFetch(`/arena/api/battles/${battle}/turns`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: text }) });
      if (!r.ok) throw new Error(await errorText(r));
      let failed = false;
      await readEvents(r, (e) => {
        if (e.error) throw new Error(e.error.message);
        const box = answers[e.side];
        if (e.type === "delta") box.textContent += e.content;
        else if (e.type === "done") { box.classList.remove("streaming"); box.dataset.done = e.finish_reason; }
        else if (e.type === "error") { box.classList.remove("streaming"); box.classList.add("error"); box.textContent += `\n[${e.message}]`; failed = true; }
      });
      Object.values(answers).forEach((b) => b.classList.remove("streaming"));
      say(failed ? "A model failed; you can still vote, but this battle will not count." : "Vote now, or keep the conversation going.");
      setVoting(true);
    } catch (err) {
      say(err.message, "error");
      if (battle) setVoting(true);
    } finally {
      busy = false; send.disabled = false;
    }
  }

  async function vote(winner) {
    if (!battle || busy || voted) return;
    setVoting(false);
    const r = await apiFetch(`/arena/api/battles/${battle}/vote`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ winner }) });
    if (!r.ok) { say(await errorText(r), "error"); setVoting(true); return; }
    const v = await r.json();
    voted = true;
    $("reveal-a").textContent = v.model_a;
    $("reveal-b").textContent = v.model_b;
    prompt.disabled = true; send.disabled = true;
    say(v.counted ? "Thanks! Your vote counts. Press “New round” for another battle."
                  : `Thanks! This vote does not count: ${v.void_reason}.`, v.counted ? "good" : "error");
  }

  function newRound() {
    if (busy) return;
    battle = null; voted = false;
    for (const side of ["a", "b"]) { $(`log-${side}`).textContent = ""; $(`reveal-${side}`).textContent = ""; }
    prompt.disabled = false; send.disabled = false; setVoting(false); say(""); prompt.focus();
  }

  send.addEventListener("click", ask);
  prompt.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); ask(); } });
  voteButtons.forEach((b) => b.addEventListener("click", () => vote(b.dataset.winner)));
  $("new-round").addEventListener("click", newRound);
})();
