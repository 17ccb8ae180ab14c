// One run: follow its event stream; when it ends, swap in the finished panels.
const panels = document.getElementById("run-panels");
if (panels && panels.dataset.finished !== "true") {
  const runId = panels.dataset.run;
  const source = new EventSource(`/runs/${runId}/events`);
  source.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    window.opsjobs.progress(document.getElementById("run-progress"), data.percent, data.message);
    if (data.message) document.getElementById("run-message").textContent = data.message;
  });
  source.addEventListener("target_finished", (event) => {
    const data = JSON.parse(event.data);
    const row = document.querySelector(`#targets tr[data-target="${CSS.escape(data.key)}"]`);
    if (row) window.opsjobs.updateRun(row, { status: data.status, outcome: data.outcome });
  });
  source.addEventListener("log", (event) => {
    const data = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = `${data.level} ${data.target ? `[${data.target}] ` : ""}${data.message}`;
    document.getElementById("run-log").append(item);
  });
  source.addEventListener("retry_scheduled", (event) => {
    const data = JSON.parse(event.data);
    const due = new Date(data.retry_at).toLocaleTimeString();
    window.opsjobs.badge(document.getElementById("run-status"), "status", "pending");
    document.getElementById("run-message").textContent =
      `attempt ${data.attempt} of ${data.max_attempts} ${data.failure}; next attempt at ${due}`;
  });
  source.addEventListener("state", async (event) => {
    const data = JSON.parse(event.data);
    window.opsjobs.badge(document.getElementById("run-status"), "status", data.status);
    if (!["completed", "failed", "cancelled", "skipped", "deleted"].includes(data.status)) return;
    source.close();
    const query = new URLSearchParams(location.search);
    query.set("panels", "true");
    const response = await fetch(`/runs/${runId}?${query}`);
    if (response.ok) {
      panels.innerHTML = await response.text();
      panels.dataset.finished = "true";
    }
  });
}
