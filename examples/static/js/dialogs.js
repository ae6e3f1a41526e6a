// Asking first: one dialog showing only the fields its action uses, then the call, then
// a message that says what really happened (done, or queued for the processor).

import { api } from "./api.js";
import { $, short } from "./dom.js";

// The payment actions a row offers, when the API lists them in `allowedActions`.
export const ACTIONS = {
  authorize: { label: "Authorize", text: "Hold the money; capture it when the order ships." },
  confirm: { label: "Confirm", text: "Confirming takes the whole amount now." },
  capture: {
    label: "Capture",
    text: "Take the money held, all of it or part (the rest is released). This is final.",
    amount: true,
  },
  fail: { label: "Fail", text: "Failing is final. Say why.", reason: true, reasonRequired: true },
  cancel: { label: "Cancel", text: "Cancelling is final (a void, if authorized). Say why (optional).", reason: true },
  refund: {
    label: "Refund",
    text: "Give money back to the customer: all that is left, or the amount you enter.",
    amount: true,
    reason: true,
  },
};

export function ask(title, text, { reason = false, reasonRequired = false, amount = false } = {}) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-reason-label").hidden = !reason;
  $("confirm-reason").value = "";
  $("confirm-reason").required = reason && reasonRequired;
  $("confirm-amount-label").hidden = !amount;
  $("confirm-amount").value = "";
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      $("confirm-form").onsubmit = null;
      $("confirm-no").onclick = null;
      dialog.oncancel = null;
      resolve(answer);
    };
    $("confirm-form").onsubmit = (event) => {
      event.preventDefault();
      done({
        reason: reason ? $("confirm-reason").value.trim() || null : null,
        amount: amount ? $("confirm-amount").value.trim() || null : null,
      });
    };
    $("confirm-no").onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
  });
}

// Runs `action` on `payment` once the person agrees; the message to show, or null.
export async function act(payment, action) {
  const spec = ACTIONS[action];
  const answer = await ask(`${spec.label} payment ${short(payment.id)}?`, spec.text, spec);
  if (answer === null) return null;
  const body = {};
  if (answer.reason) body.reason = answer.reason;
  if (answer.amount) body.amount = answer.amount;
  const sent = Object.keys(body).length ? body : undefined;
  if (action === "refund") {
    const refund = await api.refund(payment.id, sent);
    const what = `Refund of ${refund.amount} ${refund.currency}`;
    return refund.status === "pending" ? `${what} queued: the processor will answer.` : `${what} done.`;
  }
  const updated = await api.act(payment.id, action, sent);
  // A capture or a void of money a processor holds is queued: the payment has not moved yet.
  const queued = (action === "capture" && updated.status === "Authorized")
    || (action === "cancel" && updated.status !== "Cancelled");
  if (queued) return `${spec.label} of payment ${short(updated.id)} queued: the processor will answer.`;
  return `Payment ${short(updated.id)} is now ${updated.status}.`;
}

export async function payInstallment(payment, number) {
  const answer = await ask(`Installment ${number} paid?`, "Record it paid (a transfer, a card at a desk).");
  if (answer === null) return null;
  await api.pay(payment.id, number);
  return `Installment ${number} recorded paid.`;
}

export async function waiveInstallment(payment, number) {
  const answer = await ask(`Waive installment ${number}?`, "The customer will no longer owe it. Say why.",
    { reason: true, reasonRequired: true });
  if (answer === null) return null;
  await api.waive(payment.id, number, answer.reason);
  return `Installment ${number} waived.`;
}

export async function chargeOff(payment) {
  const answer = await ask(`Charge off the plan of payment ${short(payment.id)}?`,
    "Collection and late fees stop and what is still owed is written off; the customer still owes it, and a payment later is a recovery. Say why.",
    { reason: true, reasonRequired: true });
  if (answer === null) return null;
  const plan = await api.chargeOff(payment.id, answer.reason);
  return `Plan charged off: ${plan.owed} ${plan.currency} in installments and ${plan.feesOwed} in fees written off.`;
}

export async function settle(operation, outcome) {
  const text = outcome === "succeeded"
    ? "The processor moved the money: the payment moves as if it had said so. Say how you know."
    : "The processor did not move the money. Say how you know.";
  const answer = await ask(`Settle ${operation.kind} ${short(operation.id)}?`, text,
    { reason: true, reasonRequired: true });
  if (answer === null) return null;
  await api.resolve(operation.id, outcome, answer.reason);
  return `Operation ${short(operation.id)} is now ${outcome}.`;
}

export async function resumeCollection(payment) {
  const answer = await ask(`Resume collection of the plan of payment ${short(payment.id)}?`,
    "The worker collects its oldest unpaid installment again at its next tick, and retries soft declines on the ladder.");
  if (answer === null) return null;
  await api.resume(payment.id);
  return `Collection of the plan of payment ${short(payment.id)} resumed.`;
}
