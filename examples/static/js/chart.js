// The overview: counts per status, the total amount, and payments by status per day (SVG).

import { $, element } from "./dom.js";

export const STATUSES = ["Pending", "Authorized", "Confirmed", "Failed", "Cancelled", "Refunded"];
const COLOURS = {
  Pending: "#e0a800",
  Authorized: "#3b82c4",
  Confirmed: "#2f9e5b",
  Failed: "#d64545",
  Cancelled: "#8a94a6",
  Refunded: "#8a5cc4",
};
const SVG = "http://www.w3.org/2000/svg";
let shown = null;

export function renderSummary(summary) {
  const key = JSON.stringify(summary);
  if (key === shown) return; // nothing changed since the last look
  shown = key;
  const total = STATUSES.reduce((sum, s) => sum + summary.byStatus[s], 0);
  const amounts = Object.entries(summary.totals).map(([c, a]) => `${a} ${c}`).join(" · ") || "0";
  $("counts").replaceChildren(
    tile("All", total, "count-all"),
    ...STATUSES.map((s) => tile(s, summary.byStatus[s], `count-${s}`)),
    tile("Total amount", amounts, "count-total"),
  );
  drawChart(summary.days);
}

function tile(label, value, id) {
  const box = element("div", undefined, "tile");
  box.id = id;
  box.append(element("span", label, "tile-label"), element("strong", String(value)));
  return box;
}

export function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(days) {
  const chart = $("chart");
  const [width, height, pad] = [600, 160, 24];
  chart.setAttribute("viewBox", `0 0 ${width} ${height + pad}`);
  const max = Math.max(1, ...days.map((d) => STATUSES.reduce((n, s) => n + d.byStatus[s], 0)));
  const slot = Math.min(60, (width - pad) / Math.max(days.length, 1));
  const marks = [svg("text", { x: 0, y: 10, class: "axis" }, String(max))];
  days.forEach((day, index) => {
    let y = height;
    for (const status of STATUSES) {
      const count = day.byStatus[status];
      if (!count) continue;
      const h = (count / max) * (height - 8);
      y -= h;
      const bar = svg("rect", {
        x: pad + index * slot + slot * 0.15, y, width: slot * 0.7, height: h,
        fill: COLOURS[status], class: `bar bar-${status}`,
      });
      bar.append(svg("title", {}, `${day.day}: ${count} ${status}`));
      marks.push(bar);
    }
    if (days.length <= 14 || index % Math.ceil(days.length / 14) === 0) {
      const x = pad + index * slot + slot / 2;
      marks.push(svg("text", { x, y: height + 16, "text-anchor": "middle", class: "axis" }, day.day.slice(5)));
    }
  });
  chart.replaceChildren(...marks);
  $("chart-legend").replaceChildren(
    ...STATUSES.map((s) => {
      const key = element("span", s, "legend-key");
      key.style.setProperty("--colour", COLOURS[s]); // CSSOM, which the page's CSP allows
      return key;
    }),
  );
}
