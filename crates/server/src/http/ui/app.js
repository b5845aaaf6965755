// The web inbox: a client of mailroom's JSON API (docs/API.md). No framework, no build step.
// Mail content is only ever put into the page with textContent; message HTML is shown in a
// sandboxed iframe that loads /api/messages/{mailbox}/{id}/html (served with its own strict
// Content-Security-Policy), never in this document.
"use strict";

const PAGE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  me: null,            // {address, admin}
  csrf: sessionStorage.getItem("mailroom.csrf") || "",
  mailboxes: [],
  mailbox: "INBOX",
  offset: 0,
  total: 0,
  search: "",
  messages: [],
  selected: -1,
  open: null,          // the message shown: its JSON
  tab: "html",
  events: null,
  reloadTimer: null,
};

// ---- the API ----
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ("HTTP " + status));
    this.status = status;
    this.hint = body && body.hint;
  }
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401 && path !== "/api/login") {
    showLogin("Your session has ended: log in again.");
    throw new ApiError(401, { error: "not logged in" });
  }
  const type = r.headers.get("Content-Type") || "";
  const data = type.startsWith("application/json") ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, typeof data === "object" ? data : null);
  return data;
}

const enc = encodeURIComponent;
const msgPath = (mb, id) => "/api/messages/" + enc(mb) + "/" + enc(id);

function say(text) {
  const s = $("status");
  s.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { s.textContent = ""; }, 3000);
}

