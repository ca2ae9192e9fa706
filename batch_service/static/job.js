// One job's page: state and why, progress per cell, output lines as they come, where a failed
// run stopped (source and whole traceback), and the live kernel.
(function () {
  "use strict";
  const root = document.getElementById("job-app");
  if (!root) return;
  const B = window.batchhub;
  const config = JSON.parse(root.dataset.config);
  const id = config.job_id;
  const $ = (elementId) => document.getElementById(elementId);
  const log = $("job-log");
  let after = 0;
  let done = false;
  let before = null;
  let failureShown = false;
  let job = null;

  async function showFailure() {
    failureShown = true;
    try {
      const failure = await B.api(config, "GET", "jobs/" + id + "/failure");
      $("failure-title").textContent = "cell " + failure.cell;
      $("failure-source").textContent = failure.source;
      // nbconvert's ansi2html escapes the text and adds only <span class="ansi-…"> tags.
      $("failure-traceback").innerHTML = failure.traceback_html;
      $("failure").hidden = false;
    } catch (e) {
      $("failure").hidden = true; // no executed notebook (the run never started a cell)
    }
  }

  function show() {
    const finished = B.FINISHED.includes(job.state);
    const badges = B.stateBadge(job);
    badges[0].id = "job-state";
    $("job-state-box").replaceChildren(...badges);
    $("job-reason").textContent = B.reasonText(job);
    const p = job.progress || {};
    const running = job.state === "running";
    $("job-progress").textContent = B.progressText(job) || (job.state === "queued" ? "not started" : "");
    $("job-progress-bar").style.width = p.total ? (100 * p.index / p.total) + "%" : "0%";
    // The cell at work shows as a moving stripe after the cells done (a one-cell run: all of it).
    const atWork = running && p.total && p.index < p.total;
    $("job-progress-running").style.width = atWork ? (100 / p.total) + "%" : "0%";
    $("job-progress-box").setAttribute("aria-valuenow", p.total ? Math.round(100 * p.index / p.total) : 0);
    $("job-elapsed").textContent = job.duration !== null ? "(" + B.duration(job.duration) + ")" : "";
    const current = $("job-current-cell");
    current.textContent = running ? (p.current_cell || "") : "";
    current.hidden = !current.textContent;
    const times = ["submitted " + B.when(job.submitted_at)];
    if (job.started_at) times.push("started " + B.when(job.started_at));
    if (job.finished_at) times.push("ended " + B.when(job.finished_at));
    $("job-times").textContent = times.join(" · ");
    const error = job.error ? job.error.name + ": " + job.error.value + (job.error.cell !== null ? " (cell " + job.error.cell + ")" : "") : "";
    $("job-error").textContent = error;
    $("job-error").hidden = $("job-error-label").hidden = !error;
    if (job.error && job.error.cell !== null && job.has_output && !failureShown) showFailure();
    const live = $("open-live-kernel");
    live.hidden = !job.live_kernel_url;
    live.href = config.prefix + "jobs/" + id + "/live"; // checks the kernel still lives first
    const mine = job.owner === config.user || config.admin;
    $("release").hidden = !(job.live && mine);
    $("cancel").hidden = !(B.ACTIVE.includes(job.state) && mine);
    $("delete").hidden = !(finished && mine);
    for (const [elementId, path] of [["download-output", "/output"], ["view-html", "/output.html"]]) {
      const link = $(elementId);
      link.hidden = !job.has_output;
      link.href = config.api + "jobs/" + id + path;
    }
    $("download-input").href = config.api + "jobs/" + id + "/input";
    $("live-note").textContent = job.live && job.live_until
      ? "The kernel stays live until " + B.when(job.live_until) + "; every variable of the run is there."
      : finished && job.has_output ? "The kernel has ended; the executed notebook is kept." : "";
    showMachine(job.machine);
    const label = B.stateWord(job.state) + (running && p.total ? " " + p.index + "/" + p.total : "");
    B.setTitle(label);
  }

  // An exclusive run: the machine as the service saw it, and what else held it in the window.
  const KINDS = { run: "a run", live_kernel: "a live kernel (kept after its run)" };
  function showMachine(m) {
    $("machine").hidden = !m;
    if (!m) return;
    $("machine-cpus").textContent = m.cpus === "all" ? "all of the machine's CPUs" : "pinned to CPU" + (/[-,]/.test(m.cpus) ? "s " : " ") + m.cpus;
    $("machine-governor").textContent = m.governor === "unknown"
      ? "unknown (this machine does not report a frequency governor)" : m.governor;
    $("machine-load").textContent = m.load.length
      ? m.load.join(", ") + " (1, 5 and 15 minute averages, read when the run started)" : "unknown";
    const items = m.others.map((o) => KINDS[o.kind] + " of " + o.owner + (o.job ? " (job " + o.job + ")" : ""))
      .concat(m.servers_seen.map((s) => "server " + s));
    if (m.servers_seen_more) items.push(m.servers_seen_more + " more servers");
    const window = m.window_end ? "during its run" : "so far";
    $("machine-others").replaceChildren(items.length
      ? B.el("ul", { class: "mb-0 ps-3 text-warning-emphasis" }, ...items.map((t) => B.el("li", { text: t })))
      : B.el("span", { class: "text-success", text: "Nothing else ran on the machine " + window + " (checked against the service's records of runs, live kernels and servers)." }));
  }

  async function refresh() {
    job = await B.api(config, "GET", "jobs/" + id);
    const news = job.owner === config.user ? B.change(before, job) : null;
    if (news) B.tell(news.title, news.body, window.location.href);
    before = { state: job.state, live: job.live };
    show();
    const lines = await B.api(config, "GET", "jobs/" + id + "/logs?after=" + after);
    if (lines.lines.length) {
      log.append(lines.lines.map((l) => l.text + "\n").join(""));
      after = lines.next;
      log.scrollTop = log.scrollHeight;
    }
    done = B.FINISHED.includes(job.state) && !job.live && !job.live_pending;
    if (B.FINISHED.includes(job.state) && !artifactsShown) {
      artifactsShown = true;
      await showArtifacts();
    }
  }

  // Files the run wrote under its job folder, kept with the job (and what was not, and why).
  let artifactsShown = false;
  async function showArtifacts() {
    const listing = await B.api(config, "GET", "jobs/" + id + "/artifacts");
    const rows = listing.artifacts.map((a) => B.el("tr", {},
      B.el("td", {}, B.el("a", { href: config.api + "jobs/" + id + "/artifacts/" + a.path.split("/").map(encodeURIComponent).join("/"), text: a.path })),
      B.el("td", { class: "text-end", text: B.size(a.size) })));
    document.querySelector("#artifacts-table tbody").replaceChildren(...rows);
    const zip = $("artifacts-zip");
    zip.hidden = !listing.artifacts.length;
    zip.href = config.api + "jobs/" + id + "/artifacts.zip";
    $("artifacts-summary").textContent = listing.artifacts.length
      ? listing.artifacts.length + " file(s), " + B.size(listing.kept_bytes) + " of at most " + B.size(listing.cap) + " kept with the job."
      : "This run wrote no files under its job folder.";
    const dropped = $("artifacts-dropped");
    dropped.hidden = !listing.dropped.length;
    dropped.querySelector("ul").replaceChildren(...listing.dropped.map((d) =>
      B.el("li", { text: d.path + " (" + B.size(d.size) + "): " + d.reason })));
    $("artifacts").hidden = false;
  }

  async function act(question, label, method, path) {
    if (!(await B.confirmDialog(question, label, true))) return;
    try {
      await B.api(config, method, path);
      if (method === "DELETE") { window.location.href = config.prefix; return; }
    } catch (e) { $("job-reason").textContent = e.message; }
    refresh();
  }
  $("release").addEventListener("click", () => act(
    "Release the live kernel? Its variables are lost; the executed notebook stays.", "Release kernel", "POST", "jobs/" + id + "/release"));
  $("cancel").addEventListener("click", () => act(
    "Cancel this job?" + (job && job.state !== "queued" ? " Its run stops now." : ""), "Cancel job", "POST", "jobs/" + id + "/cancel"));
  $("delete").addEventListener("click", () => act(
    "Delete this job with its input, executed notebook and output lines?", "Delete job", "DELETE", "jobs/" + id));
  B.notifyButton($("notify-toggle"));

  async function loop() {
    try { await refresh(); } catch (e) { $("job-reason").textContent = e.message; }
    setTimeout(loop, done ? 10000 : 1000);
  }
  loop();
})();
