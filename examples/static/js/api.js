// The example API: one function per route, a bearer token, problems as exceptions.

const TOKEN = "paymentorch-token";
export const session = { token: sessionStorage.getItem(TOKEN) };

export function useToken(token) {
  session.token = token || null;
  if (token) sessionStorage.setItem(TOKEN, token);
  else sessionStorage.removeItem(TOKEN);
}

// The token's claims, for the header line only: the server checks the token itself.
export function claims() {
  const part = (session.token || "").split(".")[1] || "";
  try {
    return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

export const isAdmin = () => (claims().roles || []).includes("PaymentAdmin");

export class ApiError extends Error {
  constructor(response, problem) {
    const details = (problem.errors || []).map((e) => `${e.field}: ${e.message}`);
    const title = problem.title || response.statusText;
    super(details.length ? `${title}:` : `${title}: ${problem.detail || ""}`);
    this.status = response.status;
    this.details = details;
  }
}

async function call(method, path, body, headers = {}) {
  const sent = { Authorization: `Bearer ${session.token}`, ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response, data);
  return data;
}

const payment = (id) => `/api/payments/${encodeURIComponent(id)}`;

export const api = {
  devToken: async () => {
    const response = await fetch("/dev/token?role=PaymentAdmin");
    return response.ok ? (await response.json()).token : null;
  },
  page: (params) => call("GET", `/api/payments?${params}`),
  summary: (params) => call("GET", `/api/payments/summary?${params}`),
  payment: (id) => call("GET", payment(id)),
  audit: (id) => call("GET", `${payment(id)}/audit`),
  operations: (id) => call("GET", `${payment(id)}/operations`),
  plan: (id) => call("GET", `${payment(id)}/plan`),
  journal: (id) => call("GET", `${payment(id)}/journal`),
  balances: () => call("GET", "/api/ledger/balances"),
  verify: () => call("GET", "/api/ledger/verify"),
  attention: () => call("GET", "/api/operations/attention"),
  infrastructure: () => call("GET", "/api/infrastructure"),
  processor: () => call("GET", "/api/processor"),
  create: (body, key) => call("POST", "/api/payments", body, { "Idempotency-Key": key }),
  act: (id, action, body) => call("POST", `${payment(id)}/${action}`, body),
  refund: (id, body) => call("POST", `${payment(id)}/refunds`, body, { "Idempotency-Key": crypto.randomUUID() }),
  pay: (id, number) => call("POST", `${payment(id)}/plan/installments/${number}/pay`),
  waive: (id, number, reason) => call("POST", `${payment(id)}/plan/installments/${number}/waive`, { reason }),
  chargeOff: (id, reason) => call("POST", `${payment(id)}/plan/charge-off`, { reason }),
  resume: (id) => call("POST", `${payment(id)}/plan/resume-collection`, undefined, { "Idempotency-Key": crypto.randomUUID() }),
  aging: () => call("GET", "/api/plans/aging"),
  delinquent: (params) => call("GET", `/api/plans/delinquent?${params}`),
  resolve: (id, outcome, reason) => call("POST", `/api/operations/${encodeURIComponent(id)}/resolve`, { outcome, reason }),
};
