// One sweep's page: its state and counts, pause/resume/cancel/retry, and the results table (one
// row per point: parameters, state, times, error, recorded values, links), sortable by any
// column and filterable, with the plot (sweep_plot.js) drawn from the same rows. Polls while
// the sweep has points to run.
(function () {
  "use strict";
  const root = document.getElementById("sweep-app");
  if (!root) return;
  const B = window.batchhub;
  const { counted, el, api, when, duration } = B;
  const config = JSON.parse(root.dataset.config);
  const id = config.sweep_id;
  const $ = (elementId) => document.getElementById(elementId);
  const table = $("results-table");
  const filterInput = $("results-filter");
  const stateFilter = $("results-state");
  const sortSelect = $("results-sort");
  const plot = window.batchhubSweepPlot ? window.batchhubSweepPlot(root) : null;
  const STATES = ["queued", "starting", "running", "succeeded", "failed", "timed_out", "cancelled"];
  let sweep = null;
  let rows = [];
  let columns = [];
  let sort = { key: null, descending: false };
  let columnsKey = "";
  let seen = "";

  function say(text, kind) {
    $("sweep-message").textContent = text;
    $("sweep-message").className = kind ? "text-" + kind : "";
  }

  // A value as a cell shows it: numbers as they are, text as text, anything else as JSON.
  function shown(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    return JSON.stringify(value);
  }

  // --- the header: state, counts, what the points were made from, actions -------------
  function countsText(counts) {
    const parts = STATES.filter((s) => counts[s]).map((s) => counts[s] + " " + B.stateWord(s));
    return parts.join(" · ") || "none";
  }
  function specText(spec) {
    if (!spec) return "";
    if (spec.kind === "grid") {
      return "a grid: " + Object.entries(spec.grid || {}).map(([k, v]) => k + " = " + shown(v)).join("; ");
    }
    if (spec.kind === "table") {
      const n = Array.isArray(spec.table) ? spec.table.length : String(spec.table || "").split("\n").filter((l) => l.trim()).length - 1;
      return "a table of " + counted(n, "row");
    }
    if (spec.kind === "random") {
      return spec.samples + " random samples (seed " + (spec.seed ?? 0) + ") of " + Object.keys(spec.space || {}).join(", ");
    }
    if (spec.kind === "optuna") {
      return "an optimisation: " + (spec.direction === "maximize" ? "maximise " : "minimise ") + spec.objective
        + " over " + Object.keys(spec.space || {}).join(", ") + " in at most " + spec.max_trials + " trials (Optuna, seed " + (spec.seed ?? 0) + ")";
    }
    if (spec.kind === "explore") {
      const n = (spec.start || []).length;
      return "an exploration from " + counted(n, "start point") + ", at most " + spec.max_points
        + " points, " + counted(spec.max_depth, "step") + " from a start point at most";
    }
    return spec.kind;
  }
  // An optimisation's best trial so far, as the service's Optuna study has it.
  function showBest() {
    const info = sweep.info || {};
    const optimising = sweep.kind === "optuna" && info.objective;
    $("sweep-best-label").hidden = $("sweep-best").hidden = !optimising;
    if (!optimising) return;
    const states = info.trial_states || {};
    const asked = info.trials + " of at most " + info.max_trials + " trials asked: " + (states.complete || 0) + " told a value, "
      + (states.failed || 0) + " failed, " + (states.running || 0) + " running";
    const best = info.best;
    if (!best) {
      $("sweep-best").replaceChildren("no trial has recorded " + info.objective + " yet (" + asked + ")");
      return;
    }
    const at = Object.entries(best.parameters || {}).map(([k, v]) => k + " = " + shown(v)).join(", ");
    const job = best.job_id ? el("a", { href: config.prefix + "jobs/" + best.job_id, id: "sweep-best-job" }, el("code", { text: best.job_id })) : "";
    $("sweep-best").replaceChildren(
      el("strong", { text: info.objective + " = " + shown(best.value) }),
      " at " + (at || "the notebook's values") + ", trial " + best.trial + " ", job,
      el("div", { class: "bh-muted", text: asked }));
  }
  // An exploration's reach so far and the proposals it did not follow, by why.
  const DROPPED = { already_seen: "already run", out_of_bounds: "outside the bounds", too_deep: "too many steps from the start",
    over_budget: "over the points budget", malformed: "not a list of points" };
  function showExplored() {
    const info = sweep.info || {};
    const exploring = sweep.kind === "explore" && info.max_points !== undefined;
    $("sweep-explored-label").hidden = $("sweep-explored").hidden = !exploring;
    if (!exploring) return;
    const dropped = Object.entries(info.dropped || {}).filter(([, n]) => n);
    const total = dropped.reduce((sum, [, n]) => sum + n, 0);
    $("sweep-explored").replaceChildren(
      el("div", { text: info.points + " of at most " + info.max_points + " points, " + info.deepest + " of at most " + counted(info.max_depth, "step") + " from the start" }),
      el("div", { class: "bh-muted", id: "sweep-dropped", text: (info.proposed || 0) + " proposed by the runs, " + total + " not followed"
        + (dropped.length ? ": " + dropped.map(([why, n]) => n + " " + (DROPPED[why] || why)).join(", ") : "") }));
  }
  function showHeader() {
    const badge = $("sweep-state");
    badge.textContent = sweep.state;
    badge.className = "bh-state bh-state-" + ({ active: "running", done: "succeeded", paused: "queued" }[sweep.state] || sweep.state);
    badge.dataset.state = sweep.state;
    const c = sweep.counts;
    const running = c.starting + c.running;
    $("sweep-state-note").textContent = {
      active: running ? running + " running now; at most " + sweep.max_parallel + " at once" : "its points wait their turn in the queue",
      paused: "no point starts until you resume it" + (running ? "; " + running + " still running" : ""),
      done: "every point has ended",
      cancelled: "its queued points were dropped and running ones stopped",
    }[sweep.state] || "";
    $("sweep-counts").textContent = counted(sweep.points, "point") + ": " + countsText(c);
    $("sweep-spec").textContent = specText(sweep.spec);
    showBest();
    showExplored();
    $("sweep-runs").textContent = "profile " + sweep.profile + ", time limit " + duration(sweep.time_limit)
      + " each, at most " + sweep.max_parallel + " at once; submitted " + when(sweep.created_at);
    const mine = sweep.owner === config.user || config.admin;
    $("sweep-pause").hidden = !(mine && sweep.state === "active");
    $("sweep-resume").hidden = !(mine && sweep.state === "paused");
    $("sweep-cancel").hidden = !(mine && (sweep.state === "active" || sweep.state === "paused"));
    const failed = c.failed + c.timed_out;
    $("sweep-retry").hidden = !(mine && failed);
    $("sweep-retry").textContent = "Retry " + counted(failed, "failed point");
    $("download-csv").href = config.api + "sweeps/" + id + "/results?format=csv";
    $("download-json").href = config.api + "sweeps/" + id + "/results?format=json";
    B.setTitle(sweep.state + " " + (c.succeeded + c.failed + c.timed_out + c.cancelled) + "/" + sweep.points);
  }

  // --- the table's columns: job, parameters, state, times, error, recorded values, links
  function makeColumns() {
    const params = [...new Set(rows.flatMap((r) => Object.keys(r.parameters)))].sort();
    const values = [...new Set(rows.flatMap((r) => Object.keys(r.recorded)))].sort();
    const order = (state) => STATES.indexOf(state);
    return [
      { key: "job", label: "Job", value: (r) => r.job_id, cell: (r) => el("a", { href: r.links.job }, el("code", { text: r.job_id })) },
      ...params.map((name) => ({ key: "param." + name, label: name, kind: "parameter", value: (r) => r.parameters[name], cell: (r) => shown(r.parameters[name]) })),
      {
        key: "state", label: "State", value: (r) => order(r.state),
        cell: (r) => el("span", {}, el("span", { class: "bh-state bh-state-" + r.state, "data-state": r.state, text: B.stateWord(r.state) }),
          r.reason ? el("span", { class: "bh-reason", text: r.reason }) : null),
      },
      { key: "started", label: "Started", value: (r) => r.started_at, cell: (r) => when(r.started_at) },
      { key: "duration", label: "Run time", value: (r) => r.duration, cell: (r) => duration(r.duration) },
      { key: "error", label: "Error", value: (r) => r.error, cell: (r) => r.error ? el("span", { class: "text-danger", text: r.error }) : "" },
      ...values.map((name) => ({ key: "value." + name, label: name, kind: "recorded", value: (r) => r.recorded[name], cell: (r) => shown(r.recorded[name]) })),
      {
        key: "output", label: "Output", value: (r) => (r.links.output ? 1 : 0),
        cell: (r) => el("span", { class: "d-flex gap-2 flex-wrap" },
          r.links.output ? el("a", { href: r.links.output, text: "ipynb" }) : null,
          r.links.output ? el("a", { href: r.links.output + ".html", target: "_blank", rel: "noopener", text: "html" }) : null,
          r.links.live_kernel ? el("a", { href: config.prefix + "jobs/" + r.job_id + "/live", target: "_blank", rel: "noopener", text: "live kernel" }) : null),
      },
    ];
  }

  // Numbers before text, empty cells last whichever way the column is sorted.
  function compare(a, b) {
    const empty = (v) => v === null || v === undefined || v === "";
    if (empty(a) || empty(b)) return empty(a) - empty(b);
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return shown(a).localeCompare(shown(b), undefined, { numeric: true });
  }
  function sorted(list) {
    const column = columns.find((c) => c.key === sort.key);
    if (!column) return list;
    const sign = sort.descending ? -1 : 1;
    return [...list].sort((x, y) => {
      const a = column.value(x), b = column.value(y);
      const empty = (v) => v === null || v === undefined || v === "";
      if (empty(a) !== empty(b)) return empty(a) ? 1 : -1;
      return sign * compare(a, b);
    });
  }
  function matches(row, text, state) {
    if (state && row.state !== state) return false;
    if (!text) return true;
    const blob = [row.job_id, row.state, row.error, row.reason,
      ...Object.values(row.parameters).map(shown), ...Object.values(row.recorded).map(shown)].join(" ").toLowerCase();
    return text.toLowerCase().split(/\s+/).every((word) => blob.includes(word));
  }

  function showColumns() {
    const head = table.querySelector("thead tr");
    head.replaceChildren(...columns.map((c) => {
      const button = el("button", { type: "button", class: "bh-sort", "data-key": c.key },
        c.kind ? el("span", { class: "bh-col-kind", text: c.kind }) : null, c.label);
      button.addEventListener("click", () => {
        sort = { key: c.key, descending: sort.key === c.key ? !sort.descending : false };
        again();
      });
      return el("th", { scope: "col", "data-key": c.key }, button);
    }));
    sortSelect.replaceChildren(el("option", { value: "", text: "as submitted" }),
      ...columns.flatMap((c) => [false, true].map((descending) => el("option", {
        value: c.key + (descending ? ":desc" : ":asc"),
        text: (c.kind ? c.kind + " " : "") + c.label + (descending ? " (high to low)" : " (low to high)"),
      }))));
  }

  // A page of rows at a time: a thousand rows laid out at once keep a browser busy for a
  // second, and a phone's reader would scroll through a thousand cards.
  const PAGE = 100;
  let first = 0;
  function showRows() {
    const text = filterInput.value.trim();
    const state = stateFilter.value;
    const matched = sorted(rows.filter((r) => matches(r, text, state)));
    first = Math.max(0, Math.min(first, Math.floor((matched.length - 1) / PAGE) * PAGE));
    const visible = matched.slice(first, first + PAGE);
    for (const th of table.querySelectorAll("thead th")) {
      const on = th.dataset.key === sort.key;
      th.setAttribute("aria-sort", on ? (sort.descending ? "descending" : "ascending") : "none");
    }
    sortSelect.value = sort.key ? sort.key + (sort.descending ? ":desc" : ":asc") : "";
    const body = table.querySelector("tbody");
    const td = (c, r) => {
      const content = c.cell(r);
      // Empty cells fold away on a phone, where each point is a card of labelled fields.
      const blank = content === "" || (content instanceof Element && !content.textContent);
      return el("td", { "data-label": (c.kind ? c.kind + " " : "") + c.label, "data-key": c.key, class: blank ? "bh-empty" : null },
        el("div", { class: "bh-cell" }, content));
    };
    body.replaceChildren(...visible.map((r) => el("tr", { id: "point-" + r.job_id, "data-state": r.state },
      ...columns.map((c) => td(c, r)))));
    if (!visible.length) {
      body.append(el("tr", { id: "no-points" }, el("td", { colspan: columns.length, class: "text-muted",
        text: rows.length ? "No point matches the filter." : "This sweep has no points." })));
    }
    $("results-count").textContent = matched.length === rows.length
      ? counted(rows.length, "point")
      : matched.length + " of " + rows.length + " points shown";
    const paged = matched.length > PAGE;
    $("results-pages").classList.toggle("d-none", !paged); // d-flex would outdo [hidden]
    $("results-page").textContent = paged ? "rows " + (first + 1) + "–" + (first + visible.length) + " of " + matched.length : "";
    $("results-prev").disabled = first === 0;
    $("results-next").disabled = first + PAGE >= matched.length;
    root.dataset.rows = String(matched.length);
    root.dataset.shown = String(visible.length);
  }

  const again = () => { first = 0; showRows(); };
  filterInput.addEventListener("input", again);
  stateFilter.addEventListener("change", again);
  sortSelect.addEventListener("change", () => {
    const [key, direction] = sortSelect.value.split(":");
    sort = { key: key || null, descending: direction === "desc" };
    again();
  });
  $("results-prev").addEventListener("click", () => { first = Math.max(0, first - PAGE); showRows(); });
  $("results-next").addEventListener("click", () => { first += PAGE; showRows(); });

  // --- actions ------------------------------------------------------------------------
  async function act(action, question, label) {
    if (question && !(await B.confirmDialog(question, label, true))) return;
    try {
      const view = await api(config, "POST", "sweeps/" + id + "/" + action);
      say(action === "retry" ? view.added + " point(s) queued again." : "", "success");
    } catch (e) { say(e.message, "danger"); }
    refresh();
  }
  $("sweep-pause").addEventListener("click", () => act("pause"));
  $("sweep-resume").addEventListener("click", () => act("resume"));
  $("sweep-retry").addEventListener("click", () => act("retry"));
  $("sweep-cancel").addEventListener("click", () => act("cancel",
    "Cancel this sweep? Its queued points are dropped and its running ones stop now.", "Cancel sweep"));

  async function refresh() {
    const results = await api(config, "GET", "sweeps/" + id + "/results");
    sweep = results.sweep;
    showHeader();
    // Unchanged rows are not drawn again: a poll leaves a reader's place and selection alone.
    const now = JSON.stringify(results.rows);
    if (now === seen) return;
    seen = now;
    rows = results.rows;
    columns = makeColumns();
    const key = columns.map((c) => c.key).join("\n");
    if (key !== columnsKey) { columnsKey = key; showColumns(); }
    showRows();
    if (plot) plot.update(rows);
  }

  async function loop() {
    let wait = 2000;
    try {
      await refresh();
      const c = sweep.counts;
      // A finished or cancelled sweep changes only when someone acts on it: look rarely.
      if (!(c.queued + c.starting + c.running)) wait = 15000;
    } catch (e) { say(e.message, "danger"); }
    setTimeout(loop, wait);
  }
  loop();
})();
