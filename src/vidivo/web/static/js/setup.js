// A new host's set-up: the 1-2-3 checklist (verify the email, set up payouts, create a first
// link), the email verification (on opening the emailed link, or by pasting its token), the
// payout status in words, and the notices after Stripe's onboarding sends the host back.
import { api, el, explain, onSubmit } from "./api.js";
import { lockLinkForm } from "./links.js";

const $ = (id) => document.getElementById(id);

// Stripe's requirement keys, said the way a host would say them. Keys are matched by their
// start, so `individual.address.city` and `individual.address.line1` are one "your address".
const REQUIREMENT_WORDS = [
  ["individual.verification.additional_document", "a document that proves your address"],
  ["individual.verification.document", "a photo of your ID document"],
  ["individual.id_number", "your ID number"],
  ["individual.ssn_last_4", "the last 4 digits of your social security number"],
  ["individual.dob", "your date of birth"],
  ["individual.address", "your home address"],
  ["individual.first_name", "your name"],
  ["individual.last_name", "your name"],
  ["individual.email", "your email address"],
  ["individual.phone", "your phone number"],
  ["business_profile.url", "your website, or a short description of what you offer"],
  ["business_profile.product_description", "your website, or a short description of what you offer"],
  ["business_profile.mcc", "the kind of business you run"],
  ["business_type", "the kind of business you run"],
  ["external_account", "the bank account your money is paid into"],
  ["tos_acceptance", "accepting Stripe's terms of service"],
  ["company", "details of your company"],
  ["representative", "details of your company's representative"],
  ["owners", "details of your company's owners"],
  ["directors", "details of your company's directors"],
];

export function requirementWords(keys) {
  const words = keys.map((key) => {
    const found = REQUIREMENT_WORDS.find(([prefix]) => key === prefix || key.startsWith(`${prefix}.`));
    return found ? found[1] : "a few more details Stripe asks for";
  });
  return [...new Set(words)];
}

// Where the host's payout account stands, in the words the payouts card and the checklist use.
export function payoutState(status) {
  if (status.charges_enabled && status.payouts_enabled) return "ready";
  if (status.charges_enabled) return "paying";
  if (!status.stripe_connected) return "none";
  return status.requirements.length ? "details" : "review";
}

const PAYOUT_TEXT = {
  ready: ["Ready", "ok", "Your payout account is ready: guests can pay you."],
  paying: ["Almost ready", "ok", "Guests can pay you; payouts to your bank start once Stripe has checked your bank details."],
  none: ["Not set up", "warn", "Set up payouts to receive money and create call links."],
  details: ["Needs details", "warn", "Stripe needs a few more details before guests can pay you:"],
  review: ["In review", "accent", "Payouts are being reviewed. Stripe usually confirms within minutes; you can create call links once it has."],
};

let payoutStatus = null;

export async function loadPayouts() {
  payoutStatus = await api("GET", "/v1/host/payouts", { token: "host" });
  const state = payoutState(payoutStatus);
  const [badge, kind, text] = PAYOUT_TEXT[state];
  $("payout-status").replaceChildren(el("span", { class: `badge ${kind}` }, badge), el("span", {}, text));
  $("payout-status").dataset.state = state;
  const needs = state === "details" ? requirementWords(payoutStatus.requirements) : [];
  $("payout-needs").replaceChildren(...needs.map((words) => el("li", {}, words)));
  $("payout-needs").classList.toggle("hidden", !needs.length);
  const button = $("start-onboarding");
  button.textContent = state === "none" ? "Set up payouts" : "Continue payout setup";
  button.classList.toggle("hidden", !["none", "details"].includes(state));
  return payoutStatus;
}

async function hasAnyLink() {
  const page = await api("GET", "/v1/links?limit=1", { token: "host" });
  return page.links.length > 0;
}

function step(id, done, text, action) {
  const item = $(id);
  item.dataset.done = String(done);
  const state = item.querySelector(".step-state");
  state.replaceChildren(text);
  item.querySelector(".step-action")?.remove();
  if (action && !done) item.append(action);
}