function errorText(e) {
  return e.hint ? e.message + " (" + e.hint + ")" : e.message;
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// ---- theme ----
function applyTheme() {
  const t = localStorage.getItem("mailroom.theme");
  if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
function toggleTheme() {
  const dark = getComputedStyle(document.documentElement).colorScheme.includes("dark");
  localStorage.setItem("mailroom.theme", dark ? "light" : "dark");
  applyTheme();
}

// ---- login ----
function showLogin(message) {
  stopEvents();
  $("app").hidden = true;
  $("search").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  $("address").focus();
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const r = await api("POST", "/api/login", {
      address: $("address").value.trim(),
      password: $("password").value,
    });
    state.csrf = r.csrf_token;
    sessionStorage.setItem("mailroom.csrf", r.csrf_token);
    $("password").value = "";
    await start({ address: r.address, admin: r.admin });
  } catch (e) {
    $("login-error").textContent = errorText(e);
  }
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch (e) { /* the session is gone either way */ }
  sessionStorage.removeItem("mailroom.csrf");
  state.csrf = "";
  showLogin("Logged out.");
}

async function start(me) {
  state.me = me;
  $("login-view").hidden = true;
  $("app").hidden = false;
  $("search").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = me.address;
  $("admin-links").hidden = !me.admin;
  await loadMailboxes();
  startEvents();
  route();
}

// ---- folders ----
async function loadMailboxes() {
  state.mailboxes = await api("GET", "/api/mailboxes");
  const ul = $("folder-list");
  ul.replaceChildren();
  for (const mb of state.mailboxes) {
    const a = el("a", { href: "#mailbox/" + enc(mb.name), "data-mailbox": mb.name },
      el("span", { text: mb.name }),
      el("span", { class: "count", text: mb.unseen ? String(mb.unseen) : "" }));
    if (mb.name === state.mailbox && !location.hash.startsWith("#queue")) a.setAttribute("aria-current", "page");
    ul.append(el("li", {}, a));
  }
  const sel = $("move-to");
  sel.replaceChildren(el("option", { value: "", text: "Move to\u2026" }));
  for (const mb of state.mailboxes) sel.append(el("option", { value: mb.name, text: mb.name }));
}

// ---- the message list ----
function when(m) {
  const d = m.date ? new Date(m.date) : new Date(m.received * 1000);
  if (isNaN(d)) return "";
  const now = new Date();
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString();
}

function who(list) {
  if (!list || !list.length) return "";
  return list.map((a) => a.name || a.address || "").join(", ");
}

async function loadList(fresh) {
  const q = "?offset=" + state.offset + "&limit=" + PAGE +
    (state.search ? "&search=" + enc(state.search) : "");
  $("list-error").textContent = "";
  let r;
  try {
    r = await api("GET", "/api/mailboxes/" + enc(state.mailbox) + "/messages" + q);
  } catch (e) {
    $("list-error").textContent = errorText(e);
    return;
  }
  const openId = state.open && state.open.id;
  const before = new Set(state.messages.map((m) => m.id));
  state.messages = r.messages;
  state.total = r.total;
  $("list-title").textContent = state.mailbox + (state.search ? " \u2014 search" : "");
  const ol = $("list");
  ol.replaceChildren();
  if (!r.messages.length) {
    ol.append(el("li", { class: "empty", text: state.search ? "No message matches." : "No messages." }));
  }
  r.messages.forEach((m, i) => {
    const li = el("li", { "data-id": m.id, id: "m-" + m.id },
      el("span", { class: "from", text: who(m.from) || "(no sender)" }),
      el("span", { class: "date", text: when(m) }),
      el("span", { class: "subj", text: m.subject || "(no subject)" }));
    if (!m.flags.includes("\\Seen")) li.classList.add("unread");
    if (fresh && !before.has(m.id)) li.classList.add("fresh");
    li.addEventListener("click", () => { select(i); openSelected(); });
    ol.append(li);
  });
  const idx = r.messages.findIndex((m) => m.id === openId);
  select(idx >= 0 ? idx : Math.min(Math.max(state.selected, 0), r.messages.length - 1), true);
  const last = Math.min(state.offset + PAGE, r.total);
  $("page-info").textContent = r.total ? (state.offset + 1) + "\u2013" + last + " of " + r.total : "";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= r.total;
}

function select(i, quiet) {
  const items = $("list").querySelectorAll("li[data-id]");
  items.forEach((li) => { li.classList.remove("selected"); li.removeAttribute("aria-selected"); });
  if (i < 0 || i >= items.length) { state.selected = -1; return; }
  state.selected = i;
  items[i].classList.add("selected");
  items[i].setAttribute("aria-selected", "true");
  if (!quiet) items[i].scrollIntoView({ block: "nearest" });
}

function openSelected() {
  const m = state.messages[state.selected];
  if (m) location.hash = "#message/" + enc(state.mailbox) + "/" + enc(m.id);
}

// ---- one message ----
async function openMessage(mailbox, id) {
  let m;
  try {
    m = await api("GET", msgPath(mailbox, id));
  } catch (e) {
    say(errorText(e));
    return;
  }
  state.open = m;
  $("view-pane").hidden = false;
  $("app").classList.add("viewing");
  $("subject").textContent = m.subject || "(no subject)";
  const to = who(m.to);
  $("meta").textContent = "From " + (who(m.from) || "?") + (to ? " to " + to : "") +
    (m.date ? " \u00b7 " + new Date(m.date).toLocaleString() : "");
  const i = state.messages.findIndex((x) => x.id === id);
  if (i >= 0) select(i);
  if (!m.flags.includes("\\Seen")) {
    try {
      const f = await api("PATCH", msgPath(mailbox, id), { seen: true });
      m.flags = f.flags;
      markRow(id, true);
    } catch (e) { /* shown read or not, the view works */ }
  }
  seenButton();
  showTab(state.tab);
}

function markRow(id, seen) {
  const li = document.getElementById("m-" + id);
  if (li) li.classList.toggle("unread", !seen);
  const m = state.messages.find((x) => x.id === id);
  if (m) {
    m.flags = m.flags.filter((f) => f !== "\\Seen");
    if (seen) m.flags.push("\\Seen");
  }
}

function seenButton() {
  const seen = state.open && state.open.flags.includes("\\Seen");
  $("toggle-seen").textContent = seen ? "Mark unread" : "Mark read";
}

function closeMessage() {
  state.open = null;
  $("view-pane").hidden = true;
  $("app").classList.remove("viewing");
}

function showTab(tab) {
  state.tab = tab;
  for (const b of $("tabs").querySelectorAll("[role=tab]")) {
    const on = b.dataset.tab === tab;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  }
  $("panel").setAttribute("aria-labelledby", "tab-" + tab);
  const m = state.open;
  if (!m) return;
  const p = $("panel");
  p.replaceChildren();
  const path = msgPath(m.mailbox, m.id);
  if (tab === "html") {
    // No allow-scripts, no allow-same-origin: the mail's document runs nothing and can reach
    // nothing of this page; its own CSP (img-src data:) keeps remote images out.
    const f = el("iframe", { sandbox: "", src: path + "/html", title: "The message as HTML", referrerpolicy: "no-referrer" });
    p.append(f);
  } else if (tab === "text") {
    p.append(el("pre", { text: m.text || "(this message has no text part)" }));
  } else if (tab === "headers") {
    const t = el("table", { class: "headers" });
    for (const [k, v] of m.headers || []) t.append(el("tr", {}, el("th", { text: k }), el("td", { text: v })));
    p.append(t);
  } else if (tab === "mime") {
    p.append(el("div", { class: "mime" }, el("ul", {}, mimeNode(m.mime, path))));
  } else if (tab === "raw") {
    const pre = el("pre", { text: "loading\u2026" });
    p.append(pre);
    fetch(path + "/raw", { credentials: "same-origin" })
      .then((r) => r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)))
      .then((t) => { pre.textContent = t; })
      .catch((e) => { pre.textContent = "The raw source could not be read: " + e.message; });
  } else if (tab === "dialogue") {
    showDialogue(p, path);
  }
}

