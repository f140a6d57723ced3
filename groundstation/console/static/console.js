// ODC operations console: state pushed over a WebSocket, drawn on canvases and tables.
// No framework and no network beyond this server: everything it needs ships here.
"use strict";
(function () {
  const S = {
    nodes: new Map(), alarms: new Map(), events: [], stations: { stations: [] }, isls: [],
    now: 0, token: sessionStorage.getItem("odc-token") || "", operator: null,
    sort: { k: "node", dir: 1 }, page: 0, per: 25, filter: "", selected: null,
    tracks: new Map(), jobPage: 0, jobState: "", models: [], drawn: [], lastMsgAt: 0,
  };
  window.odc = S;  // for scripts and the browser test
  let dirty = false;  // something to redraw at the next animation frame
  const $ = (q) => document.querySelector(q);
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const fmtT = (t) => t ? new Date(t * 1000).toISOString().slice(11, 19) : "";
  const si = (v, unit) => {
    if (v === null || v === undefined) return "";
    const a = Math.abs(v);
    const p = [[1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];
    for (const [f, s] of p) if (a >= f) return (v / f).toPrecision(3) + " " + s + unit;
    return v === 0 ? "0 " + unit : (v / 1e-9).toPrecision(3) + " n" + unit;
  };

  // -- auth -----------------------------------------------------------------------------
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("token")) { S.token = frag.get("token"); sessionStorage.setItem("odc-token", S.token); window.history.replaceState(null, "", location.pathname); }
  const authHeaders = () => S.token ? { Authorization: "Bearer " + S.token } : {};
  async function api(path, opts = {}) {
    const r = await fetch(path, { ...opts, headers: { "Content-Type": "application/json", ...authHeaders(), ...(opts.headers || {}) } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  async function checkSession() {
    const s = await api("/api/session");
    S.operator = s.operator;
    $("#session").hidden = !!S.operator;
    $("#who").hidden = !S.operator;
    $("#who").textContent = S.operator ? "operator: " + S.operator : "";
    $("#commands").hidden = !S.operator || !S.selected;
    $("#submit").hidden = !S.operator;
    renderAlarms();
    if (S.operator) loadModels();
  }
  $("#login").onclick = () => { S.token = $("#token").value.trim(); sessionStorage.setItem("odc-token", S.token); checkSession(); };

  // -- level of a node ------------------------------------------------------------------
  function level(n) {
    let lv = "ok";
    for (const a of S.alarms.values()) if (a.node === n.node && a.active) { if (a.level === "red") return "red"; lv = "yellow"; }
    return lv;
  }
  const COLORS = { ok: "#3fb950", yellow: "#e3b341", red: "#f85149" };

  // -- map ------------------------------------------------------------------------------
  const map = $("#map"), mctx = map.getContext("2d");
  const X = (lon) => (lon + 180) / 360 * map.width, Y = (lat) => (90 - lat) / 180 * map.height;
  function polyline(ctx, pts, dash) {
    if (!pts.length) return;
    ctx.setLineDash(dash || []); ctx.beginPath();
    pts.forEach(([la, lo], i) => i ? ctx.lineTo(X(lo), Y(la)) : ctx.moveTo(X(lo), Y(la)));
    ctx.stroke(); ctx.setLineDash([]);
  }
  // land (Natural Earth 1:110m, shipped as static/land.json): one path, built once
  let land = null;
  fetch("/static/land.json").then((r) => r.json()).then((d) => {
    const p = new Path2D();
    for (const r of d.rings) { for (let i = 0; i < r.length; i += 2) (i ? p.lineTo : p.moveTo).call(p, X(r[i] / 10), Y(r[i + 1] / 10)); p.closePath(); }
    land = p; S.landRings = d.rings.length; dirty = true;
  }).catch(() => { S.landRings = 0; });
  function drawMap() {
    const c = mctx, w = map.width, h = map.height;
    c.fillStyle = "#0a2136"; c.fillRect(0, 0, w, h);
    if (land) { c.fillStyle = "#1b3324"; c.fill(land, "evenodd"); c.strokeStyle = "#3c5f47"; c.lineWidth = 0.7; c.stroke(land); }
    // night side: the sub-solar point from the mission time (the map's only astronomy)
    if (S.now) {
      const d = new Date(S.now * 1000), doy = (Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 0)) / 864e5;
      const decl = -23.44 * Math.cos(2 * Math.PI * (doy + 10) / 365);
      const sublon = -15 * (d.getUTCHours() + d.getUTCMinutes() / 60 + d.getUTCSeconds() / 3600 - 12);
      c.fillStyle = "rgba(0,0,0,0.35)";
      for (let px = 0; px < w; px += 4) {
        const lon = px / w * 360 - 180, dl = (lon - sublon) * Math.PI / 180;
        const tlat = Math.atan(-Math.cos(dl) / Math.tan(decl * Math.PI / 180)) * 180 / Math.PI;
        if (decl > 0) c.fillRect(px, Y(tlat), 4, h - Y(tlat)); else c.fillRect(px, 0, 4, Y(tlat));
      }
    }
    c.strokeStyle = "#1d3a55"; c.lineWidth = 1;
    for (let lo = -180; lo <= 180; lo += 30) { c.beginPath(); c.moveTo(X(lo), 0); c.lineTo(X(lo), h); c.stroke(); }
    for (let la = -90; la <= 90; la += 30) { c.beginPath(); c.moveTo(0, Y(la)); c.lineTo(w, Y(la)); c.stroke(); }
    c.strokeStyle = "#2f5d86"; c.beginPath(); c.moveTo(0, Y(0)); c.lineTo(w, Y(0)); c.stroke();
    c.fillStyle = "#4d6a85"; c.font = "10px sans-serif";
    for (let lo = -150; lo <= 150; lo += 30) c.fillText(lo + "°", X(lo) + 2, h - 3);
    for (let la = -60; la <= 60; la += 30) c.fillText(la + "°", 2, Y(la) - 2);
    // stations and their visibility circles
    c.strokeStyle = "#a371f7"; c.fillStyle = "#a371f7"; c.lineWidth = 1.2;
    for (const s of S.stations.stations || []) {
      for (const line of s.circle) polyline(c, line);
      c.fillRect(X(s.lon) - 3, Y(s.lat) - 3, 6, 6); c.fillText(s.name, X(s.lon) + 5, Y(s.lat) - 4);
    }
    // ground tracks: the selected node, or all when there are few
    const few = S.nodes.size <= 12;
    c.lineWidth = 1;
    for (const [node, tr] of S.tracks) {
      if (!few && node !== S.selected) continue;
      c.strokeStyle = node === S.selected ? "#58a6ff" : "rgba(88,166,255,0.35)";
      for (const l of tr.past) polyline(c, l); for (const l of tr.next) polyline(c, l, [4, 4]);
    }
    // ISLs: links the nodes report up (thin), handovers of the last 10 mission minutes (thick, dashed)
    c.strokeStyle = "#ff7b72";
    for (const l of S.isls) {
      const a = S.nodes.get(l.src), b = S.nodes.get(l.dst);
      c.lineWidth = l.kind === "handover" ? 2.5 : 1.2;
      if (a && b && a.lat !== undefined && b.lat !== undefined && Math.abs(a.lon - b.lon) < 180) polyline(c, [[a.lat, a.lon], [b.lat, b.lon]], l.kind === "handover" ? [6, 3] : null);
    }
    // satellites
    const drawn = [];
    for (const n of S.nodes.values()) {
      if (n.lat === undefined) continue;
      const x = X(n.lon), y = Y(n.lat), col = COLORS[level(n)];
      c.beginPath(); c.arc(x, y, n.node === S.selected ? 6 : 4, 0, 2 * Math.PI);
      if (n.sunlit > 0.5) { c.fillStyle = col; c.fill(); } else { c.strokeStyle = col; c.lineWidth = 2; c.stroke(); }
      if (S.nodes.size <= 40 || n.node === S.selected) { c.fillStyle = "#d8e1ea"; c.fillText(n.node, x + 6, y + 3); }
      drawn.push({ node: n.node, x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10, lat: n.lat, lon: n.lon });
    }
    S.drawn = drawn; map.dataset.sats = drawn.length;
  }
  map.onclick = (e) => {
    const r = map.getBoundingClientRect(), sx = map.width / r.width;
    const x = (e.clientX - r.left) * sx, y = (e.clientY - r.top) * sx;
    let best = null, bd = 12 * 12;
    for (const d of S.drawn) { const dd = (d.x - x) ** 2 + (d.y - y) ** 2; if (dd < bd) { bd = dd; best = d.node; } }
    if (best) select(best);
  };
  async function loadTrack(node) {
    try { S.tracks.set(node, await api(`/api/nodes/${encodeURIComponent(node)}/track`)); } catch (e) { /* orbit unknown */ }
  }

  // -- fleet table ------------------------------------------------------------------------
  function rows() {
    const f = S.filter.toLowerCase();
    let r = [...S.nodes.values()];
    if (f) r = r.filter((n) => [n.node, n.profile, n.power_mode, n.status].some((v) => String(v ?? "").toLowerCase().includes(f)));
    const { k, dir } = S.sort;
    r.sort((a, b) => (a[k] ?? -Infinity) > (b[k] ?? -Infinity) ? dir : (a[k] ?? -Infinity) < (b[k] ?? -Infinity) ? -dir : (a.node > b.node ? 1 : -1));
    return r;
  }
  function renderFleet() {
    const all = rows(), pages = Math.max(1, Math.ceil(all.length / S.per));
    S.page = Math.min(S.page, pages - 1);
    $("#page").textContent = `${S.page + 1}/${pages}`;
    $("#fleet-count").textContent = `${all.length} of ${S.nodes.size} nodes`;
    const html = all.slice(S.page * S.per, (S.page + 1) * S.per).map((n) => {
      const L = n.limits || {};
      const socCls = n.soc === undefined ? "" : n.soc <= L.soc_floor ? "red" : n.soc < L.soc_yellow ? "yellow" : "";
      const tCls = n.temperature_c === undefined ? "" : n.temperature_c >= L.max_c ? "red" : n.temperature_c >= L.throttle_c ? "yellow" : "";
      const pct = (v) => v === undefined || v === null ? "" : (v * 100).toFixed(0) + "%";
      return `<tr data-node="${esc(n.node)}" class="${n.node === S.selected ? "sel" : ""}"><td>${esc(n.node)}</td><td>${esc(n.profile)}</td>` +
        `<td>${esc(n.status)}${n.paused ? " (paused)" : ""}</td><td class="${socCls}">${pct(n.soc)} / ${pct(L.soc_floor)}</td>` +
        `<td class="${tCls}">${n.temperature_c?.toFixed(1) ?? ""} / ${L.throttle_c ?? ""} / ${L.max_c ?? ""}</td>` +
        `<td>${esc(n.power_mode)}</td><td class="${n.safe_mode ? "red" : ""}">${n.safe_mode ? "SAFE" : ""}</td><td>${n.queue ?? ""}</td>` +
        `<td>${n.jobs_done ?? ""}</td><td>${n.upsets ?? ""}</td><td>${n.in_contact ? "yes" : "no"}</td><td>${n.sunlit > 0.5 ? "sun" : "eclipse"}</td></tr>`;
    }).join("");
    $("#fleet tbody").innerHTML = html;
  }
  $("#fleet thead").onclick = (e) => { const k = e.target.dataset.k; if (!k) return; S.sort = { k, dir: S.sort.k === k ? -S.sort.dir : 1 }; renderFleet(); };
  $("#fleet tbody").onclick = (e) => { const tr = e.target.closest("tr"); if (tr) select(tr.dataset.node); };
  $("#filter").oninput = (e) => { S.filter = e.target.value; S.page = 0; renderFleet(); };
  $("#prev").onclick = () => { S.page = Math.max(0, S.page - 1); renderFleet(); };
  $("#next").onclick = () => { S.page++; renderFleet(); };

  // -- node detail: plots with limits, eclipses shaded, contact marked ---------------------
  let hist = null;
  async function select(node) {
    S.selected = node;
    $("#node-name").textContent = node;
    $("#commands").hidden = !S.operator;
    const n = S.nodes.get(node);
    const modes = (n && n.limits && n.limits.modes) || (n && n.power_mode ? [n.power_mode] : []);
    $("#mode-select").innerHTML = modes.map((m) => `<option>${esc(m)}</option>`).join("");
    if (!S.tracks.has(node)) await loadTrack(node);
    try { hist = await api(`/api/nodes/${encodeURIComponent(node)}/history`); } catch (e) { hist = null; }
    renderFleet(); drawPlots(); drawMap();
  }
  function plot(id, title, series, limits, unit) {
    const cv = $(id), c = cv.getContext("2d"), w = cv.width, h = cv.height, pad = 30;
    c.fillStyle = "#0b1620"; c.fillRect(0, 0, w, h);
    c.fillStyle = "#8093a6"; c.font = "11px sans-serif"; c.fillText(title, pad, 12);
    if (!hist || hist.t.length < 2) return;
    const t = hist.t, t0 = t[0], t1 = t[t.length - 1];
    const vals = series.flatMap((s) => s.v).concat(limits.map((l) => l.v)).filter((v) => isFinite(v));
    let lo = Math.min(...vals), hi = Math.max(...vals); if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const px = (x) => pad + (x - t0) / (t1 - t0 || 1) * (w - pad - 5), py = (v) => h - 14 - (v - lo) / (hi - lo) * (h - 30);
    // eclipses shaded, contact marked along the bottom
    for (let i = 1; i < t.length; i++) {
      if (hist.sunlit[i] < 0.5) { c.fillStyle = "rgba(120,120,160,0.18)"; c.fillRect(px(t[i - 1]), 16, px(t[i]) - px(t[i - 1]) + 0.5, h - 30); }
      if (hist.in_contact[i] > 0.5) { c.fillStyle = "#a371f7"; c.fillRect(px(t[i - 1]), h - 12, px(t[i]) - px(t[i - 1]) + 0.5, 3); }
    }
    for (const l of limits) { if (!isFinite(l.v)) continue; c.strokeStyle = l.c; c.setLineDash([5, 3]); c.beginPath(); c.moveTo(pad, py(l.v)); c.lineTo(w - 5, py(l.v)); c.stroke(); c.setLineDash([]); c.fillStyle = l.c; c.fillText(l.name, w - 60, py(l.v) - 2); }
    for (const s of series) { c.strokeStyle = s.c; c.lineWidth = 1.5; c.beginPath(); s.v.forEach((v, i) => i ? c.lineTo(px(t[i]), py(v)) : c.moveTo(px(t[i]), py(v))); c.stroke(); }
    c.fillStyle = "#8093a6"; c.fillText(hi.toPrecision(3) + unit, 0, 24); c.fillText(lo.toPrecision(3) + unit, 0, h - 16);
    c.fillText(fmtT(t0), pad, h - 1); c.fillText(fmtT(t1), w - 55, h - 1);
  }
  function drawPlots() {
    const n = S.nodes.get(S.selected); if (!n || !hist) return;
    const L = n.limits || {};
    plot("#plot-soc", "state of charge (floor red, yellow band)", [{ v: hist.soc, c: "#3fb950" }], [{ v: L.soc_floor, c: "#f85149", name: "floor" }, { v: L.soc_yellow, c: "#e3b341", name: "yellow" }], "");
    plot("#plot-temp", "temperature °C", [{ v: hist.temperature_c, c: "#ffa657" }], [{ v: L.throttle_c, c: "#e3b341", name: "throttle" }, { v: L.max_c, c: "#f85149", name: "max" }], "");
    plot("#plot-power", "power W (load orange, solar yellow)", [{ v: hist.load_w, c: "#ffa657" }, { v: hist.solar_w, c: "#e3b341" }], [], "");
    const tp = hist.jobs_done.map((v, i) => i ? Math.max(0, (v - hist.jobs_done[i - 1]) / Math.max(1e-9, hist.t[i] - hist.t[i - 1]) * 3600) : 0);
    plot("#plot-tput", "throughput, jobs/h", [{ v: tp, c: "#58a6ff" }], [], "");
  }

  // -- alarms ---------------------------------------------------------------------------
  function renderAlarms() {
    const list = [...S.alarms.values()].sort((a, b) => (b.level === "red") - (a.level === "red") || a.acked - b.acked || b.raised_at - a.raised_at);
    $("#alarms tbody").innerHTML = list.map((a) => `<tr data-id="${esc(a.id)}" class="${a.level} ${a.acked ? "acked" : ""} ${a.active ? "" : "inactive"}">` +
      `<td class="lvl">${a.level.toUpperCase()}${a.peak !== a.level ? " (was " + a.peak + ")" : ""}</td><td>${esc(a.node)}</td><td>${esc(a.kind)}</td><td>${esc(a.message)}${a.active ? "" : " (cleared)"}</td>` +
      `<td>${fmtT(a.raised_at)}</td><td>${a.acked ? "ack " + esc(a.acked_by) : S.operator ? `<button class="ack" data-id="${esc(a.id)}">ack</button>` : "unacked"}</td></tr>`).join("");
    const red = list.filter((a) => a.active && a.level === "red").length, yel = list.filter((a) => a.active && a.level === "yellow").length;
    $("#alarm-counts").innerHTML = `<span style="color:#f85149">${red} red</span> · <span style="color:#e3b341">${yel} yellow</span> · ${list.filter((a) => !a.acked).length} unacked`;
  }
  $("#alarms tbody").onclick = async (e) => {
    const b = e.target.closest("button.ack"); if (!b) return;
    try { const a = await api(`/api/alarms/${encodeURIComponent(b.dataset.id)}/ack`, { method: "POST", body: "{}" }); upsertAlarm(a); renderAlarms(); } catch (err) { alert(err.message); }
  };
  function upsertAlarm(a) { if (a.acked && !a.active) S.alarms.delete(a.id); else S.alarms.set(a.id, a); }

  // -- commands -------------------------------------------------------------------------
  $("#commands").onclick = async (e) => {
    const name = e.target.dataset.cmd; if (!name || !S.selected) return;
    const args = {};
    if (name === "set_power_mode") args.mode = $("#mode-select").value;
    if (name === "cancel_job") args.job_id = $("#cancel-job").value.trim();
    try {
      const rec = await api(`/api/nodes/${encodeURIComponent(S.selected)}/commands`, { method: "POST", body: JSON.stringify({ name, args }) });
      const li = document.createElement("li"); li.id = "cmd-" + rec.cmd_id; li.dataset.cmd = rec.cmd_id;
      li.textContent = `${fmtT(rec.sent_at)} ${rec.node} ${name} ${rec.signed ? "signed" : "UNSIGNED"} … awaiting ack`;
      $("#cmd-log").prepend(li);
    } catch (err) { alert(err.message); }
  };
  function onCommand(rec) {
    const li = document.getElementById("cmd-" + rec.cmd_id); if (!li || !rec.ack) return;
    li.textContent = `${fmtT(rec.sent_at)} ${rec.node} ${rec.name} ${rec.signed ? "signed" : "UNSIGNED"}: ack ${rec.ack.ok ? "ok" : "REJECTED " + (rec.ack.reason || "")}`;
    li.className = rec.ack.ok ? "acked-ok" : "acked-bad";
  }

  // -- jobs -----------------------------------------------------------------------------
  let jobTimer = null;
  async function loadJobs() {
    jobTimer = null;
    try {
      const q = new URLSearchParams({ limit: 15, offset: S.jobPage * 15 }); if (S.jobState) q.set("state", S.jobState);
      const d = await api("/api/jobs?" + q);
      $("#job-counts").textContent = Object.entries(d.counts).map(([k, v]) => `${k} ${v}`).join(" · ");
      $("#jpage").textContent = `${S.jobPage + 1}/${Math.max(1, Math.ceil(d.total / 15))}`;
      $("#jobs tbody").innerHTML = d.jobs.map((j) => `<tr data-job="${esc(j.job_id)}"><td title="${esc(j.job_id)}">${esc(j.job_id.slice(0, 12))}</td><td>${esc(j.state)}</td><td>${esc(j.node)}</td>` +
        `<td>${j.epoch}</td><td>${j.attempts}</td><td>${si(j.modelled_latency_s, "s")}</td><td>${si(j.modelled_energy_j, "J")}</td><td>${j.migrations}</td><td>${esc(j.reason || j.detail || "")}</td></tr>`).join("");
    } catch (e) { $("#job-counts").textContent = e.message; }
  }
  const jobsSoon = () => { if (!jobTimer) jobTimer = setTimeout(loadJobs, 1000); };
  ["queued", "uplinked", "accepted", "deferred", "running", "migrating", "done", "failed"].forEach((s) => $("#job-state").insertAdjacentHTML("beforeend", `<option>${s}</option>`));
  $("#job-state").onchange = (e) => { S.jobState = e.target.value; S.jobPage = 0; loadJobs(); };
  $("#jprev").onclick = () => { S.jobPage = Math.max(0, S.jobPage - 1); loadJobs(); };
  $("#jnext").onclick = () => { S.jobPage++; loadJobs(); };
  $("#jobs tbody").onclick = async (e) => { const tr = e.target.closest("tr"); if (tr) showJob(tr.dataset.job); };
  async function showJob(id) {
    try {
      const j = await api(`/api/jobs/${encodeURIComponent(id)}`);
      let out = `job ${j.job_id}: ${j.state} on ${j.node ?? "-"} (epoch ${j.epoch}, attempts ${j.attempts}, migrations ${j.migrations})`;
      if (j.reason) out += `\nreason: ${j.reason}`;
      if (j.modelled_latency_s) out += `\nmodelled ${si(j.modelled_latency_s, "s")}, ${si(j.modelled_energy_j, "J")}`;
      if (j.outputs) for (const [k, v] of Object.entries(j.outputs)) {
        out += `\n${k} ${v.dtype}${JSON.stringify(v.shape)}: ${JSON.stringify(v.data).slice(0, 400)}`;
        if (v.shape.length === 2) out += `\nargmax per item: ${JSON.stringify(v.data.map((r) => r.indexOf(Math.max(...r))))}`;
      }
      $("#submit-result").textContent = out; $("#submit-result").dataset.state = j.state; $("#submit-result").dataset.job = j.job_id;
    } catch (e) { $("#submit-result").textContent = e.message; }
  }

  // -- submit ---------------------------------------------------------------------------
  async function loadModels() {
    try { S.models = (await api("/api/models")).models; } catch (e) { S.models = []; }
    const sel = $("#submit-model"), keep = sel.value;
    sel.innerHTML = S.models.map((m) => `<option value="${m.model}">${m.model.slice(0, 12)} (${m.inputs.map((i) => i.name + JSON.stringify(i.shape)).join(", ")})</option>`).join("");
    if (S.models.some((m) => m.model === keep)) sel.value = keep;
  }
  // models uploaded after the page loaded: a node storing one says so; the list also
  // refreshes when the operator opens it
  let modelTimer = null;
  const modelsSoon = () => { if (S.operator && !modelTimer) modelTimer = setTimeout(() => { modelTimer = null; loadModels(); }, 500); };
  $("#submit-model").onfocus = modelsSoon;
  $("#submit-fill").onclick = () => {
    const m = S.models.find((x) => x.model === $("#submit-model").value); if (!m) return;
    const inputs = {};
    for (const i of m.inputs) {
      const shape = (i.shape || [1]).map((d) => d ?? 1);
      const make = (k) => k === shape.length ? Math.round(Math.random() * 1600) / 100 : Array.from({ length: shape[k] }, () => make(k + 1));
      inputs[i.name] = make(0);
    }
    $("#submit-inputs").value = JSON.stringify(inputs);
  };
  let watching = null;
  $("#submit-go").onclick = async () => {
    try {
      const body = { model: $("#submit-model").value, inputs: JSON.parse($("#submit-inputs").value || "{}"), priority: +$("#submit-priority").value };
      if ($("#submit-node").value) body.node = $("#submit-node").value;
      if ($("#submit-deadline").value) body.deadline_s = +$("#submit-deadline").value;
      const r = await api("/api/jobs", { method: "POST", body: JSON.stringify(body) });
      watching = r.job_id;
      $("#submit-result").textContent = `submitted ${r.job_id}; waiting for its result…`;
      $("#submit-result").dataset.job = r.job_id; $("#submit-result").dataset.state = "queued";
    } catch (e) { $("#submit-result").textContent = "refused: " + e.message; }
  };

  // -- events ---------------------------------------------------------------------------
  function addEvents(evs) {
    const ol = $("#events");
    for (const e of evs) {
      const li = document.createElement("li"); li.className = e.level;
      li.textContent = `${fmtT(e.t)} ${e.node ?? "ground"} ${e.kind}: ${e.text}`;
      ol.prepend(li);
    }
    while (ol.children.length > 300) ol.lastChild.remove();
  }

  // -- the WebSocket ----------------------------------------------------------------------
  function apply(m) {
    S.now = m.now; S.lastMsgAt = Date.now();
    if (m.type === "snapshot") { S.nodes.clear(); S.alarms.clear(); $("#events").innerHTML = ""; }
    for (const n of m.nodes || []) {
      const isNew = !S.nodes.has(n.node);
      S.nodes.set(n.node, { ...(S.nodes.get(n.node) || {}), ...n });
      if (isNew) { $("#submit-node").insertAdjacentHTML("beforeend", `<option>${esc(n.node)}</option>`); if (S.nodes.size <= 12) loadTrack(n.node); }
      if (n.node === S.selected && hist && n.t && n.t > hist.t[hist.t.length - 1]) {
        hist.t.push(n.t); hist.soc.push(n.soc); hist.temperature_c.push(n.temperature_c); hist.load_w.push(n.load_w);
        hist.solar_w.push(n.solar_w); hist.jobs_done.push(n.jobs_done); hist.sunlit.push(n.sunlit); hist.in_contact.push(n.in_contact ? 1 : 0);
      }
    }
    for (const a of m.alarms || []) upsertAlarm(a);
    if (m.stations) S.stations = m.stations;
    if (m.isls) S.isls = m.isls;
    if (m.events && m.events.length) { addEvents(m.events); if (m.events.some((e) => e.kind === "model_stored")) modelsSoon(); }
    for (const c of m.commands || []) onCommand(c);
    if ((m.jobs || []).length) { jobsSoon(); if (watching && m.jobs.some((j) => j.job_id === watching && (j.state === "done" || j.state === "failed"))) { showJob(watching); watching = null; } }
    if (m.alarms && m.alarms.length) renderAlarms();
    if (!S.selected && S.nodes.size) select([...S.nodes.keys()].sort()[0]);  // plots from the start
    dirty = true;
  }
  function frame() {
    if (dirty) { dirty = false; drawMap(); renderFleet(); if (S.selected) drawPlots(); $("#clock").textContent = S.now ? new Date(S.now * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC" : "—"; }
    requestAnimationFrame(frame);
  }
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { $("#link").textContent = "live"; $("#link").className = "ok"; };
    ws.onmessage = (e) => apply(JSON.parse(e.data));
    ws.onclose = () => { $("#link").textContent = "reconnecting"; $("#link").className = "bad"; setTimeout(connect, 1000); };
  }
  setInterval(() => { for (const node of S.tracks.keys()) loadTrack(node); }, 300000);
  connect(); checkSession(); loadJobs(); renderAlarms(); requestAnimationFrame(frame);
})();
