// Runs list: rows of unfinished runs follow their run rows through one event stream.
const table = document.getElementById("runs");
const ids = table && table.dataset.live;
if (ids) {
  const source = new EventSource("/runs/live?ids=" + ids);
  source.addEventListener("runs", (event) => {
    for (const run of JSON.parse(event.data)) {
      const row = table.querySelector(`tr[data-run="${run.id}"]`);
      if (row) window.opsjobs.updateRun(row, run);
    }
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) source.close(); };
}
