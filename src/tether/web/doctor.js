// "Test connection": runs the studio's doctor (the same checks as `tether doctor`)
// against its worker and shows each check in words, with its numbers, as it finishes.
import { call } from "./api.js";

const POLL_MS = 400;
const WORDS = { ok: "ok", warn: "warning", fail: "failed", skipped: "skipped" };
const LABELS = {
  reach: "Reach (name and TCP)", tls: "TLS", signaling: "Signaling", ice: "ICE (media path)",
  media: "Media test", pipeline: "Pipeline",
};

function item(check) {
  const li = document.createElement("li");
  li.dataset.status = check.status;
  li.dataset.check = check.name;
  const head = document.createElement("strong");
  head.textContent = `${LABELS[check.name] || check.name}: ${WORDS[check.status] || check.status}`;
  const detail = document.createElement("span");
  detail.textContent = ` ${check.detail}`;
  li.append(head, detail);
  if (check.fix) {
    const fix = document.createElement("div");
    fix.className = "fix";
    fix.textContent = `Fix: ${check.fix}`;
    li.append(fix);
  }
  return li;
}

function show(el, state) {
  el.list.replaceChildren(...state.checks.map(item));
  if (state.running) {
    const now = document.createElement("li");
    now.dataset.status = "running";
    now.textContent = `${LABELS[state.current] || "Starting"}: testing…`;
    el.list.append(now);
    const done = state.checks.length;
    el.verdict.dataset.status = "running";
    el.verdict.textContent = `Testing the connection (${done} of ${state.stages.length} checks done)…`;
  } else if (state.result) {
    el.verdict.dataset.status = state.result.status;
    el.verdict.textContent = state.result.verdict;
  } else if (state.error) {
    el.verdict.dataset.status = "fail";
    el.verdict.textContent = state.error;
  }
  el.button.disabled = state.running;
}

export function setupDoctor(el) {
  let timer = null;
  async function poll() {
    try {
      const state = await call("GET", "/api/v1/doctor");
      show(el, state);
      timer = state.running ? setTimeout(poll, POLL_MS) : null;
    } catch (err) {
      el.verdict.textContent = `Could not read the test's progress: ${err.message}`;
      el.button.disabled = false;
      timer = null;
    }
  }
  el.button.onclick = async () => {
    el.button.disabled = true;
    el.panel.hidden = false;
    el.verdict.dataset.status = "running";
    el.verdict.textContent = "Testing the connection…";
    el.list.replaceChildren();
    try {
      const pipeline = el.pipeline();
      show(el, await call("POST", "/api/v1/doctor", pipeline ? { pipeline } : {}));
    } catch (err) {
      el.verdict.dataset.status = "fail";
      el.verdict.textContent = `Could not start the test: ${err.message}`;
    }
    if (!timer) timer = setTimeout(poll, POLL_MS);
  };
}
