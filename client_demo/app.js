// Shopper page (/demo) and kiosk mode (/demo?mode=kiosk): the entry point. It loads the
// config, builds the parts in lib/ and wires the page's controls to them.
//   state.js          the page state (window.tryon), mode, shopper session ids
//   selection.js      catalog, glasses rail, lipstick swatches and intensity, tabs
//   live.js           camera + try-on WebSocket session       stage.js   the canvas and readout
//   photo_session.js  the photo fallback                      fit_panel.js  the server's fit advice
//   cart.js           snapshot, cart, order                   offers.js  the offers panel
//   kiosk_flow.js     kiosk finish/hand-off, idle reset, claim on the phone
import { Api, loadConfig } from './lib/api.js';
import { addToCart, buy, snapshot } from './lib/cart.js';
import { EventQueue } from './lib/events.js';
import { initFit } from './lib/fit_panel.js';
import { foldHandoff } from './lib/handoff_view.js';
import { enterFullscreen } from './lib/kiosk.js';
import { claim, finishKiosk, idle, initKiosk, resetKiosk } from './lib/kiosk_flow.js';
import { startCamera } from './lib/live.js';
import { OffersPanel } from './lib/offers.js';
import { initPhoto, onPhotoChosen, showPhotoFallback } from './lib/photo_session.js';
import { bindIntensity, clearSelection, loadCatalog, pickGlasses, pickShade, renderRails, selectTab } from './lib/selection.js';
import { CHANNEL, MODE, followSession, newSession, params, state } from './lib/state.js';
import { $, toast } from './lib/ui.js';

// After the consent screen: the camera, or straight to the photo upload.
function begin(useCamera) {
  state.consent.measurements = $('#optin-measurements').checked;
  state.events.consent = state.consent.measurements;
  $('#consent').hidden = true;
  $('#studio').hidden = false;
  foldHandoff();
  if (MODE === 'kiosk') {
    $('#finish').hidden = false;
    enterFullscreen();
    idle.start();
  }
  if (useCamera) startCamera();
  else showPhotoFallback('No camera used.');
}

async function main() {
  state.config = await loadConfig();
  state.api = new Api(state.config);
  state.api.onSession = followSession;
  state.events = new EventQueue(state.api, state.config.events || {});
  initPhoto(state.events);
  initFit(state.api, () => renderRails()); // new frames that fit: redraw the rail's badges
  state.offersPanel = new OffersPanel({
    api: state.api,
    events: state.events,
    root: $('#offers'),
    channel: CHANNEL,
    shopper: () => state.anonymousId,
    products: () => state.products,
    onAccept: (offer) => {
      if (state.products.some((p) => p.sku === offer.sku)) pickGlasses(offer.sku, null);
      else if (state.shades.some((sh) => sh.id === offer.sku)) pickShade(offer.sku);
    },
  });
  if (MODE === 'kiosk') {
    document.body.classList.add('kiosk');
    initKiosk(Number(params.get('idle')) || state.config.kiosk_idle_s || 90);
  }
  await newSession({ newShopper: false }); // the session is the shopper (kept on reload)
  $('#start').addEventListener('click', () => begin(true));
  $('#use-photo').addEventListener('click', () => begin(false));
  $('#photo-input').addEventListener('change', (ev) => onPhotoChosen(ev.target.files[0]));
  $('#photo-input-2').addEventListener('change', (ev) => onPhotoChosen(ev.target.files[0]));
  $('#snapshot').addEventListener('click', snapshot);
  $('#add-to-cart').addEventListener('click', addToCart);
  $('#buy').addEventListener('click', buy);
  $('#clear').addEventListener('click', clearSelection);
  $('#finish').addEventListener('click', finishKiosk);
  $('#handoff-done').addEventListener('click', resetKiosk);
  for (const t of document.querySelectorAll('.tab[data-tab]')) t.addEventListener('click', () => selectTab(t.dataset.tab));
  bindIntensity($('#intensity'));
  await loadCatalog();
  if (params.get('handoff') && MODE === 'web') await claim(params.get('handoff'));
  document.body.dataset.ready = '1';
}

main().catch((err) => {
  console.error(err);
  toast(`The demo could not start: ${err.message}`, 60000);
});
