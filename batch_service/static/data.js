// The Data page: datasets through the service's API; files through tus-js-client (resumable).
(function () {
  "use strict";
  const root = document.getElementById("data-app");
  if (!root || !window.tus) return;
  const config = JSON.parse(root.dataset.config);
  const $ = (id) => document.getElementById(id);
  const message = $("upload-message");
  const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
  let current = [];  // the tus uploads running now

  // The pages' shared helpers (common.js); this page's calls all go to its own API.
  const { el, size } = window.batchhub;
  const api = (method, path, body) => window.batchhub.api(config, method, path, body);
  const xsrf = (window.jhdata && window.jhdata.xsrf_token) || "";  // for tus's own requests

  function seconds(s) {
    if (!isFinite(s)) return "…";
    s = Math.round(s);
    return s >= 3600 ? Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min"
      : s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }
  function say(text, kind) {
    message.textContent = text;
    message.className = kind ? "text-" + kind : "";
  }

  $("data-readers").addEventListener("change", () => {
    $("data-group-box").hidden = $("data-readers").value !== "group";
  });

  // --- uploading -------------------------------------------------------------------
  function chosenFiles() {
    const folder = Array.from($("data-folder").files || []);
    if (folder.length) return folder.map((f) => ({ file: f, path: f.webkitRelativePath.split("/").slice(1).join("/") || f.name }));
    return Array.from($("data-files").files || []).map((f) => ({ file: f, path: f.name }));
  }

  function uploadOne(dataset, item, done, total, stats) {
    return new Promise((resolve, reject) => {
      const upload = new tus.Upload(item.file, {
        endpoint: config.api + "uploads",
        headers: { "X-XSRFToken": xsrf },
        metadata: { dataset: dataset, filename: item.path },
        chunkSize: 64 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        removeFingerprintOnSuccess: true,
        // One file may go to several datasets: the dataset is part of what is resumed.
        fingerprint: (file) => Promise.resolve(["batchhub", config.api, dataset, item.path, file.size, file.lastModified].join("|")),
        onError: (error) => {
          const body = error.originalResponse ? error.originalResponse.getBody() : "";
          let text = error.message;
          try { text = JSON.parse(body).message || text; } catch (e) { /* not JSON */ }
          reject(new Error(text));
        },
        onProgress: (sent) => stats(done + sent, total, item.path),
        onSuccess: () => resolve(),
      });
      current.push(upload);
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) {
          upload.resumeFromPreviousUpload(previous[0]);
          $("upload-stats").dataset.resumed = "1";
          say("Resuming " + item.path + " where it stopped…", "info");
        }
        upload.start();
      });
    });
  }

  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("data-name").value.trim();
    const items = chosenFiles();
    if (!NAME.test(name) || name.includes("..")) { say("Choose a name of lowercase letters, digits, - _ or . (it becomes /data/" + (name || "name") + ").", "danger"); return; }
    if (!items.length) { say("Choose files or a folder to upload.", "danger"); return; }
    const readers = $("data-readers").value;
    try {
      const mine = (await api("GET", "datasets")).datasets.find((d) => d.name === name);
      if (mine && mine.state === "ready") throw new Error("a dataset named " + name + " exists already; pick another name");
      if (!mine) {
        await api("POST", "datasets", {
          name, readers, group: readers === "group" ? $("data-group").value : null,
          description: $("data-description").value,
        });
        refresh();
      }
      const total = items.reduce((n, i) => n + i.file.size, 0);
      const started = Date.now();
      let firstSent = null;
      $("upload-progress").hidden = false;
      $("data-pause").hidden = false;
      $("data-upload").disabled = true;
      const stats = (sent, all, path) => {
        if (firstSent === null) firstSent = sent;
        const elapsed = (Date.now() - started) / 1000;
        const rate = elapsed > 0 ? (sent - firstSent) / elapsed : 0;
        const share = all ? sent / all : 1;
        $("upload-bar").style.width = (100 * share).toFixed(1) + "%";
        $("upload-bar").setAttribute("aria-valuenow", (100 * share).toFixed(0));
        $("upload-stats").textContent = size(sent) + " of " + size(all) + " · " + size(rate) + "/s · " +
          seconds(rate > 0 ? (all - sent) / rate : Infinity) + " left · " + path;
      };
      let done = 0;
      if (!$("upload-stats").dataset.resumed) say("Uploading…");
      for (const item of items) {
        await uploadOne(name, item, done, total, stats);
        done += item.file.size;
      }
      current = [];
      say("Checking and unpacking…");
      const ready = await api("POST", "datasets/" + encodeURIComponent(name) + "/complete");
      say("Dataset " + ready.name + " is ready at " + ready.path + " (" + size(ready.size) + ", sha256 " + ready.sha256.slice(0, 12) + "…).", "success");
    } catch (e) {
      say(e.message, "danger");
    } finally {
      $("data-upload").disabled = false;
      $("data-pause").hidden = true;
      refresh();
    }
  });

  $("data-pause").addEventListener("click", () => {
    for (const upload of current) upload.abort();
    current = [];
    $("data-upload").disabled = false;
    say("Paused. Press Upload with the same name and files to go on.", "info");
  });

  // --- the list ----------------------------------------------------------------------
  function readersText(d) {
    return d.readers === "group" ? "group " + d.group : d.readers === "everyone" ? "everyone" : "owner only";
  }

  function row(d) {
    const mine = d.owner === config.user;
    const actions = el("td", {});
    if (mine || config.admin) {
      actions.append(el("button", {
        class: "btn btn-sm btn-outline-danger", id: "delete-" + d.name, text: d.state === "ready" ? "Delete" : "Discard",
        onclick: async () => {
          if (!confirm("Delete dataset " + d.name + " and its files?")) return;
          try { await api("DELETE", "datasets/" + encodeURIComponent(d.name)); } catch (e) { say(e.message, "danger"); }
          refresh();
        },
      }));
    }
    let state = d.state;
    if (d.state !== "ready" && d.uploads) {
      const got = d.uploads.reduce((n, u) => n + u.offset, 0);
      state = "uploading (" + size(got) + " so far)";
    }
    return el("tr", { id: "dataset-" + d.name, "data-state": d.state },
      el("td", {}, el("code", { text: d.path })),
      el("td", { text: state }),
      el("td", { class: "text-end", text: size(d.size) }),
      el("td", { class: "text-end", text: d.state === "ready" ? String(d.files) : "" }),
      el("td", { text: d.owner }),
      el("td", { text: readersText(d) }),
      el("td", { text: new Date(d.created_at * 1000).toLocaleString() }),
      el("td", {}, d.sha256 ? el("code", { title: d.sha256, text: d.sha256.slice(0, 12) + "…" }) : null),
      actions);
  }

  async function refresh() {
    try {
      const [list, quotas] = await Promise.all([api("GET", "datasets"), api("GET", "quotas")]);
      $("datasets-table").querySelector("tbody").replaceChildren(...list.datasets.map(row));
      $("datasets-empty").hidden = list.datasets.length > 0;
      const parts = ["You use " + size(quotas.user.used) + " of your " + size(quotas.user.quota) + "."];
      for (const g of quotas.groups) parts.push("Group " + g.name + ": " + size(g.used) + " of " + size(g.quota) + ".");
      $("quota").textContent = parts.join(" ");
      if (quotas.settings && $("quota-settings")) {
        $("quota-settings").textContent = quotas.settings.length
          ? "Set here: " + quotas.settings.map((q) => q.kind + " " + q.name + " " + size(q.bytes)).join(", ")
          : "Everyone has the values file's quotas (" + size(quotas.defaults.user) + " per user, " + size(quotas.defaults.group) + " per group).";
      }
    } catch (e) { say(e.message, "danger"); }
  }

  const quotaForm = $("quota-form");
  if (quotaForm) quotaForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const gib = $("quota-gib").value.trim();
    try {
      await api("PUT", "quotas", {
        kind: $("quota-kind").value, name: $("quota-name").value.trim(),
        bytes: gib === "" ? null : Math.round(Number(gib) * 2 ** 30),
      });
      say("Quota saved.", "success");
    } catch (e) { say(e.message, "danger"); }
    refresh();
  });

  refresh();
  setInterval(refresh, 5000);
})();
