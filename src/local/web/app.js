// deploy local's page: times in the viewer's zone, a running execution refreshed in place,
// Stop and Redrive through the API calls the SDKs make. Built into the binary.
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

// Stop (StopExecution) or Redrive (RedriveExecution), through the API call the SDKs make.
async function act(button, operation, body) {
  button.disabled = true;
  const r = await fetch("/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": "AWSStepFunctions." + operation,
    },
    body: JSON.stringify(body),
  });
  if (!r.ok) {
    button.disabled = false;
    button.textContent = operation + " failed: " + (await r.json()).message;
  }
  await refresh();
  follow();
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
  const stop = root.querySelector("#stop");
  if (stop) {
    const why = { error: "Stopped", cause: "stopped from deploy local's page" };
    stop.addEventListener("click", () => act(stop, "StopExecution", { executionArn: stop.dataset.arn, ...why }));
  }
  const redrive = root.querySelector("#redrive");
  if (redrive) redrive.addEventListener("click", () => act(redrive, "RedriveExecution", { executionArn: redrive.dataset.arn }));
}

// While the execution runs, its part of the page is refreshed every 500 ms.
let following = false;
function follow() {
  const live = document.getElementById("live");
  if (!live || following) return;
  following = true;
  const tick = async () => {
    if (live.dataset.status !== "RUNNING") {
      following = false;
      return;
    }
    await refresh();
    setTimeout(tick, 500);
  };
  setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  wire(document);
  follow();
});
