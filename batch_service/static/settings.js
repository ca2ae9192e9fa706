// The Batch page's "Tell me by e-mail or webhook" form: the caller's notification settings.
(function () {
  "use strict";
  window.batchhubSettings = function (config) {
    const B = window.batchhub;
    const $ = (id) => document.getElementById(id);
    const form = $("notify-form");
    if (!form) return;
    const message = $("notify-message");
    const say = (text, kind) => { message.textContent = text; message.className = kind ? "text-" + kind : ""; };
    const flags = { on_start: "notify-on-start", on_end: "notify-on-end", on_turn: "notify-on-turn" };

    function show(settings) {
      $("notify-email").value = settings.email;
      $("notify-webhook").value = settings.webhook_url;
      for (const [name, id] of Object.entries(flags)) $(id).checked = settings[name];
      $("notify-email").disabled = !settings.email_available;
      $("notify-email-note").textContent = settings.email_available
        ? "Only you are written to; leave it empty for no e-mail."
        : "This batchhub sends no e-mail (its admin has not set up an SMTP server).";
      $("notify-webhook").disabled = !settings.webhooks_available;
      $("notify-webhook-note").textContent = !settings.webhooks_available
        ? "Webhooks are switched off on this batchhub."
        : settings.webhook_secret
          ? "batchhub POSTs JSON, signed: X-Batchhub-Signature is sha256=HMAC(body) with the secret " + settings.webhook_secret + "."
          : "batchhub POSTs JSON to it, signed with a secret shown here once you save.";
    }

    async function load() {
      try { show(await B.api(config, "GET", "notifications")); } catch (e) { say(e.message, "danger"); }
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { email: $("notify-email").value.trim(), webhook_url: $("notify-webhook").value.trim() };
      for (const [name, id] of Object.entries(flags)) body[name] = $(id).checked;
      try { show(await B.api(config, "PUT", "notifications", body)); say("Saved.", "success"); }
      catch (e) { say(e.message, "danger"); }
    });
    $("notify-test").addEventListener("click", async () => {
      say("Sending…");
      try {
        const result = await B.api(config, "POST", "notifications/test");
        say("Sent: " + result.sent.join(" and ") + ".", "success");
      } catch (e) { say(e.message, "danger"); }
    });
    document.getElementById("notify-settings").addEventListener("toggle", load, { once: true });
  };
})();
