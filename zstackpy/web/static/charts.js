// Hand-drawn SVG charts: a donut of counts by state, and a used/free bar.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2e7d32", "#1565c0", "#f9a825", "#c62828", "#6a1b9a", "#00838f", "#795548", "#546e7a"];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  el.append(...children);
  return el;
}

// segments: [{label, value}]; colours follow the order, states with a meaning keep theirs.
const STATE_COLOURS = {
  Running: "#2e7d32", Connected: "#2e7d32", Stopped: "#78909c", Disconnected: "#c62828",
  Connecting: "#f9a825", Starting: "#f9a825", Stopping: "#f9a825", Paused: "#6a1b9a",
  Destroyed: "#5d4037", Crashed: "#c62828", Unknown: "#bdbdbd", Migrating: "#1565c0",
  Enabled: "#2e7d32", Disabled: "#78909c", PreMaintenance: "#f9a825", Maintenance: "#6a1b9a",
};

export function donut(title, segments) {
  const total = segments.reduce((sum, s) => sum + s.value, 0);
  const r = 40;
  const circumference = 2 * Math.PI * r;
  const chart = svg("svg", { viewBox: "0 0 100 100", class: "donut", role: "img", "aria-label": title });
  chart.append(svg("circle", { cx: 50, cy: 50, r, fill: "none", stroke: "#eceff1", "stroke-width": 16 }));
  let offset = 0;
  segments.forEach((s, i) => {
    if (!s.value) return;
    const length = (s.value / total) * circumference;
    chart.append(svg("circle", {
      cx: 50, cy: 50, r, fill: "none", "stroke-width": 16,
      stroke: STATE_COLOURS[s.label] || PALETTE[i % PALETTE.length],
      "stroke-dasharray": `${length} ${circumference - length}`,
      "stroke-dashoffset": String(-offset), transform: "rotate(-90 50 50)",
    }, svg("title", {}, `${s.label}: ${s.value}`)));
    offset += length;
  });
  chart.append(svg("text", { x: 50, y: 55, "text-anchor": "middle", class: "donut-total" }, String(total)));
  const legend = h("ul.legend", {}, segments.map((s, i) => h("li", { dataset: { label: s.label } },
    h("span.swatch", { style: `background:${STATE_COLOURS[s.label] || PALETTE[i % PALETTE.length]}` }),
    `${s.label}: `, h("b", {}, String(s.value)))));
  return h("figure.chart", { dataset: { chart: title } }, h("figcaption", {}, title), chart, legend);
}

export function usage(title, used, total, format = String) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const bar = svg("svg", { viewBox: "0 0 200 16", class: "usage", role: "img", "aria-label": title, preserveAspectRatio: "none" },
    svg("rect", { x: 0, y: 0, width: 200, height: 16, fill: "#eceff1" }),
    svg("rect", { x: 0, y: 0, width: 200 * share, height: 16, fill: share > 0.85 ? "#c62828" : "#1565c0" }));
  return h("figure.chart.usage-chart", { dataset: { chart: title } },
    h("figcaption", {}, title), bar,
    h("div.usage-text", {}, `used ${format(used)} · free ${format(total - used)} · total ${format(total)} (${(share * 100).toFixed(1)}%)`));
}
