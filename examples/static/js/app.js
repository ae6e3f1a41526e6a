// The dashboard's entry: signs in, wires the forms, and keeps every view current with one
// poll loop (a refresh asked for while one runs is folded into it, never raced beside it).

import { api, isAdmin, claims, session, useToken } from "./api.js";
import { renderBooks, renderIntegrity } from "./books.js";
import { renderSummary } from "./chart.js";
import { renderAging, renderDelinquent } from "./collections.js";
import { forget, renderDetail } from "./detail.js";
import { act, chargeOff, payInstallment, resumeCollection, settle, waiveInstallment } from "./dialogs.js";
import { $, clearMessage, show, short } from "./dom.js";
import { markSelected, renderAttention, renderPayments } from "./list.js";

const POLL_MS = 2000;
const state = {
  cursors: [null],
  page: 0,
  filters: {},
  selected: null,
  createKey: null, // one Idempotency-Key per intended payment, kept until it is answered
  processor: false,
  books: false, // the Books view is open
  collections: false, // the Collections view is open
  lateCursors: [null], // the delinquent plans' pages
  latePage: 0,
};

async function guarded(action, source = "user") {
  try {
    if (source === "user") clearMessage();
    await action();
    if (source === "poll") clearMessage("poll"); // an error the poll showed is over
  } catch (error) {
    if (error.status === 401) {
      useToken(null);
      await signIn();
    }
    show(error.message, "error", error.details || [], source);
  }
}

// -- one poll loop ------------------------------------------------------------------------

let timer = null;
let running = null;
let again = false;

function refresh() {
  if (running) {
    again = true; // the running refresh looks once more when it is done
    return running;
  }
  clearTimeout(timer);
  running = (async () => {
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      running = null;
      timer = setTimeout(() => guarded(refresh, "poll"), POLL_MS);
    }
  })();
  return running;
}

async function load() {
  if (!session.token || document.hidden) return;
  const params = query({ limit: "10" });
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const overview = query();
  overview.delete("status");
  const late = new URLSearchParams({ limit: "10" });
  if (state.lateCursors[state.latePage]) late.set("cursor", state.lateCursors[state.latePage]);
  const [page, summary, attention, detail, books, collections] = await Promise.all([
    api.page(params),
    api.summary(overview),
    isAdmin() ? api.attention() : [],
    state.selected ? readDetail(state.selected) : null,
    state.books ? api.balances() : null,
    state.collections ? Promise.all([api.aging(), api.delinquent(late)]) : null,
  ]);
  renderPayments(page, handlers);
  state.cursors[state.page + 1] = page.nextCursor;
  $("next").disabled = !page.nextCursor;
  $("prev").disabled = state.page === 0;
  renderSummary(summary);
  renderAttention(attention, handlers);
  if (books && state.books) renderBooks(books);
  if (collections && state.collections) {
    const [aging, delinquent] = collections;
    renderAging(aging);
    renderDelinquent(delinquent, handlers);
    state.lateCursors[state.latePage + 1] = delinquent.nextCursor;
    $("delinquent-next").disabled = !delinquent.nextCursor;
    $("delinquent-prev").disabled = state.latePage === 0;
  }
  if (detail && detail.payment.id === state.selected) renderDetail(detail, handlers);
  markSelected(state.selected);
}

async function readDetail(id) {
  const [payment, entries, operations, journal] = await Promise.all([
    api.payment(id), api.audit(id), api.operations(id), api.journal(id),
  ]);
  const plan = payment.hasPlan ? await api.plan(id) : null;
  return { payment, entries, operations, plan, journal };
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state.filters, ...extra })) {
    if (value) params.set(name, value);
  }
  return params;
}

// -- what the views ask for -----------------------------------------------------------

async function open(id) {
  const detail = await readDetail(id); // an unknown id says so before anything changes
  state.selected = detail.payment.id;
  forget();
  renderDetail(detail, handlers);
  markSelected(state.selected);
}

// After a person acted: say what happened, show the payment, look at everything again.
async function done(pending, id) {
  const message = await pending;
  if (message === null) return;
  show(message, "info");
  state.selected = id;
  await refresh();
}

const handlers = {
  open: (id) => guarded(() => open(id)),
  act: (payment, action) => guarded(() => done(act(payment, action), payment.id)),
  pay: (payment, number) => guarded(() => done(payInstallment(payment, number), payment.id)),
  waive: (payment, number) => guarded(() => done(waiveInstallment(payment, number), payment.id)),
  chargeOff: (payment) => guarded(() => done(chargeOff(payment), payment.id)),
  resume: (payment) => guarded(() => done(resumeCollection(payment), payment.id)),
  settle: (operation, outcome) => guarded(() => done(settle(operation, outcome), operation.paymentId)),
};

