// A hold the card's bank wants the guest to authenticate (3-D Secure, Strong Customer
// Authentication). With Stripe, Stripe.js shows the bank's challenge in its own frame; with
// simulated payments, the guest goes to the local challenge page and comes back to the call.
import { api } from "./api.js";

// Show the bank's challenge; resolves once the guest answered it in this page (Stripe), or
// leaves the page for the challenge (simulated), which sends the guest back to `returnTo`.
export async function answerTheBank(authentication, { stripe, returnTo }) {
  if (stripe && authentication.client_secret) {
    // The outcome is the provider's to tell: the server looks at the hold next.
    await stripe.handleNextAction({ clientSecret: authentication.client_secret });
    return true;
  }
  const url = new URL(authentication.next_action_url, location.href);
  url.searchParams.set("return_to", returnTo);
  location.assign(url.toString());
  return false;
}

// The guest is back: the server settles the waiting hold and answers with the session.
export function confirmPayment(sessionId, token) {
  return api("POST", `/v1/sessions/${sessionId}/payment/confirm`, { token });
}
