// The payments table and the operations needing attention.

import { ACTIONS } from "./dialogs.js";
import { $, badge, button, element, short } from "./dom.js";
import { operationItem } from "./detail.js";

let shown = null;

// Each row offers what the API says may be done next (`allowedActions`), nothing more.
export function renderPayments(page, handlers) {
  const key = JSON.stringify(page.items);
  if (key === shown) return; // nothing changed: keep the rows (and a click on their way)
  shown = key;
  const rows = page.items.map((payment) => row(payment, handlers));
  if (!rows.length) {
    const empty = element("td", "No payments match.", "muted");
    empty.colSpan = 6;
    const tr = element("tr");
    tr.append(empty);
    rows.push(tr);
  }
  $("payments").replaceChildren(...rows);
}

function row(payment, handlers) {
  const tr = element("tr");
  tr.dataset.id = payment.id;
  const id = element("td", short(payment.id), "id");
  id.title = payment.id;
  const amount = element("td", `${payment.amount} ${payment.currency}`, "amount");
  if (payment.hasPlan) {
    const mark = element("span", "plan", "plan-mark");
    mark.title = "paid in installments";
    amount.append(" ", mark);
  }
  const status = element("td");
  status.append(badge(payment.status));
  const actions = element("td", undefined, "actions");
  for (const action of payment.allowedActions.filter((a) => a in ACTIONS)) {
    actions.append(button(ACTIONS[action].label, () => handlers.act(payment, action)));
  }
  tr.append(
    id,
    element("td", new Date(payment.createdAt).toLocaleString()),
    element("td", payment.customerId),
    amount,
    status,
    actions,
  );
  tr.addEventListener("click", () => handlers.open(payment.id));
  return tr;
}

export function markSelected(id) {
  for (const tr of $("payments").children) tr.classList.toggle("selected", tr.dataset.id === id);
}

let attention = null;

export function renderAttention(operations, handlers) {
  const key = JSON.stringify(operations);
  if (key === attention) return;
  attention = key;
  $("attention").hidden = operations.length === 0;
  $("attention-list").replaceChildren(
    ...operations.map((o) => operationItem(o, { handlers, resolvable: true })),
  );
}
