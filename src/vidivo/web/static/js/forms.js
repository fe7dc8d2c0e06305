// Form errors in plain words, next to the field they are about: checked in the browser before
// anything is sent, and the API's own field errors mapped back onto the same fields.
//
// A field is matched to the API's `details[].field` by its `data-field` attribute, else its
// `name`. Its message goes into an element `<p class="field-error" id="{input id}-error">`,
// created on first use and tied to the input with aria-describedby and aria-invalid.

// A dollar amount as the API takes it: whole dollars, or dollars and cents.
export const MONEY = /^\d{1,7}(\.\d{1,2})?$/;
export const MONEY_HINT = "Enter an amount in dollars, like 25 or 25.50.";

// The API's (and the validator's) wording, turned into what a person would say.
const PLAIN = [
  [/at least 1 character|field required|missing/i, "Please fill this in."],
  [/valid email|not a valid email|email address/i, "Enter an email address like name@example.com."],
  [/decimal string|decimal|valid number/i, MONEY_HINT],
  [/at most (\d+) characters?/i, (m) => `Keep it to ${m[1]} characters or fewer.`],
  [/at least (\d+) characters?/i, (m) => `Use at least ${m[1]} characters.`],
];

// Error codes whose message should never reach a person as it is.
const CODES = {
  generic_decline: "Your card was declined. Try another card, or ask your bank.",
  card_declined: "Your card was declined. Try another card, or ask your bank.",
  insufficient_funds: "Your card has too little available for the first hold. Try another card.",
  expired_card: "Your card has expired. Try another card.",
  incorrect_cvc: "The card's security code is wrong. Check it and try again.",
  rate_limited: "Too many tries in a short time. Wait a minute, then try again.",
  host_unavailable: "The host is not taking calls right now. Nothing was charged.",
};

export function plainWords(message) {
  for (const [pattern, words] of PLAIN) {
    const match = String(message || "").match(pattern);
    if (match) return typeof words === "function" ? words(match) : words;
  }
  return message;
}

export function plainCode(code, message) {
  return CODES[code] || message;
}

// A field's message: some name a bare decline code ("generic_decline") instead of a sentence.
export function plainDetail(message) {
  return plainCode(message, plainWords(message));
}

function fieldKey(input) {
  return input.dataset.field || input.name || "";
}

function errorElement(input) {
  const id = `${input.id}-error`;
  let box = document.getElementById(id);
  if (!box) {
    box = document.createElement("p");
    box.id = id;
    box.className = "field-error";
    input.insertAdjacentElement("afterend", box);
  }
  const described = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  if (!described.includes(id)) input.setAttribute("aria-describedby", [...described, id].join(" "));
  return box;
}

export function setFieldError(input, message) {
  const box = errorElement(input);
  box.textContent = message;
  input.setAttribute("aria-invalid", "true");
}

export function clearErrors(form) {
  for (const box of form.querySelectorAll(".field-error")) box.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function browserMessage(input) {
  const value = input.value.trim();
  const v = input.validity;
  if (v.valueMissing || (input.required && !value)) return "Please fill this in.";
  if (v.typeMismatch && input.type === "email") return "Enter an email address like name@example.com.";
  if (v.tooShort) return `Use at least ${input.minLength} characters.`;
  if (v.tooLong) return `Keep it to ${input.maxLength} characters or fewer.`;
  if (v.rangeUnderflow) return `Use ${input.min} or more.`;
  if (v.rangeOverflow) return `Use ${input.max} or less.`;
  if (v.badInput || v.stepMismatch) return "Enter a whole number.";
  if (input.dataset.validate === "money" && value && !MONEY.test(value)) {
    return MONEY_HINT;
  }
  return "";
}

/** Check every field in the browser; show each problem beside its field. True when all pass. */
export function validate(form) {
  clearErrors(form);
  let first = null;
  for (const input of form.querySelectorAll("input, select, textarea")) {
    if (input.disabled || input.type === "hidden" || !input.id) continue;
    const message = browserMessage(input);
    if (!message) continue;
    setFieldError(input, message);
    first = first || input;
  }
  if (first) first.focus();
  return first === null;
}

/** Put an API error on the fields it names; what names no field is returned for the form. */
export function showApiError(form, error) {
  const details = (error && error.details) || [];
  let unplaced = "";
  let first = null;
  for (const detail of details) {
    const input = [...form.querySelectorAll("input, select, textarea")].find(
      (candidate) => fieldKey(candidate) && fieldKey(candidate) === String(detail.field || ""),
    );
    if (input && input.id) {
      setFieldError(input, plainDetail(detail.message));
      first = first || input;
    } else if (!unplaced) {
      unplaced = plainDetail(detail.message);
    }
  }
  if (first) first.focus();
  if (first && !unplaced) return "";
  return unplaced || plainCode(error && error.code, error && error.message);
}
