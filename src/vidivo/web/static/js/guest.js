// The guest page: check the camera and microphone, then name, email, card and an optional
// spending limit (each checked in the browser, each problem in words beside its field), start
// the call and go to the call view.
import { ApiError, api, explain, formatCents, saveGuestToken, toCents } from "./api.js";
import { answerTheBank } from "./authentication.js";
import { mountDeviceCheck } from "./devices.js";
import {
  clearErrors, MONEY, MONEY_HINT, plainCode, setFieldError, showApiError, validate,
} from "./forms.js";

const form = document.getElementById("start-form");
const errorBox = document.getElementById("start-error");
const shortCode = form.dataset.shortCode;
const rateCents = Number(form.dataset.rateCents);
const windowMinutes = Number(form.dataset.windowMinutes);
const holdCents = Number(form.dataset.holdCents);
let stripe = null;
let elements = null;
// A start sent that got no answer the API keeps (the connection dropped, a gateway failed,
// or the API said to try again): sent again unchanged, under the same Idempotency-Key, so
// the server carries on the call it began instead of starting a second one and placing a
// second hold on the guest's card. Any answer the API gives ends it: the next is a new start.
let unanswered = null; // { key, fields, body }
let cardChanged = false; // the card in Stripe's element since the start was made

const deviceCheck = mountDeviceCheck(document.getElementById("device-check"));
window.addEventListener("pagehide", () => deviceCheck.stop());

// With real Stripe, the card is entered in Stripe's Payment Element (in Stripe's frame) and
// turned into a PaymentMethod id there: no card number ever reaches Vidivo.
if (form.dataset.payments === "stripe" && window.Stripe) {
  stripe = window.Stripe(form.dataset.publishableKey);
  elements = stripe.elements({
    mode: "payment",
    amount: holdCents,
    currency: "usd",
    captureMethod: "manual",
    setupFutureUsage: "off_session",
    paymentMethodCreation: "manual",
  });
  const paymentElement = elements.create("payment");
  paymentElement.on("change", () => { cardChanged = true; });
  paymentElement.mount("#card-element");
}

// A card problem in words, whatever the provider called it.
const CARD_WORDS = {
  insufficient_funds: `Your card does not have ${formatCents(holdCents)} available for the first hold. Try another card.`,
  authentication_required: "Your card's bank asks you to confirm this payment. Try again and answer your bank.",
  authentication_failed: "Your card's bank did not confirm the payment. Nothing was held. Try again, or use another card.",
};
const CARD_DECLINED = plainCode("generic_decline");

function cardWords(code) {
  if (CARD_WORDS[code]) return CARD_WORDS[code];
  const plain = plainCode(code, "");
  return plain || (/^[a-z_]+$/.test(code || "") ? CARD_DECLINED : "This card cannot be used. Try another card.");
}

// What a spending limit does to the call, said before the card is asked for.
function spendingLimit(text) {
  if (!text) return { effect: "" };
  if (!MONEY.test(text)) return { error: MONEY_HINT };
  const cents = toCents(text);
  const minutes = Math.floor(cents / rateCents);
  if (minutes < 1) {
    return {
      error: `A limit below ${formatCents(rateCents)} does not pay for one minute. `
        + `Enter ${formatCents(rateCents)} or more, or leave it empty.`,
    };
  }
  const firstHold = Math.min(minutes, windowMinutes) * rateCents;
  const paid = minutes * rateCents;
  const parts = [];
  if (firstHold < holdCents) {
    parts.push(`With this limit we hold ${formatCents(firstHold)} at the start instead of ${formatCents(holdCents)}, `
      + `and the call ends by itself after ${minutes} minute${minutes === 1 ? "" : "s"}.`);
  } else {
    parts.push(`The call ends by itself after ${minutes} minutes (${formatCents(paid)}).`);
  }
  if (paid !== cents) parts.push(`Minutes are charged whole, so at most ${formatCents(paid)} is charged.`);
  return { effect: parts.join(" ") };
}

const maxSpend = form.elements.max_spend;
const maxSpendEffect = document.getElementById("max-spend-effect");

function checkSpendingLimit() {
  const { error, effect } = spendingLimit(maxSpend.value.trim());
  maxSpendEffect.textContent = effect || "";
  return error || "";
}

maxSpend.addEventListener("input", () => {
  const error = checkSpendingLimit();
  if (!error && maxSpend.getAttribute("aria-invalid")) setFieldError(maxSpend, "");
  if (!error) maxSpend.removeAttribute("aria-invalid");
});

// Problems are shown on submit, not on leaving the field: text appearing on blur would move
// the button away from under the pointer that is pressing it.

