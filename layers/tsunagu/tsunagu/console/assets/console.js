// tsunagu operator console: the little script the pages need (CSP: script-src 'self').
// Member CSV import with a progress bar and per-row errors; the usage chart (uPlot).
"use strict";

function el(tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text; // never innerHTML: server text stays text
  return e;
}

function showImportResult(box, status, data) {
  box.replaceChildren();
  if (status === 401) { window.location.reload(); return; }
  const err = data && data.error;
  if (err) {
    const p = el("div", err.message); p.className = "error"; p.setAttribute("role", "alert");
    p.dataset.code = err.code; box.append(p); return;
  }
  const ok = data.rejected === 0;
  const head = el("div", ok
    ? data.imported.toLocaleString("ja-JP") + "件を取り込みました。"
    : "エラーのある行が" + data.rejected.toLocaleString("ja-JP") + "行あるため、どの行も取り込んでいません。次の行を直してから取り込み直してください。");
  head.className = ok ? "notice" : "error"; head.setAttribute("role", ok ? "status" : "alert");
  head.dataset.code = ok ? "imported" : "rows_rejected";
  box.append(head);
  if (!ok) {
    const t = el("table"); t.className = "list"; t.id = "import-errors";
    const hr = el("tr"); ["行", "項目", "内容"].forEach(h => { const th = el("th", h); th.scope = "col"; hr.append(th); });
    const thead = el("thead"); thead.append(hr); t.append(thead);
    const tb = el("tbody");
    data.errors.forEach(e => { const tr = el("tr"); [String(e.row), e.field || "", e.message].forEach(v => tr.append(el("td", v))); tb.append(tr); });
    t.append(tb); box.append(t);
  }
}

function setupImport() {
  const form = document.getElementById("import-form");
  if (!form) return;
  const bar = document.getElementById("import-progress");
  const box = document.getElementById("import-result");
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const file = document.getElementById("csv-file").files[0];
    if (!file) return;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.url);
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    bar.hidden = false; bar.value = 0;
    xhr.upload.onprogress = e => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
    xhr.onload = () => {
      bar.value = 100;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = {error: {code: "unexpected", message: "取り込みに失敗しました。もう一度お試しください。"}}; }
      showImportResult(box, xhr.status, data);
    };
    xhr.onerror = () => showImportResult(box, 0, {error: {code: "network", message: "通信できませんでした。接続を確かめてもう一度お試しください。"}});
    xhr.send(file);
  });
}

function setupChart() {
  const box = document.getElementById("usage-chart");
  const src = document.getElementById("usage-data");
  if (!box || !src || typeof uPlot === "undefined") return;
  const d = JSON.parse(src.textContent);
  const xs = d.days.map((_, i) => i + 1);
  const series = [{label: "日"}, {label: "累計送信数", stroke: "#04843b", width: 2}];
  const data = [xs, d.billable];
  if (d.free) { series.push({label: "無料分", stroke: "#0a5dc2", dash: [6, 4]}); data.push(xs.map(() => d.free)); }
  if (d.cap) { series.push({label: "上限", stroke: "#c62828", dash: [2, 4]}); data.push(xs.map(() => d.cap)); }
  const width = Math.max(280, box.clientWidth);
  new uPlot({
    width: width, height: 240, series: series,
    scales: {x: {time: false}},
    axes: [{values: (u, vals) => vals.map(v => d.days[v - 1] ? d.days[v - 1] + "日" : "")},
           {values: (u, vals) => vals.map(v => v.toLocaleString("ja-JP"))}],
  }, data, box);
}

document.addEventListener("DOMContentLoaded", () => { setupImport(); setupChart(); });
