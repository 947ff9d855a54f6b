// Zoom and pan of the mask editor: which part of the frame the canvas shows. The view is a
// rectangle of the frame (x0, y0, width / zoom, height / zoom), always inside the frame.
export const MAX_ZOOM = 8;
const STEP = 1.5;

export class ZoomView {
  constructor() {
    this.width = 1;
    this.height = 1;
    this.reset(1, 1);
  }

  reset(width, height) {
    this.width = width;
    this.height = height;
    this.zoom = 1;
    this.x0 = 0;
    this.y0 = 0;
  }

  get viewWidth() { return this.width / this.zoom; }
  get viewHeight() { return this.height / this.zoom; }

  clamp() {
    this.zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom));
    this.x0 = Math.min(this.width - this.viewWidth, Math.max(0, this.x0));
    this.y0 = Math.min(this.height - this.viewHeight, Math.max(0, this.y0));
  }

  // Zoom by `factor`, keeping the frame point (fx, fy) where it is on screen (default: the centre).
  zoomAt(factor, fx = this.x0 + this.viewWidth / 2, fy = this.y0 + this.viewHeight / 2) {
    const rx = (fx - this.x0) / this.viewWidth;
    const ry = (fy - this.y0) / this.viewHeight;
    this.zoom *= factor;
    this.clamp();
    this.x0 = fx - rx * this.viewWidth;
    this.y0 = fy - ry * this.viewHeight;
    this.clamp();
  }

  zoomIn(fx, fy) { this.zoomAt(STEP, fx, fy); }
  zoomOut(fx, fy) { this.zoomAt(1 / STEP, fx, fy); }

  // Move the view by a share of what is visible (arrow keys) or by frame pixels (dragging).
  panBy(dx, dy) {
    this.x0 += dx;
    this.y0 += dy;
    this.clamp();
  }

  // Canvas point (CSS pixels, relative to the canvas box of size boxWidth x boxHeight) -> frame point.
  toFrame(px, py, boxWidth, boxHeight) {
    return { x: this.x0 + (px / boxWidth) * this.viewWidth, y: this.y0 + (py / boxHeight) * this.viewHeight };
  }

  describe() {
    return [this.x0, this.y0, this.viewWidth, this.viewHeight].map((v) => v.toFixed(2)).join(",");
  }
}
