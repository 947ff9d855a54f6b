// The mask editor: a frame-sized mask canvas (white = instrument) drawn over the frame.
// Polygon and brush edits are antialiased by the canvas, then cut at 50 % coverage (binarize)
// so what is shown is exactly what is saved. Saving sends row-major run lengths to the server,
// which validates the mask and writes it as COCO RLE with the annotate library. Each save names
// the version of the mask it was drawn on (a 409 says someone else saved one since).
// The canvas fills the space the window leaves it; zoom and pan choose the part of the frame shown.
import { api } from "./util.js";
import { ZoomView } from "./zoom.js";

const MAX_UNDO = 40;
const MAX_DISPLAY = 900;        // CSS pixels of the longer frame side, at most
const MIN_DISPLAY = 160;
const CLOSE_DISTANCE = 9;       // CSS pixels: a click this near the first point closes the polygon
const TINT = "rgb(255, 40, 160)";

async function loadImage(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  return image;
}

export class MaskEditor {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.mask = document.createElement("canvas");
    this.maskCtx = this.mask.getContext("2d", { willReadFrequently: true });
    this.tint = document.createElement("canvas");
    this.tool = "polygon";
    this.erase = false;
    this.brushRadius = 8;
    this.clipId = null;
    this.image = null;
    this.width = 0;
    this.height = 0;
    this.points = [];
    this.hover = null;
    this.painting = false;
    this.undoStack = [];
    this.dirty = false;
    this.saved = false;
    this.version = "";
    this.view = new ZoomView();
    this.panning = null;
    canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    canvas.addEventListener("pointerleave", () => { this.hover = null; this.draw(); });
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    new ResizeObserver(() => this.layout()).observe(canvas.parentElement);
    window.addEventListener("resize", () => this.layout());
  }

  async load(clipId) {
    const path = encodeURIComponent(clipId);
    const [info, image] = await Promise.all([api("GET", `/api/mask/${path}`), loadImage(`/media/frame/${path}`)]);
    this.clipId = clipId;
    this.image = image;
    this.width = info.width;
    this.height = info.height;
    for (const node of [this.mask, this.tint]) { node.width = this.width; node.height = this.height; }
    this.maskCtx.clearRect(0, 0, this.width, this.height);
    if (info.runs) this.putRuns(info.runs);
    this.saved = Boolean(info.runs);
    this.version = info.version || "";
    this.points = [];
    this.undoStack = [];
    this.dirty = false;
    this.view.reset(this.width, this.height);
    this.layout();
    this.changed();
    return info;
  }

  // The largest size that fits the canvas box's width and the window below the box's top.
  layout() {
    if (!this.width || this.canvas.offsetParent === null) return;   // hidden view: laid out when shown
    const box = this.canvas.parentElement;
    const top = box.getBoundingClientRect().top + window.scrollY;
    const room = Math.max(MIN_DISPLAY, Math.min(box.clientWidth, window.innerHeight - top - 12, MAX_DISPLAY));
    const scale = room / Math.max(this.width, this.height);
    const cssWidth = Math.max(1, Math.floor(Math.min(box.clientWidth, this.width * scale)));
    const cssHeight = Math.max(1, Math.floor(cssWidth * this.height / this.width));
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.style.width === `${cssWidth}px` && this.canvas.style.height === `${cssHeight}px`) return;
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    this.canvas.width = Math.round(cssWidth * ratio);
    this.canvas.height = Math.round(cssHeight * ratio);
    this.draw();
  }

  // ------------------------------------------------------------------ zoom and pan
  showView() {
    this.canvas.dataset.zoom = String(Math.round(this.view.zoom * 1000) / 1000);
    this.canvas.dataset.view = this.view.describe();
    this.draw();
  }

  zoomIn() { this.view.zoomIn(); this.showView(); }
  zoomOut() { this.view.zoomOut(); this.showView(); }
  fit() { this.view.reset(this.width, this.height); this.showView(); }

  // dx, dy: shares of the visible part (an arrow key moves a quarter of it).
  pan(dx, dy) {
    this.view.panBy(dx * this.view.viewWidth, dy * this.view.viewHeight);
    this.showView();
  }

  wheel(event) {
    if (!this.clipId) return;
    event.preventDefault();
    const point = this.toFrame(event);
    if (event.deltaY < 0) this.view.zoomIn(point.x, point.y);
    else this.view.zoomOut(point.x, point.y);
    this.showView();
  }

  // ------------------------------------------------------------------ pixels
  putRuns(runs) {
    const data = this.maskCtx.createImageData(this.width, this.height);
    let pixel = 0;
    runs.forEach((length, i) => {
      if (i % 2 === 1) {
        for (let p = pixel; p < pixel + length; p++) data.data.fill(255, p * 4, p * 4 + 4);
      }
      pixel += length;
    });
    this.maskCtx.putImageData(data, 0, 0);
  }

  binarize() {
    const data = this.maskCtx.getImageData(0, 0, this.width, this.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const value = px[i + 3] >= 128 ? 255 : 0;
      px[i] = px[i + 1] = px[i + 2] = px[i + 3] = value;
    }
    this.maskCtx.putImageData(data, 0, 0);
  }

  // Row-major run lengths, background first (what PUT /api/mask expects).
  runs() {
    const px = this.maskCtx.getImageData(0, 0, this.width, this.height).data;
    const runs = [];
    let current = false;
    let length = 0;
    for (let i = 3; i < px.length; i += 4) {
      const on = px[i] >= 128;
      if (on === current) { length++; continue; }
      runs.push(length);
      current = on;
      length = 1;
    }
    runs.push(length);
    return runs;
  }

  area() {
    const px = this.maskCtx.getImageData(0, 0, this.width, this.height).data;
    let count = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] >= 128) count++;
    return count;
  }

  // ------------------------------------------------------------------ editing
  pushUndo() {
    this.undoStack.push(this.maskCtx.getImageData(0, 0, this.width, this.height));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
  }

  paintStyle() {
    const m = this.maskCtx;
    m.globalCompositeOperation = this.erase ? "destination-out" : "source-over";
    m.fillStyle = m.strokeStyle = "#fff";
    return m;
  }

  finishEdit() {
    this.maskCtx.globalCompositeOperation = "source-over";
    this.binarize();
    this.dirty = true;
    this.changed();
  }

  toFrame(event) {
    const rect = this.canvas.getBoundingClientRect();
    return this.view.toFrame(event.clientX - rect.left, event.clientY - rect.top, rect.width, rect.height);
  }

  pointerDown(event) {
    if (!this.clipId) return;
    // The middle button, or the left one with the pan tool, drags the view.
    if (event.button === 1 || (event.button === 0 && this.tool === "pan")) {
      event.preventDefault();
      this.canvas.setPointerCapture(event.pointerId);
      this.panning = { x: event.clientX, y: event.clientY };
      return;
    }
    if (event.button !== 0) return;
    const point = this.toFrame(event);
    if (this.tool === "polygon") {
      if (this.points.length >= 3 && this.nearFirst(point)) this.closePolygon();
      else { this.points.push(point); this.draw(); }
      return;
    }
    this.canvas.setPointerCapture(event.pointerId);
    this.pushUndo();
    this.painting = true;
    this.last = point;
    const m = this.paintStyle();
    m.beginPath();
    m.arc(point.x, point.y, this.brushRadius, 0, Math.PI * 2);
    m.fill();
    this.draw();
  }

  pointerMove(event) {
    if (this.panning) {
      const rect = this.canvas.getBoundingClientRect();
      this.view.panBy((this.panning.x - event.clientX) / rect.width * this.view.viewWidth,
        (this.panning.y - event.clientY) / rect.height * this.view.viewHeight);
      this.panning = { x: event.clientX, y: event.clientY };
      this.showView();
      return;
    }
    this.hover = this.toFrame(event);
    if (this.painting) {
      const m = this.paintStyle();
      m.lineWidth = this.brushRadius * 2;
      m.lineCap = m.lineJoin = "round";
      m.beginPath();
      m.moveTo(this.last.x, this.last.y);
      m.lineTo(this.hover.x, this.hover.y);
      m.stroke();
      this.last = this.hover;
    }
    this.draw();
  }

  pointerUp() {
    this.panning = null;
    if (!this.painting) return;
    this.painting = false;
    this.finishEdit();
  }

  nearFirst(point) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = rect.width / this.view.viewWidth;
    const first = this.points[0];
    return Math.hypot((point.x - first.x) * scale, (point.y - first.y) * scale) <= CLOSE_DISTANCE;
  }

  closePolygon() {
    if (this.points.length < 3) return false;
    this.pushUndo();
    const m = this.paintStyle();
    m.beginPath();
    this.points.forEach((p, i) => (i ? m.lineTo(p.x, p.y) : m.moveTo(p.x, p.y)));
    m.closePath();
    m.fill();
    this.points = [];
    this.finishEdit();
    return true;
  }

  dropPoint() {
    this.points.pop();
    this.draw();
  }

  cancelPolygon() {
    this.points = [];
    this.draw();
  }

  undo() {
    if (this.points.length) return this.dropPoint();
    const previous = this.undoStack.pop();
    if (!previous) return;
    this.maskCtx.putImageData(previous, 0, 0);
    this.dirty = true;
    this.changed();
  }

  clear() {
    this.pushUndo();
    this.points = [];
    this.maskCtx.clearRect(0, 0, this.width, this.height);
    this.dirty = true;
    this.changed();
  }

  // base: the version this drawing replaces (default: the one loaded or last saved here).
  async save(base = this.version) {
    this.cancelPolygon();
    const answer = await api("PUT", `/api/mask/${encodeURIComponent(this.clipId)}`,
      { width: this.width, height: this.height, runs: this.runs(), base });
    this.dirty = false;
    this.saved = true;
    this.version = answer.version;
    this.changed();
    return answer;
  }

  async remove(base = this.version) {
    const answer = await api("DELETE", `/api/mask/${encodeURIComponent(this.clipId)}`, { base });
    this.saved = false;
    this.version = "";
    this.maskCtx.clearRect(0, 0, this.width, this.height);
    this.dirty = false;
    this.changed();
    return answer;
  }

  changed() {
    const area = this.area();
    this.canvas.dataset.area = String(area);
    this.canvas.dataset.dirty = String(this.dirty);
    this.draw();
    this.onChange(this, area);
  }

  // ------------------------------------------------------------------ drawing
  draw() {
    const ctx = this.ctx;
    const { width: W, height: H } = this.canvas;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!this.image) return;
    const v = this.view;
    const ix = this.image.naturalWidth / this.width;
    const iy = this.image.naturalHeight / this.height;
    ctx.imageSmoothingEnabled = v.zoom < 2;
    ctx.drawImage(this.image, v.x0 * ix, v.y0 * iy, v.viewWidth * ix, v.viewHeight * iy, 0, 0, W, H);
    const t = this.tint.getContext("2d");
    t.globalCompositeOperation = "source-over";
    t.clearRect(0, 0, this.width, this.height);
    t.drawImage(this.mask, 0, 0);
    t.globalCompositeOperation = "source-in";
    t.fillStyle = TINT;
    t.fillRect(0, 0, this.width, this.height);
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 0.5;
    ctx.drawImage(this.tint, v.x0, v.y0, v.viewWidth, v.viewHeight, 0, 0, W, H);
    ctx.globalAlpha = 1;
    const sx = W / v.viewWidth;
    const sy = H / v.viewHeight;
    const at = (p) => [(p.x - v.x0) * sx, (p.y - v.y0) * sy];
    if (this.points.length) {
      ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
      ctx.strokeStyle = this.erase ? "#00e5ff" : "#ffe600";
      ctx.beginPath();
      this.points.forEach((p, i) => (i ? ctx.lineTo(...at(p)) : ctx.moveTo(...at(p))));
      if (this.hover) ctx.lineTo(...at(this.hover));
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle;
      for (const [i, p] of this.points.entries()) {
        ctx.beginPath();
        ctx.arc(...at(p), (i === 0 ? 6 : 4) * (window.devicePixelRatio || 1), 0, Math.PI * 2);
        ctx.fill();
      }
    }
    if (this.tool === "brush" && this.hover) {
      ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
      ctx.strokeStyle = this.erase ? "#00e5ff" : "#ffffff";
      ctx.beginPath();
      ctx.arc(...at(this.hover), this.brushRadius * sx, 0, Math.PI * 2);
      ctx.stroke();
    }
  }
}
