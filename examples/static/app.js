// The dashboard: plain JavaScript modules against the example API, nothing from the internet.

const STATUSES = ["Pending", "Authorized", "Confirmed", "Failed", "Cancelled", "Refunded"];
const COLOURS = {
  Pending: "#e0a800",
  Authorized: "#3b82c4",
  Confirmed: "#2f9e5b",
  Failed: "#d64545",
  Cancelled: "#8a94a6",
  Refunded: "#8a5cc4",
};
const state = {
  token: sessionStorage.getItem("paymentorch-token"),
  cursors: [null],
  page: 0,
  filters: {},
  createKey: null, // one Idempotency-Key per intended payment, kept until it is answered
  selected: null,
  detailTimer: null,
};
const $ = (id) => document.getElementById(id);
// UUIDv7s made in the same moment share their first digits; the last ones tell them apart.
const short = (id) => `…${id.slice(-8)}`;

function show(message, kind = "error", details = []) {
  const box = $("message");
  box.className = kind;
  box.replaceChildren(document.createTextNode(message));
  if (details.length) {
    const list = document.createElement("ul");
    for (const d of details) {
      const item = document.createElement("li");
      item.textContent = d;
      list.append(item);
    }
    box.append(list);
  }
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

async function call(method, path, body, headers = {}) {
  const sent = { Authorization: `Bearer ${state.token}`, ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const details = (data.errors || []).map((e) => `${e.field}: ${e.message}`);
    const title = data.title || response.statusText;
    const error = new Error(details.length ? `${title}:` : `${title}: ${data.detail || ""}`);
    error.details = details;
    error.status = response.status;
    throw error;
  }
  return data;
}

async function guarded(action) {
  try {
    clearMessage();
    await action();
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem("paymentorch-token");
      state.token = null;
      await signIn();
    }
    show(error.message, "error", error.details || []);
  }
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function badge(status) {
  return element("span", status, `status status-${status}`);
}

// -- confirmation ---------------------------------------------------------------------

function ask(title, text, { reason = false, reasonRequired = false, amount = false } = {}) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-reason-label").hidden = !reason;
  $("confirm-reason").value = "";
  $("confirm-reason").required = reasonRequired;
  $("confirm-amount-label").hidden = !amount;
  $("confirm-amount").value = "";
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      $("confirm-form").onsubmit = null;
      $("confirm-no").onclick = null;
      resolve(answer);
    };
    $("confirm-form").onsubmit = (event) => {
      event.preventDefault();
      done({
        reason: $("confirm-reason").value.trim() || null,
        amount: $("confirm-amount").value.trim() || null,
      });
    };
    $("confirm-no").onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
  });
}

const ACTIONS = {
  authorize: { label: "Authorize", text: "Hold the money; capture it when the order ships." },
  confirm: { label: "Confirm", text: "Confirming takes the whole amount now." },
  capture: {
    label: "Capture",
    text: "Take the money held, all of it or part (the rest is released). This is final.",
    amount: true,
  },
  refund: {
    label: "Refund",
    text: "Give money back to the customer: all that is left, or the amount you enter.",
    amount: true,
    reason: true,
    path: "refunds",
  },
  fail: { label: "Fail", text: "Failing is final. Say why.", reason: true, reasonRequired: true },
  cancel: { label: "Cancel", text: "Cancelling is final (a void, if authorized). Say why (optional).", reason: true },
};
const AVAILABLE = {
  Pending: ["authorize", "confirm", "fail", "cancel"],
  Authorized: ["capture", "fail", "cancel"],
  Confirmed: ["refund"],
};

async function change(payment, action) {
  const spec = ACTIONS[action];
  const answer = await ask(`${spec.label} payment ${short(payment.id)}?`, spec.text, spec);
  if (answer === null) return;
  const body = {};
  if (spec.reason && answer.reason) body.reason = answer.reason;
  if (spec.amount && answer.amount) body.amount = answer.amount;
  const headers = action === "refund" ? { "Idempotency-Key": crypto.randomUUID() } : {};
  const sent = Object.keys(body).length ? body : undefined;
  await call("POST", `/api/payments/${payment.id}/${spec.path || action}`, sent, headers);
  const updated = await call("GET", `/api/payments/${payment.id}`);
  show(`Payment ${short(updated.id)} is now ${updated.status} (refunded ${updated.refundedAmount}).`, "info");
  await refresh();
  await showDetail(updated.id);
}