// Everything the browser can check before anything is sent; the first problem gets focus.
function checkForm() {
  let ok = validate(form);
  const limitError = checkSpendingLimit();
  if (limitError) {
    setFieldError(maxSpend, limitError);
    if (ok) maxSpend.focus();
    ok = false;
  }
  return ok;
}

// An unguessable key (getRandomValues works on plain HTTP too, where randomUUID does not).
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `start-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// Whether the API answered the start and keeps that answer under its key, a refusal
// included. Not so: no answer at all, an error not in the API's shape (a gateway's page),
// "try again" (409 `conflict`), and a failure of the server's own (500, 503).
const NOT_KEPT = new Set(["unknown", "conflict", "internal_error", "service_unavailable"]);

function answerKept(error) {
  return error instanceof ApiError && !NOT_KEPT.has(error.code);
}

// The start to send: the one that got no answer, if nothing in the form changed since;
// else a new one, with its own key (and, with Stripe, a new PaymentMethod for the card).
async function startToSend() {
  const typed = {
    guest_name: form.elements.guest_name.value.trim(),
    guest_email: form.elements.guest_email.value.trim(),
  };
  const limit = maxSpend.value.trim();
  if (limit) typed.max_spend = limit;
  const fields = JSON.stringify([typed, stripe ? "" : form.elements.payment_method_id.value]);
  if (unanswered && unanswered.fields === fields && !cardChanged) return unanswered;
  const body = { ...typed, payment_method_id: await paymentMethodId() };
  cardChanged = false;
  return { key: newKey(), fields, body };
}

async function paymentMethodId() {
  if (!stripe) return form.elements.payment_method_id.value;
  const { error: incomplete } = await elements.submit();
  if (incomplete) throw new CardProblem(incomplete.message);
  const { paymentMethod, error } = await stripe.createPaymentMethod({ elements });
  if (error) throw new CardProblem(error.message);
  return paymentMethod.id;
}

class CardProblem extends Error {}

function cardField() {
  return form.querySelector('[name="payment_method_id"], [data-field="payment_method_id"]');
}

// The API's error, placed on its fields in words; card declines beside the card.
function showError(error) {
  if (error instanceof CardProblem) {
    setFieldError(cardField(), error.message);
    return "";
  }
  if (!(error instanceof ApiError)) return explain(error);
  if (error.code === "payment_failed") {
    const detail = error.details.find((d) => d && d.field === "payment_method_id");
    setFieldError(cardField(), cardWords(detail && detail.message));
    return "";
  }
  for (const detail of error.details) {
    if (detail && detail.field === "payment_method_id") detail.message = cardWords("");
    if (detail && detail.field === "max_spend" && /one minute/.test(detail.message || "")) {
      detail.message = spendingLimit("0").error;
    }
  }
  return showApiError(form, error);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.textContent = "";
  if (!checkForm()) return;
  const button = document.getElementById("start-call");
  button.disabled = true;
  // The devices first: a guest whose camera or microphone cannot open learns it here,
  // before anything is held on the card.
  button.textContent = "Checking your camera and microphone…";
  if (!(await deviceCheck.verify())) {
    errorBox.textContent = "Your camera or microphone did not open, so nothing was held. "
      + "See step 1 above for what to do.";
    document.getElementById("device-step").scrollIntoView({ block: "start" });
    button.disabled = false;
    button.textContent = "Start call";
    return;
  }
  button.textContent = "Holding the first window…";
  let attempt = null;
  try {
    attempt = await startToSend();
    unanswered = attempt;
    const started = await api("POST", `/v1/links/${shortCode}/sessions`, {
      body: attempt.body,
      headers: { "Idempotency-Key": attempt.key },
    });
    unanswered = null;
    clearErrors(form);
    saveGuestToken(started.session.id, started.guest_token);
    const callPage = `/call/${started.session.id}`;
    deviceCheck.stop();  // the call page opens the same devices itself
    if (started.authentication) {
      // Nothing is held until the card's bank hears from the guest; the call page confirms.
      button.textContent = "Confirming with your bank…";
      await answerTheBank(started.authentication, { stripe, returnTo: callPage });
      if (stripe) location.assign(callPage);
      return;
    }
    location.assign(callPage);
  } catch (error) {
    if (answerKept(error)) unanswered = null;
    // No answer at all (the connection dropped, or a gateway's page came back).
    const lost = attempt && unanswered === attempt && !(error instanceof ApiError);
    errorBox.textContent = lost
      ? "Vidivo's answer did not arrive. Press Start call again: it carries on the same "
        + "call, and nothing is held twice."
      : showError(error);
    button.disabled = false;
    button.textContent = "Start call";
  }
});