// -- signing in -----------------------------------------------------------------------

async function signIn() {
  if (!session.token) useToken(await api.devToken()); // development mode hands one out
  $("signin").hidden = Boolean(session.token);
  $("app").hidden = !session.token;
  if (!session.token) return;
  const who = claims();
  const customer = who.customer ? ` for ${who.customer}` : "";
  $("identity").textContent = `${who.sub} (${(who.roles || []).join(", ")}${customer})`;
  $("books-open").hidden = !isAdmin();
  $("collections-open").hidden = !isAdmin();
  if (!isAdmin()) state.books = state.collections = false; // the books are an admin's
  $("books").hidden = !state.books;
  $("collections").hidden = !state.collections;
  await Promise.all([loadProcessor(), loadInfrastructure()]);
  await refresh();
}

async function loadProcessor() {
  try {
    const info = await api.processor();
    $("capture-label").title = Object.entries(info.processors).map(([n, s]) => `${n}: ${s}`).join(", ");
    state.processor = true;
  } catch (error) {
    if (error.status !== 404) throw error;
    state.processor = false; // no processor: payments wait for a person
  }
  $("capture-label").hidden = !state.processor;
  $("capture-method").value = state.processor ? "automatic" : "";
}

async function loadInfrastructure() {
  if (!isAdmin()) return;
  const info = await api.infrastructure();
  const encryption = info.encryption ? `encrypted (key ${info.encryption})` : "not encrypted";
  $("infrastructure").textContent = `cache: ${info.cache} · events: ${info.events} · ${encryption}`;
}

// -- the forms ------------------------------------------------------------------------

function startOfDay(value, offsetDays = 0) {
  if (!value) return "";
  const day = new Date(`${value}T00:00:00`);
  day.setDate(day.getDate() + offsetDays);
  return day.toISOString(); // local midnight, as UTC with its zone
}

function firstPage() {
  state.cursors = [null];
  state.page = 0;
  return refresh();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  useToken($("token-input").value.trim());
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
      const payment = await api.create({
        customerId: data.get("customerId").trim(),
        amount: data.get("amount").trim(),
        currency: data.get("currency").trim() || undefined,
        captureMethod: (state.processor && data.get("captureMethod")) || undefined,
        plan: data.get("payIn4") ? { installments: 4, intervalDays: 14 } : undefined,
      }, state.createKey);
      state.createKey = null;
      form.reset();
      $("capture-method").value = state.processor ? "automatic" : "";
      show(`Created payment ${short(payment.id)} for ${payment.amount} ${payment.currency}.`, "info");
      state.selected = payment.id;
      await firstPage();
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
    guarded(() => open(id));
    return;
  }
  state.filters = {
    status: $("status-filter").value,
    customerId: $("search-customer").value.trim(),
    createdFrom: startOfDay($("from-date").value),
    createdTo: startOfDay($("to-date").value, 1),
  };
  guarded(firstPage);
});
$("clear-filters").addEventListener("click", () => {
  $("filters").reset();
  state.filters = {};
  guarded(firstPage);
});
$("books-open").addEventListener("click", () => {
  state.books = true;
  $("books").hidden = false;
  $("books").scrollIntoView();
  guarded(refresh);
});
$("books-close").addEventListener("click", () => {
  state.books = false;
  $("books").hidden = true;
});
$("collections-open").addEventListener("click", () => {
  state.collections = true;
  $("collections").hidden = false;
  $("collections").scrollIntoView();
  guarded(refresh);
});
$("collections-close").addEventListener("click", () => {
  state.collections = false;
  $("collections").hidden = true;
});
$("delinquent-next").addEventListener("click", () => {
  state.latePage += 1;
  guarded(refresh);
});
$("delinquent-prev").addEventListener("click", () => {
  state.latePage = Math.max(0, state.latePage - 1);
  guarded(refresh);
});
$("verify").addEventListener("click", () => guarded(async () => renderIntegrity(await api.verify())));
$("status-filter").addEventListener("change", () => $("filters").requestSubmit());
$("next").addEventListener("click", () => {
  state.page += 1;
  guarded(refresh);
});
$("prev").addEventListener("click", () => {
  state.page = Math.max(0, state.page - 1);
  guarded(refresh);
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) guarded(refresh, "poll");
});

guarded(signIn);