// -- the list -------------------------------------------------------------------------

function row(payment) {
  const tr = document.createElement("tr");
  tr.dataset.id = payment.id;
  const id = element("td", short(payment.id), "id");
  id.title = payment.id;
  const status = element("td");
  status.append(badge(payment.status));
  const actions = element("td", undefined, "actions");
  for (const action of AVAILABLE[payment.status] || []) {
    const button = element("button", ACTIONS[action].label);
    button.type = "button";
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      guarded(() => change(payment, action));
    });
    actions.append(button);
  }
  tr.append(
    id,
    element("td", new Date(payment.createdAt).toLocaleString()),
    element("td", payment.customerId),
    element("td", `${payment.amount} ${payment.currency}`, "amount"),
    status,
    actions,
  );
  tr.addEventListener("click", () => guarded(() => showDetail(payment.id)));
  return tr;
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state.filters, ...extra })) {
    if (value) params.set(name, value);
  }
  return params;
}

async function loadPayments() {
  const params = query({ limit: "10" });
  delete state.filters.limit;
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const page = await call("GET", `/api/payments?${params}`);
  const rows = page.items.map(row);
  $("payments").replaceChildren(...rows);
  if (!rows.length) {
    const empty = element("tr");
    const td = element("td", "No payments match.", "muted");
    td.colSpan = 6;
    empty.append(td);
    $("payments").append(empty);
  }
  state.cursors[state.page + 1] = page.nextCursor;
  $("next").disabled = !page.nextCursor;
  $("prev").disabled = state.page === 0;
  markSelected();
}

// -- the overview ---------------------------------------------------------------------

async function loadSummary() {
  const params = query();
  params.delete("status");
  const summary = await call("GET", `/api/payments/summary?${params}`);
  const total = STATUSES.reduce((sum, s) => sum + summary.byStatus[s], 0);
  const tiles = [
    tile("All", total, "count-all"),
    ...STATUSES.map((s) => tile(s, summary.byStatus[s], `count-${s}`)),
    tile("Total amount", Object.entries(summary.totals).map(([c, a]) => `${a} ${c}`).join(" · ") || "0", "count-total"),
  ];
  $("counts").replaceChildren(...tiles);
  drawChart(summary.days);
}

function tile(label, value, id) {
  const box = element("div", undefined, "tile");
  box.id = id;
  box.append(element("span", label, "tile-label"), element("strong", String(value)));
  return box;
}

function drawChart(days) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const width = 600;
  const height = 160;
  const pad = 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height + pad}`);
  svg.replaceChildren();
  const max = Math.max(1, ...days.map((d) => STATUSES.reduce((n, s) => n + d.byStatus[s], 0)));
  const slot = Math.min(60, (width - pad) / Math.max(days.length, 1));
  days.forEach((day, index) => {
    let y = height;
    for (const status of STATUSES) {
      const count = day.byStatus[status];
      if (!count) continue;
      const h = (count / max) * (height - 8);
      y -= h;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", String(pad + index * slot + slot * 0.15));
      bar.setAttribute("y", String(y));
      bar.setAttribute("width", String(slot * 0.7));
      bar.setAttribute("height", String(h));
      bar.setAttribute("fill", COLOURS[status]);
      bar.setAttribute("class", `bar bar-${status}`);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${day.day}: ${count} ${status}`;
      bar.append(title);
      svg.append(bar);
    }
    if (days.length <= 14 || index % Math.ceil(days.length / 14) === 0) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(pad + index * slot + slot / 2));
      label.setAttribute("y", String(height + 16));
      label.setAttribute("text-anchor", "middle");
      label.setAttribute("class", "axis");
      label.textContent = day.day.slice(5);
      svg.append(label);
    }
  });
  const scale = document.createElementNS(ns, "text");
  scale.setAttribute("x", "0");
  scale.setAttribute("y", "10");
  scale.setAttribute("class", "axis");
  scale.textContent = String(max);
  svg.append(scale);
  $("chart-legend").replaceChildren(
    ...STATUSES.map((s) => {
      const key = element("span", s, "legend-key");
      key.style.setProperty("--colour", COLOURS[s]);
      return key;
    }),
  );
}

// -- the detail view ------------------------------------------------------------------

