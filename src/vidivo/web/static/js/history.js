// The host's call history: how each call ended in words, when, how long, through which link,
// what it cost and what was refunded; a page at a time ("Show more"), refunds from a row.
import { api, ApiError, el, explain, formatCents, onSubmit, toCents } from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
let cursor = null;
let flash = () => {};
let onMoneyChanged = () => {};
let refunding = null; // { session, key } while the refund dialog is open

// How a call ended, by its state and end reason (calls/outcomes.py, engine.py, service.py).
const ENDED_WORDS = {
  ended_by_host: "Ended by you",
  ended_by_guest: "Ended by the guest",
  max_spend: "Guest's spending limit reached",
  no_hold: "Card declined at renewal",
  reconnect_timeout: "Connection lost, not back in time",
  host_suspended: "Ended: your account was suspended",
  provider_unavailable: "Ended: the payment service failed",
};
const NOT_STARTED_WORDS = {
  host_declined: "You declined",
  ended_by_guest: "Guest cancelled before you answered",
  ended_by_host: "You ended it before it started",
  card_declined: "Card declined at start",
  authentication_failed: "Card's bank refused the check at start",
  authentication_required: "Card needs the bank's check: not started",
  authentication_abandoned: "Guest left the bank's check unfinished",
  start_abandoned: "Guest left before paying",
  link_exhausted: "Link had no uses left",
  link_expired: "Link expired as it started",
  link_deactivated: "Link switched off as it started",
  host_suspended: "Not started: your account was suspended",
  provider_unavailable: "Not started: the payment service failed",
};
const OPEN_WORDS = {
  pending_payment: "Starting: card being checked",
  waiting_for_host: "Waiting for you",
  live: "Live now",
  paused: "Paused: reconnecting",
  ending: "Ending",
};

export function outcomeWords(session) {
  if (session.state === "expired") return "You didn't answer in time";
  if (session.state === "ended") return ENDED_WORDS[session.end_reason] || "Ended";
  if (session.state === "declined") return NOT_STARTED_WORDS[session.end_reason] || "Did not start";
  return OPEN_WORDS[session.state] || session.state;
}

const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function lengthText(session) {
  if (!session.went_live_at) return "Did not start";
  const seconds = session.live_seconds;
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  if (!minutes) return `${rest} s`;
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}

function chargedCents(session) {
  // A call still running shows its cost so far; once over, what was captured.
  return ["live", "paused", "ending"].includes(session.state) ? toCents(session.billed) : toCents(session.charged);
}

function amountCell(session) {
  const charged = chargedCents(session);
  const refunded = toCents(session.refunded);
  const cell = el("td", { "data-label": "Amount", class: "calls-amount" });
  if (!charged) { cell.append(el("span", { class: "muted" }, "Nothing charged")); return cell; }
  cell.append(el("span", { class: "calls-billed" }, `${formatCents(charged)} billed`));
  if (refunded) cell.append(el("span", { class: "calls-refunded" }, `${formatCents(refunded)} refunded`));
  if (session.refund_pending) cell.append(el("span", { class: "calls-refunded" }, `${session.refund_pending} refund under way`));
  return cell;
}

function linkCell(session) {
  const cell = el("td", { "data-label": "Link", class: "calls-link" });
  if (session.link_label) cell.append(el("span", {}, session.link_label));
  cell.append(el("code", {}, session.link_code));
  return cell;
}

function actionsCell(session, row) {
  const actions = el("div", { class: "row" });
  if (["live", "paused"].includes(session.state)) {
    actions.append(el("a", { class: "button", href: `/call/${session.id}` }, "Rejoin"));
  }
  if (session.went_live_at) {
    actions.append(el("button", { type: "button", class: "secondary", "aria-label": `Receipt of the call with ${session.guest_name}`, onclick: () => showReceipt(session.id) }, "Receipt"));
  }
  const left = toCents(session.charged) - toCents(session.refunded);
  if (session.state === "ended" && left > 0) {
    actions.append(el("button", { type: "button", class: "secondary", "aria-label": `Refund the call with ${session.guest_name}`, onclick: () => openRefund(session, row) }, "Refund"));
  }
  return el("td", { class: "calls-actions" }, actions);
}

function sessionRow(session) {
  const row = el("tr", { "data-session-id": session.id, "data-state": session.state, "data-end-reason": session.end_reason || "" });
  const when = new Date(session.created_at);
  row.append(
    el("td", { "data-label": "When" }, el("time", { datetime: session.created_at }, WHEN.format(when))),
    el("td", { "data-label": "Guest" }, session.guest_name),
    el("td", { "data-label": "Outcome", class: "calls-outcome" }, outcomeWords(session)),
    el("td", { "data-label": "Length" }, lengthText(session)),
    linkCell(session),
    amountCell(session),
  );
  row.append(actionsCell(session, row));
  return row;
}

export async function loadHistory(more = false) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (more && cursor) query.set("cursor", cursor);
  const page = await api("GET", `/v1/sessions?${query}`, { token: "host" });
  const rows = page.sessions.map(sessionRow);
  if (more) $("session-rows").append(...rows); else $("session-rows").replaceChildren(...rows);
  cursor = page.pagination.cursor;
  $("more-calls").classList.toggle("hidden", !page.pagination.has_more);
  $("history-empty").classList.toggle("hidden", $("session-rows").children.length > 0);
}

