// The books: a payment's journal (in its detail), and the Books view: the trial balance
// by kind and currency, whether it balances, and the integrity check.

import { $, badge, element } from "./dom.js";

// A signed amount (a debit is positive, a credit negative) as its two columns.
function sides(amount) {
  return amount.startsWith("-") ? ["", amount.slice(1)] : [amount, ""];
}

function cell(text, label, className) {
  const td = element("td", text, className);
  td.dataset.label = label;
  return td;
}

function amountCells(amount, currency) {
  return sides(amount).map((side, i) =>
    cell(side && `${side} ${currency}`, i ? "Credit" : "Debit", "amount"));
}

export function accountName({ kind, owner }) {
  return owner ? `${kind} ${owner}` : kind;
}

// One row per line; an entry's kind and time head its first line.
export function renderJournal(entries) {
  const rows = entries.flatMap((entry) =>
    entry.lines.map((line, i) => {
      const tr = element("tr", undefined, i === 0 ? "entry-start" : undefined);
      tr.append(
        cell(i === 0 ? entry.kind : "", "Kind"),
        cell(i === 0 ? new Date(entry.at).toLocaleString() : "", "At"),
        cell(accountName(line.account), "Account"),
        ...amountCells(line.amount, line.account.currency),
      );
      if (i === 0 && entry.operationId) tr.title = `operation ${entry.operationId}`;
      return tr;
    }),
  );
  if (!rows.length) {
    const empty = element("td", "No money has moved.", "muted");
    empty.colSpan = 5;
    const tr = element("tr");
    tr.append(empty);
    rows.push(tr);
  }
  $("journal-lines").replaceChildren(...rows);
}

let shown = null;

export function renderBooks(trial) {
  const key = JSON.stringify(trial);
  if (key === shown) return;
  shown = key;
  const state = trial.balanced
    ? [badge("balanced"), " Each currency's debits equal its credits."]
    : [badge("off"), " Debits and credits differ: run the integrity check."];
  $("books-state").replaceChildren(...state);
  const rows = trial.balances.map((line) => {
    const tr = element("tr");
    tr.dataset.kind = line.kind;
    tr.append(cell(line.kind, "Kind"), cell(line.currency, "Currency"),
      ...amountCells(line.amount, line.currency));
    return tr;
  });
  if (!rows.length) {
    const empty = element("td", "Nothing posted yet.", "muted");
    empty.colSpan = 4;
    const tr = element("tr");
    tr.append(empty);
    rows.push(tr);
  }
  $("balances").replaceChildren(...rows);
}

export function renderIntegrity(report) {
  const checked = `${report.checked} payment(s) checked`;
  $("integrity-state").textContent = report.ok
    ? `No problems: ${checked}.`
    : `${report.problems.length} problem(s): ${checked}.`;
  $("integrity-problems").replaceChildren(
    ...report.problems.map((p) =>
      element("li", `${p.paymentId ? `payment ${p.paymentId}` : "the books"}: ${p.check}: ${p.detail}`)),
  );
}
