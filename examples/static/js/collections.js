// The Collections view (an admin's): the running plans by days past due as a chart, and
// the delinquent plans, most days late first, with how their collection stands; a plan is
// charged off, or its collection resumed, from here.

import { $, badge, button, element, short } from "./dom.js";
import { svg } from "./chart.js";

export const BUCKETS = ["current", "1-29", "30-59", "60-89", "90+"];
const COLOURS = {
  current: "#2f9e5b",
  "1-29": "#e0a800",
  "30-59": "#e08a2c",
  "60-89": "#d64545",
  "90+": "#8f2d2d",
};

let shownAging = null;
let shownPlans = null;

const amounts = (byCurrency) =>
  Object.entries(byCurrency).map(([c, a]) => `${a} ${c}`).join(" · ") || "0";

export function renderAging(report) {
  const key = JSON.stringify(report);
  if (key === shownAging) return; // nothing changed since the last look
  shownAging = key;
  const chart = $("aging-chart");
  const [width, height, pad] = [600, 150, 28];
  chart.setAttribute("viewBox", `0 0 ${width} ${height + pad}`);
  const max = Math.max(1, ...BUCKETS.map((b) => report.buckets[b].count));
  const slot = width / BUCKETS.length;
  const marks = [];
  BUCKETS.forEach((name, index) => {
    const bucket = report.buckets[name];
    const h = (bucket.count / max) * (height - 24);
    const x = index * slot;
    const bar = svg("rect", {
      x: x + slot * 0.2, y: height - h, width: slot * 0.6, height: h,
      fill: COLOURS[name], class: "bar aging-bar", "data-bucket": name,
    });
    bar.append(svg("title", {}, `${name} days past due: ${bucket.count} plan(s), ${amounts(bucket.outstanding)}`));
    marks.push(
      bar,
      svg("text", { x: x + slot / 2, y: height - h - 6, "text-anchor": "middle", class: "count" },
        String(bucket.count)),
      svg("text", { x: x + slot / 2, y: height + 16, "text-anchor": "middle", class: "axis" },
        name === "current" ? "current" : `${name} days`),
    );
  });
  chart.replaceChildren(...marks);
  $("aging-buckets").replaceChildren(
    ...BUCKETS.map((name) => {
      const tile = element("div", undefined, "tile");
      tile.dataset.bucket = name;
      const key = element("span", name === "current" ? "current" : `${name} days`, "tile-label legend-key");
      key.style.setProperty("--colour", COLOURS[name]); // CSSOM, which the page's CSP allows
      const bucket = report.buckets[name];
      tile.append(key, element("strong", String(bucket.count)), element("span", amounts(bucket.outstanding), "muted"));
      return tile;
    }),
  );
  const fees = Object.keys(report.fees).length ? `Unpaid late fees: ${amounts(report.fees)}. ` : "";
  $("aging-note").textContent = `${fees}Measured ${new Date(report.asOf).toLocaleString()}.`;
}

function cell(content, label, className) {
  const td = element("td", undefined, className);
  td.append(content);
  td.dataset.label = label;
  return td;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

export function renderDelinquent(page, handlers) {
  const key = JSON.stringify(page);
  if (key === shownPlans) return;
  shownPlans = key;
  const rows = page.items.map((plan) => {
    const tr = element("tr");
    tr.dataset.paymentId = plan.paymentId;
    tr.addEventListener("click", () => handlers.open(plan.paymentId));
    const state = element("span");
    state.append(badge(plan.status));
    if (plan.collectionStopped) state.append(" ", element("span", "collection stopped", "status status-stopped"));
    const actions = element("td", undefined, "actions");
    actions.dataset.label = "Actions";
    actions.append(button("Charge off", () => handlers.chargeOff({ id: plan.paymentId })));
    if (plan.collectionStopped) {
      actions.append(button("Resume collection", () => handlers.resume({ id: plan.paymentId })));
    }
    const id = cell(short(plan.paymentId), "Payment", "id");
    id.title = plan.paymentId;
    tr.append(
      id,
      cell(plan.customerId, "Customer"),
      cell(String(plan.daysPastDue), "Days past due", "amount days"),
      cell(`${plan.owed} ${plan.currency}`, "Owed", "amount"),
      cell(`${plan.installment} (due ${new Date(plan.dueAt).toLocaleDateString()})`, "Installment"),
      cell(String(plan.attempts), "Attempts", "amount"),
      cell(plan.lastDecline || "—", "Last decline", "decline"),
      cell(when(plan.nextAttemptAt), "Next attempt", "next-attempt"),
      cell(state, "State"),
      actions,
    );
    return tr;
  });
  if (!rows.length) {
    const empty = element("td", "No plan is a day or more past due.", "muted");
    empty.colSpan = 10;
    const tr = element("tr");
    tr.append(empty);
    rows.push(tr);
  }
  $("delinquent").replaceChildren(...rows);
}
