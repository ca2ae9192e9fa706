// The Batch page's schedule mode: the submit form's file, profile, time limit and parameters
// saved as a job definition that runs on a cron schedule, with a preview of the schedule in
// words and its next runs (worked out by the service); and the list of the user's schedules
// with edit (name, schedule, zone, time limit), pause, resume, delete and their runs. Refusals
// are shown next to the field they name.
(function () {
  "use strict";
  const root = document.getElementById("batch-app");
  const form = document.getElementById("submit-form");
  if (!root || !form || !window.batchhubForm) return;
  const B = window.batchhub;
  const { counted, el, api } = B;
  const F = window.batchhubForm;
  const config = JSON.parse(root.dataset.config);
  const $ = (elementId) => document.getElementById(elementId);
  const preset = $("schedule-preset");
  const cron = $("schedule-cron");
  const zone = $("schedule-timezone");
  const preview = $("schedule-preview");

  // The browser's own zone, as the service names zones (IANA).
  try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { zone.value = "UTC"; }

  // --- times in a schedule's own zone ----------------------------------------------------
  const formats = new Map();
  function inZone(t, timezone) {
    if (!formats.has(timezone)) {
      let format = null;
      try {
        format = new Intl.DateTimeFormat([], {
          timeZone: timezone, weekday: "short", day: "numeric", month: "short",
          hour: "2-digit", minute: "2-digit", hourCycle: "h23",
        });
      } catch (e) { /* a zone this browser does not know: its own time below */ }
      formats.set(timezone, format);
    }
    const format = formats.get(timezone);
    return format ? format.format(new Date(t * 1000)) : B.when(t);
  }
  function fromNow(t) {
    const s = t - Date.now() / 1000;
    if (s < 60) return "in less than a minute";
    if (s < 3570) return "in " + Math.round(s / 60) + " min";
    if (s < 2 * 86400) return "in " + Math.round(s / 3600) + " h";
    return "in " + Math.round(s / 86400) + " days";
  }

  // --- refusals next to their field ------------------------------------------------------
  // `fields`: the API's field name -> the input's id (its message goes in "<id>-error").
  function fieldErrors(fields) {
    const clear = (name) => {
      $(fields[name]).classList.remove("is-invalid");
      $(fields[name] + "-error").textContent = "";
    };
    return {
      clear,
      clearAll: () => Object.keys(fields).forEach(clear),
      // Shows a refusal next to its field; false when no field of these is named.
      show: (name, text) => {
        if (!fields[name]) return false;
        $(fields[name]).classList.add("is-invalid");
        $(fields[name] + "-error").textContent = text;
        return true;
      },
    };
  }
  const formErrors = fieldErrors({ schedule: "schedule-cron", timezone: "schedule-timezone", profile: "job-profile", time_limit: "job-time-limit", name: "schedule-name" });

  // The service's words and next runs for what is typed in a cron and a zone field, shown in
  // `box` (while `active()`); a refusal goes next to its field.
  function schedulePreview(cronInput, zoneInput, box, nextId, errors, active) {
    let timer = null, asked = 0;
    async function show() {
      clearTimeout(timer);
      if (!active()) return;
      const mine = ++asked;
      const query = new URLSearchParams({ schedule: cronInput.value, timezone: zoneInput.value.trim(), count: 3 });
      try {
        const answer = await api(config, "GET", "schedule-preview?" + query.toString());
        if (mine !== asked) return; // an older answer, overtaken by a newer question
        errors.clear("schedule"); errors.clear("timezone");
        box.replaceChildren(
          el("div", {}, el("strong", { text: answer.description || answer.schedule }), " (" + answer.timezone + " time)"),
          el("div", { class: "bh-muted", id: nextId }, "Next runs: " + answer.next.map((t) => inZone(t, answer.timezone)).join(" · ")));
        box.dataset.state = "ok";
      } catch (e) {
        if (mine !== asked) return;
        box.replaceChildren();
        box.dataset.state = "invalid";
        if (e.field === "schedule" || e.field === "timezone") errors.show(e.field, e.message);
      }
    }
    return { show, later: () => { clearTimeout(timer); timer = setTimeout(show, 300); } };
  }

  // --- the schedule: presets, and the service's preview of what was typed ---------------
  function syncPreset() {
    const match = [...preset.options].find((o) => o.value && o.value === cron.value.trim().split(/\s+/).join(" "));
    preset.value = match ? match.value : "";
  }
  const formPreview = schedulePreview(cron, zone, preview, "schedule-next", formErrors, () => form.dataset.mode === "schedule");
  preset.addEventListener("change", () => {
    if (preset.value) cron.value = preset.value;
    else cron.focus();
    formPreview.show();
  });
  cron.addEventListener("input", () => { syncPreset(); formPreview.later(); });
  zone.addEventListener("input", formPreview.later);
  zone.addEventListener("change", formPreview.show);
  for (const radio of document.querySelectorAll("input[name='mode']")) radio.addEventListener("change", formPreview.show);

  // --- saving ------------------------------------------------------------------------------
  form.addEventListener("submit", async (event) => {
    if (form.dataset.mode !== "schedule") return;
    event.preventDefault();
    formErrors.clearAll();
    F.say("Saving the schedule…");
    try {
      const file = $("job-file").files[0];
      if (!file) throw new Error("choose the notebook, .py file or zip to run on a schedule");
      const data = new FormData();
      data.append("file", file);
      data.append("profile", $("job-profile").value);
      const limit = F.timeLimit();
      if (limit) data.append("time_limit", limit);
      const entry = $("job-entry-point").value.trim();
      if (entry) data.append("entry_point", entry);
      data.append("parameters", JSON.stringify(F.parameters()));
      data.append("schedule", cron.value);
      data.append("timezone", zone.value.trim());
      data.append("on_overlap", form.querySelector("input[name='on_overlap']:checked").value);
      if ($("schedule-name").value.trim()) data.append("name", $("schedule-name").value.trim());
      const d = await api(config, "POST", "definitions", data);
      F.say("Saved schedule " + d.name + ": next run " + inZone(d.next_fire_at, d.timezone) + " (" + d.timezone + " time).", "success");
      refreshSchedules();
    } catch (e) {
      formErrors.show(e.field, e.message);
      F.say(e.message, "danger");
    }
  });

  // --- the list of schedules -----------------------------------------------------------------
  const message = $("schedules-message");
  function tell(text, kind) { message.textContent = text; message.className = "bh-muted" + (kind ? " text-" + kind : ""); }
  async function act(method, path) {
    try { await api(config, method, path); tell(""); }
    catch (e) { tell(e.message, "danger"); }
    refreshSchedules();
  }
  const button = (label, cls, onclick, id) => el("button", { type: "button", class: "btn btn-sm " + cls, id, onclick, text: label });

  function lastRun(d) {
    if (!d.last_job_id) return el("span", { class: "bh-muted", text: "none yet" });
    const box = el("div", {}, el("a", { href: config.prefix + "jobs/" + d.last_job_id, class: "def-last-job" }, el("code", { text: d.last_job_id })));
    if (d.last_job_state) box.append(" ", el("span", { class: "bh-state bh-state-" + d.last_job_state, "data-state": d.last_job_state, text: B.stateWord(d.last_job_state) }));
    else box.append(el("span", { class: "bh-muted", text: " (deleted)" }));
    if (d.last_fired_at) box.append(el("div", { class: "bh-muted", text: inZone(d.last_fired_at, d.timezone) }));
    return box;
  }

  function definitionRow(d) {
    const cell = (label, attrs, ...children) => el("td", { "data-label": label, ...attrs }, el("div", { class: "bh-cell" }, ...children));
    const notes = [];
    if (d.last_error) notes.push(el("div", { class: "small text-danger def-error", text: "Last run could not start: " + d.last_error }));
    if (d.skipped) notes.push(el("div", { class: "bh-muted", text: counted(d.skipped, "run") + " skipped while the previous one was still going" }));
    const actions = el("div", { class: "d-flex gap-1 flex-wrap" },
      d.paused ? button("Resume", "btn-outline-primary", () => act("POST", "definitions/" + d.id + "/resume"), "resume-" + d.id)
        : button("Pause", "btn-outline-secondary", () => act("POST", "definitions/" + d.id + "/pause"), "pause-" + d.id),
      button("Edit", "btn-outline-secondary", () => edit(d), "edit-def-" + d.id),
      button("Runs", "btn-outline-secondary", () => showRuns(d), "runs-" + d.id),
      button("Delete", "btn-outline-danger", async () => {
        if (await B.confirmDialog("Delete the schedule " + d.name + "? It runs no more; the jobs it already ran stay.", "Delete schedule", true)) act("DELETE", "definitions/" + d.id);
      }, "delete-def-" + d.id));
    return el("tr", { id: "definition-" + d.id, "data-paused": d.paused ? "true" : "false" },
      cell("Schedule", {}, el("div", { class: "fw-semibold text-break", text: d.name }),
        el("div", { class: "bh-muted text-break", text: d.input_name + " · " + d.profile }), ...notes),
      cell("When", {}, el("div", { class: "def-words", text: d.schedule_text || d.schedule }),
        el("div", { class: "bh-muted" }, el("code", { class: "def-cron", text: d.schedule }), " · " + d.timezone)),
      cell("Next run", { class: "def-next" }, d.paused ? el("span", { class: "bh-muted", text: "none while paused" })
        : el("div", {}, el("div", { class: "text-nowrap", text: inZone(d.next_fire_at, d.timezone) }), el("div", { class: "bh-muted", text: fromNow(d.next_fire_at) }))),
      cell("Last run", {}, lastRun(d)),
      cell("State", {}, el("span", { class: "bh-state " + (d.paused ? "bh-state-cancelled" : "bh-state-succeeded"), id: "def-state-" + d.id, text: d.paused ? "paused" : "active" })),
      cell("Actions", { class: "bh-actions" }, actions));
  }

  let runsOf = null;
  async function showRuns(d) {
    runsOf = d || runsOf;
    if (!runsOf) return;
    $("schedule-runs").hidden = false;
    $("schedule-runs-title").textContent = "Runs of " + runsOf.name;
    try {
      const page = await api(config, "GET", "definitions/" + runsOf.id + "/jobs?limit=20");
      const items = page.jobs.map((job) => el("li", { class: "d-flex flex-wrap gap-2 align-items-center py-1", id: "run-" + job.id },
        el("a", { href: config.prefix + "jobs/" + job.id }, el("code", { text: job.id })), ...B.stateBadge(job),
        el("span", { class: "bh-muted", text: "queued " + B.when(job.submitted_at) })));
      $("schedule-runs-list").replaceChildren(...(items.length ? items : [el("li", { class: "bh-muted", text: "No runs yet: the first comes at the next run time." })]));
      if (page.total > page.jobs.length) $("schedule-runs-list").append(el("li", { class: "bh-muted", text: "The newest " + page.jobs.length + " of " + page.total + " runs." }));
    } catch (e) {
      // Deleted meanwhile: nothing left to show.
      $("schedule-runs").hidden = true;
      runsOf = null;
    }
  }
  $("schedule-runs-close").addEventListener("click", () => { $("schedule-runs").hidden = true; runsOf = null; });

  // --- editing one schedule: a card under the list, saved with one PATCH -------------------
  const editErrors = fieldErrors({ name: "edit-name", schedule: "edit-cron", timezone: "edit-timezone", time_limit: "edit-time-limit" });
  const editMessage = $("edit-message");
  const editPreview = schedulePreview($("edit-cron"), $("edit-timezone"), $("edit-preview"), "edit-next", editErrors, () => !$("schedule-edit").hidden);
  let editing = null;
  function editSay(text, kind) { editMessage.textContent = text; editMessage.className = "mb-0 mt-2" + (kind ? " text-" + kind : ""); }
  // Seconds as the submit form takes them: whole minutes or hours when they are.
  const limitText = (s) => !s ? "" : s % 3600 === 0 ? s / 3600 + "h" : s % 60 === 0 ? s / 60 + "m" : s + "s";
  function edit(d) {
    editing = d;
    editErrors.clearAll();
    editSay("");
    $("schedule-edit-title").textContent = "Edit " + d.name;
    $("edit-name").value = d.name;
    $("edit-cron").value = d.schedule;
    $("edit-timezone").value = d.timezone;
    $("edit-time-limit").value = limitText(d.time_limit);
    $("schedule-edit").hidden = false;
    editPreview.show();
    $("edit-cron").focus();
  }
  for (const id of ["edit-cron", "edit-timezone"]) $(id).addEventListener("input", editPreview.later);
  $("edit-cancel").addEventListener("click", () => { $("schedule-edit").hidden = true; editing = null; });
  $("schedule-edit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!editing) return;
    editErrors.clearAll();
    const changes = {
      name: $("edit-name").value.trim(),
      schedule: $("edit-cron").value,
      timezone: $("edit-timezone").value.trim(),
      // As in the submit form (a plain number is minutes); empty: the profile's default.
      time_limit: F.durationText($("edit-time-limit").value) || "",
    };
    editSay("Saving…");
    try {
      const d = await api(config, "PATCH", "definitions/" + editing.id, changes);
      $("schedule-edit").hidden = true;
      editing = null;
      tell("Saved " + d.name + (d.paused ? " (paused)." : ": next run " + inZone(d.next_fire_at, d.timezone) + " (" + d.timezone + " time)."), "success");
      refreshSchedules();
    } catch (e) {
      editErrors.show(e.field, e.message);
      editSay(e.message, "danger");
    }
  });

  const schedulePages = B.pager($("schedules-pages"), 50, () => refreshSchedules());
  async function refreshSchedules() {
    try {
      // Only one's own, admins too (the API's "everyone's" view is for tools).
      const query = new URLSearchParams({ limit: schedulePages.size, offset: schedulePages.offset, owner: config.user });
      const page = await api(config, "GET", "definitions?" + query.toString());
      if (!schedulePages.show(page.definitions.length, page.total)) return;
      $("schedules-section").hidden = !page.total;
      $("schedules-section").dataset.loaded = "true";
      const body = document.querySelector("#schedules-table tbody");
      const before = new Map([...body.children].map((tr) => [tr.id, tr]));
      // Rows that did not change stay the same nodes (a click never meets a swapped button).
      const rows = page.definitions.map((d) => {
        const row = definitionRow(d), old = before.get(row.id);
        return old && old.outerHTML === row.outerHTML ? old : row;
      });
      if (rows.length !== body.children.length || rows.some((r, i) => r !== body.children[i])) body.replaceChildren(...rows);
      if (runsOf && !$("schedule-runs").hidden) showRuns();
    } catch (e) {
      tell(e.message, "danger");
    }
  }

  syncPreset();
  refreshSchedules();
  setInterval(refreshSchedules, 3000);
})();