async function showDetail(id) {
  const [payment, entries, operations] = await Promise.all([
    call("GET", `/api/payments/${id}`),
    call("GET", `/api/payments/${id}/audit`),
    call("GET", `/api/payments/${id}/operations`),
  ]);
  state.selected = id;
  $("detail-id").textContent = payment.id;
  const fields = [
    ["Status", badge(payment.status)],
    ["Customer", payment.customerId],
    ["Amount", `${payment.amount} ${payment.currency}`],
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
  $("operations").replaceChildren(
    ...(operations.length ? operations.map(operationItem) : [element("li", "none", "muted")]),
  );
  await showPlan(payment);
  // While the processor works on it, look again shortly: the worker settles it in seconds.
  clearTimeout(state.detailTimer);
  if (operations.some((o) => o.status === "pending" || o.status === "unknown")) {
    state.detailTimer = setTimeout(() => {
      if (state.selected === id) guarded(async () => { await refresh(); await showDetail(id); });
    }, 1500);
  }
  $("audit-entries").replaceChildren(
    ...entries.map((e) => {
      const reason = e.reason ? ` (${e.reason})` : "";
      const li = element("li", `${new Date(e.at).toLocaleString()}: ${e.action} by ${e.actorId}${reason}`);
      if (e.correlationId) li.title = `correlation id ${e.correlationId}`;
      return li;
    }),
  );
  $("detail").hidden = false;
  markSelected();
}

function operationItem(o, { resolvable = false } = {}) {
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
    const open = element("button", "Show payment");
    open.type = "button";
    open.addEventListener("click", () => guarded(() => showDetail(o.paymentId)));
    li.append(open);
    for (const outcome of ["succeeded", "declined"]) {
      const button = element("button", outcome === "succeeded" ? "It went through" : "It did not");
      button.type = "button";
      button.addEventListener("click", () => guarded(() => resolve(o, outcome)));
      li.append(button);
    }
  }
  return li;
}

async function showPlan(payment) {
  $("plan").hidden = !payment.hasPlan;
  if (!payment.hasPlan) return;
  const plan = await call("GET", `/api/payments/${payment.id}/plan`);
  $("plan-status").replaceChildren(badge(plan.status), element("span", ` owed ${plan.owed} ${plan.currency}`));
  $("installments").replaceChildren(
    ...plan.installments.map((i) => {
      const li = element("li", `${i.amount} ${plan.currency} due ${new Date(i.dueAt).toLocaleDateString()}: `, "installment");
      li.append(badge(i.status));
      if (Number(i.refundedAmount) > 0) li.append(element("span", ` (${i.refundedAmount} refunded)`));
      if ((i.status === "scheduled" || i.status === "overdue") && plan.status !== "pending") {
        const pay = element("button", "Paid by hand");
        pay.type = "button";
        pay.addEventListener("click", () => guarded(async () => {
          const answer = await ask(`Installment ${i.number} paid?`, "Record it paid (a transfer, a card at a desk).");
          if (answer === null) return;
          await call("POST", `/api/payments/${payment.id}/plan/installments/${i.number}/pay`);
          show(`Installment ${i.number} recorded paid.`, "info");
          await refresh();
          await showDetail(payment.id);
        }));
        const waive = element("button", "Waive");
        waive.type = "button";
        waive.addEventListener("click", () => guarded(async () => {
          const answer = await ask(`Waive installment ${i.number}?`, "The customer will no longer owe it. Say why.",
            { reason: true, reasonRequired: true });
          if (answer === null) return;
          await call("POST", `/api/payments/${payment.id}/plan/installments/${i.number}/waive`, { reason: answer.reason });
          show(`Installment ${i.number} waived.`, "info");
          await refresh();
          await showDetail(payment.id);
        }));
        li.append(pay, waive);
      }
      return li;
    }),
  );
  const fees = plan.lateFees.map((f) => `${f.amount} ${plan.currency} on installment ${f.installment}`);
  $("late-fees").textContent = fees.length ? `Late fees: ${fees.join(", ")}` : "";
}

async function resolve(operation, outcome) {
  const text = outcome === "succeeded"
    ? "The processor moved the money: the payment moves as if it had said so. Say how you know."
    : "The processor did not move the money. Say how you know.";
  const answer = await ask(`Settle ${operation.kind} ${short(operation.id)}?`, text, { reason: true, reasonRequired: true });
  if (answer === null) return;
  await call("POST", `/api/operations/${operation.id}/resolve`, { outcome, reason: answer.reason });
  show(`Operation ${short(operation.id)} is now ${outcome}.`, "info");
  await refresh();
  await showDetail(operation.paymentId);
}

