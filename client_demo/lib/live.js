// The live camera session: open the camera and the try-on WebSocket, show the composited
// frames, feed each frame's measurements to the fit panel, and fall back to a photo when the
// camera or the stream is refused or lost.
import { normalizeFit } from './api.js';
import { smoother, updateFit } from './fit_panel.js';
import { showPhotoFallback } from './photo_session.js';
import { controlMessage } from './selection.js';
import { setStageMsg, showImage } from './stage.js';
import { state, sessionFields } from './state.js';
import { TryOnStream, cameraErrorText, closeCamera, openCamera } from './stream.js';
import { $, toast } from './ui.js';

export async function startCamera() {
  state.source = 'camera';
  setStageMsg('Starting camera…');
  const video = $('#cam');
  try {
    await openCamera(video);
  } catch (err) {
    showPhotoFallback(cameraErrorText(err));
    return;
  }
  let url;
  try {
    url = await state.api.streamUrl({
      ...sessionFields(),
      reply: 'region', // the changed box only, drawn over the frame sent (stream.js)
      // Opted in: the stream's own events (Try-On Started, Frame Applied, dwell, snapshot)
      // then carry PD, face width and size band; without it the parameter is left out.
      ...(state.consent.measurements ? { consent: '1' } : {}),
    });
  } catch (err) {
    closeCamera(video);
    showPhotoFallback(`Live try-on is unavailable (${err.message}).`);
    return;
  }
  const stream = new TryOnStream(url, video);
  state.stream = stream;
  stream.addEventListener('frame', onFrame);
  stream.addEventListener('message', (ev) => onControlReply(ev.detail));
  stream.addEventListener('close', (ev) => {
    if (state.stream !== stream) return;
    const { code, reason } = ev.detail;
    if (code === 1000 && reason !== 'idle') return;
    if (code === 1000) {
      // No frame for a while (a hidden tab, a stalled camera): the server freed the slot.
      state.stream = null;
      closeCamera(video);
      $('#readout').hidden = true;
      showPhotoFallback('Live try-on paused after a while without frames.');
      return;
    }
    // Refused (busy: 1013, bad key: 1008) or lost: the photo path still works.
    state.stream = null;
    closeCamera(video);
    $('#readout').hidden = true;
    showPhotoFallback(`Live try-on stopped (${reason || `code ${code}`}).`);
  });
  setStageMsg('Connecting…');
  try {
    await stream.open();
  } catch (err) {
    state.stream = null;
    closeCamera(video);
    showPhotoFallback(`Live try-on is unavailable (${err.message}).`);
    return;
  }
  stream.send(controlMessage());
  state.sentIntensity = state.selection.intensity;
  $('#readout').hidden = false;
}

export function stopStream() {
  state.stream?.close();
  state.stream = null;
  closeCamera($('#cam'));
}

function onFrame(ev) {
  const { blob, meta, sent } = ev.detail;
  if (meta) onMeta(meta);
  if (blob) showImage(blob, { sent: sent || null, meta: meta || null });
}

function onMeta(meta) {
  state.lastMeta = meta;
  const faces = Array.isArray(meta.faces) ? meta.faces.length : meta.faces;
  setStageMsg(faces === 0 ? 'Looking for your face…' : '');
  // Every processed frame carries `measurements` (PD, face width, recommended frame width,
  // size band, reliable) and `fit`; the panel shows their running median, updated calmly.
  // No /v1/tryon/analyze call while streaming: the stream already measured the frame.
  const shown = smoother.add(normalizeFit(meta));
  if (shown) updateFit(shown);
}

function onControlReply(msg) {
  if (msg.type === 'error' || msg.error) {
    const e = msg.error || msg;
    toast(e.message || e.code || 'The try-on service rejected a request.');
  }
}
