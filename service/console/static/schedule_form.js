// Schedule form: ask the server for the next fires of what is being typed.
const form = document.getElementById("schedule-form");
const preview = document.getElementById("preview");
const specFields = ["schedule_type", "interval_minutes", "time_of_day", "day_of_month",
  "cron_expression", "timezone", "start_at", "end_at", "weekdays"];
let timer = null;
async function refresh() {
  const data = new FormData(form);
  const query = new URLSearchParams();
  for (const [name, value] of data) if (specFields.includes(name) && value) query.append(name, value);
  const response = await fetch(`/schedules/preview?${query}`);
  if (response.ok) preview.innerHTML = await response.text();
}
form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(refresh, 50); });
