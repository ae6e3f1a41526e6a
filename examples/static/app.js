// The dashboard: plain JavaScript modules against the example API, nothing from the internet.

const state = { token: sessionStorage.getItem("paymentorch-token"), cursors: [null], page: 0 };
const $ = (id) => document.getElementById(id);

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

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST" && path === "/api/payments") headers["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    guarded(onClick);
  });
  return button;
}

async function change(payment, action) {
  let body;
  if (action === "fail") {
    const reason = prompt("Why did it fail?", "processor declined");
    if (reason === null) return;
    body = { reason };
  }
  const updated = await call("POST", `/api/payments/${payment.id}/${action}`, body);
  show(`Payment ${updated.id.slice(0, 8)} is now ${updated.status}.`, "info");
  await loadPayments();
  await showAudit(updated.id);
}

function row(payment) {
  const tr = document.createElement("tr");
  tr.dataset.id = payment.id;
  const status = document.createElement("td");
  const badge = document.createElement("span");
  badge.className = `status status-${payment.status}`;
  badge.textContent = payment.status;
  status.append(badge);
  const actions = document.createElement("td");
  if (payment.status === "Pending") {
    actions.append(
      actionButton("Confirm", () => change(payment, "confirm")),
      actionButton("Fail", () => change(payment, "fail")),
      actionButton("Cancel", () => change(payment, "cancel")),
    );
  }
  tr.append(
    cell(new Date(payment.createdAt).toLocaleString()),
    cell(payment.customerId),
    cell(`${payment.amount} ${payment.currency}`, "amount"),
    status,
    actions,
  );
  tr.addEventListener("click", () => guarded(() => showAudit(payment.id)));
  return tr;
}

async function loadPayments() {
  const params = new URLSearchParams({ limit: "10" });
  const status = $("status-filter").value;
  if (status) params.set("status", status);
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const page = await call("GET", `/api/payments?${params}`);
  $("payments").replaceChildren(...page.items.map(row));
  state.cursors[state.page + 1] = page.nextCursor;
  $("next").disabled = !page.nextCursor;
  $("prev").disabled = state.page === 0;
}

async function showAudit(id) {
  const entries = await call("GET", `/api/payments/${id}/audit`);
  $("audit-id").textContent = id;
  $("audit-entries").replaceChildren(
    ...entries.map((e) => {
      const li = document.createElement("li");
      const reason = e.reason ? ` (${e.reason})` : "";
      li.textContent = `${new Date(e.at).toLocaleString()}: ${e.action} by ${e.actorId}${reason}`;
      return li;
    }),
  );
  $("audit").hidden = false;
  for (const tr of $("payments").children) tr.classList.toggle("selected", tr.dataset.id === id);
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
    await loadPayments();
  }
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token-input").value.trim();
  sessionStorage.setItem("paymentorch-token", state.token);
  guarded(signIn);
});

$("create-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guarded(async () => {
    const payment = await call("POST", "/api/payments", {
      customerId: form.get("customerId").trim(),
      amount: form.get("amount").trim(),
      currency: form.get("currency").trim() || undefined,
    });
    show(`Created payment ${payment.id.slice(0, 8)} for ${payment.amount} ${payment.currency}.`, "info");
    state.cursors = [null];
    state.page = 0;
    await loadPayments();
    await showAudit(payment.id);
  });
});

$("status-filter").addEventListener("change", () => {
  state.cursors = [null];
  state.page = 0;
  guarded(loadPayments);
});
$("refresh").addEventListener("click", () => guarded(loadPayments));
$("next").addEventListener("click", () => {
  state.page += 1;
  guarded(loadPayments);
});
$("prev").addEventListener("click", () => {
  state.page = Math.max(0, state.page - 1);
  guarded(loadPayments);
});

guarded(signIn);
