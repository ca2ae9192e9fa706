// The sweep page's plot (Chart.js, served by the service from node_modules): a recorded value
// against one parameter (a scatter), or against two (each point placed by both parameters and
// coloured by the value, squares that tile a grid like a heatmap). The person picks the value
// and parameters; only numbers (and yes/no, as 1/0) are drawn, and the note says how many
// points were left out.
// The chart's point count is kept in data-points on the canvas (and data-plot-points on the
// page), so what is drawn can be read back.
(function () {
  "use strict";
  // viridis: readable in both themes and by people who do not tell red from green.
  const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  const STEPS = 9; // colour steps of a two-parameter plot, low to high

  function rgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }
  function colour(t) {
    const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(x));
    const [a, b] = [rgb(RAMP[i]), rgb(RAMP[i + 1])];
    const f = x - i;
    return "rgb(" + a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(",") + ")";
  }
  const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
  // A yes or no a run recorded (an exploration's "stable") is drawn as 1 or 0.
  const asNumber = (v) => (typeof v === "boolean" ? Number(v) : v);
  const fmt = (v) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString());
  const shown = (p) => (typeof p.raw === "boolean" ? String(p.raw) : fmt(p.v));

  function options(select, names, keep, none) {
    const wanted = (none ? [""] : []).concat(names);
    const have = [...select.options].map((o) => o.value);
    if (have.join("\n") !== wanted.join("\n")) {
      select.replaceChildren(...wanted.map((n) => {
        const option = document.createElement("option");
        option.value = n;
        option.textContent = n || none;
        return option;
      }));
    }
    select.value = wanted.includes(keep) ? keep : wanted[0] || "";
  }

  window.batchhubSweepPlot = function (root) {
    const canvas = document.getElementById("plot");
    const valueSelect = document.getElementById("plot-value");
    const xSelect = document.getElementById("plot-x");
    const ySelect = document.getElementById("plot-y");
    const note = document.getElementById("plot-note");
    const scale = document.getElementById("plot-scale");
    let chart = null;
    let rows = [];
    let chosen = { value: null, x: null, y: null };

    function themeColours() {
      const style = getComputedStyle(document.body);
      return { text: style.color, grid: style.getPropertyValue("--bs-border-color").trim() || "#ccc" };
    }

    function points(value, x, y) {
      const drawn = [];
      let left = 0;
      for (const r of rows) {
        const raw = r.recorded[value], v = asNumber(raw), px = r.parameters[x], py = y ? r.parameters[y] : v;
        if (isNumber(v) && isNumber(px) && isNumber(py)) drawn.push({ x: px, y: py, v, raw, job: r.job_id });
        else if (r.state === "succeeded" || v !== undefined) left += 1;
      }
      return { drawn, left };
    }

    function draw() {
      const { value, x, y } = chosen;
      if (!value || !x) {
        if (chart) { chart.destroy(); chart = null; }
        canvas.hidden = true;
        canvas.parentElement.hidden = true; // no empty box the height of a chart
        scale.hidden = true;
        document.getElementById("plot-choices").hidden = true; // nothing to choose from yet
        canvas.dataset.points = "0";
        root.dataset.plotPoints = "0";
        note.textContent = rows.some((r) => Object.keys(r.recorded).length)
          ? "No recorded value is a number yet, or no parameter is a number: nothing to plot."
          : "Values appear here once runs record them, e.g. with scrapbook's sb.glue(\"loss\", loss) in the notebook.";
        return;
      }
      canvas.hidden = false;
      canvas.parentElement.hidden = false;
      document.getElementById("plot-choices").hidden = false;
      const { drawn, left } = points(value, x, y);
      const yesNo = drawn.length > 0 && drawn.every((p) => typeof p.raw === "boolean");
      // Yes and no keep their colours however many of each there are.
      const low = yesNo ? 0 : Math.min(...drawn.map((p) => p.v)), high = yesNo ? 1 : Math.max(...drawn.map((p) => p.v));
      const span = high - low || 1;
      const theme = themeColours();
      const radius = drawn.length > 2000 ? 3 : drawn.length > 200 ? 5 : 9;
      const label = y ? value + " by " + x + " and " + y : value;
      const style = { pointStyle: y ? "rect" : "circle", pointRadius: radius, pointHoverRadius: radius + 2 };
      // Two parameters: one dataset per colour step (a colour per point would make Chart.js
      // work out every point's options apart, which a thousand points notice).
      const datasets = y
        ? Array.from({ length: STEPS }, (_, i) => ({ ...style, label: label + " " + (i + 1) + "/" + STEPS, data: [],
          backgroundColor: colour(i / (STEPS - 1)), borderColor: "transparent" }))
        : [{ ...style, label, data: drawn, backgroundColor: "rgba(44, 123, 182, 0.75)", borderColor: "#2c7bb6" }];
      if (y) for (const p of drawn) datasets[Math.round(((p.v - low) / span) * (STEPS - 1))].data.push(p);
      // Whole-number parameters get whole-number ticks; some room keeps edge squares whole.
      const axis = (title, values) => ({ type: "linear", grace: "6%", title: { display: true, text: title, color: theme.text },
        ticks: { color: theme.text, precision: values.every(Number.isInteger) ? 0 : undefined }, grid: { color: theme.grid } });
      const config = {
        type: "scatter",
        data: { datasets: datasets.filter((d) => d.data.length) },
        options: {
          animation: false,
          // The points are already {x, y} numbers: Chart.js need not parse or sort them.
          parsing: false,
          normalized: true,
          maintainAspectRatio: false,
          layout: { padding: 8 },
          scales: { x: axis(x, drawn.map((p) => p.x)), y: axis(y || value, drawn.map((p) => p.y)) },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: (item) => {
              const p = item.raw;
              return x + " = " + fmt(p.x) + (y ? ", " + y + " = " + fmt(p.y) : "") + ": " + value + " = " + shown(p) + " (job " + p.job + ")";
            } } },
          },
        },
      };
      if (chart && chart.config.type === "scatter") {
        chart.data = config.data;
        chart.options = config.options;
        chart.update("none");
      } else {
        if (chart) chart.destroy();
        chart = new window.Chart(canvas, config);
      }
      canvas.dataset.points = String(drawn.length);
      root.dataset.plotPoints = String(drawn.length);
      canvas.setAttribute("aria-label", label + ": " + drawn.length + " points");
      scale.hidden = !y || !drawn.length;
      if (y && drawn.length) {
        document.getElementById("plot-scale-low").textContent = value + " " + (yesNo ? "false" : fmt(low));
        document.getElementById("plot-scale-high").textContent = yesNo ? "true" : fmt(high);
        const stops = Array.from({ length: STEPS }, (_, i) => colour(i / (STEPS - 1)) + " " + (100 * i / STEPS) + "% " + (100 * (i + 1) / STEPS) + "%");
        scale.querySelector(".bh-scale-bar").style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
      }
      note.textContent = window.batchhub.counted(drawn.length, "point") + " drawn"
        + (y ? "; the colour is " + value + (yesNo ? " (dark: false, yellow: true)" : " (dark: low, yellow: high)") : "")
        + (left ? "; " + left + " without a number for " + value + " left out" : "") + ".";
    }

    function choose() {
      chosen = { value: valueSelect.value || null, x: xSelect.value || null, y: ySelect.value || null };
      if (chosen.y === chosen.x) chosen.y = null;
      draw();
    }
    for (const select of [valueSelect, xSelect, ySelect]) select.addEventListener("change", choose);

    return {
      update(newRows) {
        rows = newRows;
        const numeric = (get, as) => [...new Set(rows.flatMap((r) => Object.entries(get(r)).filter(([, v]) => isNumber(as(v))).map(([k]) => k)))].sort();
        const values = numeric((r) => r.recorded, asNumber);
        const params = numeric((r) => r.parameters, (v) => v);
        options(valueSelect, values, chosen.value);
        options(xSelect, params, chosen.x);
        const others = params.filter((p) => p !== xSelect.value);
        // Two parameters by default when there are two: the grid's whole picture at once.
        const keepY = chosen.value === null ? others[0] || "" : chosen.y || "";
        options(ySelect, others, keepY, "none: the value goes up the y axis");
        choose();
      },
    };
  };
})();
