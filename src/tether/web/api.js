// Thin wrappers over the studio's HTTP API; errors carry the server's message.
export async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.message || `${method} ${path}: HTTP ${res.status}`);
  return data;
}

export const api = {
  status: () => call("GET", "/api/v1/cloud/status"),
  reconnect: () => call("POST", "/api/v1/cloud/reconnect"),
  connect: (body) => call("POST", "/api/v1/cloud/connect", body),
  disconnect: () => call("POST", "/api/v1/cloud/disconnect"),
  simulateDrop: () => call("POST", "/api/v1/cloud/debug/disconnect-webrtc"),
  pipelines: () => call("GET", "/api/v1/pipelines"),
  parameters: () => call("GET", "/api/v1/parameters"),
  setParameters: (changes) => call("POST", "/api/v1/parameters", changes),
  offer: (body) => call("POST", "/api/v1/webrtc/offer", body),
  stop: () => call("POST", "/api/v1/webrtc/stop"),
};

// Calls onStatus with every CloudStatus the studio publishes; EventSource reconnects by itself.
export function watchStatus(onStatus) {
  const source = new EventSource("/api/v1/cloud/events");
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  return source;
}
