// The Batch pages: everything goes through the service's API with the hub's XSRF token.
(function () {
  "use strict";
  const xsrf = (window.jhdata && window.jhdata.xsrf_token) || "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
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
    if (!response.ok) throw new Error((data && data.message) || response.statusText);
    return data;
  }

  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }

  function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
  function duration(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
  }
  function progressText(job) {
    const p = job.progress;
    if (!p || !p.total) return "";
    return "cell " + p.index + " of " + p.total;
  }

  // --- the job list page -----------------------------------------------------------
  function listPage(root) {
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
    let declared = null;
    let offset = 0;
    const pageSize = 50;

    function syncLimit() {
      const option = profile.selectedOptions[0];
      if (!option) return;
      limit.value = Math.round(Number(option.dataset.default) / 60);
      limit.max = Math.floor(Number(option.dataset.max) / 60);
      limitHelp.textContent = "at most " + limit.max + " minutes for this profile";
    }
    profile.addEventListener("change", syncLimit);
    syncLimit();

    function paramRow(p, free) {
      const value = el("input", {
        class: "form-control form-control-sm param-value",
        "data-name": p.name, "data-type": p.type, id: "param-" + p.name,
        "data-annotated": p.annotated ? "true" : null,
      });
      value.value = p.default === null || p.default === undefined
        ? (p.default_source || "") : (typeof p.default === "string" ? p.default : JSON.stringify(p.default));
      const name = free
        ? el("input", { class: "form-control form-control-sm param-name", placeholder: "name" })
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
      declared = info.parameters;
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
      message.textContent = "";
      paramsBox.hidden = true;
      showWarnings([]);
      const file = fileInput.files[0];
      if (!file) return;
      entryRow.hidden = !file.name.toLowerCase().endsWith(".zip");
      if (entryRow.hidden === false) { showParams({ kind: "module" }); return; }
      const data = new FormData();
      data.append("file", file);
      try { showParams(await api(config, "POST", "inspect", data)); }
      catch (e) { message.textContent = e.message; message.className = "ms-3 text-danger"; }
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

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      message.className = "ms-3";
      message.textContent = "Submitting…";
      try {
        let job;
        const minutes = Number(limit.value);
        const timeLimit = minutes > 0 ? Math.round(minutes * 60) : null;
        if (empty.checked) {
          job = await api(config, "POST", "jobs", {
            kind: "empty", profile: profile.value, time_limit: timeLimit, group: groupChoice(),
            report_mode: reportMode.checked,
          });
        } else {
          const file = fileInput.files[0];
          if (!file) throw new Error("choose a file, or tick 'No file' for an empty notebook");
          const data = new FormData();
          data.append("file", file);
          data.append("profile", profile.value);
          if (groupChoice()) data.append("group", groupChoice());
          if (timeLimit) data.append("time_limit", String(timeLimit));
          data.append("parameters", JSON.stringify(collectParameters()));
          const entry = document.getElementById("job-entry-point").value.trim();
          if (entry) data.append("entry_point", entry);
          if (reportMode.checked) data.append("report_mode", "true");
          if (!argsRow.hidden && argsInput.value.trim()) {
            data.append("args", JSON.stringify(splitArgs(argsInput.value)));
          }
          job = await api(config, "POST", "jobs", data);
        }
        message.textContent = "Queued job " + job.id + "."
          + (job.warnings && job.warnings.length ? " Mind the warnings below." : "");
        message.className = "ms-3 text-success";
        showWarnings(job.warnings);
        offset = 0;
        refresh();
      } catch (e) {
        message.textContent = e.message;
        message.className = "ms-3 text-danger";
      }
    });

    function action(label, cls, handler, id) {
      return el("button", { class: "btn btn-sm " + cls, id, onclick: handler, text: label });
    }

    function jobRow(job) {
      const files = el("span", { class: "d-flex gap-1 flex-wrap" },
        el("a", { href: config.api + "jobs/" + job.id + "/input", text: "input" }),
        el("a", { href: config.prefix + "jobs/" + job.id, text: "logs" }),
        job.finished_at ? el("a", { href: config.api + "jobs/" + job.id + "/output", text: "ipynb" }) : null,
        job.finished_at ? el("a", { href: config.api + "jobs/" + job.id + "/output.html", target: "_blank", text: "html" }) : null);
      const actions = el("span", { class: "d-flex gap-1 flex-wrap" });
      const mine = job.owner === config.user;
      if ((mine || config.admin) && ["queued", "starting", "running"].includes(job.state)) {
        actions.append(action("Cancel", "btn-outline-danger", () => act("POST", "jobs/" + job.id + "/cancel"), "cancel-" + job.id));
      }
      if (job.live && job.live_kernel_url && (mine || config.admin)) {
        actions.append(el("a", { class: "btn btn-sm btn-success", id: "live-" + job.id, href: job.live_kernel_url, target: "_blank", rel: "noopener", text: "Open live kernel" }));
        actions.append(action("Release", "btn-outline-secondary", () => act("POST", "jobs/" + job.id + "/release"), "release-" + job.id));
      }
      if ((mine || config.admin) && ["succeeded", "failed", "timed_out", "cancelled"].includes(job.state)) {
        actions.append(action("Delete", "btn-outline-secondary", () => {
          if (confirm("Delete job " + job.id + " and its files?")) act("DELETE", "jobs/" + job.id);
        }, "delete-" + job.id));
      }
      if (config.admin && job.state === "queued") {
        const prio = el("input", { type: "number", class: "form-control form-control-sm", style: "width: 5em", id: "priority-" + job.id, title: "priority" });
        prio.value = job.priority;
        prio.addEventListener("change", () => act("PATCH", "jobs/" + job.id, { priority: Number(prio.value) }));
        actions.append(prio);
      }
      const state = el("span", { class: "badge bg-secondary job-state", text: job.state + (job.live ? " (live)" : "") });
      const params = Object.keys(job.parameters || {}).length
        ? el("div", { class: "small text-muted job-parameters", text: JSON.stringify(job.parameters) }) : null;
      const argv = (job.args || []).length
        ? el("div", { class: "small text-muted job-args font-monospace", text: job.args.join(" ") }) : null;
      const warned = (job.warnings || []).length
        ? el("div", { class: "small text-warning-emphasis job-warned", title: job.warnings.join("\n"),
          text: job.warnings.length + " warning" + (job.warnings.length > 1 ? "s" : "") }) : null;
      const cells = [
        el("td", {}, el("a", { href: config.prefix + "jobs/" + job.id }, el("code", { text: job.id }))),
      ];
      if (config.read_all) cells.push(el("td", { text: job.owner }));
      cells.push(
        el("td", {}, el("span", { text: job.input_name }), params, argv, warned),
        el("td", { title: job.reason || "" }, state),
        el("td", { class: "job-position", text: job.position || "" }),
        el("td", { text: job.profile }),
        el("td", { text: when(job.submitted_at) }),
        el("td", { text: when(job.started_at) }),
        el("td", { text: when(job.finished_at) }),
        el("td", { text: duration(job.duration) }),
        el("td", { class: "job-progress", text: progressText(job) }),
        el("td", {}, files),
        el("td", {}, actions));
      return el("tr", { id: "job-" + job.id, "data-state": job.state }, ...cells);
    }

    async function act(method, path, body) {
      try { await api(config, method, path, body); }
      catch (e) { message.textContent = e.message; message.className = "ms-3 text-danger"; }
      refresh();
    }

    function filters() {
      const query = new URLSearchParams({ limit: pageSize, offset });
      for (const name of ["owner", "state", "profile"]) {
        const input = document.getElementById("filter-" + name);
        if (input && input.value.trim()) query.set(name, input.value.trim());
      }
      if (!config.read_all) query.set("owner", config.user);
      return query;
    }
    for (const name of ["owner", "state", "profile"]) {
      const input = document.getElementById("filter-" + name);
      if (input) input.addEventListener("change", () => { offset = 0; refresh(); });
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
      await act("PUT", "queue", { paused: !paused });
    });

    async function refresh() {
      try {
        const [page, queue] = await Promise.all([
          api(config, "GET", "jobs?" + filters().toString()),
          api(config, "GET", "queue"),
        ]);
        document.querySelector("#jobs-table tbody").replaceChildren(...page.jobs.map(jobRow));
        document.getElementById("page-info").textContent =
          page.total ? (offset + 1) + "–" + (offset + page.jobs.length) + " of " + page.total : "no jobs yet";
        document.getElementById("page-prev").disabled = offset === 0;
        document.getElementById("page-next").disabled = offset + page.jobs.length >= page.total;
        paused = queue.paused;
        document.getElementById("queue-paused").hidden = !paused;
        if (toggle) toggle.textContent = paused ? "Resume queue" : "Pause queue";
      } catch (e) {
        message.textContent = e.message;
        message.className = "ms-3 text-danger";
      }
    }
    document.getElementById("page-prev").addEventListener("click", () => { offset = Math.max(0, offset - pageSize); refresh(); });
    document.getElementById("page-next").addEventListener("click", () => { offset += pageSize; refresh(); });
    refresh();
    setInterval(refresh, 2000);
  }

  // --- one job's page --------------------------------------------------------------
  function jobPage(root) {
    const config = JSON.parse(root.dataset.config);
    const id = config.job_id;
    const log = document.getElementById("job-log");
    let after = 0;
    let done = false;

    async function refresh() {
      const job = await api(config, "GET", "jobs/" + id);
      document.getElementById("job-state").textContent = job.state + (job.live ? " (live kernel)" : "");
      document.getElementById("job-reason").textContent = job.reason || "";
      const p = job.progress || {};
      document.getElementById("job-progress").textContent = progressText(job);
      document.getElementById("job-progress-bar").style.width = p.total ? (100 * p.index / p.total) + "%" : "0%";
      document.getElementById("job-elapsed").textContent = job.duration !== null ? "(" + duration(job.duration) + ")" : "";
      document.getElementById("job-current-cell").textContent = job.state === "running" ? (p.current_cell || "") : "";
      const error = document.getElementById("job-error");
      error.textContent = job.error ? job.error.name + ": " + job.error.value + (job.error.cell !== null ? " (cell " + job.error.cell + ")" : "") : "";
      const live = document.getElementById("open-live-kernel");
      live.hidden = !job.live_kernel_url;
      if (job.live_kernel_url) live.href = job.live_kernel_url;
      document.getElementById("release").hidden = !job.live;
      document.getElementById("cancel").hidden = !["queued", "starting", "running"].includes(job.state);
      const finished = ["succeeded", "failed", "timed_out", "cancelled"].includes(job.state);
      for (const [elementId, path] of [["download-output", "/output"], ["view-html", "/output.html"]]) {
        const link = document.getElementById(elementId);
        link.hidden = !finished || job.state === "cancelled";
        link.href = config.api + "jobs/" + id + path;
      }
      document.getElementById("live-note").textContent = job.live && job.live_until
        ? "The kernel stays live until " + when(job.live_until) + "; every variable of the run is there." : "";
      const lines = await api(config, "GET", "jobs/" + id + "/logs?after=" + after);
      if (lines.lines.length) {
        log.append(lines.lines.map((l) => l.text + "\n").join(""));
        after = lines.next;
        log.scrollTop = log.scrollHeight;
      }
      done = finished && !job.live && !job.live_pending;
      if (finished && !artifactsShown) {
        artifactsShown = true;
        await showArtifacts();
      }
    }
    let artifactsShown = false;
    async function showArtifacts() {
      const listing = await api(config, "GET", "jobs/" + id + "/artifacts");
      const section = document.getElementById("artifacts");
      const rows = listing.artifacts.map((a) => el("tr", {},
        el("td", {}, el("a", { href: config.api + "jobs/" + id + "/artifacts/" + a.path.split("/").map(encodeURIComponent).join("/"), text: a.path })),
        el("td", { class: "text-end", text: size(a.size) })));
      document.querySelector("#artifacts-table tbody").replaceChildren(...rows);
      const zip = document.getElementById("artifacts-zip");
      zip.hidden = !listing.artifacts.length;
      zip.href = config.api + "jobs/" + id + "/artifacts.zip";
      document.getElementById("artifacts-summary").textContent = listing.artifacts.length
        ? listing.artifacts.length + " file(s), " + size(listing.kept_bytes) + " of at most " + size(listing.cap) + " kept with the job."
        : "This run wrote no files under its job folder.";
      const dropped = document.getElementById("artifacts-dropped");
      dropped.hidden = !listing.dropped.length;
      dropped.querySelector("ul").replaceChildren(...listing.dropped.map((d) =>
        el("li", { text: d.path + " (" + size(d.size) + "): " + d.reason })));
      section.hidden = false;
    }

    document.getElementById("release").addEventListener("click", async () => { await api(config, "POST", "jobs/" + id + "/release"); refresh(); });
    document.getElementById("cancel").addEventListener("click", async () => { await api(config, "POST", "jobs/" + id + "/cancel"); refresh(); });
    async function loop() {
      try { await refresh(); } catch (e) { document.getElementById("job-reason").textContent = e.message; }
      setTimeout(loop, done ? 10000 : 1000);
    }
    loop();
  }

  const list = document.getElementById("batch-app");
  if (list) listPage(list);
  const job = document.getElementById("job-app");
  if (job) jobPage(job);
})();
