// The leads console: one page over the management API (/api/manage/). No framework, no build step.
// Every value from the API is set as text (textContent / DOM nodes), never parsed as markup.
"use strict";

(function () {
  const API = location.pathname.replace(/\/console\/?$/, "/") + "manage/";
  const STATUSES = ["pending", "retrying", "blocked", "parked", "failed", "delivered", "skipped"];
  const DELIVERY_STATES = ["pending", "sending", "retrying", "blocked", "parked", "failed", "delivered", "skipped"];
  const FINAL = new Set(["delivered", "skipped", "failed", "blocked", "parked"]);
  const FILTERS = [
    // [query name, label, kind, options]
    ["q", "Search company, e-mail or name", "search"],
    ["status", "Status", "select", STATUSES],
    ["test", "Test or real", "select", [["true", "Test leads"], ["false", "Real leads"]]],
    ["destination", "Destination", "text"],
    ["destination_state", "Destination state", "select", DELIVERY_STATES],
    ["offer", "Offer", "text"],
    ["action", "Action code", "text"],
    ["from", "Received from", "datetime-local"],
    ["to", "Received until", "datetime-local"],
  ];
  const main = document.getElementById("main");
  const announcer = document.getElementById("announcer");
  let pollTimer = null;

  // ---- DOM helpers: strings become text nodes, never markup ----
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function shown(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function when(iso) {
    if (!iso) return h("span", { text: "—" });
    const date = new Date(iso);
    const label = isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
    return h("time", { datetime: String(iso), title: String(iso), text: label });
  }

  function badge(state) {
    const known = STATUSES.includes(state) || DELIVERY_STATES.includes(state) || state === "crashed";
    return h("span", { class: "badge badge-" + (known ? state : "other"), text: shown(state) });
  }

  function definitions(pairs) {
    const list = h("dl", { class: "pairs" });
    for (const [term, value] of pairs) {
      list.append(h("dt", { text: term }), h("dd", {}, value instanceof Node ? value : shown(value)));
    }
    return list;
  }

  function table(caption, headers, rows) {
    const head = h("tr", {}, headers.map((name) => h("th", { scope: "col", text: name })));
    const body = h("tbody", {}, rows);
    return h("div", { class: "scroll", role: "region", "aria-label": caption, tabindex: "0" },
      h("table", {}, h("caption", { text: caption }), h("thead", {}, head), body));
  }

  function announce(message) {
    announcer.textContent = "";
    // A fresh text a moment later, so screen readers repeat a message that did not change.
    setTimeout(() => { announcer.textContent = message; }, 30);
  }

  // An operator's action behind a button: the button is off while it runs; `action` answers the sentence to
  // announce and what to show in `result`; an error shows (and announces) its own sentence instead.
  async function runAction(button, result, action) {
    button.disabled = true;
    try {
      const outcome = await action();
      result.replaceChildren(...outcome.show);
      announce(outcome.sentence);
    } catch (error) {
      result.replaceChildren(errorBox(error));
      announce(error.message);
    } finally {
      button.disabled = false;
    }
  }

  function errorBox(error) {
    return h("p", { class: "error", role: "alert", text: error.message });
  }

  // ---- The API: every error is {"error", "message"}; the message is what a person reads ----
  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {  // every action is JSON (the API refuses any other type: no cross-site forms)
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body === undefined ? {} : body);
    }
    let response;
    try {
      response = await fetch(API + path, options);
    } catch (cause) {
      throw new Error("The app did not answer (" + cause.message + "). Is it running?");
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch (cause) {
      answer = null;
    }
    if (!response.ok) {
      const message = answer && answer.message ? answer.message
        : "The app answered " + response.status + " " + response.statusText + ".";
      throw new Error(message);
    }
    return answer;
  }

  // ---- Views ----
  function view(title, ...content) {
    const heading = h("h1", { id: "view-title", tabindex: "-1", text: title });
    main.replaceChildren(heading, ...content.filter((part) => part !== null && part !== undefined));
    return heading;
  }

  function deliveryList(deliveries) {
    const items = Object.entries(deliveries || {}).map(([name, d]) =>
      h("li", {}, name + ": ", badge(d.state)));
    return items.length ? h("ul", { class: "inline" }, items) : "—";
  }

  function leadLink(lead) {
    const label = lead.company || lead.name || lead.email || lead.id;
    return h("a", { href: "#/leads/" + encodeURIComponent(lead.id), text: label });
  }

  const LEAD_COLUMNS = ["Received", "Lead", "Status", "Kind", "Name", "E-mail", "Offer", "Action", "Deliveries"];

  function leadRow(lead) {
    // data-label: on a phone each row is a card and each cell says what it is (app.css).
    const cell = (index, attrs, ...content) => h(index === 1 ? "th" : "td",
      Object.assign({ "data-label": LEAD_COLUMNS[index] }, index === 1 ? { scope: "row" } : {}, attrs), ...content);
    return h("tr", {},
      cell(0, {}, when(lead.received_at)),
      cell(1, {}, leadLink(lead)),
      cell(2, {}, badge(lead.status)),
      cell(3, { text: lead.test ? "test" : "real" }),
      cell(4, { text: shown(lead.name) }),
      cell(5, { text: shown(lead.email) }),
      cell(6, { text: shown(lead.offer) }),
      cell(7, { title: shown(lead.action_meaning), text: shown(lead.action) }),
      cell(8, {}, deliveryList(lead.deliveries)));
  }

  function filterForm(params) {
    const fields = FILTERS.map(([name, label, kind, options]) => {
      const id = "filter-" + name;
      let control;
      if (kind === "select") {
        control = h("select", { id, name }, h("option", { value: "", text: "Any" }),
          options.map((o) => (Array.isArray(o) ? h("option", { value: o[0], text: o[1] }) : h("option", { value: o, text: o }))));
      } else {
        control = h("input", { id, name, type: kind, autocomplete: "off", step: kind === "datetime-local" ? "1" : null });
      }
      const value = params.get(name) || "";
      control.value = kind === "datetime-local" && value ? toLocalInput(value) : value;
      return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
    });
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter leads" },
      fields,
      h("div", { class: "actions" },
        h("button", { type: "submit", id: "apply-filters", text: "Apply filters" }),
        h("button", { type: "button", id: "clear-filters", class: "secondary", text: "Clear",
          onclick: () => { location.hash = "#/leads"; } })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      for (const [name, , kind] of FILTERS) {
        const value = form.elements[name].value.trim();
        if (!value) continue;
        query.set(name, kind === "datetime-local" ? new Date(value).toISOString() : value);
      }
      if (params.has("limit")) query.set("limit", params.get("limit"));
      const hash = "#/leads" + (query.toString() ? "?" + query.toString() : "");
      if (location.hash === hash) route(); else location.hash = hash;
    });
    // On a phone the filters fold away (a native, keyboard-usable disclosure) unless some are in use.
    const active = FILTERS.filter(([name]) => params.get(name)).length;
    const wide = window.matchMedia("(min-width: 40rem)").matches;
    return h("details", { class: "filter-box", open: wide || active > 0 },
      h("summary", { text: "Filters" + (active ? " (" + active + " in use)" : "") }), form);
  }

  function toLocalInput(iso) {
    const date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return local.toISOString().slice(0, 19);
  }

  async function leadsView(params) {
    const rows = h("tbody");
    const results = h("section", { "aria-labelledby": "results-title" }, h("h2", { id: "results-title", text: "Leads" }));
    const more = h("button", { type: "button", id: "more-leads", class: "secondary", hidden: true, text: "Load more leads" });
    const count = h("p", { id: "lead-count", class: "muted" });
    const heading = view("Leads", filterForm(params), results);
    const head = h("tr", {}, LEAD_COLUMNS.map((name) => h("th", { scope: "col", text: name })));
    results.append(count, h("div", { class: "scroll", role: "region", "aria-label": "Leads found", tabindex: "0" },
      h("table", { id: "lead-table" }, h("caption", { class: "visually-hidden", text: "Leads, newest first" }),
        h("thead", {}, head), rows)), more);
    let continuation = null;
    let total = 0;
    async function page() {
      // The filters (the search text among them) go in the body: never in a URL the server or a proxy logs.
      const search = {};
      for (const [name, value] of new URLSearchParams(params)) {
        if (!value) continue;
        search[name] = name === "test" ? value === "true" : name === "limit" ? Number(value) : value;
      }
      if (!("limit" in search)) search.limit = 50;
      if (continuation) search.continuation = continuation;
      more.disabled = true;
      try {
        const answer = await api("POST", "leads/search", search);
        for (const lead of answer.leads) rows.append(leadRow(lead));
        total += answer.leads.length;
        continuation = answer.continuation;
        more.hidden = !continuation;
        count.textContent = total === 0 && continuation ? "No match among the leads read so far: Load more to keep looking."
          : total === 0 ? "No lead matches these filters."
          : total + (continuation ? "+" : "") + (total === 1 && !continuation ? " lead shown." : " leads shown.");
        announce(count.textContent);
      } catch (error) {
        results.append(errorBox(error));
        announce(error.message);
      } finally {
        more.disabled = false;
      }
    }
    more.addEventListener("click", page);
    await page();
    return heading;
  }

  function historyTable(name, history) {
    const rows = (history || []).map((attempt) => h("tr", {},
      h("td", {}, when(attempt.at)), h("td", {}, badge(attempt.outcome)),
      h("td", { text: shown(attempt.sentence) }), h("td", { text: shown(attempt.record_id) })));
    if (!rows.length) return h("p", { class: "muted", text: "No attempt yet." });
    return table("Attempts to " + name, ["When", "Outcome", "What happened", "Record id"], rows);
  }

  async function replay(lead, destination, button) {
    button.disabled = true;
    const focusId = button.id;
    try {
      const answer = await api("POST", "leads/" + encodeURIComponent(lead) + "/replay",
        destination ? { destination } : {});
      announce(answer.result);
      await leadView(lead, { keepFocus: focusId, notice: answer.result, poll: answer.queued });
    } catch (error) {
      button.disabled = false;
      button.after(errorBox(error));
      announce(error.message);
    }
  }

  async function leadView(id, options) {
    options = options || {};
    let lead;
    try {
      lead = await api("GET", "leads/" + encodeURIComponent(id));
    } catch (error) {
      return view("Lead", errorBox(error), h("p", {}, h("a", { href: "#/leads", text: "Back to the leads" })));
    }
    const title = [lead.company, lead.name].filter(Boolean).join(" — ") || lead.id;
    const notice = h("p", { id: "lead-notice", class: "notice", role: "status" });
    if (options.notice) notice.textContent = options.notice;
    const deliveries = Object.entries(lead.deliveries || {}).map(([name, d]) => h("section",
      { class: "card", "aria-labelledby": "dest-" + name },
      h("h3", { id: "dest-" + name }, name + " ", badge(d.state)),
      definitions([["State", d.state], ["Attempts since the last replay", d.attempts], ["Last error", d.last_error],
        ["Record id", d.record_id], ["Delivered at", when(d.delivered_at)], ["Next attempt", when(d.next_attempt_at)]]),
      h("button", { type: "button", id: "replay-" + name, class: "secondary", text: "Replay to " + name,
        onclick: (event) => replay(lead.id, name, event.currentTarget) }),
      historyTable(name, d.history)));
    const heading = view("Lead: " + title,
      h("p", {}, h("a", { href: "#/leads", text: "Back to the leads" })),
      notice,
      h("section", { "aria-labelledby": "summary-title" }, h("h2", { id: "summary-title", text: "Summary" }),
        definitions([["Id", lead.id], ["Status", badge(lead.status)], ["Received", when(lead.received_at)],
          ["Test lead", lead.test], ["Education", lead.edu], ["Action", (lead.action || "—") + " — " + shown(lead.action_meaning)],
          ["Offer", lead.offer], ["Company", lead.company], ["Country", lead.country], ["Name", lead.name],
          ["E-mail", lead.email], ["Lead source", lead.lead_source], ["Description", lead.description],
          ["Duplicate arrivals", lead.duplicate_arrivals], ["Last duplicate", when(lead.last_duplicate_at)]]),
        h("div", { class: "actions" },
          h("button", { type: "button", id: "replay-all", text: "Replay whole lead",
            onclick: (event) => replay(lead.id, null, event.currentTarget) }),
          h("button", { type: "button", id: "refresh-lead", class: "secondary", text: "Refresh",
            onclick: () => leadView(lead.id, { keepFocus: "refresh-lead" }) }))),
      h("section", { "aria-labelledby": "deliveries-title" }, h("h2", { id: "deliveries-title", text: "Deliveries" }),
        deliveries.length ? deliveries : h("p", { class: "muted", text: "No destination is configured." })),
      h("section", { "aria-labelledby": "campaign-title" }, h("h2", { id: "campaign-title", text: "Campaign" }),
        definitions(Object.entries(lead.campaign || {}))),
      h("section", { "aria-labelledby": "fields-title" }, h("h2", { id: "fields-title", text: "Every field" }),
        definitions(flatten(lead.lead || {}, ""))),
      h("section", { "aria-labelledby": "raw-title" },
        h("h2", { id: "raw-title", text: "Raw body as received (" + shown(lead.raw_body_bytes) + " bytes)" }),
        h("pre", { class: "raw", tabindex: "0", "aria-labelledby": "raw-title", text: shown(lead.raw_body) })));
    const keep = options.keepFocus && document.getElementById(options.keepFocus);
    if (keep) keep.focus();
    else heading.focus();
    if (options.poll && Object.values(lead.deliveries || {}).some((d) => !FINAL.has(d.state))) {
      schedule(() => leadView(id, { keepFocus: document.activeElement && document.activeElement.id, notice: notice.textContent, poll: true }));
    } else if (options.poll) {
      announce("Lead " + lead.status + ".");
    }
    return heading;
  }

  function flatten(value, prefix) {
    const pairs = [];
    for (const [key, inner] of Object.entries(value)) {
      const name = prefix ? prefix + "." + key : key;
      if (inner && typeof inner === "object" && !Array.isArray(inner)) pairs.push(...flatten(inner, name));
      else pairs.push([name, inner]);
    }
    return pairs;
  }

  function schedule(work) {
    clearTimeout(pollTimer);
    const hash = location.hash;
    pollTimer = setTimeout(() => { if (location.hash === hash) work(); }, 1000);
  }

  async function statusView() {
    let s;
    try {
      s = await api("GET", "status");
    } catch (error) {
      return view("Status", errorBox(error));
    }
    const periods = Object.keys(s.counts || {});
    const states = [...new Set(periods.flatMap((p) => Object.keys(s.counts[p])))];
    const countRows = states.map((state) => h("tr", {}, h("th", { scope: "row" }, badge(state)),
      periods.map((p) => h("td", { text: shown(s.counts[p][state] || 0) }))));
    const destinationRows = (s.destinations || []).map((d) => h("tr", {},
      h("th", { scope: "row", text: d.name }), h("td", { text: shown(d.takes) }), h("td", { text: d.circuit }),
      h("td", { text: shown(d.blocked_by_settings) }),
      h("td", {}, when(d.last_success)),
      h("td", {}, d.last_failure ? [when(d.last_failure.at), " ", d.last_failure.sentence] : "—")));
    const lastLink = (lead) => (lead ? h("span", {}, leadLink({ id: lead.id, company: lead.id }), " at ", when(lead.received_at)) : "none yet");
    const why = s.why_no_leads || [];
    return view("Status",
      h("section", { "aria-labelledby": "why-title" }, h("h2", { id: "why-title", text: "Why do I see no leads?" }),
        why.length ? h("ul", { id: "why-no-leads" }, why.map((sentence) => h("li", { text: sentence })))
          : h("p", { id: "why-no-leads", text: "Nothing stands in the way: leads arrive and are delivered." })),
      definitions([["Last lead", lastLink(s.last_lead)], ["Last test lead", lastLink(s.last_test_lead)],
        ["Management API", h("span", { id: "api-mode", text: shown(s.api_access) })]]),
      table("Leads by status", ["Status"].concat(periods.map((p) => "Last " + p)), countRows),
      table("Destinations", ["Destination", "Takes", "Circuit", "Blocked by settings", "Last success", "Last failure"],
        destinationRows),
      Object.keys(s.settings_ignored || {}).length
        ? h("section", { "aria-labelledby": "ignored-title" }, h("h2", { id: "ignored-title", text: "Settings ignored" }),
          definitions(Object.entries(s.settings_ignored))) : null);
  }

  async function quarantineView() {
    const rows = h("tbody");
    const more = h("button", { type: "button", id: "more-requests", class: "secondary", hidden: true, text: "Load more" });
    const heading = view("Quarantine",
      h("p", { class: "muted", text: "Requests the app refused. Fix the cause, then re-ingest." }),
      h("div", { class: "scroll", role: "region", "aria-label": "Refused requests", tabindex: "0" },
        h("table", {}, h("caption", { class: "visually-hidden", text: "Refused requests, newest first" }),
          h("thead", {}, h("tr", {}, ["Received", "Request", "Reason", "Answer", "Message", "Bytes"]
            .map((name) => h("th", { scope: "col", text: name })))), rows)), more);
    let continuation = null;
    async function page() {
      try {
        const answer = await api("GET", "quarantine?limit=50" + (continuation ? "&continuation=" + encodeURIComponent(continuation) : ""));
        for (const r of answer.requests) {
          rows.append(h("tr", {}, h("td", {}, when(r.received_at)),
            h("th", { scope: "row" }, h("a", { href: "#/quarantine/" + encodeURIComponent(r.id), text: r.id })),
            h("td", { text: shown(r.reason) }), h("td", { text: shown(r.status) }), h("td", { text: shown(r.message) }),
            h("td", { text: shown(r.body_bytes) + (r.truncated ? " (truncated)" : "") })));
        }
        continuation = answer.continuation;
        more.hidden = !continuation;
        announce(rows.children.length ? rows.children.length + " refused requests shown." : "No refused request.");
        if (!rows.children.length) more.after(h("p", { text: "No refused request." }));
      } catch (error) {
        more.after(errorBox(error));
      }
    }
    more.addEventListener("click", page);
    await page();
    return heading;
  }

  async function quarantinedView(id) {
    let r;
    try {
      r = await api("GET", "quarantine/" + encodeURIComponent(id));
    } catch (error) {
      return view("Refused request", errorBox(error));
    }
    const result = h("div", { id: "reingest-result", "aria-live": "polite" });
    const button = h("button", { type: "button", id: "reingest", text: "Re-ingest this request" });
    button.addEventListener("click", () => runAction(button, result, async () => {
      const answer = await api("POST", "quarantine/" + encodeURIComponent(id) + "/reingest");
      const accepted = answer.status >= 200 && answer.status < 300;
      const sentence = accepted ? "Accepted (" + answer.status + ")." : "Refused again (" + answer.status + ").";
      return { sentence, show: [h("p", { text: sentence + " " + shown(answer.answer && answer.answer.message) }),
        answer.answer && answer.answer.id ? h("p", {}, leadLink({ id: answer.answer.id, company: "Open the lead" })) : ""] };
    }));
    return view("Refused request " + r.id,
      h("p", {}, h("a", { href: "#/quarantine", text: "Back to the quarantine" })),
      definitions([["Received", when(r.received_at)], ["Reason", r.reason], ["Answer", r.status], ["Message", r.message],
        ["Method", r.method], ["Content type", r.content_type], ["Body bytes", r.body_bytes], ["Truncated", r.truncated]]),
      h("div", { class: "actions" }, button), result,
      h("h2", { id: "body-title", text: "Body" }),
      h("pre", { class: "raw", tabindex: "0", "aria-labelledby": "body-title", text: shown(r.body) }));
  }

  function doctorView() {
    const result = h("div", { id: "doctor-result" });
    const button = h("button", { type: "button", id: "run-doctor", text: "Run the checks" });
    button.addEventListener("click", () => runAction(button, result, async () => {
      result.replaceChildren(h("p", { class: "muted", text: "Checking…" }));
      const answer = await api("POST", "doctor");
      const rows = answer.checks.map((c) => h("tr", {}, h("td", { text: shown(c.destination) }),
        h("td", { text: c.name }), h("td", {}, badge(c.ok ? "delivered" : "failed")), h("td", { text: shown(c.message) })));
      const sentence = answer.ok ? "Every check passed." : "Some checks failed.";
      return { sentence, show: [h("p", { text: sentence }), table("Checks", ["Destination", "Check", "Result", "Message"], rows)] };
    }));
    return view("Doctor", h("p", { text: "Runs the live checks: storage, and each destination's connection and credentials." }),
      h("div", { class: "actions" }, button), result);
  }

  function testLeadView() {
    const result = h("div", { id: "test-lead-result" });
    const button = h("button", { type: "button", id: "send-test-lead", text: "Send a test lead" });
    button.addEventListener("click", () => runAction(button, result, async () => {
      const answer = await api("POST", "test-lead");
      const sentence = "Test lead " + answer.id + (answer.duplicate ? " was already stored." : " accepted.");
      return { sentence, show: [h("p", { text: sentence }),
        h("p", {}, leadLink({ id: answer.id, company: "Follow it in its detail page" }))] };
    }));
    return view("Send a test lead",
      h("p", { text: "Sends a lead shaped like Partner Center's Validate test lead through this app and its destinations." }),
      h("div", { class: "actions" }, button), result);
  }

  // Erasure is for operators (the API answers 403 to readers, shown as its sentence). The address is sent in
  // the body, never in the URL, so it stays out of history and server logs.
  function forgetView() {
    const result = h("div", { id: "forget-result" });
    const email = h("input", { type: "email", id: "forget-email", required: "", autocomplete: "off",
      maxlength: "320", "aria-describedby": "forget-help" });
    const sure = h("input", { type: "checkbox", id: "forget-sure", required: "" });
    const form = h("form", { id: "forget-form", class: "actions" },
      h("div", {}, h("label", { for: "forget-email", text: "The person's e-mail address" }), h("br"), email),
      h("div", {}, sure, " ", h("label", { for: "forget-sure", text: "Erase everything held about them: this cannot be undone" })),
      h("button", { type: "submit", id: "forget", text: "Erase" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      runAction(form.querySelector("button"), result, async () => {
        const counts = await api("POST", "forget", { email: email.value.trim() });
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        const sentence = total ? "Erased." : "Nothing was held about this address (any more).";
        email.value = "";
        sure.checked = false;
        return { sentence, show: [h("p", { text: sentence }),
          table("Erased", ["What", "Count"], Object.entries(counts).map(([k, v]) => h("tr", {},
            h("th", { scope: "row", text: k.replace("_", " ") }), h("td", { text: String(v) }))))] };
      });
    });
    return view("Forget a person",
      h("p", { id: "forget-help", text: "Deletes every lead of this address with its delivery history, its rejected requests, "
        + "copies held while storage was down and queued messages. What the destinations received (e-mails, CRMs) is theirs to erase." }),
      form, result);
  }

  async function auditView() {
    const rows = h("tbody");
    const more = h("button", { type: "button", id: "more-audit", class: "secondary", hidden: true, text: "Load more" });
    const heading = view("Audit trail",
      h("p", { class: "muted", text: "Who replayed, re-ingested, forgot, exported, sent a test lead or ran the checks. A forgotten address shows only as its keyed hash." }),
      h("div", { class: "scroll", role: "region", "aria-label": "Operator actions", tabindex: "0" },
        h("table", { id: "audit-table" }, h("caption", { class: "visually-hidden", text: "Operator actions, newest first" }),
          h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Leads", "Answer", "Outcome"]
            .map((name) => h("th", { scope: "col", text: name })))), rows)), more);
    let continuation = null;
    async function page() {
      try {
        const answer = await api("GET", "audit?limit=50" + (continuation ? "&continuation=" + encodeURIComponent(continuation) : ""));
        for (const e of answer.entries) {
          const leads = e.lead_ids.length ? e.lead_ids.slice(0, 5).map((id) => leadLink({ id, company: id }))
            : [shown(e.subject)];
          rows.append(h("tr", {}, h("td", {}, when(e.at)), h("td", { text: shown(e.who) }),
            h("th", { scope: "row", text: e.action }), h("td", {}, leads), h("td", { text: shown(e.status) }),
            h("td", { text: shown(e.outcome) })));
        }
        continuation = answer.continuation;
        more.hidden = !continuation;
        announce(rows.children.length ? rows.children.length + " actions shown." : "No action recorded yet.");
        if (!rows.children.length) more.after(h("p", { text: "No action recorded yet." }));
      } catch (error) {
        more.after(errorBox(error));
      }
    }
    more.addEventListener("click", page);
    await page();
    return heading;
  }

  // ---- Routing: #/leads?filters, #/leads/<id>, #/status, #/quarantine[/<id>], #/doctor, #/test-lead, #/forget ----
  async function route() {
    clearTimeout(pollTimer);
    const hash = location.hash || "#/leads";
    const [path, query] = hash.slice(1).split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const section = parts[0] || "leads";
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    let heading;
    if (section === "leads" && parts[1]) heading = await leadView(parts[1]);
    else if (section === "leads") heading = await leadsView(new URLSearchParams(query || ""));
    else if (section === "status") heading = await statusView();
    else if (section === "quarantine" && parts[1]) heading = await quarantinedView(parts[1]);
    else if (section === "quarantine") heading = await quarantineView();
    else if (section === "doctor") heading = doctorView();
    else if (section === "test-lead") heading = testLeadView();
    else if (section === "forget") heading = forgetView();
    else if (section === "audit") heading = await auditView();
    else heading = view("Not found", h("p", {}, "No such page. ", h("a", { href: "#/leads", text: "Go to the leads" })));
    document.title = heading.textContent + " · Leads console";
    // Focus moves to the new view's heading, so keyboard and screen-reader users start there.
    if (!main.contains(document.activeElement) || document.activeElement === main) heading.focus();
  }

  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/") || !location.hash) route();
  });
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const heading = document.getElementById("view-title");
    (heading || main).focus();
  });
  route();
})();
