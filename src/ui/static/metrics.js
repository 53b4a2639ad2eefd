// Reading Prometheus' text format (what /metrics serves) and drawing the
// small charts of the cluster page.

// Parses the text format into Map(name -> [{labels, value}]). Comments and
// malformed lines are skipped; a scrape is only ever read, never trusted.
export function parseMetrics(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    if (match[2]) {
      for (const pair of match[2].slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2];
      }
    }
    if (!samples.has(match[1])) samples.set(match[1], []);
    samples.get(match[1]).push({ labels, value: Number(match[3]) });
  }
  return samples;
}

// The sum over every label set of a metric; null when the member does not
// export it at all (told apart from a real 0).
export function total(samples, name) {
  const list = samples.get(name);
  if (!list) return null;
  return list.reduce((sum, s) => sum + s.value, 0);
}

// A line chart of the last `capacity` points on a canvas.
export class Sparkline {
  constructor(canvas, { capacity = 60, unit = '', color = '#2a62c9' } = {}) {
    this.canvas = canvas;
    this.capacity = capacity;
    this.unit = unit;
    this.color = color;
    this.points = [];
    this.draw();
  }

  push(value) {
    this.points.push(value);
    if (this.points.length > this.capacity) this.points.shift();
    this.canvas.dataset.points = String(this.points.filter((v) => v !== null).length);
    this.draw();
  }

  draw() {
    const ctx = this.canvas.getContext('2d');
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = '#d9dee6';
    ctx.lineWidth = 1;
    ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
    const values = this.points.filter((v) => v !== null && Number.isFinite(v));
    if (values.length === 0) {
      ctx.fillStyle = '#6b7483';
      ctx.font = '11px sans-serif';
      ctx.fillText('no data yet', 8, height / 2 + 4);
      return;
    }
    const max = Math.max(...values) || 1;
    const pad = 14;
    ctx.fillStyle = '#6b7483';
    ctx.font = '10px sans-serif';
    ctx.fillText(`max ${formatNumber(max)}${this.unit}`, 4, 11);
    ctx.strokeStyle = this.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    this.points.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = (i / (this.capacity - 1)) * (width - 2) + 1;
      const y = height - 2 - (v / max) * (height - pad - 4);
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
  }
}

export function formatNumber(v) {
  if (v === null || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
