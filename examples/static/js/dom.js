// Small helpers for building the page and saying things on it.

export const $ = (id) => document.getElementById(id);

// UUIDv7s made in the same moment share their first digits; the last ones tell them apart.
export const short = (id) => `…${id.slice(-8)}`;

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function button(label, onClick) {
  const node = element("button", label);
  node.type = "button";
  node.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

export const badge = (status) => element("span", status, `status status-${status}`);

// One message box; `source` lets the poll clear only the errors it showed itself.
export function show(message, kind = "error", details = [], source = "user") {
  const box = $("message");
  box.className = kind;
  box.dataset.source = source;
  box.replaceChildren(document.createTextNode(message));
  if (details.length) {
    const list = element("ul");
    list.append(...details.map((d) => element("li", d)));
    box.append(list);
  }
  box.hidden = false;
}

export function clearMessage(source) {
  const box = $("message");
  if (!source || box.dataset.source === source) box.hidden = true;
}
