// Every page: forms marked data-confirm ask before they submit (cancel, revoke, delete).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Shared by the live pages: show a run's status, outcome and progress in place.
window.opsjobs = {
  badge(cell, kind, value) {
    const badge = cell.querySelector(`[data-${kind}]`);
    if (!badge || !value) return;
    badge.className = `badge ${kind}-${value}`;
    badge.textContent = value;
  },
  progress(bar, percent, message) {
    if (!bar || percent === null || percent === undefined) return;
    const rounded = Math.round(percent * 10) / 10;
    bar.setAttribute("aria-valuenow", String(rounded));
    bar.querySelector("progress").value = percent;
    bar.querySelector(".value").textContent = `${rounded} %`;
    if (message !== undefined) bar.setAttribute("aria-valuetext", `${rounded} % ${message || ""}`.trim());
  },
  updateRun(row, run) {
    this.badge(row.querySelector(".status"), "status", run.status);
    this.badge(row.querySelector(".outcome"), "outcome", run.outcome);
    this.progress(row.querySelector("[role=progressbar]"), run.percent, run.message);
  },
};
