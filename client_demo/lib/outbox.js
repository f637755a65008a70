// The event outbox in IndexedDB: every event is written here before it is sent and removed
// only when the service answered it (accepted or duplicate, per message id). What the
// service rejected for good is moved to a "rejected" store with the reason, not dropped.
// Without IndexedDB (some private modes) it degrades to memory: `durable` says which.

const DB_NAME = 'tryon-outbox';
const DB_VERSION = 1;
const PENDING = 'pending';
const REJECTED = 'rejected';

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error || new Error('IndexedDB transaction failed'));
  });
}

export class Outbox {
  constructor() {
    this.db = null;
    this.durable = false;
    this.memory = new Map(); // the fallback (and nothing else) when IndexedDB is unavailable
    this.ready = this.open();
  }

  async open() {
    try {
      if (!globalThis.indexedDB) throw new Error('no IndexedDB');
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains(PENDING)) db.createObjectStore(PENDING, { keyPath: 'id' });
        if (!db.objectStoreNames.contains(REJECTED)) db.createObjectStore(REJECTED, { keyPath: 'id' });
      };
      this.db = await req(r);
      this.durable = true;
    } catch {
      this.db = null;
      this.durable = false;
    }
  }

  // record: {id: message_id, seq, token, event}; resolves once it is on disk (or in memory).
  async put(record) {
    await this.ready;
    if (!this.db) {
      this.memory.set(record.id, record);
      return false;
    }
    try {
      const tx = this.db.transaction(PENDING, 'readwrite');
      tx.objectStore(PENDING).put(record);
      await done(tx);
      return true;
    } catch {
      this.memory.set(record.id, record);
      return false;
    }
  }

  async all() {
    await this.ready;
    const mem = [...this.memory.values()];
    if (!this.db) return mem;
    const stored = await req(this.db.transaction(PENDING).objectStore(PENDING).getAll());
    return [...stored, ...mem].sort((a, b) => a.seq - b.seq);
  }

  async remove(ids) {
    await this.ready;
    for (const id of ids) this.memory.delete(id);
    if (!this.db || !ids.length) return;
    const tx = this.db.transaction(PENDING, 'readwrite');
    for (const id of ids) tx.objectStore(PENDING).delete(id);
    await done(tx);
  }

  // Refused for good (e.g. an invalid event): kept aside with the reason, out of the queue.
  async reject(records) {
    await this.ready;
    for (const r of records) this.memory.delete(r.id);
    if (!this.db || !records.length) return;
    const tx = this.db.transaction([PENDING, REJECTED], 'readwrite');
    for (const r of records) {
      tx.objectStore(PENDING).delete(r.id);
      tx.objectStore(REJECTED).put({ ...r, token: undefined, rejected_at: new Date().toISOString() });
    }
    await done(tx);
  }

  async rejected() {
    await this.ready;
    if (!this.db) return [];
    return req(this.db.transaction(REJECTED).objectStore(REJECTED).getAll());
  }
}
