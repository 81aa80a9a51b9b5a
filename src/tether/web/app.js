// The studio page: wires the stream, the parameter controls and the live link status.
import { api, watchStatus } from "./api.js";
import { renderControls } from "./controls.js";
import { renderStatus } from "./status.js";
import { Stream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const el = {
  badge: $("badge"), quality: $("quality"), worker: $("worker"), banner: $("banner"), bannerText: $("banner-text"),
  retry: $("retry"), simulateDrop: $("simulate-drop"), overlay: $("overlay"),
  paramsIndicator: $("params-indicator"), stats: $("stats"), timeline: $("timeline"),
};

let pipelines = [];
let values = {};
let lastStatus = null;

const stream = new Stream($("input"), $("output"), async (state) => {
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

function drawControls() {
  renderControls($("param-controls"), currentPipeline(), values, async (name, value) => {
    values[name] = value;
    try {
      await api.setParameters({ [name]: value });
    } catch (err) {
      showError(err.message);
    }
  });
}

async function loadPipelines() {
  const data = await api.pipelines();
  if (!data.pipelines.length) return;
  pipelines = data.pipelines;
  const select = $("pipeline");
  const chosen = values.pipeline || select.value || "passthrough";
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
    const initial = { ...values, pipeline: $("pipeline").value || "passthrough" };
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
  values = {};
  drawControls();
  $("start").disabled = false;
};
$("pipeline").onchange = async () => {
  values.pipeline = $("pipeline").value;
  drawControls();
  await api.setParameters({ pipeline: values.pipeline }).catch((err) => showError(err.message));
};
$("retry").onclick = () => api.reconnect().catch((err) => showError(err.message));
$("simulate-drop").onclick = () => api.simulateDrop().catch((err) => showError(err.message));

watchStatus((status) => {
  const wasConnected = lastStatus?.state === "connected";
  lastStatus = status;
  window.tetherStatus = status; // for tests and the curious
  renderStatus(el, status, status.reconnect_tries || 4);
  if (status.state === "connected" && (!wasConnected || !pipelines.length)) {
    loadPipelines().catch(() => {});
  }
});

loadParameters().then(loadPipelines).catch(() => {});
