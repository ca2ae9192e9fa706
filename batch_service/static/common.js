// What both Batch pages share: the API with the hub's XSRF token, how a job is shown,
// confirm dialogs, and telling the user (browser notifications and the page title).
(function () {
  "use strict";
  const xsrf = (window.jhdata && window.jhdata.xsrf_token) || "";
  const FINISHED = ["succeeded", "failed", "timed_out", "cancelled"];
  const ACTIVE = ["queued", "starting", "running"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }

  async function api(config, method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-XSRFToken": xsrf } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(config.api + path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.statusText);
      // The form field a refusal is about, when the service names one.
      error.field = data && data.field;
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // A time of day, with the date when it is not today. The formatters are made once: making
  // one per call (toLocaleTimeString with options) costs a fifth of a millisecond, which a
  // table of a thousand rows notices.
  const timeOfDay = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat([], { dateStyle: "short", timeStyle: "short" });
  function when(t) {
    if (!t) return "";
    const d = new Date(t * 1000);
    const now = new Date();
    const today = now.getFullYear() === d.getFullYear() && now.getMonth() === d.getMonth() && now.getDate() === d.getDate();
    return today ? timeOfDay.format(d) : dayAndTime.format(d);
  }
  // 1h 30m, 45m, 12s: the units that are not zero.
  function duration(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const parts = [h ? h + "h" : "", m ? m + "m" : "", r || !(h || m) ? r + "s" : ""];
    return parts.filter(Boolean).join(" ");
  }
  // 1.5 MiB: sizes as people read them.
  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes || 0, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }
  const STATE_WORDS = { timed_out: "timed out" };
  const stateWord = (state) => STATE_WORDS[state] || state;

  // progress.index counts cells done; while running, the next one is the cell at work.
  function progressText(job) {
    const p = job.progress;
    if (!p || !p.total) return job.state === "running" ? "starting the kernel" : "";
    if (job.state === "running" && p.index < p.total) return "running cell " + (p.index + 1) + " of " + p.total;
    if (job.state === "running") return "finishing (" + p.total + " of " + p.total + " cells done)";
    return p.index + " of " + p.total + " cells done";
  }

  function stateBadge(job) {
    const badge = el("span", { class: "bh-state bh-state-" + job.state + " job-state", "data-state": job.state, text: stateWord(job.state) });
    const parts = [badge];
    if (job.live) parts.push(el("span", { class: "bh-live", text: "live kernel" }));
    return parts;
  }

  // Why a job waits or how it ended: the words, the code the API carries, an expected start.
  function reasonText(job) {
    let text = job.reason || "";
    // "none": it waits for nothing, so there is nothing to say.
    if (job.reason_code && job.reason_code !== "none" && !text) text = job.reason_code;
    if (job.state === "queued" && job.estimated_start) {
      text = (text ? text + " · " : "") + "expected start " + when(job.estimated_start);
    }
    return text;
  }

  // A native <dialog>: resolves true when the person confirms.
  function confirmDialog(message, okLabel, danger) {
    return new Promise((resolve) => {
      const ok = el("button", { type: "button", class: "btn btn-sm " + (danger ? "btn-danger" : "btn-primary"), id: "confirm-ok", text: okLabel });
      const no = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", id: "confirm-cancel", text: "Keep it" });
      const dialog = el("dialog", { class: "bh-dialog", id: "confirm-dialog", "aria-label": okLabel },
        el("div", { class: "bh-dialog-body" }, el("p", { class: "mb-0", text: message })),
        el("div", { class: "bh-dialog-buttons" }, no, ok));
      const close = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
      ok.addEventListener("click", () => close(true));
      no.addEventListener("click", () => close(false));
      dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(false); });
      document.body.append(dialog);
      dialog.showModal();
      no.focus();
    });
  }

  // --- telling the user: browser notifications (if allowed) and the page title --------
  const PREF = "batchhub-notifications";
  const baseTitle = document.title;
  let unseen = 0;
  function notificationsOn() {
    return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(PREF) !== "off";
  }
  function showTitle(prefix) {
    document.title = (unseen && document.hidden ? "(" + unseen + ") " : "") + (prefix ? prefix + " · " : "") + baseTitle;
  }
  let titlePrefix = "";
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { unseen = 0; showTitle(titlePrefix); } });

  function tell(title, body, url) {
    if (document.hidden) unseen += 1;
    showTitle(titlePrefix);
    if (!notificationsOn()) return;
    const note = new Notification(title, { body, tag: url || title });
    note.onclick = () => { window.focus(); if (url) window.location.href = url; note.close(); };
  }
  function setTitle(prefix) { titlePrefix = prefix || ""; showTitle(titlePrefix); }

  // The button that asks the browser for permission (browsers ask only after a click).
  function notifyButton(button) {
    if (!button) return;
    const supported = "Notification" in window;
    function show() {
      if (!supported) { button.textContent = "This browser has no notifications"; button.disabled = true; return; }
      const on = notificationsOn();
      const blocked = Notification.permission === "denied";
      button.textContent = blocked ? "Notifications blocked by the browser" : on ? "Browser notifications: on" : "Turn on browser notifications";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.disabled = blocked;
      button.classList.toggle("btn-outline-success", on);
      button.classList.toggle("btn-outline-secondary", !on);
    }
    button.addEventListener("click", async () => {
      if (notificationsOn()) localStorage.setItem(PREF, "off");
      else {
        localStorage.setItem(PREF, "on");
        if (Notification.permission !== "granted") await Notification.requestPermission();
      }
      show();
    });
    show();
  }

  // What changed for a job between two looks: started, or ended (with its live kernel).
  function change(before, job) {
    if (!before) return null;
    if (before.state !== "running" && job.state === "running") return { title: "Job " + job.id + " started", body: job.input_name + " is running on " + job.profile + "." };
    // Ended once its kernel is handed over (live) or let go: a kept kernel is not reachable
    // until the hub has its server, so "ready to open" waits for that.
    const ended = (j) => FINISHED.includes(j.state) && !j.live_pending;
    if (!ended(before) && ended(job)) {
      const live = job.live ? " Its live kernel is ready to open." : "";
      return { title: "Job " + job.id + " " + stateWord(job.state), body: job.input_name + (job.reason ? ": " + job.reason : "") + "." + live };
    }
    return null;
  }

  // Newer/Older over a list the API pages by limit and offset. `nav` holds two buttons and a
  // span marked data-pager="prev", "next", "info"; `load` fetches the page at `offset`. The nav
  // is hidden while one page holds the whole list (unless `always`).
  function pager(nav, size, load, always) {
    const part = (name) => nav.querySelector("[data-pager='" + name + "']");
    const [prev, next, info] = ["prev", "next", "info"].map(part);
    const p = { offset: 0, size };
    prev.addEventListener("click", () => { p.offset = Math.max(0, p.offset - size); load(); });
    next.addEventListener("click", () => { p.offset += size; load(); });
    // Shows where the page stands; false when it was past the end (the list shrank): then
    // it steps back and loads again.
    p.show = (shown, total) => {
      if (!shown && p.offset && p.offset >= total) {
        p.offset = Math.max(0, Math.ceil(total / size) - 1) * size;
        load();
        return false;
      }
      nav.hidden = !always && total <= size && p.offset === 0;
      info.textContent = total ? (p.offset + 1) + "–" + (p.offset + shown) + " of " + total : "";
      prev.disabled = p.offset === 0;
      next.disabled = p.offset + shown >= total;
      return true;
    };
    return p;
  }

  // "1 point", "3 points": a count with its noun.
  const counted = (n, noun) => n + " " + noun + (n === 1 ? "" : "s");

  window.batchhub = {
    counted, el, api, when, duration, size, progressText, stateBadge, stateWord, reasonText, confirmDialog,
    tell, setTitle, notifyButton, change, pager, FINISHED, ACTIVE,
  };
})();
