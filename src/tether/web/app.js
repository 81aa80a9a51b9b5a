// The studio page: wires the stream, the parameter controls and the live link status.
import { api, watchStatus } from "./api.js";
import { renderControls } from "./controls.js";
import { setupDoctor } from "./doctor.js";
import { renderStatus } from "./status.js";
import { Stream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const el = {
  badge: $("badge"), quality: $("quality"), worker: $("worker"), banner: $("banner"), bannerText: $("banner-text"),
  retry: $("retry"), simulateDrop: $("simulate-drop"), overlay: $("overlay"),
  paramsIndicator: $("params-indicator"), stats: $("stats"), timeline: $("timeline"),
  pipelineError: $("pipeline-error"),
};

let pipelines = [];
let defaultPipeline = "passthrough";
let values = {};
let lastStatus = null;
// What only this page knows (see status.js).
const view = {
  streaming: false, seenLive: false, framesBase: null, everConnected: false, paramsRejected: null,
};

function render() {
  if (lastStatus) renderStatus(el, lastStatus, lastStatus.reconnect_tries || 4, view);
}

const stream = new Stream($("input"), $("output"), async (state) => {
  view.streaming = stream.running;
  let text = state === "stopped" ? "" : `stream ${state}`;
  if (state === "closed" || state === "failed") {
    // e.g. another client took over the studio's one stream
    const reason = (await api.status().catch(() => ({}))).previous_stream_reason;
    text = `stream ended${reason ? `: ${reason}` : ""}`;
  }
  $("stream-state").textContent = text;
  $("start").disabled = stream.running && state !== "failed" && state !== "closed";
  $("stop").disabled = !stream.running;
});

function showError(message) {
  $("stream-state").textContent = message;
}

function currentPipeline() {
  return pipelines.find((p) => p.name === $("pipeline").value);
}

async function setParameters(changes) {
  try {
    await api.setParameters(changes);
    view.paramsRejected = null;
  } catch (err) {
    view.paramsRejected = `rejected: ${err.message}`; // names the field, e.g. "prompt: …"
  }
  render();
}

function drawControls() {
  renderControls($("param-controls"), currentPipeline(), values, async (name, value) => {
    values[name] = value;
    await setParameters({ [name]: value });
  });
}

async function loadPipelines() {
  const data = await api.pipelines();
  defaultPipeline = data.default || defaultPipeline;
  const select = $("pipeline");
  if (!data.pipelines.length) {
    // Pipelines come from the worker: say so instead of an empty list.
    const none = new Option("no worker: pipelines appear once connected", "", true, true);
    none.disabled = true;
    select.replaceChildren(none);
    return;
  }
  pipelines = data.pipelines;
  const chosen = values.pipeline || select.value || defaultPipeline;
  select.replaceChildren(...pipelines.map((p) => new Option(p.name, p.name)));
  select.value = pipelines.some((p) => p.name === chosen) ? chosen : pipelines[0].name;
  drawControls();
}

async function loadParameters() {
  const data = await api.parameters();
  values = { ...data.parameters };
  if (values.pipeline) $("pipeline").value = values.pipeline;
  drawControls();
}

$("source").onchange = () => { $("file").hidden = $("source").value !== "file"; };
$("start").onclick = async () => {
  $("start").disabled = true;
  try {
    const initial = { ...values, pipeline: $("pipeline").value || defaultPipeline };
    view.streaming = true;
    view.seenLive = false;
    view.framesBase = null;
    render();
    await stream.start($("source").value, $("file").files[0], initial);
    $("stop").disabled = false;
  } catch (err) {
    showError(`Could not start: ${err.message}`);
    await stream.close();
    $("start").disabled = false;
  }
};
$("stop").onclick = async () => {
  await stream.stop().catch((err) => showError(err.message));
  view.streaming = false;
  view.paramsRejected = null;
  values = {};
  drawControls();
  $("start").disabled = false;
};
$("pipeline").onchange = async () => {
  values.pipeline = $("pipeline").value;
  drawControls();
  await setParameters({ pipeline: values.pipeline });
};
$("connect-form").onsubmit = async (event) => {
  event.preventDefault();
  const token = $("worker-token");
  const body = { worker_url: $("worker-url").value.trim() };
  if (token.value) body.token = token.value;
  token.value = ""; // sent once, never kept or shown back
  try {
    await api.connect(body);
  } catch (err) {
    showError(`Could not connect: ${err.message}`);
  }
};
$("disconnect").onclick = () => api.disconnect().catch((err) => showError(err.message));
$("retry").onclick = () => api.reconnect().catch((err) => showError(err.message));
$("simulate-drop").onclick = () => api.simulateDrop().catch((err) => showError(err.message));

function followStream(status) {
  if (!stream.running || !stream.sessionId) return;
  // This tab's new stream takes over once it connects; until then another one runs.
  if (status.incoming_stream_id === stream.sessionId) return;
  if (status.stream_id !== stream.sessionId) {
    // Another tab or client took over the studio's one stream (or stopped it).
    const why = status.stream_id ? "taken over by another tab or client"
      : status.previous_stream_reason || "ended";
    stream.close();
    view.streaming = false;
    $("stream-state").textContent = `This tab's stream was ${why}. Press Start to stream here.`;
    $("start").disabled = false;
    $("stop").disabled = true;
  } else if (view.framesBase === null) {
    view.framesBase = status.stats?.frames_received ?? 0;
  } else if (status.stats?.frames_received > view.framesBase && !status.fallback_active) {
    view.seenLive = true; // this stream's processed frames are on screen
  }
}

watchStatus((status) => {
  const wasConnected = lastStatus?.state === "connected";
  lastStatus = status;
  window.tetherStatus = status; // for tests and the curious
  if (status.state === "connected" || (status.stats?.reconnects ?? 0) > 0) view.everConnected = true;
  if (status.state === "idle" || status.state === "closing") view.everConnected = false;
  followStream(status);
  const url = $("worker-url");
  if (document.activeElement !== url && status.worker_url) url.value = status.worker_url;
  $("disconnect").disabled = status.state === "idle";
  render();
  if (status.state === "connected" && (!wasConnected || !pipelines.length)) {
    loadPipelines().catch(() => {});
  }
});

setupDoctor({
  button: $("doctor-run"), verdict: $("doctor-verdict"), panel: $("doctor-panel"),
  list: $("doctor-checks"), pipeline: () => $("pipeline").value,
});
loadParameters().then(loadPipelines).catch(() => {});
