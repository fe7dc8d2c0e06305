// The dashboard's "Your account" card: profile (name, bio), email, password, deletion.
import { api, onSubmit, saveHostTokens } from "./api.js";

const $ = (id) => document.getElementById(id);

function status(text) {
  $("account-status").textContent = text;
}

export function showAccount(me) {
  $("profile-name").value = me.display_name;
  $("profile-bio").value = me.bio || "";
  $("account-email").value = me.email;
  $("pending-email").textContent = me.pending_email
    ? `Waiting for you to confirm ${me.pending_email} from its inbox.` : "";
}

async function update(body) {
  const { user } = await api("PATCH", "/v1/me", { token: "host", body });
  showAccount(user);
  $("who").textContent = user.display_name;
  return user;
}

onSubmit("profile-form", "profile-error", async () => {
  await update({ display_name: $("profile-name").value.trim(), bio: $("profile-bio").value.trim() });
  status("Profile saved: guests see it on your links now.");
});

onSubmit("email-form", "email-error", async () => {
  const user = await update({ email: $("account-email").value.trim() });
  status(user.pending_email
    ? `We sent a link to ${user.pending_email}; your email changes once you follow it.`
    : "Your email is unchanged.");
});

onSubmit("password-form", "password-error", async () => {
  await api("POST", "/v1/me/password", {
    token: "host",
    body: { current_password: $("current-password").value, new_password: $("new-password").value },
  });
  $("current-password").value = $("new-password").value = "";
  status("Password changed. Your other sign-ins have ended.");
});

onSubmit("delete-form", "delete-error", async () => {
  await api("DELETE", "/v1/me", { token: "host" });
  saveHostTokens(null);
  location.assign("/app");
});
