// deploy local's page: times in the viewer's zone, a running execution refreshed in place,
// and Stop through the API call the SDKs make (StopExecution). Built into the binary.
"use strict";

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) {
      t.textContent = d.toLocaleString();
      t.title = t.getAttribute("datetime");
    }
  }
}

async function stop(button) {
  button.disabled = true;
  const r = await fetch("/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": "AWSStepFunctions.StopExecution",
    },
    body: JSON.stringify({ executionArn: button.dataset.arn, error: "Stopped", cause: "stopped from deploy local's page" }),
  });
  if (!r.ok) {
    button.disabled = false;
    button.textContent = "Stop failed: " + (await r.json()).message;
  }
  refresh();
}

async function refresh() {
  const live = document.getElementById("live");
  if (!live) return;
  const r = await fetch(location.pathname + "?part=live", { cache: "no-store" });
  if (r.ok) {
    live.innerHTML = await r.text();
    const status = live.querySelector(".status .badge");
    live.dataset.status = status ? status.textContent : "";
    wire(live);
  }
}

function wire(root) {
  localTimes(root);
  const button = root.querySelector("#stop");
  if (button) button.addEventListener("click", () => stop(button));
}

document.addEventListener("DOMContentLoaded", () => {
  wire(document);
  const live = document.getElementById("live");
  if (!live) return;
  const tick = async () => {
    if (live.dataset.status !== "RUNNING") return;
    await refresh();
    setTimeout(tick, 500);
  };
  setTimeout(tick, 500);
});
