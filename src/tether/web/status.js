// Renders the link state: badge, banner with countdown, fallback overlay, stats, timeline.
// `s` is a CloudStatus: cloud-status.schema.json lists its fields (a unit test holds this file to it).
const LABELS = {
  connected: "connected", connecting: "connecting", reconnecting: "reconnecting",
  failed: "failed", idle: "off", closing: "off",
};
const FALLBACK_TEXT = {
  hold: "Worker link down: showing the last processed frame",
  passthrough: "Worker link down: showing your raw input (unprocessed)",
  black: "Worker link down: showing black",
};

const num = (v) => typeof v === "number" && Number.isFinite(v);

// What the pane shows while the worker's model loads (the link itself is fine).
const SHOWING = {
  hold: "showing the last processed frame meanwhile",
  passthrough: "showing your raw input (unprocessed) meanwhile",
  black: "showing black meanwhile",
};

// The worker's pipeline in words: "loading sd-turbo: warming up, 40 %, 3 s (gray runs
// meanwhile)" (as CloudStatus's PipelineStatus.words says it).
export function pipelineWords(p) {
  if (!p) return "–";
  if (p.state === "loading") {
    const took = num(p.elapsed_s) ? `${Math.round(p.elapsed_s)} s` : "just begun";
    const done = num(p.progress) ? `${Math.round(p.progress * 100)} %, ` : "";
    const meanwhile = p.running ? ` (${p.running} runs meanwhile)` : "";
    return `loading ${p.name}: ${p.stage ? `${p.stage}, ` : ""}${done}${took}${meanwhile}`;
  }
  if (p.state === "error") return p.error ? `${p.name} failed: ${p.error}` : `${p.name} failed`;
  if (p.state === "ready" && num(p.elapsed_s)) return `${p.name} ready (loaded in ${p.elapsed_s.toFixed(1)} s)`;
  return `${p.name} ${p.state}`;
}

// The pipeline's pace as the worker measures it: "6.2 fps, 151 ms a frame".
function paceWords(st) {
  if (!num(st.pipeline_fps) && !num(st.pipeline_ms)) return "–";
  const rate = num(st.pipeline_fps) ? `${st.pipeline_fps.toFixed(1)} fps` : "–";
  return `${rate}, ${num(st.pipeline_ms) ? `${st.pipeline_ms.toFixed(0)} ms` : "–"} a frame`;
}

// What the processed pane shows, in words: [kind, text] or null.
function overlayFor(s, view) {
  if (!view.streaming) return null;
  if (s.pipeline_state?.state === "loading" && s.state === "connected") {
    const running = s.pipeline_state.running;
    const meanwhile = running ? `${running} keeps running meanwhile`
      : SHOWING[s.fallback_active] || "the processed output follows once it is loaded";
    const words = pipelineWords({ ...s.pipeline_state, running: null });
    const note = s.pipeline_state.note ? ` (${s.pipeline_state.note})` : "";
    return ["loading", `${words[0].toUpperCase()}${words.slice(1)}: ${meanwhile}${note}`];
  }
  if (!view.seenLive) {
    if (s.state === "connected" || s.state === "connecting") {
      return ["waiting", "Waiting for the first processed frame…"];
    }
    return ["down", "Worker link down: no processed frame yet"];
  }
  if (s.pipeline_error && !s.fallback_active) {
    return ["unprocessed", "Output is unprocessed: the pipeline is failing"];
  }
  if (s.fallback_active) return [s.fallback_active, FALLBACK_TEXT[s.fallback_active] || ""];
  return null;
}

let countdownTimer = null;


function fmtSeconds(s) {
  return s === null || s === undefined ? "–" : `${Number(s).toFixed(1)} s`;
}

// `view` holds what only the page knows: whether this tab streams, whether it has seen
// processed frames yet, whether the link was ever up, a rejection of its last update.
export function renderStatus(el, s, tries, view) {
  el.badge.textContent = LABELS[s.state] || s.state;
  el.badge.dataset.state = s.state;
  renderQuality(el, s.quality, s.stats || {});
  el.worker.textContent = s.worker_url ? `worker ${s.worker_url}` : "no worker";
  el.simulateDrop.hidden = !s.debug;
  renderBanner(el, s, tries, view);
  const overlay = overlayFor(s, view);
  el.overlay.hidden = overlay === null;
  el.overlay.dataset.fallback = overlay ? overlay[0] : "";
  el.overlay.textContent = overlay ? overlay[1] : "";
  el.pipelineError.hidden = !s.pipeline_error;
  el.pipelineError.textContent = s.pipeline_error
    ? `Pipeline error: ${s.pipeline_error}. The output shows unprocessed frames.` : "";
  renderParams(el.paramsIndicator, s, view);
  const st = s.stats || {};
  const rows = [
    ["fps in / out", `${st.fps_in ?? 0} / ${st.fps_out ?? 0}`],
    ["heartbeat RTT", st.heartbeat_rtt_ms ? `${st.heartbeat_rtt_ms.toFixed(1)} ms` : "–"],
    ["media loss", num(st.media_loss) ? `${(st.media_loss * 100).toFixed(1)} %` : "–"],
    ["bandwidth", num(st.bandwidth_kbps) ? `${st.bandwidth_kbps.toFixed(0)} kbit/s` : "–"],
    ["outages", `${st.outages ?? 0}${(s.recent_outages_s || []).length
      ? ` (${s.recent_outages_s.map((o) => `${o.toFixed(1)} s`).join(", ")})` : ""}`],
    ["reconnects", String(st.reconnects ?? 0)],
    ["last outage", fmtSeconds(s.last_outage_s)],
    ["media", s.webrtc_connected ? "up" : "down"],
    ["stage", s.connect_stage || "–"],
    ["pipeline", pipelineWords(s.pipeline_state)],
    ["pipeline pace", paceWords(st)],
  ];
  el.stats.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.stat = k;
    return [dt, dd];
  }));
  el.timeline.replaceChildren(...(s.events || []).slice().reverse().map((e) => {
    const li = document.createElement("li");
    const time = new Date(e.at * 1000).toLocaleTimeString();
    // A move names workers: say where the stream went.
    const what = e.kind === "moved" ? `moved to ${e.to}` : e.kind;
    li.textContent = `${time} ${what}: ${e.reason}`;
    li.dataset.kind = e.kind;
    return li;
  }));
}

