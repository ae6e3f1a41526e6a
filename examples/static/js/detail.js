// One payment: its fields, plan, operations, journal and audit trail.

import { renderJournal } from "./books.js";
import { $, badge, button, element } from "./dom.js";

let shown = null;

export function forget() {
  shown = null;
}

export function renderDetail({ payment, entries, operations, plan, journal }, handlers) {
  const key = JSON.stringify([payment, entries, operations, plan, journal]);
  if (key === shown) return; // nothing changed since the last look
  shown = key;
  $("detail-id").textContent = payment.id;
  const fields = [
    ["Status", badge(payment.status)],
    ["Customer", payment.customerId],
    ["Amount", `${payment.amount} ${payment.currency}${payment.hasPlan ? " (paid in installments)" : ""}`],
    ["Captured", `${payment.capturedAmount} ${payment.currency}`],
    ["Refunded", `${payment.refundedAmount} ${payment.currency}`],
    ["Created", new Date(payment.createdAt).toLocaleString()],
    ["Updated", new Date(payment.updatedAt).toLocaleString()],
    ["Version", String(payment.version)],
    ["Failure reason", payment.failureReason || "—"],
    ["Idempotency key", payment.idempotencyKey || "—"],
    ["Metadata", Object.entries(payment.metadata).map(([k, v]) => `${k} = ${v}`).join(", ") || "—"],
    ["Correlation ids", [...new Set(entries.map((e) => e.correlationId).filter(Boolean))].join(", ") || "—"],
  ];
  $("detail-fields").replaceChildren(
    ...fields.flatMap(([name, value]) => {
      const dd = element("dd");
      dd.append(value);
      return [element("dt", name), dd];
    }),
  );
  renderPlan(payment, plan, handlers);
  $("operations").replaceChildren(
    ...(operations.length ? operations.map((o) => operationItem(o)) : [element("li", "none", "muted")]),
  );
  renderJournal(journal);
  $("audit-entries").replaceChildren(
    ...entries.map((e) => {
      const reason = e.reason ? ` (${e.reason})` : "";
      const li = element("li", `${new Date(e.at).toLocaleString()}: ${e.action} by ${e.actorId}${reason}`);
      if (e.correlationId) li.title = `correlation id ${e.correlationId}`;
      return li;
    }),
  );
  $("detail").hidden = false;
}

function renderPlan(payment, plan, handlers) {
  $("plan").hidden = !plan;
  if (!plan) return;
  $("plan-status").replaceChildren(badge(plan.status), element("span", ` owed ${plan.owed} ${plan.currency}`));
  if (plan.collectionStopped) {
    $("plan-status").append(" ", element("span", "collection stopped", "status status-stopped"));
  }
  if (payment.allowedActions.includes("charge_off")) {
    $("plan-status").append(button("Charge off", () => handlers.chargeOff(payment)));
  }
  if (payment.allowedActions.includes("resume_collection")) {
    $("plan-status").append(button("Resume collection", () => handlers.resume(payment)));
  }
  const canPay = payment.allowedActions.includes("pay_installment");
  const canWaive = payment.allowedActions.includes("waive_installment");
  $("installments").replaceChildren(
    ...plan.installments.map((i) => {
      const due = new Date(i.dueAt).toLocaleDateString();
      const li = element("li", `${i.amount} ${plan.currency} due ${due}: `, "installment");
      li.append(badge(i.status));
      if (Number(i.refundedAmount) > 0) li.append(element("span", ` (${i.refundedAmount} refunded)`));
      if (i.attempts) li.append(element("span", collection(i), "muted collection"));
      if (i.status === "scheduled" || i.status === "overdue") {
        if (canPay) li.append(button("Paid by hand", () => handlers.pay(payment, i.number)));
        if (canWaive) li.append(button("Waive", () => handlers.waive(payment, i.number)));
      }
      return li;
    }),
  );
  const fees = plan.lateFees.map((f) => `${f.amount} ${plan.currency} on installment ${f.installment}`);
  $("late-fees").textContent = fees.length ? `Late fees: ${fees.join(", ")}` : "";
}

// How an installment's collection stands: attempts, the last decline, the next attempt.
function collection(i) {
  const parts = [` ${i.attempts} attempt(s)`];
  if (i.lastDecline) parts.push(`last declined: ${i.lastDecline}`);
  if (i.nextAttemptAt) parts.push(`next attempt ${new Date(i.nextAttemptAt).toLocaleString()}`);
  return parts.join(", ");
}

export function operationItem(o, { handlers, resolvable = false } = {}) {
  const li = element("li", undefined, "operation");
  const where = o.processor ? ` at ${o.processor}` : "";
  const tries = o.attempts ? `, ${o.attempts} call(s), ${o.lookups} lookup(s)` : "";
  li.append(
    element("span", `${o.kind} ${o.amount} ${o.currency}${where}: `),
    badge(o.status),
    element("span", `${tries}${o.reason ? ` (${o.reason})` : ""}`),
  );
  if (o.error) li.append(element("div", o.error, "muted"));
  if (resolvable) {
    li.append(
      button("Show payment", () => handlers.open(o.paymentId)),
      button("It went through", () => handlers.settle(o, "succeeded")),
      button("It did not", () => handlers.settle(o, "declined")),
    );
  }
  return li;
}
