// The guest page: collect name, email and a card, start the call, go to the call view.
import { api, explain, saveGuestToken } from "./api.js";
import { answerTheBank } from "./authentication.js";

const form = document.getElementById("start-form");
const errorBox = document.getElementById("start-error");
const shortCode = form.dataset.shortCode;
let stripe = null;
let elements = null;

// With real Stripe, the card is entered in Stripe's Payment Element (in Stripe's frame) and
// turned into a PaymentMethod id there: no card number ever reaches Vidivo.
if (form.dataset.payments === "stripe" && window.Stripe) {
  stripe = window.Stripe(form.dataset.publishableKey);
  elements = stripe.elements({
    mode: "payment",
    amount: Number(form.dataset.holdCents),
    currency: "usd",
    captureMethod: "manual",
    setupFutureUsage: "off_session",
    paymentMethodCreation: "manual",
  });
  elements.create("payment").mount("#card-element");
}

async function paymentMethodId() {
  if (!stripe) return form.elements.payment_method_id.value;
  const { error: incomplete } = await elements.submit();
  if (incomplete) throw new Error(incomplete.message);
  const { paymentMethod, error } = await stripe.createPaymentMethod({ elements });
  if (error) throw new Error(error.message);
  return paymentMethod.id;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.textContent = "";
  const button = document.getElementById("start-call");
  button.disabled = true;
  button.textContent = "Holding the first window…";
  try {
    const body = {
      guest_name: form.elements.guest_name.value.trim(),
      guest_email: form.elements.guest_email.value.trim(),
      payment_method_id: await paymentMethodId(),
    };
    const maxSpend = form.elements.max_spend.value.trim();
    if (maxSpend) body.max_spend = maxSpend;
    const started = await api("POST", `/v1/links/${shortCode}/sessions`, { body });
    saveGuestToken(started.session.id, started.guest_token);
    const callPage = `/call/${started.session.id}`;
    if (started.authentication) {
      // Nothing is held until the card's bank hears from the guest; the call page confirms.
      button.textContent = "Confirming with your bank…";
      await answerTheBank(started.authentication, { stripe, returnTo: callPage });
      if (stripe) location.assign(callPage);
      return;
    }
    location.assign(callPage);
  } catch (error) {
    errorBox.textContent = explain(error);
    button.disabled = false;
    button.textContent = "Start call";
  }
});
