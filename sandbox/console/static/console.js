// The console's dashboard page: lays out the panels of one Grafana dashboard and draws them with
// uPlot from the console's own API (/api/d/<uid> and /api/d/<uid>/data), refreshing every few
// seconds. Drill events and pages are marks on every chart; exemplar points open their trace.
"use strict";

(function () {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const config = JSON.parse(root.dataset.config);
  const params = new URLSearchParams(location.search);
  const PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9",
    "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477"];
  const NAMED = { green: "#56a64b", red: "#e02f44", orange: "#ff9830", yellow: "#fade2a",
    purple: "#a352cc", blue: "#3274d9", "dark-red": "#ad0317" };
  const ROW_PX = 30;
  const colour = (name) => NAMED[name] || name || "#888";
  const state = { layout: null, data: null, plots: {}, timer: null, busy: false, first: true };

  // -- units, as sandbox/render/units.py writes them ------------------------------------------
  const SUFFIX = { reqps: " req/s", ops: " ops/s", short: "", none: "", "": "" };
  function num(v, decimals) {
    if (decimals !== null && decimals !== undefined) return v.toFixed(decimals);
    const m = Math.abs(v);
    if (m >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (m >= 1e3) return +(v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(3));
  }
  function fmt(v, unit, decimals) {
    if (v === null || v === undefined || Number.isNaN(v)) return "No data";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    if (unit === "s") {
      const m = Math.abs(v);
      if (m === 0) return "0 s";
      if (m < 1e-3) return num(v * 1e6, decimals) + " µs";
      if (m < 1) return num(v * 1e3, decimals) + " ms";
      if (m < 120) return num(v, decimals) + " s";
      return num(v / 60, decimals) + " min";
    }
    if (unit === "percentunit") return num(v * 100, decimals) + "%";
    if (unit && unit.startsWith("suffix:")) return num(v, decimals) + " " + unit.slice(7).trim();
    return num(v, decimals) + (unit in SUFFIX ? SUFFIX[unit] : " " + unit);
  }
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // -- the time range --------------------------------------------------------------------------
  const select = document.getElementById("range");
  const auto = document.getElementById("auto");
  function rangeParams() {
    return { from: params.get("from") || "now-15m", to: params.get("to") || "now" };
  }
  function syncSelect() {
    const { from, to } = rangeParams();
    const known = Array.from(select.options).some((o) => o.value === from);
    if (known && to === "now") { select.value = from; return; }
    // A range from a link (the drill's page, a bookmark): shown as it is until another is chosen.
    const custom = el("option", "", "From " + (/^\d+$/.test(from) ? clock(+from / 1000) : from) + " to " + (/^\d+$/.test(to) ? clock(+to / 1000) : to));
    custom.value = "custom";
    select.insertBefore(custom, select.firstChild);
    select.value = "custom";
  }
  select.addEventListener("change", () => {
    if (select.value === "custom") return;
    if (select.value === "drill") {
      const w = state.data && state.data.drill && state.data.drill.window;
      if (!w) return;
      params.set("from", w.from); params.set("to", w.to);
    } else {
      params.set("from", select.value); params.set("to", "now");
    }
    history.replaceState(null, "", "?" + params.toString());
    refresh();
  });
  auto.addEventListener("change", schedule);

  // -- layout ----------------------------------------------------------------------------------
  function promLinks(panel) {
    const box = el("span", "links");
    panel.queries.forEach((q) => {
      const a = el("a", "prom-link", panel.queries.length > 1 ? q.ref_id + " ↗" : "PromQL ↗");
      a.href = q.prometheus; a.target = "_blank"; a.rel = "noopener";
      a.title = q.expr;
      box.appendChild(a);
    });
    return box;
  }
  function buildGrid(layout) {
    const grid = document.getElementById("grid");
    grid.textContent = "";
    layout.panels.forEach((panel) => {
      const box = el("section", "panel panel-" + panel.type);
      box.id = "panel-" + panel.id;
      box.dataset.panelId = panel.id;
      box.style.gridColumn = (panel.grid.x + 1) + " / span " + panel.grid.w;
      box.style.gridRow = (panel.grid.y + 1) + " / span " + panel.grid.h;
      const head = el("header", "panel-head");
      const title = el("h3", "", panel.title);
      title.title = panel.description;
      head.appendChild(title);
      if (panel.description) {
        const info = el("span", "info", "?");
        info.title = panel.description;
        head.appendChild(info);
      }
      head.appendChild(promLinks(panel));
      box.appendChild(head);
      box.appendChild(el("div", "panel-body"));
      box.appendChild(el("div", "panel-legend"));
      box.appendChild(el("div", "panel-error"));
      grid.appendChild(box);
    });
    const focus = params.get("viewPanel");
    if (focus) {
      const target = document.getElementById("panel-" + focus);
      if (target) { target.classList.add("focus"); setTimeout(() => target.scrollIntoView({ block: "center" }), 50); }
    }
  }

  // -- stat tiles ------------------------------------------------------------------------------
  function thresholdColour(panel, value) {
    if (value === null || !Number.isFinite(value)) return "#6e7079";
    let chosen = "green";
    panel.thresholds.forEach((t) => { if (t.value === null || value >= t.value) chosen = t.colour; });
    return colour(chosen);
  }
  function drawStat(panel, box, series) {
    const body = box.querySelector(".panel-body");
    const values = series.length ? series[0].values : [];
    let last = null;
    for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) { last = values[i]; break; }
    box.style.background = thresholdColour(panel, last);
    box.dataset.drawn = last === null ? 0 : 1;
    body.textContent = "";
    const finite = values.filter((v) => v !== null);
    if (finite.length > 1) {
      const lo = Math.min(...finite), hi = Math.max(...finite), span = hi - lo || 1;
      const pts = [];
      values.forEach((v, i) => { if (v !== null) pts.push((100 * i / (values.length - 1)).toFixed(2) + "," + (38 - 30 * (v - lo) / span).toFixed(2)); });
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 100 40"); svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("class", "spark");
      const line = document.createElementNS(svg.namespaceURI, "polyline");
      line.setAttribute("points", pts.join(" "));
      svg.appendChild(line);
      body.appendChild(svg);
    }
    const value = el("div", "stat-value", fmt(last, panel.unit, panel.decimals));
    const steps = panel.thresholds.filter((t) => t.value !== null).map((t) => t.colour + " ≥ " + fmt(t.value, panel.unit));
    value.title = panel.title + ": " + value.textContent + (steps.length ? "\nthresholds: " + steps.join(", ") : "");
    body.appendChild(value);
  }

  // -- time series -----------------------------------------------------------------------------
  function marksPlugin(panel) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          const data = state.data;
          if (!data) return;
          ctx.save();
          panel.thresholds.forEach((t) => {
            if (t.value === null || panel.threshold_style === "off") return;
            const y = u.valToPos(t.value, "y", true);
            if (y < top || y > top + height) return;
            ctx.strokeStyle = colour(t.colour); ctx.setLineDash([6, 4]); ctx.lineWidth = 1;
            ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
          });
          ctx.setLineDash([3, 3]);
          ctx.font = Math.round(10 * devicePixelRatio) + "px sans-serif";
          ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
          // Each label takes the first row where it does not touch the previous one: readable
          // text, never one label printed over another (a fourth row is left out; the list has it).
          const rows = [];
          const pad = 8 * devicePixelRatio;
          data.annotations.slice().sort((a, b) => a.time - b.time).forEach((m) => {
            if (m.time < u.scales.x.min || m.time > u.scales.x.max) return;
            const x = u.valToPos(m.time, "x", true);
            ctx.strokeStyle = colour(m.colour); ctx.globalAlpha = 0.9;
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
            const right = x + 3 * devicePixelRatio + ctx.measureText(m.text).width + pad;
            let row = rows.findIndex((end) => x >= end);
            if (row < 0) { rows.push(0); row = rows.length - 1; }
            rows[row] = right;
            if (row < 3) {
              ctx.fillStyle = colour(m.colour);
              ctx.fillText(m.text, x + 3 * devicePixelRatio, top + (11 + 12 * row) * devicePixelRatio);
            }
          });
          ctx.globalAlpha = 1; ctx.setLineDash([]);
          (u._exemplars || []).forEach((e) => {
            if (e.time < u.scales.x.min || e.time > u.scales.x.max) return;
            const x = u.valToPos(e.time, "x", true), y = u.valToPos(e.value, "y", true);
            if (y < top || y > top + height) return;
            const r = 4 * devicePixelRatio;
            ctx.fillStyle = "rgba(163, 82, 204, 0.85)";
            ctx.beginPath(); ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath(); ctx.fill();
          });
          ctx.restore();
        }],
      },
    };
  }

  function nearestExemplar(u, left, top) {
    let best = null, bestD = 64;
    (u._exemplars || []).forEach((e) => {
      const dx = u.valToPos(e.time, "x") - left, dy = u.valToPos(e.value, "y") - top;
      const d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = e; }
    });
    return best;
  }

  function tooltipPlugin(panel, raw) {
    let tip;
    return {
      hooks: {
        init: [(u) => {
          tip = el("div", "tooltip"); tip.style.display = "none";
          u.over.appendChild(tip);
          u.over.addEventListener("mouseleave", () => { tip.style.display = "none"; });
          u.over.addEventListener("click", () => {
            const { left, top } = u.cursor;
            const e = nearestExemplar(u, left, top);
            if (e) location.href = "/traces/" + e.trace_id;
          });
        }],
        setCursor: [(u) => {
          const { left, top, idx } = u.cursor;
          if (idx === null || idx === undefined || left < 0) { tip.style.display = "none"; return; }
          const lines = [clock(u.data[0][idx])];
          raw.current.forEach((s, i) => {
            if (!u.series[i + 1].show) return;
            const v = s.values[idx];
            if (v === null) return;
            lines.push("<i style='background:" + PALETTE[i % PALETTE.length] + "'></i>" +
              s.name.replace(/[<&]/g, "") + ": <b>" + fmt(v, panel.unit, panel.decimals) + "</b>");
          });
          const e = nearestExemplar(u, left, top);
          if (e) lines.push("<span class='ex'>exemplar " + fmt(e.value, panel.unit) + " · click to open trace " + e.trace_id.slice(0, 12) + "…</span>");
          u.over.style.cursor = e ? "pointer" : "";
          tip.innerHTML = lines.join("<br>");
          tip.style.display = "block";
          const w = u.over.clientWidth;
          tip.style.left = (left > w / 2 ? left - tip.offsetWidth - 12 : left + 12) + "px";
          tip.style.top = Math.max(0, top - 10) + "px";
        }],
      },
    };
  }

  function stackedData(panel, series) {
    const rx = panel.stacked && panel.unstacked ? new RegExp(panel.unstacked) : null;
    const onStack = series.map((s) => panel.stacked && !(rx && rx.test(s.name)));
    const acc = [];
    let below = null;
    const bands = [];
    series.forEach((s, i) => {
      if (!onStack[i]) { acc.push(s.values); return; }
      const sum = s.values.map((v, j) => (v === null ? (below ? below[j] : null) : v + (below && below[j] !== null ? below[j] : 0)));
      acc.push(sum);
      const prev = onStack.slice(0, i).lastIndexOf(true);
      if (prev >= 0) bands.push({ series: [i + 1, prev + 1] });
      below = sum;
    });
    return { values: acc, bands, onStack };
  }

  function drawTimeseries(panel, box, series, times, exemplars) {
    const body = box.querySelector(".panel-body");
    const legendBox = box.querySelector(".panel-legend");
    const drawn = series.filter((s) => s.values.some((v) => v !== null)).length;
    box.dataset.drawn = drawn;
    const key = series.map((s) => s.name).join("\u0000");
    let entry = state.plots[panel.id];
    const stacked = stackedData(panel, series);
    const aligned = [times, ...stacked.values];
    if (entry && entry.key === key) {
      entry.raw.current = series;
      entry.plot._exemplars = exemplars;
      entry.plot.setData(aligned);
    } else {
      if (entry) entry.plot.destroy();
      body.textContent = ""; legendBox.textContent = "";
      if (panel.legend) {
        series.forEach((s, i) => {
          const item = el("span", "key");
          const sw = el("i"); sw.style.background = PALETTE[i % PALETTE.length];
          item.appendChild(sw); item.appendChild(document.createTextNode(s.name));
          item.addEventListener("click", () => {
            const shown = !entry.plot.series[i + 1].show;
            entry.plot.setSeries(i + 1, { show: shown });
            item.classList.toggle("off", !shown);
          });
          legendBox.appendChild(item);
        });
      }
      const raw = { current: series };
      const alpha = Math.round(255 * Math.max(panel.fill_opacity, panel.stacked ? 25 : 0) / 100).toString(16).padStart(2, "0");
      const opts = {
        width: Math.max(100, body.clientWidth),
        height: Math.max(60, body.clientHeight),
        legend: { show: false },
        cursor: { points: { size: 6 }, drag: { x: false, y: false } },
        scales: {
          x: { time: true, range: () => [state.data.start, state.data.end] },
          y: { range: (u, lo, hi) => [panel.min !== null ? panel.min : Math.min(0, lo || 0), panel.max !== null ? panel.max : (hi > 0 ? hi * 1.1 : 1)] },
        },
        axes: [
          { stroke: "#555", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" }, space: 64,
            values: (u, ticks) => {
              const seconds = state.data && state.data.end - state.data.start <= 1200;
              return ticks.map((t) => {
                const d = new Date(t * 1000), two = (n) => String(n).padStart(2, "0");
                return two(d.getHours()) + ":" + two(d.getMinutes()) + (seconds ? ":" + two(d.getSeconds()) : "");
              });
            } },
          { stroke: "#555", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" },
            size: (u, values) => (values ? Math.max(40, 28 + 7 * Math.max(...values.map((v) => String(v).length))) : 56),
            values: (u, ticks) => ticks.map((v) => fmt(v, panel.unit, panel.decimals)) },
        ],
        series: [{}, ...series.map((s, i) => {
          const c = PALETTE[i % PALETTE.length];
          const dashed = panel.stacked && !stacked.onStack[i];
          return {
            label: s.name, stroke: c, width: 1.25,
            dash: dashed ? [8, 6] : undefined,
            fill: stacked.onStack[i] || (!panel.stacked && panel.fill_opacity) ? c + alpha : undefined,
          };
        })],
        bands: stacked.bands,
        plugins: [marksPlugin(panel), tooltipPlugin(panel, raw)],
      };
      const plot = new uPlot(opts, aligned, body);
      plot._exemplars = exemplars;
      entry = state.plots[panel.id] = { plot, key, raw };
    }
    let empty = box.querySelector(".no-data");
    if (!drawn && !empty) { empty = el("div", "no-data", "No data"); body.appendChild(empty); }
    if (drawn && empty) empty.remove();
  }

  // -- data ------------------------------------------------------------------------------------
  function banner(text, kind) {
    const node = document.getElementById("banner");
    node.textContent = "";
    if (text) { const b = el("div", "banner " + (kind || "error"), text); node.appendChild(b); }
  }
  function drillBanner(drill) {
    const node = document.getElementById("drill-banner");
    node.textContent = "";
    if (!drill || !drill.alert) return;
    const b = el("div", "banner page");
    b.appendChild(document.createTextNode("PAGE: "));
    b.appendChild(el("b", "", drill.alert));
    b.appendChild(document.createTextNode(" · "));
    const a = el("a", "", "the drill's page, timeline and hints"); a.href = "/drill";
    b.appendChild(a);
    node.appendChild(b);
    document.getElementById("nav-drill").classList.add("paging");
  }
  function listMarks(data) {
    const list = document.getElementById("marks");
    list.textContent = "";
    data.annotations.slice().sort((a, b) => a.time - b.time).forEach((m) => {
      const li = el("li");
      li.appendChild(el("span", "muted", clock(m.time) + " "));
      const t = el("b", "", m.text); t.style.color = colour(m.colour);
      li.appendChild(t);
      list.appendChild(li);
    });
  }
  function draw(data) {
    state.data = data;
    const byId = {};
    data.panels.forEach((p) => { byId[p.id] = p; });
    state.layout.panels.forEach((panel) => {
      const box = document.getElementById("panel-" + panel.id);
      const got = byId[panel.id];
      if (!got) return;
      box.querySelector(".panel-error").textContent = got.errors.length ? "query error: " + got.errors.join("; ") : "";
      if (panel.type === "stat") drawStat(panel, box, got.series);
      else drawTimeseries(panel, box, got.series, data.times, got.exemplars);
    });
    listMarks(data);
    drillBanner(data.drill);
    if (data.drill && data.drill.window) select.querySelector("option[value=drill]").disabled = false;
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    const started = performance.now();
    const { from, to } = rangeParams();
    try {
      const response = await fetch("/api/d/" + encodeURIComponent(config.uid) + "/data?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to));
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.statusText);
      if (data.prometheus_error) {
        banner("Prometheus is not answering: " + data.prometheus_error + ". The panels show the last data they had; the console retries every " + config.refresh_s + " s.");
        root.classList.add("stale");
      } else {
        banner("");
        root.classList.remove("stale");
        draw(data);
      }
      document.getElementById("status").textContent = "updated " + clock(Date.now() / 1000) + (data.live ? "" : " (fixed range)");
      if (state.first) {
        state.first = false;
        document.body.dataset.firstDrawMs = Math.round(performance.now());
      }
      document.body.dataset.lastDrawMs = Math.round(performance.now() - started);
      document.body.dataset.refreshes = (+(document.body.dataset.refreshes || 0) + 1);
    } catch (err) {
      banner("The console could not load data: " + err.message);
    } finally {
      state.busy = false;
      schedule();
    }
  }
  function schedule() {
    clearTimeout(state.timer);
    const live = !state.data || state.data.live;
    if (auto.checked && live) state.timer = setTimeout(refresh, config.refresh_s * 1000);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      Object.entries(state.plots).forEach(([id, entry]) => {
        const body = document.querySelector("#panel-" + id + " .panel-body");
        entry.plot.setSize({ width: body.clientWidth, height: body.clientHeight });
      });
    }, 150);
  });

  async function start() {
    if (typeof uPlot === "undefined") {
      banner("The chart library did not load: run `make setup` (it installs uplot from npm).");
      return;
    }
    syncSelect();
    state.layout = config.layout || await (await fetch("/api/d/" + encodeURIComponent(config.uid))).json();
    buildGrid(state.layout);
    await refresh();
  }
  start();
})();