async function showReceipt(sessionId) {
  const { receipt } = await api("GET", `/v1/sessions/${sessionId}/receipt`, { token: "host" });
  const view = $("receipt-view");
  view.replaceChildren(
    el("h3", {}, `Receipt: ${receipt.guest_name}`),
    el("p", {}, `${receipt.billed_minutes} ${receipt.billed_minutes === 1 ? "minute" : "minutes"} at $${receipt.rate_per_minute}: $${receipt.total_charged} charged` +
      (receipt.refunded !== "0.00" ? `, $${receipt.refunded} refunded` : "") + "."),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Window"), el("th", { scope: "col" }, "Held"), el("th", { scope: "col" }, "Charged"), el("th", { scope: "col" }, "Released"))),
      el("tbody", {}, ...receipt.windows.map((w) => el("tr", {}, el("td", {}, String(w.number)), el("td", {}, `$${w.held}`), el("td", {}, `$${w.captured}`), el("td", {}, `$${w.released}`))))));
  view.classList.remove("hidden");
  view.scrollIntoView({ block: "nearest" });
}

// ---- Refunds ----
function leftToRefund(session) {
  return toCents(session.charged) - toCents(session.refunded);
}

function showAmountField() {
  const partial = $("refund-part").checked;
  $("refund-amount-field").classList.toggle("hidden", !partial);
  $("refund-amount").required = partial;
  $("refund-amount").disabled = !partial;
}

function sentence(text) {
  const words = String(text || "").trim();
  return words && `${words[0].toUpperCase()}${words.slice(1)}${/[.!?]$/.test(words) ? "" : "."}`;
}

function openRefund(session, row) {
  refunding = { session, row, key: crypto.randomUUID() }; // one key per refund: a retry is the same refund
  const left = formatCents(leftToRefund(session));
  $("refund-summary").textContent = `${session.guest_name}, ${WHEN.format(new Date(session.created_at))}: ` +
    `${formatCents(toCents(session.charged))} billed` +
    (toCents(session.refunded) ? `, ${formatCents(toCents(session.refunded))} already refunded` : "") + ".";
  $("refund-full-label").textContent = `Everything left: ${left}`;
  $("refund-form").reset();
  $("refund-error").textContent = "";
  for (const box of $("refund-form").querySelectorAll(".field-error")) box.textContent = "";
  showAmountField();
  $("refund-dialog").showModal();
}

async function submitRefund() {
  const { session, row, key } = refunding;
  const body = {};
  if ($("refund-part").checked) {
    const cents = toCents($("refund-amount").value.trim());
    if (cents > leftToRefund(session)) { // said beside the field, before anything is sent
      const message = `At most ${formatCents(leftToRefund(session))} is left to refund.`;
      throw new ApiError(400, { error: { code: "validation_error", message, details: [{ field: "amount", message }] } });
    }
    body.amount = $("refund-amount").value.trim();
  }
  const reason = $("refund-reason").value.trim();
  if (reason) body.reason = reason;
  let refund;
  try {
    ({ refund } = await api("POST", `/v1/sessions/${session.id}/refunds`, {
      token: "host", body, headers: { "Idempotency-Key": key },
    }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // "Everything left" has no amount field to put the answer beside: say it under the form.
    if ($("refund-full").checked) throw new Error(sentence(error.explanation));
    for (const detail of error.details) {
      if (detail.field === "amount" && /^(is|must) /.test(detail.message)) detail.message = sentence(`The amount ${detail.message}`);
    }
    throw error;
  }
  const updated = { ...session };
  try { // the call's refunds as the server has them (others may have been made meanwhile)
    const { receipt } = await api("GET", `/v1/sessions/${session.id}/receipt`, { token: "host" });
    updated.refunded = receipt.refunded;
  } catch {
    if (refund.state === "succeeded") updated.refunded = formatCents(toCents(session.refunded) + toCents(refund.amount)).slice(1);
  }
  if (refund.state !== "succeeded") updated.refund_pending = `$${refund.amount}`;
  row.replaceWith(sessionRow(updated));
  $("refund-dialog").close();
  refunding = null;
  flash(refund.state === "succeeded"
    ? `Refunded $${refund.amount} to ${session.guest_name}. They are emailed; their bank shows it in 5 to 10 days.`
    : `The refund of $${refund.amount} to ${session.guest_name} is under way.`);
  onMoneyChanged();
}

export function initHistory(options) {
  flash = options.flash || flash;
  onMoneyChanged = options.onMoneyChanged || onMoneyChanged;
  $("more-calls").addEventListener("click", () => loadHistory(true).catch((error) => flash(explain(error), "warning")));
  for (const id of ["refund-full", "refund-part"]) $(id).addEventListener("change", showAmountField);
  $("cancel-refund").addEventListener("click", () => { $("refund-dialog").close(); refunding = null; });
  onSubmit("refund-form", "refund-error", submitRefund);
}
