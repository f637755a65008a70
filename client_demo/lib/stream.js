// Camera capture and the try-on WebSocket: JPEG frames out, the changed box (JPEG) + JSON back.
// The stream is opened with reply=region: the server sends only the box its overlay changed
// (the glasses or the lips) and where it goes, and the box is drawn over the frame that was
// sent (still in the grab canvas: one frame in flight), ~6x fewer bytes than whole frames.
// At most one frame is in flight: the next frame is grabbed from the camera only when the
// previous answer arrived, so it is always the newest one (latest wins, latency stays flat).
// Only new camera frames are sent (FrameClock): a camera delivering 15 fps costs the server
// at most 15 frames a second, and the readout shows the rate of new frames processed.
import { FrameClock } from './frame_clock.js';

export const FRAME_W = 640;
export const FRAME_H = 480;
const JPEG_QUALITY = 0.8;
const MIN_INTERVAL_MS = 1000 / 30; // never send faster than the camera can deliver
const STALL_MS = 3000;
const FPS_WINDOW_MS = 2000; // an answer this late is given up, so one lost frame cannot stop the stream

export async function openCamera(video) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const err = new Error('This browser has no camera access here.');
    err.name = 'NotSupportedError';
    throw err;
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { width: { ideal: FRAME_W }, height: { ideal: FRAME_H }, facingMode: 'user' },
  });
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function closeCamera(video) {
  const s = video.srcObject;
  if (s) for (const t of s.getTracks()) t.stop();
  video.srcObject = null;
}

export function cameraErrorText(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was refused.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found.';
    case 'NotReadableError':
      return 'The camera is in use by another app.';
    default:
      return err?.message || 'The camera could not be started.';
  }
}

// Draw the video into a 640x480 canvas (centre crop to 4:3) and encode it as JPEG.
export function grabFrame(video, canvas) {
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (!vw || !vh) return Promise.resolve(null);
  canvas.width = FRAME_W;
  canvas.height = FRAME_H;
  const ctx = canvas.getContext('2d');
  const scale = Math.max(FRAME_W / vw, FRAME_H / vh);
  const sw = FRAME_W / scale;
  const sh = FRAME_H / scale;
  ctx.drawImage(video, (vw - sw) / 2, (vh - sh) / 2, sw, sh, 0, 0, FRAME_W, FRAME_H);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
}

// The frame that was sent (its canvas) with the reply's box drawn over it, as a JPEG blob (what
// the stage shows, the snapshot saves and the cart thumbnail uses).
async function composeRegion(sentCanvas, patch, region) {
  const [x, y, w, h] = region;
  const out = typeof OffscreenCanvas === 'function'
    ? new OffscreenCanvas(sentCanvas.width, sentCanvas.height)
    : Object.assign(document.createElement('canvas'), {
      width: sentCanvas.width, height: sentCanvas.height,
    });
  const ctx = out.getContext('2d');
  ctx.drawImage(sentCanvas, 0, 0);
  if (w > 0 && h > 0 && patch && patch.size) {
    const bmp = await createImageBitmap(patch);
    ctx.drawImage(bmp, x, y, w, h);
    bmp.close();
  }
  if (out.convertToBlob) return out.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
  return new Promise((resolve) => out.toBlob(resolve, 'image/jpeg', 0.92));
}

