// Counts the frames a <video> (the camera) really delivers, so the stream sends only new
// ones: `requestVideoFrameCallback` where the browser has it (one call per presented frame;
// `presentedFrames` also counts frames presented between two calls), else a poll of the
// video's `currentTime` (a new frame moves it). `onFrame()` runs on every new frame.

const POLL_MS = 1000 / 60;
const RATE_WINDOW_MS = 2000;

export class FrameClock {
  constructor(video, onFrame) {
    this.video = video;
    this.onFrame = onFrame;
    this.frames = 0; // new frames seen so far
    this.times = []; // when the recent ones came, for the camera's frame rate
    this.stopped = false;
    this.kind = typeof video.requestVideoFrameCallback === 'function' ? 'rvfc' : 'poll';
    this.lastPresented = null;
    this.lastTime = -1;
    if (this.kind === 'rvfc') this.handle = video.requestVideoFrameCallback((t, m) => this.onVideoFrame(m));
    else this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  onVideoFrame(meta) {
    if (this.stopped) return;
    const n = meta?.presentedFrames;
    // Count every frame the camera presented (one call may cover two on a busy page), once.
    const delta = n != null && this.lastPresented != null ? Math.max(0, n - this.lastPresented) : 1;
    if (n != null) this.lastPresented = n;
    if (delta > 0) this.tick(Math.min(delta, 4));
    this.handle = this.video.requestVideoFrameCallback((t, m) => this.onVideoFrame(m));
  }

  poll() {
    if (this.stopped) return;
    const t = this.video.currentTime;
    if (t !== this.lastTime && this.video.readyState >= 2) {
      this.lastTime = t;
      this.tick(1);
    }
  }

  tick(n) {
    const now = performance.now();
    this.frames += n;
    for (let i = 0; i < n; i += 1) this.times.push(now);
    while (this.times.length && now - this.times[0] > RATE_WINDOW_MS) this.times.shift();
    this.onFrame();
  }

  // The camera's delivered frames per second over the last 2 s.
  fps() {
    const now = performance.now();
    while (this.times.length && now - this.times[0] > RATE_WINDOW_MS) this.times.shift();
    if (this.times.length < 2) return 0;
    return ((this.times.length - 1) * 1000) / Math.max(now - this.times[0], 1);
  }

  stop() {
    this.stopped = true;
    if (this.handle != null && this.video.cancelVideoFrameCallback) this.video.cancelVideoFrameCallback(this.handle);
    clearInterval(this.timer);
  }
}
