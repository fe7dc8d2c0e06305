// The pages an account email links to: forgot password, choose a new one, confirm a new email.
// Opening a page changes nothing (mail scanners open links); only the form's submit does.
import { api, el, explain } from "./api.js";

const $ = (id) => document.getElementById(id);

function done(text) {
  $("flash").replaceChildren(el("p", { class: "notice" }, text, " ", el("a", { href: "/app" }, "Go to Vidivo")));
}

function onSubmit(formId, errorId, handler) {
  const form = $(formId);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $(errorId).textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await handler();
      form.closest("section").classList.add("hidden");
    } catch (error) {
      $(errorId).textContent = explain(error);
      button.disabled = false;
    }
  });
}

onSubmit("forgot-form", "forgot-error", async () => {
  await api("POST", "/v1/auth/password-reset", { body: { email: $("forgot-email").value.trim() } });
  done("If an account uses this email, a link to choose a new password is on its way.");
});

onSubmit("reset-form", "reset-error", async () => {
  const password = $("reset-password").value;
  if (password !== $("reset-password-again").value) throw new Error("The two passwords differ.");
  await api("POST", "/v1/auth/password-reset/confirm", {
    body: { token: $("reset-token").value, new_password: password },
  });
  done("Your password is changed and every sign-in has ended. Log in with the new password.");
});

onSubmit("confirm-email-form", "confirm-error", async () => {
  await api("POST", "/v1/auth/verify-email", { body: { token: $("confirm-token").value } });
  done("Your new email is confirmed: use it to log in from now on.");
});
