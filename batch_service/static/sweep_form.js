// The Batch page's sweep mode: the same file as a job, run once for each point of a grid (one
// row of values per parameter), a table (CSV or JSON file), random samples (bounds, count,
// seed), an optimisation (the same bounds; Optuna picks each trial) or an exploration (the
// same bounds and a start value; each run proposes the next points), at most N at once; and
// the list of sweeps. Submits to the sweeps API; its 400s are
// shown next to the form as they come.
(function () {
  "use strict";
  const root = document.getElementById("batch-app");
  const form = document.getElementById("submit-form");
  if (!root || !form || !window.batchhubForm) return;
  const B = window.batchhub;
  const { counted, el, api, when } = B;
  const F = window.batchhubForm;
  const config = JSON.parse(root.dataset.config);
  const $ = (elementId) => document.getElementById(elementId);
  const box = $("sweep-box");
  const kind = $("sweep-kind");
  const gridBody = document.querySelector("#sweep-params tbody");
  const spaceBody = document.querySelector("#sweep-space tbody");
  const size = $("sweep-size");
  const empty = $("job-empty");
  let declared = null; // the input's parameters, when it declares them

  // --- mode: one job, a sweep, or on a schedule (schedule_form.js) --------------------
  const SUBMIT_LABEL = { job: "Submit", sweep: "Submit sweep", schedule: "Save schedule" };
  function setMode() {
    const mode = (form.querySelector("input[name='mode']:checked") || {}).value || "job";
    const sweep = mode === "sweep";
    form.dataset.mode = mode;
    box.hidden = !sweep;
    $("schedule-box").hidden = mode !== "schedule";
    // A sweep's parameters are its rows; the single job's value table would only confuse.
    $("params-box").hidden = sweep || !$("job-file").files.length || empty.checked;
    // Only a single job may start an empty notebook: sweeps and schedules run a file.
    if (mode !== "job") empty.checked = false;
    empty.disabled = mode !== "job";
    $("job-submit").textContent = SUBMIT_LABEL[mode];
    showKind();
  }
  for (const radio of document.querySelectorAll("input[name='mode']")) radio.addEventListener("change", setMode);

  // Random samples, an optimisation and an exploration take the same bounds per parameter.
  const bounded = () => ["random", "optuna", "explore"].includes(kind.value);
  function showKind() {
    $("sweep-grid").hidden = kind.value !== "grid";
    $("sweep-table").hidden = kind.value !== "table";
    $("sweep-random").hidden = !bounded();
    $("sweep-optuna").hidden = kind.value !== "optuna";
    $("sweep-explore").hidden = kind.value !== "explore";
    // Only an exploration starts somewhere; it draws nothing, so it has no seed.
    $("sweep-space").classList.toggle("bh-exploring", kind.value === "explore");
    $("sweep-draws").hidden = kind.value === "explore";
    $("sweep-samples-col").hidden = kind.value !== "random";
    $("sweep-add").hidden = declared !== null || kind.value === "table";
    showSize();
  }
  kind.addEventListener("change", showKind);
  $("sweep-trials").addEventListener("input", showSize);
  $("sweep-max-points").addEventListener("input", showSize);

  // --- one row per parameter --------------------------------------------------------
  const input = (attrs) => el("input", { class: "form-control form-control-sm", ...attrs });
  function nameCell(p, free, cls) {
    return free ? input({ class: "form-control form-control-sm " + cls, placeholder: "name", "aria-label": "parameter name" })
      : el("code", { class: cls, "data-name": p.name, text: p.name });
  }
  function gridRow(p, free) {
    const values = input({ class: "form-control form-control-sm sweep-values", id: p.name ? "sweep-values-" + p.name : null,
      placeholder: "e.g. 0.1, 0.01 or 1:4", "aria-label": "values of " + (p.name || "the parameter") });
    values.addEventListener("input", showSize);
    return el("tr", {}, el("td", {}, nameCell(p, free, "sweep-name")), el("td", { class: "small", text: p.type || "any" }), el("td", {}, values));
  }
  function spaceRow(p, free) {
    const cell = (cls, label, attrs) => el("td", {}, input({ class: "form-control form-control-sm " + cls, "aria-label": label + " of " + (p.name || "the parameter"), ...attrs }));
    const check = (cls, label) => el("td", {}, el("input", { class: "form-check-input " + cls, type: "checkbox", "aria-label": label + " for " + (p.name || "the parameter") }));
    const start = cell("sweep-start", "start value", { id: p.name ? "sweep-start-" + p.name : null, placeholder: "start" });
    start.classList.add("sweep-start-col");
    return el("tr", {}, el("td", {}, nameCell(p, free, "sweep-name")), start,
      cell("sweep-low", "low", { inputmode: "decimal", id: p.name ? "sweep-low-" + p.name : null }),
      cell("sweep-high", "high", { inputmode: "decimal", id: p.name ? "sweep-high-" + p.name : null }),
      check("sweep-int", "whole numbers"), check("sweep-log", "log scale"),
      cell("sweep-choices", "choices", { placeholder: "a, b, c" }));
  }
  function showRows() {
    const params = declared || [];
    gridBody.replaceChildren(...params.map((p) => gridRow(p, false)));
    spaceBody.replaceChildren(...params.map((p) => spaceRow(p, false)));
    // A .py file or zip takes any name; a notebook without a parameters cell has none to sweep.
    if (declared === null) { gridBody.append(gridRow({}, true)); spaceBody.append(spaceRow({}, true)); }
    $("sweep-add").hidden = declared !== null || kind.value === "table";
    showSize();
  }
  $("sweep-add").addEventListener("click", () => {
    if (bounded()) spaceBody.append(spaceRow({}, true));
    else gridBody.append(gridRow({}, true));
  });
  form.addEventListener("batchhub:inspected", (event) => {
    const info = event.detail || {};
    declared = info.kind === "notebook" ? info.parameters || [] : null;
    showRows();
    setMode();
  });
  $("job-file").addEventListener("change", () => { if (!$("job-file").files.length) { declared = null; showRows(); } });

  function rowName(tr) {
    const name = tr.querySelector(".sweep-name");
    return (name.dataset.name || name.value || "").trim();
  }

  // --- the spec the API takes -----------------------------------------------------------
  function gridSpec() {
    const grid = {};
    for (const tr of gridBody.querySelectorAll("tr")) {
      const values = tr.querySelector(".sweep-values").value.trim();
      const name = rowName(tr);
      if (!values) continue;
      if (!name) throw new Error("a row with values needs the parameter's name");
      // The API reads "a, b" lists and start:stop:step ranges itself; spaces are trimmed.
      grid[name] = values.split(",").map((v) => v.trim()).join(",");
    }
    if (!Object.keys(grid).length) throw new Error("give the values of at least one parameter, e.g. 0.1, 0.01 or 1:4");
    return { kind: "grid", grid };
  }
  function numberOrText(text) {
    const value = Number(text);
    return text !== "" && Number.isFinite(value) ? value : text;
  }
  function boundsSpec() {
    const space = {};
    for (const tr of spaceBody.querySelectorAll("tr")) {
      const name = rowName(tr);
      const low = tr.querySelector(".sweep-low").value.trim();
      const high = tr.querySelector(".sweep-high").value.trim();
      const choices = tr.querySelector(".sweep-choices").value.trim();
      if (!low && !high && !choices) continue;
      if (!name) throw new Error("a row with bounds needs the parameter's name");
      if (choices) space[name] = { choices: choices.split(",").map((c) => numberOrText(c.trim())) };
      else {
        space[name] = { low: numberOrText(low), high: numberOrText(high) };
        if (tr.querySelector(".sweep-int").checked) space[name].int = true;
        if (tr.querySelector(".sweep-log").checked) space[name].log = true;
      }
    }
    if (!Object.keys(space).length) throw new Error("give bounds (low and high) or choices for at least one parameter");
    return space;
  }
  const seed = () => Number($("sweep-seed").value || 0);
  function randomSpec() {
    return { kind: "random", space: boundsSpec(), samples: Number($("sweep-samples").value), seed: seed() };
  }
  function optunaSpec() {
    const space = boundsSpec();
    const objective = $("sweep-objective").value.trim();
    if (!objective) throw new Error("name the recorded value to optimise, e.g. loss (the notebook glues it with scrapbook)");
    return { kind: "optuna", space, objective, direction: $("sweep-direction").value, max_trials: Number($("sweep-trials").value), seed: seed() };
  }
  function exploreSpec() {
    const bounds = boundsSpec();
    const start = {};
    for (const tr of spaceBody.querySelectorAll("tr")) {
      const value = tr.querySelector(".sweep-start").value.trim();
      if (!value) continue;
      const name = rowName(tr);
      if (!bounds[name]) throw new Error("give " + (name || "the parameter") + "'s bounds too: a start value is kept within them");
      start[name] = numberOrText(value);
    }
    if (!Object.keys(start).length) throw new Error("give the start value of at least one parameter: the first run takes it");
    return { kind: "explore", start: [start], bounds, max_points: Number($("sweep-max-points").value), max_depth: Number($("sweep-max-depth").value) };
  }
  const SPECS = { grid: gridSpec, random: randomSpec, optuna: optunaSpec, explore: exploreSpec, table: tableSpec };
  async function tableSpec() {
    const file = $("sweep-table-file").files[0];
    if (!file) throw new Error("choose the table's file (.csv or .json)");
    const text = await file.text();
    if (!file.name.toLowerCase().endsWith(".json")) return { kind: "table", table: text };
    let rows;
    try { rows = JSON.parse(text); } catch (e) { throw new Error(file.name + " is not valid JSON: " + e.message); }
    if (!Array.isArray(rows)) throw new Error(file.name + " must hold a list of objects, one per point");
    return { kind: "table", table: rows };
  }

  // How many points a grid makes, worked out as the person types (the service checks again).
  function axisLength(text) {
    const parts = text.split(":");
    if (parts.length >= 2 && parts.length <= 3 && parts.every((p) => p.trim() !== "" && Number.isFinite(Number(p)))) {
      const [start, stop, step] = [Number(parts[0]), Number(parts[1]), parts.length === 3 ? Number(parts[2]) : 1];
      if (step === 0 || (stop - start) * step < 0) return null;
      return Math.floor((stop - start) / step + 1e-9) + 1;
    }
    return text.split(",").length;
  }
  function showSize() {
    if (kind.value === "optuna") {
      const trials = Number($("sweep-trials").value);
      size.textContent = trials >= 1 ? "At most " + counted(trials, "trial") + ", each a job." : "";
      return;
    }
    if (kind.value === "explore") {
      const most = Number($("sweep-max-points").value);
      size.textContent = most >= 1 ? "At most " + counted(most, "point") + ", each a job, the start included." : "";
      return;
    }
    if (kind.value !== "grid") {
      size.textContent = kind.value === "random" ? "" : "One point per row of the table.";
      return;
    }
    const lengths = [...gridBody.querySelectorAll(".sweep-values")].map((i) => i.value.trim()).filter(Boolean).map(axisLength);
    if (!lengths.length) { size.textContent = "Give values for one or more parameters."; return; }
    if (lengths.includes(null)) { size.textContent = "A range's step must go from start towards stop."; return; }
    const total = lengths.reduce((a, b) => a * b, 1);
    size.textContent = (lengths.length > 1 ? lengths.join(" × ") + " = " : "") + counted(total, "point") + ", each a job.";
  }

  form.addEventListener("submit", async (event) => {
    if (form.dataset.mode !== "sweep") return;
    event.preventDefault();
    F.say("Submitting the sweep…");
    try {
      const file = $("job-file").files[0];
      if (!file) throw new Error("choose the notebook, .py file or zip the sweep runs");
      const spec = await SPECS[kind.value]();
      const data = F.fillCommon(new FormData(), file);
      data.append("spec", JSON.stringify(spec));
      data.append("max_parallel", $("sweep-max-parallel").value || "1");
      const sweep = await api(config, "POST", "sweeps", data);
      const text = spec.kind === "optuna"
        ? counted(sweep.added, "trial") + " queued; Optuna asks for the next as runs end. "
        : spec.kind === "explore"
          ? "the start point is queued; the points its runs propose follow as they end. "
          : counted(sweep.added, "point") + " queued"
          + (sweep.skipped ? ", " + sweep.skipped + " already in the sweep" : "") + ". ";
      const link = el("a", { href: config.prefix + "sweeps/" + sweep.id, id: "sweep-link" }, "Open sweep " + sweep.id);
      F.say("");
      const message = $("submit-message");
      message.className = "ms-3 text-success";
      message.replaceChildren("Sweep " + sweep.id + ": " + text, link);
      F.refresh();
      refreshSweeps();
    } catch (e) {
      F.say(e.message, "danger");
    }
  });

  // --- the list of sweeps ---------------------------------------------------------------
  const STATES = ["queued", "starting", "running", "succeeded", "failed", "timed_out", "cancelled"];
  const BADGE = { active: "running", done: "succeeded", paused: "queued", cancelled: "cancelled" };
  function sweepRow(s) {
    const cell = (label, ...children) => el("td", { "data-label": label }, el("div", { class: "bh-cell" }, ...children));
    const counts = STATES.filter((k) => s.counts[k]).map((k) => s.counts[k] + " " + B.stateWord(k)).join(" · ");
    const cells = [cell("Sweep", el("div", {}, el("a", { href: config.prefix + "sweeps/" + s.id }, el("code", { text: s.id }))),
      el("div", { class: "text-break", text: s.input_name }))];
    if (config.read_all) cells.push(cell("User", s.owner));
    cells.push(
      cell("State", el("span", { class: "bh-state bh-state-" + (BADGE[s.state] || "queued"), "data-state": s.state, text: s.state })),
      cell("Points", el("div", { text: counted(s.points, "point") }), el("div", { class: "bh-muted", text: counts })),
      cell("Submitted", when(s.created_at)));
    return el("tr", { id: "sweep-" + s.id, "data-state": s.state }, ...cells);
  }
  const sweepPages = B.pager($("sweeps-pages"), 20, () => refreshSweeps());
  async function refreshSweeps() {
    try {
      const query = new URLSearchParams({ limit: sweepPages.size, offset: sweepPages.offset });
      if (!config.read_all) query.set("owner", config.user);
      const page = await api(config, "GET", "sweeps?" + query.toString());
      if (!sweepPages.show(page.sweeps.length, page.total)) return;
      $("sweeps-section").hidden = !page.total;
      const body = document.querySelector("#sweeps-table tbody");
      const rows = page.sweeps.map(sweepRow);
      if (rows.map((r) => r.outerHTML).join("") !== [...body.children].map((r) => r.outerHTML).join("")) body.replaceChildren(...rows);
      $("sweeps-message").textContent = "";
    } catch (e) {
      $("sweeps-message").textContent = e.message;
    }
  }

  showRows();
  setMode();
  refreshSweeps();
  setInterval(refreshSweeps, 3000);
})();