export class TryOnStream extends EventTarget {
  constructor(url, video) {
    super();
    this.url = url;
    this.video = video;
    this.canvas = document.createElement('canvas');
    this.ws = null;
    this.inFlight = null; // {seq, t0, blob}
    this.seq = 0;
    this.lastSendAt = 0;
    this.pendingMeta = null; // the JSON of the frame whose bytes come next
    this.controls = []; // control messages waiting for the frame in flight to come back
    // fps: new camera frames processed per second (answers over the last 2 s);
    // cameraFrames: frames the camera delivered (FrameClock); sent <= cameraFrames.
    this.stats = { sent: 0, received: 0, stalls: 0, rtt: [], fps: 0, cameraFrames: 0, clock: null };
    this.recent = []; // times of the recent answers, for fps
    this.clock = new FrameClock(video, () => {
      this.stats.cameraFrames = this.clock.frames;
      if (!this.inFlight && !this.closed) this.pump();
    });
    this.stats.clock = this.clock.kind;
    this.lastFrameNo = 0; // the camera frame last sent
    this.lastSent = null;
    this.closed = false;
    this.pumpTimer = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = 'blob';
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve();
        this.pump();
      };
      ws.onerror = () => { if (!opened) reject(new Error('could not connect to the try-on stream')); };
      ws.onclose = (ev) => {
        this.ws = null;
        if (!opened) reject(new Error(ev.reason || `stream refused (${ev.code})`));
        this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason } }));
      };
      ws.onmessage = (ev) => this.onMessage(ev.data);
    });
  }

  get isOpen() { return this.ws?.readyState === WebSocket.OPEN; }

  // Control messages go out between frames, never while one is being processed: a switch
  // then applies from the next frame on, and the server never sees a selection change in the
  // middle of a frame (its per-frame JSON describes the selection the frame was drawn with).
  // Queued messages are coalesced: only the newest selection and intensity matter.
  send(msg) {
    if (!this.isOpen) return;
    if (!this.inFlight) {
      this.ws.send(JSON.stringify(msg));
      return;
    }
    const selection = ['select', 'shade', 'clear'];
    if (selection.includes(msg.type)) {
      this.controls = this.controls.filter((m) => !selection.includes(m.type) && m.type !== 'intensity');
    } else if (msg.type === 'intensity') {
      this.controls = this.controls.filter((m) => m.type !== 'intensity');
    }
    this.controls.push(msg);
  }

  flushControls() {
    if (!this.isOpen) return;
    for (const m of this.controls) this.ws.send(JSON.stringify(m));
    this.controls = [];
  }

  close(reason = 'done') {
    this.closed = true;
    this.clock.stop();
    clearTimeout(this.pumpTimer);
    if (this.isOpen) {
      this.flushControls();
      this.ws.send(JSON.stringify({ type: 'end' })); // now, even with a frame in flight
      this.ws.close(1000, reason);
    }
  }

  async pump() {
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    if (this.closed || !this.isOpen) return;
    const now = performance.now();
    if (this.inFlight) {
      if (now - this.inFlight.t0 < STALL_MS) return;
      this.stats.stalls += 1; // give up on a lost answer
      this.inFlight = null;
      this.flushControls();
    }
    if (document.hidden) {
      // Nobody is looking: stop costing the server frames until the tab is visible again.
      clearTimeout(this.pumpTimer);
      this.pumpTimer = setTimeout(() => this.pump(), 500);
      return;
    }
    const wait = this.lastSendAt + MIN_INTERVAL_MS - now;
    if (wait > 0) {
      this.pumpTimer = setTimeout(() => this.pump(), wait);
      return;
    }
    // Only a frame the camera has not delivered before: the FrameClock calls pump() again
    // when the next one is presented (a fallback timer covers a clock that went quiet).
    const frameNo = this.clock.frames;
    if (frameNo === this.lastFrameNo) {
      this.pumpTimer = setTimeout(() => this.pump(), 250);
      return;
    }
    this.lastFrameNo = frameNo;
    const seq = ++this.seq;
    this.inFlight = { seq, t0: now }; // reserve the slot before the async encode
    const blob = await grabFrame(this.video, this.canvas);
    if (!blob || !this.isOpen) {
      this.inFlight = null;
      this.flushControls();
      clearTimeout(this.pumpTimer);
      this.lastFrameNo = 0; // nothing went out: the next frame (or this one) may go
      this.pumpTimer = setTimeout(() => this.pump(), 50);
      return;
    }
    this.inFlight.t0 = performance.now();
    this.inFlight.blob = blob;
    this.lastSendAt = this.inFlight.t0;
    this.ws.send(blob);
    this.stats.sent += 1;
    clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => this.pump(), STALL_MS + 10);
  }

  // The server answers each frame with a JSON {"type":"frame", ...} and then the JPEG bytes;
  // other JSON messages (ready, selected, snapshot, error, end) go to 'message' listeners.
  onMessage(data) {
    if (typeof data === 'string') {
      let msg;
      try { msg = JSON.parse(data); } catch { return; }
      if (msg.type === 'frame') {
        this.pendingMeta = msg; // its JPEG (possibly empty) comes next, as a binary message
      } else {
        if (msg.type === 'error' && msg.frame_id != null && this.inFlight) {
          this.inFlight = null; // that frame failed on the server: free the slot, go on
          this.flushControls();
          this.pump();
        }
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      }
      return;
    }
    const meta = this.pendingMeta;
    this.pendingMeta = null;
    if (Array.isArray(meta?.region)) {
      // A box belongs to the frame in flight; a late one (that frame was given up and the
      // grab canvas holds a newer one) has nothing to be drawn over.
      if (!this.inFlight) return;
      const seq = this.inFlight.seq;
      composeRegion(this.canvas, data, meta.region)
        .then((blob) => { if (this.inFlight?.seq === seq) this.emitFrame(blob, meta); })
        .catch(() => { if (this.inFlight?.seq === seq) this.emitFrame(null, meta); });
      return;
    }
    this.emitFrame(data && data.size ? data : null, meta);
  }

  emitFrame(blob, meta) {
    const now = performance.now();
    const sent = this.inFlight;
    const rtt = sent ? now - sent.t0 : null;
    if (sent) this.lastSent = sent.blob;
    this.inFlight = null;
    this.stats.received += 1;
    if (rtt != null) {
      this.stats.rtt.push(rtt);
      if (this.stats.rtt.length > 60) this.stats.rtt.shift();
    }
    // Processed new frames per second over the last 2 s (each answer is one new frame).
    this.recent.push(now);
    while (this.recent.length && now - this.recent[0] > FPS_WINDOW_MS) this.recent.shift();
    const span = Math.max(now - this.recent[0], 1000 / 60);
    this.stats.fps = this.recent.length > 1 ? ((this.recent.length - 1) * 1000) / span : 0;
    this.stats.cameraFps = this.clock.fps();
    this.dispatchEvent(new CustomEvent('frame', { detail: { blob, meta, rtt, sent: sent?.blob } }));
    this.flushControls();
    this.pump();
  }
}

// Median of the recent round trips, for the readout.
export function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
