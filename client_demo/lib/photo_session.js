// The photo path: offered when there is no camera, permission is refused or the stream is
// refused or lost. The photo is rendered with every pick (POST /v1/tryon/render?format=json),
// which also measures it; the page logs the touchpoints a stream session would log itself.
import { normalizeFit } from './api.js';
import { smoother, updateFit } from './fit_panel.js';
import { PhotoTouches, downscale, renderOnPhoto } from './photo.js';
import { setMirrored, setStageMsg, showImage } from './stage.js';
import { state } from './state.js';
import { $ } from './ui.js';

export let photoTouches = null;

export function initPhoto(events) {
  photoTouches = new PhotoTouches(events);
}

export function showPhotoFallback(reason) {
  state.source = 'photo';
  smoother.reset(); // the photo is measured on its own (render?format=json)
  setStageMsg('');
  $('#photo-reason').textContent = `${reason} You can try everything on a photo instead.`;
  $('#photo-fallback').hidden = false;
  setMirrored(false); // a photo is shown as taken, not as a mirror
}

export async function onPhotoChosen(file) {
  if (!file) return;
  state.photo = await downscale(file);
  $('#photo-fallback').hidden = true;
  $('#photo-change').hidden = false;
  await renderPhoto();
  if (!state.photoStarted) {
    state.photoStarted = true;
    state.events.track('Try-On Started', { source: 'photo' });
  }
}

let photoSeq = 0;
export async function renderPhoto() {
  if (!state.photo) return;
  const seq = ++photoSeq;
  const sel = { ...state.selection };
  setStageMsg('Rendering…');
  try {
    const { res, blob } = await renderOnPhoto(state.api, state.photo, sel);
    if (seq !== photoSeq) return; // a newer selection already asked again
    showImage(blob);
    state.lastMeta = res;
    const fit = normalizeFit(res);
    if (fit) updateFit(fit);
    setStageMsg(res.faces === 0 ? 'No face found in this photo. Try another one.' : '');
    if (res.applied) photoTouches.touch(sel);
  } catch (err) {
    if (seq === photoSeq) setStageMsg(`Could not render the photo: ${err.message}`);
  }
}
