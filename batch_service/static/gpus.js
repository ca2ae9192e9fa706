// The GPU view: each GPU and what holds it, refreshed every few seconds; admins can end a holder.
(function () {
  "use strict";
  const { el, api, when, duration, size, confirmDialog } = window.batchhub;
  const app = document.getElementById("gpus-app");
  const config = JSON.parse(app.dataset.config);
  const body = document.querySelector("#gpu-table tbody");
  const message = document.getElementById("gpu-message");
  const KIND_WORDS = {
    "run": "batch run",
    "live kernel": "live kernel",
    "interactive server": "interactive server",
    "stopping": "stopping",
    "idle server": "idle batch server (kept for its owner's next run)",
  };

  function who(holder) {
    const kind = KIND_WORDS[holder.kind] || holder.kind;
    if (!holder.owner) return el("span", {}, kind + " of another user");
    const link = holder.job_id
      ? el("a", { href: config.prefix + "jobs/" + holder.job_id, text: holder.job_id })
      : el("code", { text: holder.server });
    return el("span", {}, kind + " of ", el("strong", { text: holder.owner }), holder.mine ? " (you) " : " ", link);
  }

  function use(gpu) {
    if (gpu.utilization === null || gpu.utilization === undefined) return el("span", { class: "text-muted", text: "not reported" });
    const memory = gpu.memory_total ? ", " + size(gpu.memory_used) + " of " + size(gpu.memory_total) : "";
    return el("span", {}, Math.round(gpu.utilization) + "% busy" + memory);
  }

  function until(holder) {
    if (!holder.until) return holder.kind === "interactive server" ? "until stopped" : "";
    const left = holder.until - Date.now() / 1000;
    return when(holder.until) + (left > 0 ? " (in " + duration(left) + ")" : "");
  }

  function endButton(holder) {
    const words = { "run": "Cancel run", "live kernel": "Release kernel" }[holder.kind] || "Stop server";
    return el("button", {
      class: "btn btn-sm btn-outline-danger", type: "button", text: words,
      "aria-label": words + " of " + holder.owner,
      onclick: async () => {
        const ok = await confirmDialog(words + " of " + holder.owner + "? Its GPUs go to whoever waits next.", words, true);
        if (!ok) return;
        try {
          const done = await api(config, "POST", "gpus/end", { owner: holder.owner, server: holder.server });
          message.textContent = "Done: " + done.ended + " (" + holder.owner + ").";
          message.className = "alert alert-success";
          refresh();
        } catch (e) {
          message.textContent = e.message;
          message.className = "alert alert-danger";
        }
      },
    });
  }

  // A cell that reads as a labelled field when the table becomes cards on a phone.
  function cell(label, ...content) {
    const filled = content.filter((c) => c !== null && c !== undefined && c !== "");
    return el("td", { "data-label": label, class: filled.length ? null : "bh-empty" }, el("div", { class: "bh-cell" }, ...filled));
  }

  function cells(title, holder, gpu) {
    const list = [
      cell("GPU", ...title),
      cell("Held by", holder ? who(holder) : el("span", { class: "badge text-bg-success", text: "free" })),
      cell("Since", holder ? when(holder.since) : ""),
      cell("Until", holder ? until(holder) : ""),
      cell("Use", gpu ? use(gpu) : ""),
    ];
    if (config.admin) {
      const td = cell("", holder && holder.owner ? endButton(holder) : "");
      td.classList.add("text-end");
      list.push(td);
    }
    return el("tr", {}, ...list);
  }

  function row(gpu) {
    const title = [el("strong", { text: "#" + gpu.index + " " + gpu.type }), el("div", { class: "small text-muted text-break", text: gpu.uuid })];
    return cells(title, gpu.holder, gpu);
  }

  function summary(types) {
    const box = document.getElementById("gpu-types");
    box.replaceChildren(...types.map((t) => el("div", { class: "card" }, el("div", { class: "card-body py-2 px-3" },
      el("div", { class: "fw-semibold", text: t.type }),
      el("div", { class: "small", text: t.free + " free of " + t.total + (t.held ? " · " + t.held + " held" : "") })))));
    if (!types.length) box.replaceChildren(el("p", { class: "text-muted", text: "This machine has no GPUs the batch service knows of." }));
  }

  async function refresh() {
    try {
      const view = await api(config, "GET", "gpus");
      summary(view.types);
      if (view.gpus.length) body.replaceChildren(...view.gpus.map(row));
      else {
        // Kubernetes: no device list, so one row per holder.
        body.replaceChildren(...view.holders.map((h) => cells([el("strong", { text: h.count + " × " + (h.gpu_type || "GPU") })], h, null)));
      }
      document.getElementById("gpu-as-of").textContent = view.as_of ? "As of " + new Date(view.as_of * 1000).toLocaleTimeString() + "; refreshes by itself." : "";
    } catch (e) {
      message.textContent = "Could not load the GPUs: " + e.message;
      message.className = "alert alert-danger";
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