function mimeNode(part, path) {
  const label = (part.section ? part.section + "  " : "") + part.content_type +
    (part.filename ? "  \u201c" + part.filename + "\u201d" : "") +
    (part.encoding ? "  (" + part.encoding + ")" : "") + "  " + part.size + " octets";
  const li = el("li", {});
  if (part.section && !part.parts.length) {
    li.append(el("a", { href: path + "/parts/" + part.section, text: label, download: part.filename || "" }));
  } else {
    li.append(el("span", { text: label }));
  }
  if (part.parts && part.parts.length) {
    const ul = el("ul", {});
    for (const c of part.parts) ul.append(mimeNode(c, path));
    li.append(ul);
  }
  return li;
}

// ---- the SMTP dialogue ----
// What each reply code means (RFC 5321 §4.2.2, §4.2.3; 235/334/530/535 from RFC 4954).
const CODES = {
  211: "System status or help reply",
  214: "Help message for a human reader",
  220: "Service ready: the server greets the client and waits for EHLO or HELO",
  221: "Closing the connection: the answer to QUIT",
  235: "Authentication succeeded (RFC 4954): the client may now send mail as this user",
  250: "OK: the requested action was done",
  251: "User not local; the server will forward the message",
  252: "Cannot verify the user, but will accept the message and try to deliver it",
  334: "Authentication continues (RFC 4954): the server waits for the next base64 line",
  354: "Start mail input: send the message, end it with a line holding only a dot",
  421: "Service not available, closing the connection: try again later",
  450: "Mailbox unavailable for now (busy or blocked): try again later",
  451: "Local error while processing: the action was aborted, try again later",
  452: "Insufficient storage (or too many recipients): try again later",
  455: "Server unable to accommodate parameters",
  500: "Syntax error: the command was not recognised",
  501: "Syntax error in the parameters or arguments",
  502: "Command not implemented",
  503: "Bad sequence of commands: something else must come first (EHLO, MAIL, RCPT)",
  504: "Command parameter not implemented",
  530: "Authentication required (RFC 4954): log in with AUTH first",
  535: "Authentication credentials invalid (RFC 4954): wrong user name or password",
  550: "Mailbox unavailable: no such user, or the action is refused (e.g. no relaying)",
  551: "User not local: the client should try another path",
  552: "Exceeded storage allocation: the message is too large or the mailbox is full",
  553: "Mailbox name not allowed: the address is not valid or not yours",
  554: "Transaction failed (or, as a greeting, no SMTP service here)",
  555: "MAIL FROM or RCPT TO parameters not recognised or not implemented",
};

function explain(code) {
  const n = Number(code);
  if (CODES[n]) return CODES[n];
  const cls = { 2: "success", 3: "intermediate: the server waits for more", 4: "temporary failure: try again later", 5: "permanent failure: do not repeat as is" };
  return "Reply class " + code[0] + "xx: " + (cls[code[0]] || "unknown");
}