function jumpTo(id, text) {
  const link = el("a", { href: `#${id}`, class: "step-action" }, text);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    $(id).scrollIntoView({ block: "start" });
    $(id).querySelector("input:not([disabled]), button:not([disabled])")?.focus({ preventScroll: true });
  });
  return link;
}

let lastMe = null;

/** The checklist again, after something on the page changed (a link was created). */
export function refreshSetup() {
  return lastMe ? showSetup(lastMe) : Promise.resolve();
}

/** Show the checklist (hidden when all three are done) and lock the link form until 1 and 2. */
export async function showSetup(me) {
  lastMe = me;
  const verified = me.email_verified;
  const payouts = payoutStatus ? payoutState(payoutStatus) : "none";
  const payoutsDone = ["ready", "paying"].includes(payouts);
  const linked = await hasAnyLink().catch(() => false);
  step("step-verify", verified, verified ? "Done: your email is verified." : `Open the link we emailed to ${me.email}.`,
    jumpTo("verify", "Enter the code instead"));
  const onboard = el("button", { type: "button", class: "small step-action" }, payouts === "none" ? "Set up payouts" : "Continue");
  onboard.addEventListener("click", startOnboarding);
  step("step-payouts", payoutsDone, payoutsDone ? "Done: guests can pay you."
    : payouts === "review" ? "Payouts are being reviewed: nothing to do for now." : "Tell Stripe where to pay you (about 5 minutes).",
    payouts === "review" ? null : onboard);
  step("step-link", linked, linked ? "Done: share your link with your clients." : "Set your rate and send the link to a client.",
    jumpTo("links", "Go to the link form"));
  const done = [verified, payoutsDone, linked].filter(Boolean).length;
  $("setup-progress").textContent = `${done} of 3 done`;
  $("setup").classList.toggle("hidden", done === 3);
  $("verify").classList.toggle("hidden", verified);
  lockLinkForm(!verified ? "Verify your email first (step 1): then you can create call links."
    : !payoutsDone ? "Set up payouts first (step 2): links need somewhere to pay you." : null);
}

async function startOnboarding() {
  const { url } = await api("POST", "/v1/host/payouts/onboarding", { token: "host" });
  location.assign(url);
}

// Messages for where a host lands back from elsewhere: `?payouts=` from Stripe's onboarding.
const RETURN_NOTICES = {
  done: ["Payout setup finished", "Thank you. Your payout status is below; once Stripe confirms your account you can create call links.", "success"],
  expired: ["That setup link had expired", "Setup links work once and for a few minutes: press “Continue payout setup” to get a new one.", "warning"],
};

function dropQuery(name) {
  const url = new URL(location.href);
  url.searchParams.delete(name);
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function returnNotice(flash) {
  const key = new URLSearchParams(location.search).get("payouts");
  if (!RETURN_NOTICES[key]) return;
  const [heading, text, kind] = RETURN_NOTICES[key];
  flash([el("h2", {}, heading), el("p", {}, text)], kind);
  dropQuery("payouts");
}

/** The emailed link `/app?verify=TOKEN` verifies on opening; the form stays as a fallback. */
export async function verifyFromLink(flash) {
  const token = new URLSearchParams(location.search).get("verify");
  if (!token) return false;
  dropQuery("verify");
  try {
    await api("POST", "/v1/auth/verify-email", { body: { token } });
    flash("Your email is verified.", "success");
    return true;
  } catch (error) {
    $("verify-token").value = token;
    flash(`This verification link did not work: ${explain(error)} Send yourself a new email below.`, "warning");
    return false;
  }
}

export function initSetup({ flash, refresh }) {
  onSubmit("verify-form", "verify-error", async () => {
    await api("POST", "/v1/auth/verify-email", { body: { token: $("verify-token").value.trim() } });
    flash("Your email is verified.", "success");
    await refresh();
  });
  $("resend-verification").addEventListener("click", async () => {
    try {
      await api("POST", "/v1/auth/verify-email/resend", { token: "host" });
      flash("A new verification email is on its way.");
    } catch (error) { $("verify-error").textContent = explain(error); }
  });
  $("start-onboarding").addEventListener("click", () => startOnboarding().catch((error) => flash(explain(error), "warning")));
}
