// Renders the link state: badge, banner with countdown, fallback overlay, stats, timeline.
const LABELS = {
  connected: "connected", connecting: "connecting", reconnecting: "reconnecting",
  failed: "failed", idle: "off", closing: "off",
};
const FALLBACK_TEXT = {
  hold: "Worker link down: showing the last processed frame",
  passthrough: "Worker link down: showing your raw input",
  black: "Worker link down: showing black",
};

let countdownTimer = null;

function fmtSeconds(s) {
  return s === null || s === undefined ? "–" : `${Number(s).toFixed(1)} s`;
}

export function renderStatus(el, s, tries) {
  el.badge.textContent = LABELS[s.state] || s.state;
  el.badge.dataset.state = s.state;
  renderQuality(el, s.quality);
  el.worker.textContent = s.worker_url ? `worker ${s.worker_url}` : "no worker";
  el.simulateDrop.hidden = !s.debug;
  renderBanner(el, s, tries);
  el.overlay.hidden = !s.fallback_active;
  el.overlay.textContent = FALLBACK_TEXT[s.fallback_active] || "";
  el.overlay.dataset.fallback = s.fallback_active || "";
  const pending = s.streaming && s.params_acked_version < s.params_version;
  el.paramsIndicator.dataset.pending = String(pending);
  el.paramsIndicator.textContent = s.params_version === 0 ? "" : pending
    ? `parameters v${s.params_version} not yet on the worker (it has v${s.params_acked_version})`
    : `parameters v${s.params_version} applied`;
  const st = s.stats || {};
  const rows = [
    ["fps in / out", `${st.fps_in ?? 0} / ${st.fps_out ?? 0}`],
    ["heartbeat RTT", st.heartbeat_rtt_ms ? `${st.heartbeat_rtt_ms.toFixed(1)} ms` : "–"],
    ["outages", `${st.outages ?? 0}${(s.recent_outages_s || []).length
      ? ` (${s.recent_outages_s.map((o) => `${o.toFixed(1)} s`).join(", ")})` : ""}`],
    ["reconnects", String(st.reconnects ?? 0)],
    ["last outage", fmtSeconds(s.last_outage_s)],
    ["media", s.webrtc_connected ? "up" : "down"],
    ["stage", s.connect_stage || "–"],
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
    li.textContent = `${time} ${e.kind}: ${e.reason}`;
    li.dataset.kind = e.kind;
    return li;
  }));
}

// A connected link that is degraded says how, and what limits it.
function renderQuality(el, q) {
  if (!el.quality) return;
  el.quality.hidden = !q;
  if (!q) return;
  el.quality.textContent = q.factor ? `${q.level}: ${q.factor}` : q.level;
  el.quality.dataset.level = q.level;
  el.quality.title = q.factor ? `link quality ${q.level}, limited by ${q.factor}` : "link quality";
}

function renderBanner(el, s, tries) {
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
    el.bannerText.textContent = `Lost the worker: ${s.error || "unknown error"}`;
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
