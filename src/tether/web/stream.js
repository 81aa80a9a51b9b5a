// The page's stream: a source (test pattern, camera or file) sent to the studio over
// WebRTC, and the processed video shown back.
import { api } from "./api.js";

function testPattern() {
  const canvas = document.createElement("canvas");
  canvas.width = 512;
  canvas.height = 512;
  const ctx = canvas.getContext("2d");
  let t = 0;
  const timer = setInterval(() => {
    t += 1;
    const g = ctx.createLinearGradient(0, 0, 512, 512);
    g.addColorStop(0, `hsl(${(t * 2) % 360}, 85%, 55%)`);
    g.addColorStop(1, `hsl(${(t * 2 + 160) % 360}, 85%, 45%)`);
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, 512, 512);
    ctx.fillStyle = "#fff";
    ctx.fillRect((t * 4) % 448, 224, 64, 64);
    ctx.font = "bold 40px sans-serif";
    ctx.fillText("TETHER", 180, 120);
  }, 33);
  const stream = canvas.captureStream(30);
  return { stream, stop: () => clearInterval(timer) };
}

async function fileSource(file) {
  const video = document.createElement("video");
  video.src = URL.createObjectURL(file);
  video.loop = true;
  video.muted = true;
  await video.play();
  const stream = video.captureStream ? video.captureStream() : video.mozCaptureStream();
  return { stream, stop: () => { video.pause(); URL.revokeObjectURL(video.src); } };
}

async function openSource(kind, file) {
  if (kind === "camera") {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: 512, height: 512, frameRate: 30 },
    });
    return { stream, stop: () => {} };
  }
  if (kind === "file") {
    if (!file) throw new Error("choose a video file first");
    return fileSource(file);
  }
  return testPattern();
}

function iceComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000); // send what we have rather than hang
  });
}

export class Stream {
  constructor(inputEl, outputEl, onChange) {
    this.inputEl = inputEl;
    this.outputEl = outputEl;
    this.onChange = onChange;
    this.pc = null;
    this.source = null;
    this.sessionId = null;
  }

  get running() { return this.pc !== null; }

  async start(kind, file, initialParameters) {
    await this.close();
    this.sessionId = null; // known once the studio answers
    this.source = await openSource(kind, file);
    this.inputEl.srcObject = this.source.stream;
    const pc = new RTCPeerConnection();
    this.pc = pc;
    for (const track of this.source.stream.getVideoTracks()) {
      pc.addTransceiver(track, { direction: "sendrecv" });
    }
    pc.ontrack = (event) => { this.outputEl.srcObject = new MediaStream([event.track]); };
    pc.onconnectionstatechange = () => this.onChange(pc.connectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc);
    const answer = await api.offer({ sdp: pc.localDescription.sdp, type: "offer", initialParameters });
    this.sessionId = answer.sessionId;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    this.onChange("connecting");
  }

  async close() {
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.source) {
      this.source.stream.getTracks().forEach((t) => t.stop());
      this.source.stop();
    }
    this.source = null;
    this.inputEl.srcObject = null;
    this.outputEl.srcObject = null;
  }

  async stop() {
    await this.close();
    await api.stop();
    this.onChange("stopped");
  }
}
