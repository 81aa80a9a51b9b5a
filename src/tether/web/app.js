// Minimal studio page: stream a source, show the processed video and the link state.
const $ = (id) => document.getElementById(id);
let pc = null;
let sourceStream = null;
let patternTimer = null;

function testPattern() {
  const canvas = document.createElement("canvas");
  canvas.width = 512; canvas.height = 512;
  const ctx = canvas.getContext("2d");
  let t = 0;
  patternTimer = setInterval(() => {
    t += 1;
    const g = ctx.createLinearGradient(0, 0, 512, 512);
    g.addColorStop(0, `hsl(${t % 360}, 80%, 50%)`);
    g.addColorStop(1, `hsl(${(t + 180) % 360}, 80%, 50%)`);
    ctx.fillStyle = g; ctx.fillRect(0, 0, 512, 512);
    ctx.fillStyle = "#fff"; ctx.fillRect((t * 4) % 448, 224, 64, 64);
  }, 33);
  return canvas.captureStream(30);
}

async function start() {
  $("start").disabled = true;
  sourceStream = $("source").value === "camera"
    ? await navigator.mediaDevices.getUserMedia({ video: { width: 512, height: 512 } })
    : testPattern();
  $("input").srcObject = sourceStream;
  pc = new RTCPeerConnection();
  sourceStream.getVideoTracks().forEach((t) => pc.addTransceiver(t, { direction: "sendrecv" }));
  pc.ontrack = (e) => { $("output").srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
  });
  const initialParameters = { pipeline: $("pipeline").value || "passthrough" };
  if ($("prompt").value) initialParameters.prompt = $("prompt").value;
  const res = await fetch("/api/v1/webrtc/offer", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", initialParameters }),
  });
  const answer = await res.json();
  if (!res.ok) { alert(answer.message); return stop(); }
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  $("stop").disabled = false;
}

async function stop() {
  if (pc) pc.close();
  pc = null;
  if (patternTimer) clearInterval(patternTimer);
  if (sourceStream) sourceStream.getTracks().forEach((t) => t.stop());
  await fetch("/api/v1/webrtc/stop", { method: "POST" });
  $("start").disabled = false; $("stop").disabled = true;
}

async function setParameters(changes) {
  await fetch("/api/v1/parameters", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(changes),
  });
}

async function loadPipelines() {
  const res = await fetch("/api/v1/pipelines");
  const { pipelines } = await res.json();
  const select = $("pipeline");
  const current = select.value;
  select.replaceChildren(...pipelines.map((p) => new Option(p.name, p.name)));
  if (current) select.value = current;
}

function showStatus(s) {
  const label = { connected: "connected", reconnecting: "reconnecting", connecting: "connecting",
    failed: "failed", idle: "off", closing: "off" }[s.state] || s.state;
  $("badge").textContent = label;
  $("badge").dataset.state = s.state;
  const banner = $("banner");
  banner.hidden = !s.error && s.state !== "reconnecting";
  banner.textContent = s.error ? `Link problem: ${s.error}` : `Reconnecting (attempt ${s.reconnect_attempt})`;
  $("status").textContent = JSON.stringify(s, null, 2);
  if ($("pipeline").options.length === 0 && s.state === "connected") loadPipelines();
}

new EventSource("/api/v1/cloud/events").addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
$("start").onclick = () => start().catch((e) => { alert(e); $("start").disabled = false; });
$("stop").onclick = stop;
$("pipeline").onchange = () => setParameters({ pipeline: $("pipeline").value });
$("prompt").onchange = () => setParameters({ prompt: $("prompt").value });
loadPipelines();
