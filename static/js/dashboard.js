// Draws the dashboard's charts from the data the page carries (json_script "dashboard-charts").
// Every number is computed on the server; this file only chooses colours and axes.
(function () {
  "use strict";
  const source = document.getElementById("dashboard-charts");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const palette = ["#0d6efd", "#adb5bd", "#fd7e14", "#6f42c1", "#d63384", "#20c997", "#dc3545", "#198754"];
  const percent = (value) => `${value}%`;

  for (const spec of JSON.parse(source.textContent)) {
    const canvas = document.getElementById(`chart-${spec.key}`);
    if (!canvas) {
      continue;
    }
    const line = spec.kind === "line";
    const horizontal = spec.kind === "hbar";
    const datasets = spec.datasets.map((dataset, index) => ({
      ...dataset,
      backgroundColor: palette[index % palette.length],
      borderColor: palette[index % palette.length],
      borderWidth: line ? 2 : 0,
      pointRadius: line ? 1.5 : 0,
    }));
    const valueAxis = {
      beginAtZero: true,
      stacked: spec.stacked,
      ticks: spec.percent ? { callback: percent } : { precision: 0 },
      ...(spec.percent ? { suggestedMax: 100 } : {}),
    };
    const labelAxis = {
      stacked: spec.stacked,
      ticks: horizontal
        ? { callback: function (value) { const text = this.getLabelForValue(value); return text.length > 48 ? `${text.slice(0, 47)}…` : text; } }
        : { maxRotation: 0, autoSkip: true },
    };
    canvas.chart = new Chart(canvas, {
      type: line ? "line" : "bar",
      data: { labels: spec.labels, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: spec.percent
            ? { callbacks: { label: (item) => `${item.dataset.label}: ${item.formattedValue}%` } }
            : {},
        },
      },
    });
  }
})();