// A connected link says how good it is and what limits it; its title lists what was measured.
function renderQuality(el, q, st) {
  if (!el.quality) return;
  el.quality.hidden = !q;
  if (!q) return;
  el.quality.textContent = q.factor ? `${q.level}: ${q.factor}` : q.level;
  el.quality.dataset.level = q.level;
  const head = q.factor ? `link quality ${q.level}, limited by ${q.factor}` : `link quality ${q.level}`;
  el.quality.title = [head, ...measures(st)].join("\n");
}

// The measured factors, in words ("not measured" where there is no value yet).
function measures(st) {
  const ratio = num(st.fps_in) && st.fps_in >= 1 && num(st.fps_out)
    ? Math.min(st.fps_out / st.fps_in, 1) : null;
  const rows = [
    ["rtt", num(st.heartbeat_rtt_ms) ? `${st.heartbeat_rtt_ms.toFixed(0)} ms` : null],
    ["loss", num(st.media_loss) ? `${(st.media_loss * 100).toFixed(1)} %` : null],
    ["bandwidth", num(st.bandwidth_kbps) ? `${st.bandwidth_kbps.toFixed(0)} kbit/s`
      + (st.bandwidth_limited ? " (the video is held to it)" : "") : null],
    ["fps", ratio === null ? null : `${st.fps_out} of ${st.fps_in} back (${(ratio * 100).toFixed(0)} %)`],
    ["latency", num(st.media_latency_ms) ? `${st.media_latency_ms.toFixed(0)} ms` : null],
    ["worker", num(st.worker_ms) ? `${st.worker_ms.toFixed(0)} ms a frame` : null],
  ];
  return rows.map(([k, v]) => `${k}: ${v ?? "not measured"}`);
}

function renderParams(indicator, s, view) {
  const pending = s.streaming && s.params_acked_version < s.params_version;
  const rejected = view.paramsRejected || (pending && s.params_error
    ? `parameters v${s.params_version} rejected by the worker: ${s.params_error}` : null);
  indicator.dataset.pending = String(pending && !rejected);
  indicator.dataset.error = String(Boolean(rejected));
  indicator.textContent = rejected || (s.params_version === 0 ? "" : pending
    ? `parameters v${s.params_version} not yet on the worker (it has v${s.params_acked_version})`
    : `parameters v${s.params_version} applied`);
}

function renderBanner(el, s, tries, view) {
  clearInterval(countdownTimer);
  el.retry.hidden = s.state !== "failed";
  if (s.state === "reconnecting") {
    el.banner.hidden = false;
    el.banner.dataset.kind = "reconnecting";
    const deadline = s.next_retry_in_s === null ? null : performance.now() + s.next_retry_in_s * 1000;
    const downSince = performance.now() - (s.outage_for_s || 0) * 1000;
    const why = s.error ? ` (${s.error})` : "";
    const draw = () => {
      const left = deadline === null ? null : Math.max(0, (deadline - performance.now()) / 1000);
      const next = left === null || left === 0 ? "trying now" : `next try in ${left.toFixed(1)} s`;
      const down = ((performance.now() - downSince) / 1000).toFixed(1);
      el.bannerText.textContent = `Reconnecting to the worker (down ${down} s): `
        + `attempt ${s.reconnect_attempt} of ${tries}, ${next}${why}`;
    };
    draw();
    countdownTimer = setInterval(draw, 100);
  } else if (s.state === "failed") {
    el.banner.hidden = false;
    el.banner.dataset.kind = "failed";
    el.bannerText.textContent = view.everConnected
      ? `Lost the worker: ${s.error || "unknown error"}`
      : `Could not connect to the worker: ${s.error || "unknown error"}`;
  } else if (s.state === "idle" && !s.worker_url) {
    el.banner.hidden = false;
    el.banner.dataset.kind = "idle";
    el.bannerText.textContent = "Not connected to a worker: enter its URL and token above, "
      + "then press Connect.";
  } else if (s.state === "connecting") {
    el.banner.hidden = false;
    el.banner.dataset.kind = "connecting";
    el.bannerText.textContent = `Connecting to the worker${s.connect_stage ? ` (${s.connect_stage})` : ""}…`;
  } else {
    el.banner.hidden = true;
    el.banner.dataset.kind = "";
    el.bannerText.textContent = "";
  }
}
