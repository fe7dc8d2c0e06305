// The end screen: it replaces the video and says, in words, why the call ended, what was
// charged, that the hold was released and when that shows, and where to go next. Every figure
// comes from the API's receipt, so a reload shows the same totals.
import { formatCents, formatDuration, toCents } from "./api.js";

const $ = (id) => document.getElementById(id);

/** Why the call ended, for this side of it (`who`: { role, hostName, guestName }). */
export function endReason(session, who) {
  const guest = who.role === "guest";
  const host = who.hostName || "The host";
  const other = guest ? host : who.guestName;
  const live = Boolean(session.went_live_at);
  const released = "The hold on your card was released: nothing was charged.";
  const cap = session.max_spend ? `$${session.max_spend}` : "the limit";
  const grace = session.terms ? session.terms.reconnect_grace_seconds : 60;
  const words = {
    host_declined: guest ? `${host} declined the call, so it did not start. ${released}`
      : `You declined the call from ${who.guestName}. Their hold was released.`,
    host_no_show: guest
      ? `The host did not join in time, so the call did not start. ${released}`
      : `You did not join in time, so the call from ${who.guestName} did not start. Their hold was released.`,
    ended_by_guest: live ? (guest ? "You hung up." : `${who.guestName} hung up.`)
      : (guest ? `You cancelled the call before the host joined. ${released}`
        : `${who.guestName} cancelled the call before you joined.`),
    ended_by_host: live ? (guest ? `${host} hung up.` : "You hung up.")
      : (guest ? `${host} ended the call before it started. ${released}` : "You ended the call before it started."),
    no_hold: guest
      ? "Your card was declined for the next hold and no other card was given in time, so the call ended."
      : `${who.guestName}'s card was declined for the next hold, so the call ended.`,
    max_spend: guest ? `The call reached your spending limit of ${cap}.`
      : `The call reached ${who.guestName}'s spending limit of ${cap}.`,
    reconnect_timeout: `The connection was lost and did not come back within ${grace} seconds.`,
    host_suspended: guest ? "The host's account was suspended, so the call ended." : "Your account was suspended, so the call ended.",
    card_declined: guest ? "Your card was declined, so the call did not start. Nothing was charged."
      : `${other}'s card was declined, so the call did not start.`,
    authentication_required: guest ? "Your card's bank did not confirm the payment, so the call did not start. Nothing was charged."
      : "The guest's bank did not confirm the payment, so the call did not start.",
    authentication_failed: guest ? "Your card's bank did not confirm the payment, so the call did not start. Nothing was charged."
      : "The guest's bank did not confirm the payment, so the call did not start.",
    authentication_abandoned: "The bank's confirmation was not finished in time, so the call did not start. Nothing was charged.",
    start_abandoned: "The call did not start in time. Nothing was charged.",
    provider_unavailable: "The payment service could not be reached, so the call did not start. Nothing was charged.",
    link_exhausted: "This link was used up by another call at the same moment, so the call did not start. Nothing was charged.",
    link_expired: "This link expired just as the call was starting, so the call did not start. Nothing was charged.",
    link_deactivated: guest ? "The host switched this link off just as the call was starting, so the call did not start. Nothing was charged."
      : "You switched this link off just as the call was starting, so the call did not start.",
  }[session.end_reason];
  if (!words) return live ? "The call has ended." : "The call did not start.";
  // A call that went live always says so first: "The call has ended: you hung up."
  if (!live) return words;
  const lead = /^(You|Your|The) /.test(words) ? words[0].toLowerCase() + words.slice(1) : words;
  return `The call has ended: ${lead}`;
}

function minutes(n) { return `${n} minute${n === 1 ? "" : "s"}`; }

function link(href, text, primary) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  a.className = primary ? "button" : "button secondary";
  return a;
}

/** Fill the end screen from the session and its receipt (receipt may be null if unavailable). */
export function showEnd(session, receipt, who) {
  const live = Boolean(session.went_live_at);
  const guest = who.role === "guest";
  $("end-heading").textContent = live
    ? `Your call with ${guest ? who.hostName || "the host" : who.guestName} has ended`
    : "The call did not start";
  $("call-status").textContent = endReason(session, who);
  const actions = [];
  if (guest && who.linkCode) actions.push(link(`/c/${encodeURIComponent(who.linkCode)}`, live ? "Call again" : "Try again", true));
  if (!guest) actions.push(link("/app", "Back to the dashboard", true));
  const receiptUrl = (receipt && receipt.receipt_url) || session.receipt_url;
  if (receiptUrl) actions.push(link(receiptUrl, "Your receipt", false));
  $("end-actions").replaceChildren(...actions);
  if (guest && !who.linkCode) {
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = "To try again, open the host's link again.";
    $("end-actions").append(note);
  }
  if (!receipt) {
    $("end-hold").textContent = "The receipt is not available yet; it is also sent by email.";
    return;
  }
  const charged = toCents(receipt.total_charged);
  const held = receipt.windows.reduce((sum, w) => sum + toCents(w.held), 0);
  const released = receipt.windows.reduce((sum, w) => sum + toCents(w.released), 0);
  $("end-time").textContent = formatDuration(receipt.live_seconds);
  $("end-billed").textContent = `for ${minutes(receipt.billed_minutes)}, per started minute`;
  $("end-charged").textContent = formatCents(charged);
  $("end-figures").classList.toggle("hidden", !live && charged === 0);
  const clears = "Vidivo releases it now; your bank may take a few days to remove it from your statement.";
  let hold = "";
  if (guest) {
    if (held && charged) {
      hold = `You were charged ${formatCents(charged)} for ${minutes(receipt.billed_minutes)} at $${receipt.rate_per_minute} a minute. `
        + `The rest of your hold, ${formatCents(released)}, was released. ${clears}`;
    } else if (held) {
      hold = `Nothing was charged. Your hold of ${formatCents(held)} was released. ${clears}`;
    } else {
      hold = "Nothing was charged and nothing is held on your card.";
    }
    if (toCents(receipt.refunded)) hold += ` ${formatCents(toCents(receipt.refunded))} was refunded.`;
  } else {
    hold = charged
      ? `${who.guestName} was charged ${formatCents(charged)} for ${minutes(receipt.billed_minutes)}; the rest of the hold was released.`
      : `Nothing was charged${held ? `; ${who.guestName}'s hold of ${formatCents(held)} was released` : ""}.`;
  }
  $("end-hold").textContent = hold;
  if (live || charged) {
    $("receipt-total").textContent = `$${receipt.total_charged}`;
    $("receipt-minutes").textContent = `${receipt.billed_minutes} ${receipt.billed_minutes === 1 ? "minute" : "minutes"}`;
    $("receipt-metering").textContent = receipt.terms.metering;
    $("receipt-windows").replaceChildren(...receipt.windows.map((w) => {
      const row = document.createElement("tr");
      for (const text of [String(w.number), `$${w.held}`, `$${w.captured}`, `$${w.released}`]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    $("receipt").classList.remove("hidden");
  }
}
