// The stage: the canvas that shows the composited frames (camera or photo), its status line
// and the fps/latency readout. A frame is decoded off the main thread and drawn at most once
// per display frame.
import { state } from './state.js';
import { median } from './stream.js';
import { $ } from './ui.js';

const view = $('#view');
const ctx = view.getContext('2d');
let pendingBitmap = null;
let drawScheduled = false;

export function setStageMsg(text) { $('#stage-msg').textContent = text; }

// A composited image came back (stream frame or photo render): keep it and draw it.
export function showImage(blob, { sent = null, meta = null } = {}) {
  state.lastImage = blob;
  // The frame that was sent with what came back for it (tests compare the two).
  state.lastPair = { sent, received: blob, meta };
  state.frames += 1;
  createImageBitmap(blob).then((bmp) => {
    pendingBitmap?.close();
    pendingBitmap = bmp;
    if (!drawScheduled) {
      drawScheduled = true;
      requestAnimationFrame(draw); // draw at display rate, never more than once a vsync
    }
  });
}

function draw() {
  drawScheduled = false;
  const bmp = pendingBitmap;
  if (!bmp) return;
  pendingBitmap = null;
  if (view.width !== bmp.width || view.height !== bmp.height) {
    view.width = bmp.width;
    view.height = bmp.height;
  }
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  $('#snapshot').disabled = false;
  const st = state.stream?.stats;
  if (st) {
    // New camera frames processed per second (never more than the camera delivers).
    $('#fps').textContent = `${st.fps.toFixed(1)} fps`;
    $('#fps').title = `new camera frames processed per second (camera: ${(st.cameraFps ?? 0).toFixed(1)} fps)`;
    const rtt = median(st.rtt);
    $('#latency').textContent = rtt == null ? '– ms' : `${Math.round(rtt)} ms`;
  }
}

// A camera is shown like a mirror; a photo as taken.
export function setMirrored(on) { view.classList.toggle('mirrored', on); }

export function clearStage() { ctx.clearRect(0, 0, view.width, view.height); }
