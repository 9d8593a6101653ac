// The leaderboard table and an inline-SVG chart of the 95% intervals.
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(rows) {
    const box = $("chart");
    box.textContent = "";
    if (!rows.length) return;
    const width = 900, left = 260, right = 30, rowH = 26, top = 20, height = top + rows.length * rowH + 30;
    let lo = Math.min(...rows.map((r) => r.lower)), hi = Math.max(...rows.map((r) => r.upper));
    if (hi - lo < 20) { lo -= 10; hi += 10; }
    const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
    const x = (v) => left + (v - lo) / (hi - lo) * (width - left - right);
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "95% intervals of the ratings" });
    const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / 4)));
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
      svg.appendChild(el("line", { x1: x(t), x2: x(t), y1: top - 8, y2: height - 24, stroke: "#e3e7ee" }));
      svg.appendChild(el("text", { x: x(t), y: height - 8, "text-anchor": "middle", "font-size": 11, fill: "#6b7280" }, String(Math.round(t))));
    }
    rows.forEach((r, i) => {
      const y = top + i * rowH + rowH / 2;
      svg.appendChild(el("text", { x: left - 10, y: y + 4, "text-anchor": "end", "font-size": 12 }, r.model));
      svg.appendChild(el("line", { class: "interval", x1: x(r.lower), x2: x(r.upper), y1: y, y2: y, stroke: "#2f6fde", "stroke-width": 3 }));
      svg.appendChild(el("circle", { cx: x(r.rating), cy: y, r: 4.5, fill: "#1d2430" }));
    });
    box.appendChild(svg);
  }

  async function load() {
    const style = $("style").checked;
    const r = await apiFetch(`/arena/api/leaderboard?style=${style}`);
    const body = await r.json();
    const tbody = $("board").querySelector("tbody");
    tbody.textContent = "";
    if (!r.ok) { $("summary").textContent = body.error ? body.error.message : r.statusText; return; }
    for (const row of body.leaderboard) {
      const tr = document.createElement("tr");
      const cells = [row.rank, row.model, row.rating.toFixed(0), `${row.lower.toFixed(0)} – ${row.upper.toFixed(0)}`, row.votes, row.elo.toFixed(0)];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i !== 1) td.className = "num";
        tr.appendChild(td);
      });
      tr.dataset.model = row.model;
      tbody.appendChild(tr);
    }
    $("summary").textContent = `${body.counted_votes} counted votes, ${body.void_votes} void`;
    chart(body.leaderboard);
  }

  $("style").addEventListener("change", load);
  load();
})();