async function showDialogue(p, path) {
  p.append(el("p", { class: "muted", text: "loading\u2026" }));
  let t;
  try {
    const r = await fetch(path + "/transcript", { credentials: "same-origin" });
    if (r.status === 404) {
      p.replaceChildren(el("p", { class: "muted", text: "No recorded dialogue for this message (it was not received over SMTP with recording on, or its recording is gone)." }));
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    t = await r.json();
  } catch (e) {
    p.replaceChildren(el("p", { class: "error", text: "The dialogue could not be read: " + e.message }));
    return;
  }
  const box = el("div", { class: "dialogue" });
  const note = [];
  if (t.peer) note.push("client " + t.peer);
  if (t.listener) note.push("listener " + t.listener);
  if (note.length) box.append(el("div", { class: "note", text: note.join(" \u00b7 ") }));
  for (const line of t.lines || []) {
    const d = el("div", { class: line.dir === "C" ? "c" : "s" });
    d.append(line.dir + ": ");
    const m = line.dir === "S" && /^([2-5]\d\d)([ -]?)(.*)$/s.exec(line.text);
    if (m) {
      d.append(el("abbr", { title: explain(m[1]), text: m[1] }), m[2] + m[3]);
    } else {
      d.append(line.text);
    }
    box.append(d);
  }
  if (t.truncated) box.append(el("div", { class: "note", text: "(the recording was cut short here)" }));
  p.replaceChildren(box);
}

// ---- actions ----
async function toggleSeen() {
  const m = state.open;
  if (!m) return;
  const seen = !m.flags.includes("\\Seen");
  try {
    const f = await api("PATCH", msgPath(m.mailbox, m.id), { seen });
    m.flags = f.flags;
    markRow(m.id, seen);
    seenButton();
    say(seen ? "Marked read" : "Marked unread");
    loadMailboxes();
  } catch (e) { say(errorText(e)); }
}

async function deleteOpen() {
  const m = state.open;
  if (!m) return;
  try {
    await api("DELETE", msgPath(m.mailbox, m.id));
    say("Deleted");
    afterRemoval();
  } catch (e) { say(errorText(e)); }
}

async function moveOpen() {
  const m = state.open;
  const to = $("move-to").value;
  $("move-to").value = "";
  if (!m || !to) return;
  try {
    await api("POST", msgPath(m.mailbox, m.id) + "/move", { to });
    say("Moved to " + to);
    afterRemoval();
  } catch (e) { say(errorText(e)); }
}

function afterRemoval() {
  closeMessage();
  location.hash = "#mailbox/" + enc(state.mailbox);
  loadList();
  loadMailboxes();
  $("list").focus();
}

// ---- live updates: Server-Sent Events ----
function startEvents() {
  stopEvents();
  const es = new EventSource("/api/events");
  state.events = es;
  es.addEventListener("ready", () => $("live").classList.add("on"));
  es.onerror = () => $("live").classList.remove("on");
  const changed = (ev, fresh) => {
    let d = {};
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    scheduleReload(d.mailbox === state.mailbox, fresh);
  };
  es.addEventListener("message", (ev) => changed(ev, true));
  es.addEventListener("flags", (ev) => changed(ev, false));
  es.addEventListener("expunge", (ev) => changed(ev, false));
}

function stopEvents() {
  if (state.events) state.events.close();
  state.events = null;
  $("live").classList.remove("on");
}

// Several events in a burst (a message to many folders, a big expunge) reload once.
function scheduleReload(list, fresh) {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(() => {
    loadMailboxes();
    if (list && !$("list-pane").hidden) loadList(fresh);
  }, 100);
}

// ---- the queue (administrators) ----
function ago(secs) {
  if (secs < 90) return secs + " s";
  if (secs < 5400) return Math.round(secs / 60) + " min";
  if (secs < 129600) return Math.round(secs / 3600) + " h";
  return Math.round(secs / 86400) + " d";
}

async function loadQueue() {
  $("queue-error").textContent = "";
  let q;
  try {
    q = await api("GET", "/api/queue");
  } catch (e) {
    $("queue-error").textContent = errorText(e);
    return;
  }
  const tb = $("queue-table").querySelector("tbody");
  tb.replaceChildren();
  $("queue-empty").hidden = q.length > 0;
  for (const e of q) {
    const act = (label, fn) => el("button", { type: "button", text: label, onclick: fn });
    tb.append(el("tr", { "data-id": String(e.id) },
      el("td", { text: String(e.id) }),
      el("td", { text: e.sender || "<> (a bounce)" }),
      el("td", { text: e.recipients.map((r) => r.address + " (" + r.state + ")").join(", ") }),
      el("td", { text: String(e.attempts) }),
      el("td", { class: "err", text: e.last_error || "" }),
      el("td", { text: e.next_retry ? new Date(e.next_retry * 1000).toLocaleString() : "" }),
      el("td", { text: ago(e.age) }),
      el("td", {},
        act("Retry now", () => queueAction("POST", "/api/queue/" + e.id + "/retry", "Retrying " + e.id)),
        act("Remove", () => {
          if (confirm("Remove queued message " + e.id + " without delivering it?")) {
            queueAction("DELETE", "/api/queue/" + e.id, "Removed " + e.id);
          }
        }))));
  }
}

async function queueAction(method, path, done) {
  try {
    await api(method, path);
    say(done);
  } catch (e) {
    say(errorText(e));
  }
  loadQueue();
}

// ---- navigation: #mailbox/NAME, #message/NAME/ID, #queue ----
function route() {
  if (!state.me) return;
  const h = location.hash.slice(1).split("/").map(decodeURIComponent);
  const queue = h[0] === "queue" && state.me.admin;
  $("queue-pane").hidden = !queue;
  $("list-pane").hidden = queue;
  $("folders").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
  for (const a of $("folder-list").querySelectorAll("a")) {
    if (!queue && a.dataset.mailbox === (h[1] || state.mailbox)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("queue-link").toggleAttribute("aria-current", queue);
  if (queue) {
    closeMessage();
    loadQueue();
    return;
  }
  const mailbox = (h[0] === "mailbox" || h[0] === "message") && h[1] ? h[1] : "INBOX";
  const changed = mailbox !== state.mailbox;
  if (changed) { state.mailbox = mailbox; state.offset = 0; state.selected = 0; state.messages = []; }
  if (changed || !state.messages.length) loadList();
  if (h[0] === "message" && h[2]) openMessage(mailbox, h[2]);
  else closeMessage();
}

// ---- keyboard: j/k move, Enter opens, Escape goes back, / searches, u read/unread ----
function onKey(ev) {
  if (!state.me || $("app").hidden) return;
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  if (typing) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const n = state.messages.length;
  switch (ev.key) {
    case "j": case "ArrowDown":
      if (t.closest && t.closest("#tabs")) return;
      select(Math.min(state.selected + 1, n - 1));
      if (state.open) openSelected();
      break;
    case "k": case "ArrowUp":
      if (t.closest && t.closest("#tabs")) return;
      select(Math.max(state.selected - 1, 0));
      if (state.open) openSelected();
      break;
    case "Enter":
      if (t.closest && t.closest("button, a, iframe")) return;
      openSelected();
      break;
    case "Escape":
      if (state.open) { location.hash = "#mailbox/" + enc(state.mailbox); $("list").focus(); }
      break;
    case "/":
      $("q").focus();
      break;
    case "u":
      toggleSeen();
      break;
    case "#": case "Delete":
      deleteOpen();
      break;
    default:
      return;
  }
  ev.preventDefault();
}

// The tabs follow the WAI-ARIA tabs pattern: Left/Right move between them.
function onTabKey(ev) {
  const tabs = [...$("tabs").querySelectorAll("[role=tab]")];
  const i = tabs.indexOf(document.activeElement);
  if (i < 0) return;
  let j = -1;
  if (ev.key === "ArrowRight") j = (i + 1) % tabs.length;
  if (ev.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
  if (j < 0) return;
  ev.preventDefault();
  tabs[j].focus();
  showTab(tabs[j].dataset.tab);
}

// ---- wiring ----
document.addEventListener("DOMContentLoaded", async () => {
  applyTheme();
  $("theme").addEventListener("click", toggleTheme);
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.search = $("q").value.trim();
    state.offset = 0;
    state.selected = 0;
    loadList();
    $("list").focus();
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadList(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadList(); });
  $("back").addEventListener("click", () => { location.hash = "#mailbox/" + enc(state.mailbox); });
  $("toggle-seen").addEventListener("click", toggleSeen);
  $("delete").addEventListener("click", deleteOpen);
  $("move-to").addEventListener("change", moveOpen);
  $("queue-refresh").addEventListener("click", loadQueue);
  $("menu").addEventListener("click", () => {
    const open = $("folders").classList.toggle("open");
    $("menu").setAttribute("aria-expanded", open ? "true" : "false");
  });
  for (const b of $("tabs").querySelectorAll("[role=tab]")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  $("tabs").addEventListener("keydown", onTabKey);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  if (!state.csrf) { showLogin(); return; }
  try {
    const me = await api("GET", "/api/me");
    await start(me);
  } catch (e) {
    if (e.status !== 401) showLogin(errorText(e));
  }
});