async function loadAttention() {
  const found = await call("GET", "/api/operations/attention");
  $("attention").hidden = found.length === 0;
  $("attention-list").replaceChildren(...found.map((o) => operationItem(o, { resolvable: true })));
}

async function loadInfrastructure() {
  const info = await call("GET", "/api/infrastructure");
  const encryption = info.encryption ? `encrypted (key ${info.encryption})` : "not encrypted";
  $("infrastructure").textContent = `cache: ${info.cache} · events: ${info.events} · ${encryption}`;
}

async function loadProcessor() {
  try {
    const info = await call("GET", "/api/processor");
    $("capture-label").hidden = false;
    $("capture-label").title = Object.entries(info.processors).map(([n, s]) => `${n}: ${s}`).join(", ");
  } catch (error) {
    if (error.status !== 404) throw error;
    $("capture-label").hidden = true; // no processor: payments wait for a person
    $("capture-method").value = "";
  }
}

function markSelected() {
  for (const tr of $("payments").children) tr.classList.toggle("selected", tr.dataset.id === state.selected);
}

// -- wiring ---------------------------------------------------------------------------

async function refresh() {
  await Promise.all([loadPayments(), loadSummary(), loadAttention()]);
}

async function signIn() {
  if (!state.token) {
    // Development mode: the app hands out tokens itself. Otherwise, paste one.
    const response = await fetch("/dev/token?role=PaymentAdmin");
    if (response.ok) {
      state.token = (await response.json()).token;
      sessionStorage.setItem("paymentorch-token", state.token);
    }
  }
  $("signin").hidden = Boolean(state.token);
  $("app").hidden = !state.token;
  if (state.token) {
    const claims = JSON.parse(atob(state.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    $("identity").textContent = `${claims.sub} (${(claims.roles || []).join(", ")})`;
    await Promise.all([refresh(), loadProcessor(), loadInfrastructure()]);
  }
}

function startOfDay(value, offsetDays = 0) {
  if (!value) return "";
  const day = new Date(`${value}T00:00:00`);
  day.setDate(day.getDate() + offsetDays);
  return day.toISOString(); // local midnight, as UTC with its zone
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token-input").value.trim();
  sessionStorage.setItem("paymentorch-token", state.token);
  guarded(signIn);
});

$("create-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const submit = form.querySelector("button[type=submit]");
  if (submit.disabled) return; // a request for this payment is on its way
  state.createKey = state.createKey || crypto.randomUUID();
  submit.disabled = true;
  const data = new FormData(form);
  guarded(async () => {
    try {
      const payment = await call(
        "POST",
        "/api/payments",
        {
          customerId: data.get("customerId").trim(),
          amount: data.get("amount").trim(),
          currency: data.get("currency").trim() || undefined,
          captureMethod: data.get("captureMethod") || undefined,
          plan: data.get("payIn4") ? { installments: 4, intervalDays: 14 } : undefined,
        },
        { "Idempotency-Key": state.createKey },
      );
      state.createKey = null;
      form.reset();
      if ($("capture-label").hidden) $("capture-method").value = "";
      show(`Created payment ${short(payment.id)} for ${payment.amount} ${payment.currency}.`, "info");
      state.cursors = [null];
      state.page = 0;
      await refresh();
      await showDetail(payment.id);
    } catch (error) {
      if (error.status && error.status < 500) state.createKey = null; // nothing was stored
      throw error;
    } finally {
      submit.disabled = false;
    }
  });
});

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("search-id").value.trim();
  if (id) {
    guarded(() => showDetail(id));
    return;
  }
  state.filters = {
    status: $("status-filter").value,
    customerId: $("search-customer").value.trim(),
    createdFrom: startOfDay($("from-date").value),
    createdTo: startOfDay($("to-date").value, 1),
  };
  state.cursors = [null];
  state.page = 0;
  guarded(refresh);
});
$("clear-filters").addEventListener("click", () => {
  $("filters").reset();
  state.filters = {};
  state.cursors = [null];
  state.page = 0;
  guarded(refresh);
});
$("status-filter").addEventListener("change", () => $("filters").requestSubmit());
$("next").addEventListener("click", () => {
  state.page += 1;
  guarded(loadPayments);
});
$("prev").addEventListener("click", () => {
  state.page = Math.max(0, state.page - 1);
  guarded(loadPayments);
});

guarded(signIn);
