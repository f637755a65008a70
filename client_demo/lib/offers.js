// The offers panel: GET /v1/shoppers/{id}/offers and the accept/reject feedback.
// Every offers request is an impression the service counts against a per-shopper frequency
// cap, so the panel asks rarely: once after the shopper has tried a few things, after the cart
// changes, and after feedback; never on every product switch.
import { normalizeOffers } from './api.js';
import { renderOffers, toast } from './ui.js';

export const OFFERS_FIRST_AFTER_MS = 6000;
const LIMIT = 3;

export class OffersPanel {
  // shopper(): the current anonymous id; products(): the catalog, for prices;
  // onAccept(offer): what "Try it" does (select the product).
  constructor({ api, events, root, channel, shopper, products, onAccept }) {
    Object.assign(this, { api, events, root, channel, shopper, products, onAccept });
    this.offers = [];
    this.reason = null;
    this.loads = 0;
    this.timer = null;
    this.requested = false;
  }

  schedule(ms, { force = false } = {}) {
    if (this.requested && !force) return;
    this.requested = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), ms);
  }

  async load() {
    const id = this.shopper();
    if (!id) return;
    await this.events.flush(); // so the ranking sees what was just tried or carted
    const path = this.api.path('offers', { id });
    try {
      const q = new URLSearchParams({ channel: this.channel, limit: String(LIMIT) });
      const body = await this.api.get(`${path}?${q}`);
      const catalog = this.products();
      const offers = normalizeOffers(body).map((o) => {
        const p = catalog.find((x) => x.sku === o.sku);
        return { ...o, price: o.price ?? p?.price ?? null, currency: p?.currency || o.currency };
      });
      // Capped or suppressed: keep what is on screen rather than blanking the panel.
      if (offers.length || !this.offers.length) this.offers = offers;
      this.reason = body.reason || null;
    } catch (err) {
      this.reason = err.message;
    }
    this.loads += 1;
    this.render();
  }

  render() {
    const empty = this.reason === 'open_support_issue'
      ? 'We are looking after your support request first; no offers until it is solved.'
      : this.reason ? 'No offers right now.' : '';
    renderOffers(this.root, this.offers, {
      accept: (o) => this.feedback(o, 'accepted'),
      reject: (o) => this.feedback(o, 'rejected'),
    }, empty);
  }

  async feedback(offer, action) {
    const base = this.api.path('offers', { id: this.shopper() });
    try {
      await this.api.post(`${base}/${encodeURIComponent(offer.id)}/feedback`, { action });
    } catch (err) {
      toast(`Could not send feedback: ${err.message}`);
    }
    this.offers = this.offers.filter((o) => o.id !== offer.id);
    this.render();
    if (action === 'accepted') this.onAccept(offer);
  }

  reset() {
    clearTimeout(this.timer);
    this.requested = false;
    this.offers = [];
    this.reason = null;
    this.render();
  }
}
