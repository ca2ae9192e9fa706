// The Batch page: submit form, job list, notification settings and the admins' controls.
// Everything goes through the service's API (common.js) with the hub's XSRF token.
(function () {
  "use strict";
  const root = document.getElementById("batch-app");
  if (!root) return;
  const B = window.batchhub;
  const { el, api, when, duration } = B;
  const config = JSON.parse(root.dataset.config);
  const form = document.getElementById("submit-form");
  const fileInput = document.getElementById("job-file");
  const empty = document.getElementById("job-empty");
  const profile = document.getElementById("job-profile");
  const limit = document.getElementById("job-time-limit");
  const limitHelp = document.getElementById("job-time-limit-help");
  const entryRow = document.getElementById("entry-point-row");
  const paramsBox = document.getElementById("params-box");
  const paramsBody = document.querySelector("#params tbody");
  const paramsNote = document.getElementById("params-note");
  const paramAdd = document.getElementById("param-add");
  const argsRow = document.getElementById("args-row");
  const argsInput = document.getElementById("job-args");
  const reportMode = document.getElementById("job-report-mode");
  const warningsBox = document.getElementById("job-warnings");
  const message = document.getElementById("submit-message");
  const listMessage = document.getElementById("list-message");
  const jobPages = B.pager(document.getElementById("jobs-pages"), 50, () => refresh(), true);

  function say(node, text, kind) {
    node.textContent = text;
    node.className = (node === message ? "ms-3 " : "") + (kind ? "text-" + kind : "");
  }

  // --- time limit: the same units as the CLI (90m, 2h, 1h30m, 3600s; a plain number = minutes)
  function syncLimit() {
    const option = profile.selectedOptions[0];
    if (!option) return;
    limit.value = Math.round(Number(option.dataset.default) / 60) + "m";
    limitHelp.textContent = "e.g. 90m, 2h or 1h30m (a plain number means minutes); at most " +
      duration(Number(option.dataset.max)) + " for this profile";
  }
  profile.addEventListener("change", syncLimit);
  syncLimit();
  // A time limit as typed, for the API: a plain number means minutes; empty, none.
  function durationText(typed) {
    const text = typed.trim();
    if (!text) return null;
    return /^\d+(\.\d+)?$/.test(text) ? text + "m" : text;
  }
  const timeLimitText = () => durationText(limit.value);

  // --- parameters -----------------------------------------------------------------
  function paramRow(p, free) {
    const value = el("input", {
      class: "form-control form-control-sm param-value", "aria-label": "value of " + (p.name || "parameter"),
      "data-name": p.name, "data-type": p.type, id: "param-" + p.name,
      "data-annotated": p.annotated ? "true" : null,
    });
    value.value = p.default === null || p.default === undefined
      ? (p.default_source || "") : (typeof p.default === "string" ? p.default : JSON.stringify(p.default));
    const name = free
      ? el("input", { class: "form-control form-control-sm param-name", placeholder: "name", "aria-label": "parameter name" })
      : el("code", { text: p.name });
    const type = p.annotated ? p.type : (p.type === "any" ? "any" : p.type + " (default's)");
    return el("tr", {}, el("td", {}, name), el("td", { text: type }), el("td", {}, value),
      el("td", { class: "small text-muted", text: p.help || "" }));
  }

  function showWarnings(warnings) {
    warningsBox.replaceChildren(...(warnings || []).map((w) => el("li", { text: w })));
    warningsBox.hidden = !(warnings && warnings.length);
  }

  function showParams(info) {
    paramsBody.replaceChildren();
    entryRow.hidden = info.kind !== "module";
    argsRow.hidden = !(info.kind === "script" || info.kind === "module");
    showWarnings(info.warnings);
    paramsBox.hidden = false;
    // Any name may be added: papermill injects it (and warns when the notebook lacks it).
    paramAdd.hidden = false;
    if (info.parameters) {
      paramsNote.textContent = "From the parameters cell; edit the values to run with. "
        + "Only an annotated type (lr: float = 0.1) is enforced.";
      for (const p of info.parameters) paramsBody.append(paramRow(p, false));
    } else if (info.kind === "script" || info.kind === "module") {
      paramsNote.textContent = "Parameters become globals before the code runs; "
        + "in a .py file, mark a cell with # %% tags=[\"parameters\"] to put them after it.";
    } else {
      paramsNote.textContent = "This notebook has no cell tagged 'parameters': "
        + "parameters you add go into a new cell at the top, as papermill puts them.";
    }
  }
  paramAdd.addEventListener("click", () => paramsBody.append(paramRow({ name: "", type: "any" }, true)));

  async function inspect() {
    say(message, "");
    paramsBox.hidden = true;
    showWarnings([]);
    const file = fileInput.files[0];
    if (!file) return;
    entryRow.hidden = !file.name.toLowerCase().endsWith(".zip");
    if (entryRow.hidden === false) {
      showParams({ kind: "module" });
      form.dispatchEvent(new CustomEvent("batchhub:inspected", { detail: { kind: "module" } }));
      return;
    }
    const data = new FormData();
    data.append("file", file);
    try {
      const info = await api(config, "POST", "inspect", data);
      showParams(info);
      // The sweep form (sweep_form.js) offers the same parameters as its axes.
      form.dispatchEvent(new CustomEvent("batchhub:inspected", { detail: info }));
    } catch (e) { say(message, e.message, "danger"); }
  }
  fileInput.addEventListener("change", inspect);

  function parseValue(raw, type, name, annotated) {
    if (type === "str") return raw;
    try { return JSON.parse(raw); }
    catch (e) {
      // Only an annotated type is the notebook's rule; otherwise the text is the value.
      if (!annotated) return raw;
      throw new Error("parameter '" + name + "' is not a valid " + type + " value");
    }
  }

  // Shell-like words: spaces split, quotes group, a backslash escapes the next character.
  function splitArgs(text) {
    const words = [];
    let word = null, quote = null;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quote) {
        if (c === quote) quote = null;
        else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
        else word += c;
      } else if (c === '"' || c === "'") { quote = c; word = word || ""; }
      else if (c === "\\" && i + 1 < text.length) { word = (word || "") + text[++i]; }
      else if (/\s/.test(c)) { if (word !== null) words.push(word); word = null; }
      else word = (word || "") + c;
    }
    if (quote) throw new Error("the arguments have an unclosed " + quote);
    if (word !== null) words.push(word);
    return words;
  }
  function collectParameters() {
    const values = {};
    for (const row of paramsBody.querySelectorAll("tr")) {
      const input = row.querySelector(".param-value");
      const free = row.querySelector(".param-name");
      const name = free ? free.value.trim() : input.dataset.name;
      if (!name) continue;
      values[name] = parseValue(input.value, input.dataset.type, name, input.dataset.annotated === "true");
    }
    return values;
  }

  // Shown only to people in more than one fair-share group.
  const groupChoice = () => document.getElementById("job-group")?.value || null;

  // The fields a job and a sweep share: the file, profile, group, time limit and how it runs.
  function fillCommon(data, file) {
    data.append("file", file);
    data.append("profile", profile.value);
    if (groupChoice()) data.append("group", groupChoice());
    const timeLimit = timeLimitText();
    if (timeLimit) data.append("time_limit", timeLimit);
    const entry = document.getElementById("job-entry-point").value.trim();
    if (entry) data.append("entry_point", entry);
    if (reportMode.checked) data.append("report_mode", "true");
    if (!argsRow.hidden && argsInput.value.trim()) {
      data.append("args", JSON.stringify(splitArgs(argsInput.value)));
    }
    return data;
  }
  window.batchhubForm = {
    fillCommon, parameters: collectParameters, timeLimit: timeLimitText, durationText,
    say: (text, kind) => say(message, text, kind), refresh: () => refresh(),
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    // sweep_form.js submits a sweep, schedule_form.js a job definition.
    if (form.dataset.mode && form.dataset.mode !== "job") return;
    say(message, "Submitting…");
    try {
      let job;
      const timeLimit = timeLimitText();
      if (empty.checked) {
        job = await api(config, "POST", "jobs", {
          kind: "empty", profile: profile.value, time_limit: timeLimit, group: groupChoice(),
          report_mode: reportMode.checked,
        });
      } else {
        const file = fileInput.files[0];
        if (!file) throw new Error("choose a file, or tick 'No file' for an empty notebook");
        const data = fillCommon(new FormData(), file);
        data.append("parameters", JSON.stringify(collectParameters()));
        job = await api(config, "POST", "jobs", data);
      }
      say(message, "Queued job " + job.id + "."
        + (job.warnings && job.warnings.length ? " Mind the warnings below." : ""), "success");
      showWarnings(job.warnings);
      jobPages.offset = 0;
      refresh();
    } catch (e) {
      say(message, e.message, "danger");
    }
  });

  // --- the job list -----------------------------------------------------------------
  async function act(method, path, body) {
    try { await api(config, method, path, body); say(listMessage, ""); }
    catch (e) { say(listMessage, e.message, "danger"); }
    refresh();
  }
  function confirmed(text, label, method, path) {
    return async () => { if (await B.confirmDialog(text, label, true)) act(method, path); };
  }
  const button = (label, cls, onclick, id) => el("button", { type: "button", class: "btn btn-sm " + cls, id, onclick, text: label });

  function actionsFor(job) {
    const mine = job.owner === config.user;
    const box = el("div", { class: "d-flex gap-1 flex-wrap align-items-center" });
    if ((mine || config.admin) && B.ACTIVE.includes(job.state)) {
      box.append(button("Cancel", "btn-outline-danger", confirmed(
        "Cancel job " + job.id + " (" + job.input_name + ")?" + (job.state === "queued" ? "" : " Its run stops now."),
        "Cancel job", "POST", "jobs/" + job.id + "/cancel"), "cancel-" + job.id));
    }
    if (job.live && job.live_kernel_url && (mine || config.admin)) {
      // Through the service, which checks that the kernel still lives before opening it.
      box.append(el("a", { class: "btn btn-sm btn-success", id: "live-" + job.id, href: config.prefix + "jobs/" + job.id + "/live", target: "_blank", rel: "noopener", text: "Open live kernel" }));
      box.append(button("Release", "btn-outline-secondary", confirmed(
        "Release the live kernel of job " + job.id + "? Its variables are lost; the executed notebook stays.",
        "Release kernel", "POST", "jobs/" + job.id + "/release"), "release-" + job.id));
    }
    if ((mine || config.admin) && B.FINISHED.includes(job.state)) {
      box.append(button("Delete", "btn-outline-secondary", confirmed(
        "Delete job " + job.id + " with its input, executed notebook and output lines?",
        "Delete job", "DELETE", "jobs/" + job.id), "delete-" + job.id));
    }
    if (config.admin && job.state === "queued") {
      const id = "priority-" + job.id;
      const prio = el("input", { type: "number", class: "form-control form-control-sm", style: "width: 5em", id, min: -1000, max: 1000 });
      prio.value = job.priority;
      prio.addEventListener("change", () => act("PATCH", "jobs/" + job.id, { priority: Number(prio.value) }));
      box.append(el("span", { class: "d-inline-flex align-items-center gap-1" }, el("label", { for: id, text: "Priority" }), prio));
    }
    return box;
  }

  function filesFor(job) {
    const links = [el("a", { href: config.api + "jobs/" + job.id + "/input", text: "input" })];
    if (job.has_output) {
      links.push(el("a", { href: config.api + "jobs/" + job.id + "/output", text: "ipynb" }));
      links.push(el("a", { href: config.api + "jobs/" + job.id + "/output.html", target: "_blank", rel: "noopener", text: "html" }));
    }
    return el("span", { class: "d-flex gap-2 flex-wrap" }, ...links);
  }

  function timesFor(job) {
    const lines = [el("div", { class: "text-nowrap", text: "submitted " + when(job.submitted_at) })];
    if (job.started_at) lines.push(el("div", { class: "bh-muted text-nowrap", text: "started " + when(job.started_at) }));
    if (job.duration !== null && job.duration !== undefined) lines.push(el("div", { class: "bh-muted text-nowrap", text: (job.finished_at ? "ran " : "running for ") + duration(job.duration) }));
    return lines;
  }

  function jobRow(job) {
    // One wrapper per cell, so that on phones (label: content) the content stays one block.
    const cell = (label, attrs, ...children) => {
      const { text, ...rest } = attrs || {};
      return el("td", { "data-label": label, ...rest }, el("div", { class: "bh-cell", text }, ...children));
    };
    const params = Object.keys(job.parameters || {}).length
      ? el("div", { class: "bh-params job-parameters", text: JSON.stringify(job.parameters) }) : null;
    const argv = (job.args || []).length
      ? el("div", { class: "bh-params job-args font-monospace", text: job.args.join(" ") }) : null;
    const warned = (job.warnings || []).length
      ? el("div", { class: "small text-warning-emphasis job-warned", title: job.warnings.join("\n"),
        text: job.warnings.length + " warning" + (job.warnings.length > 1 ? "s" : "") }) : null;
    const reason = B.reasonText(job);
    const cells = [cell("Job", {},
      el("div", {}, el("a", { href: config.prefix + "jobs/" + job.id }, el("code", { text: job.id }))),
      el("div", { class: "text-break", text: job.input_name }), params, argv, warned,
      job.sweep_id ? el("div", { class: "bh-params job-sweep" }, "a point of sweep ",
        el("a", { href: config.prefix + "sweeps/" + job.sweep_id, text: job.sweep_id })) : null)];
    if (config.read_all) cells.push(cell("User", { text: job.owner }));
    cells.push(
      cell("State", {}, el("div", {}, ...B.stateBadge(job)), reason ? el("span", { class: "bh-reason job-reason", text: reason }) : null),
      cell("Position", { class: "job-position" + (job.position ? "" : " bh-empty"), text: job.position || "" }),
      cell("Profile", { text: job.profile }),
      cell("Times", {}, ...timesFor(job)),
      cell("Progress", { class: "job-progress" + (B.progressText(job) ? "" : " bh-empty"), text: B.progressText(job) }),
      cell("Files", {}, filesFor(job)),
      cell("Actions", { class: "bh-actions" }, actionsFor(job)));
    return el("tr", { id: "job-" + job.id, "data-state": job.state }, ...cells);
  }

  function filters() {
    const query = new URLSearchParams({ limit: jobPages.size, offset: jobPages.offset });
    for (const name of ["owner", "state", "profile"]) {
      const input = document.getElementById("filter-" + name);
      if (input && input.value.trim()) query.set(name, input.value.trim());
    }
    if (!config.read_all) query.set("owner", config.user);
    return query;
  }
  for (const name of ["owner", "state", "profile"]) {
    const input = document.getElementById("filter-" + name);
    if (input) input.addEventListener("change", () => { jobPages.offset = 0; refresh(); });
  }

  // Tell the owner when their jobs start and end (only changes seen while the page is open).
  const seen = new Map();
  function watch(jobs) {
    for (const job of jobs) {
      if (job.owner !== config.user) continue;
      const news = B.change(seen.get(job.id), job);
      if (news) B.tell(news.title, news.body, config.prefix + "jobs/" + job.id);
      seen.set(job.id, { state: job.state, live: job.live });
    }
  }

  const weightForm = document.getElementById("weight-form");
  async function showWeights() {
    if (!weightForm) return;
    const weights = await api(config, "GET", "weights");
    const parts = [];
    for (const kind of ["user", "group"]) {
      for (const [name, value] of Object.entries(weights[kind])) parts.push(kind + " " + name + ": " + value);
    }
    document.getElementById("weights-now").textContent = parts.length ? parts.join(", ") : "everyone weighs 1";
  }
  if (weightForm) {
    weightForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      await act("PUT", "weights", {
        kind: document.getElementById("weight-kind").value,
        name: document.getElementById("weight-name").value.trim(),
        weight: Number(document.getElementById("weight-value").value),
      });
      showWeights();
    });
    showWeights();
  }

  const toggle = document.getElementById("queue-toggle");
  let paused = false;
  if (toggle) toggle.addEventListener("click", async () => {
    if (paused || await B.confirmDialog("Pause the queue? Running jobs go on; no queued job starts until you resume it.", "Pause queue", true)) {
      await act("PUT", "queue", { paused: !paused });
    }
  });

  // Rows that did not change stay the same nodes (a refresh never swaps a button from under a
  // click), and so does a row whose priority box someone is typing in.
  function keepUnchanged(body, rows) {
    const before = new Map([...body.children].map((tr) => [tr.id, tr]));
    const next = rows.map((tr) => {
      const old = before.get(tr.id);
      if (!old || !tr.id) return tr;
      const active = document.activeElement;
      const inUse = old.contains(active) && active.matches("input, select, textarea");
      return inUse || old.outerHTML === tr.outerHTML ? old : tr;
    });
    const current = [...body.children];
    if (next.length !== current.length || next.some((tr, i) => tr !== current[i])) body.replaceChildren(...next);
  }

  async function refresh() {
    try {
      const [page, queue] = await Promise.all([
        api(config, "GET", "jobs?" + filters().toString()),
        api(config, "GET", "queue"),
      ]);
      const body = document.querySelector("#jobs-table tbody");
      const rows = page.jobs.length ? page.jobs.map(jobRow)
        : [el("tr", { id: "no-jobs" }, el("td", { colspan: 9, class: "text-muted", text: "No jobs yet: submit one above." }))];
      keepUnchanged(body, rows);
      jobPages.show(page.jobs.length, page.total);
      paused = queue.paused;
      document.getElementById("queue-paused").hidden = !paused;
      if (toggle) toggle.textContent = paused ? "Resume queue" : "Pause queue";
      watch(page.jobs);
    } catch (e) {
      say(listMessage, e.message, "danger");
    }
  }
  B.notifyButton(document.getElementById("notify-toggle"));
  if (window.batchhubSettings) window.batchhubSettings(config);
  refresh();
  setInterval(refresh, 2000);
})();
