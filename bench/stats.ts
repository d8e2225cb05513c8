/** Percentiles of a set of latencies (ms), by nearest rank. */
export function summarize(values: number[]) {
  if (!values.length) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    count: sorted.length,
    p50: round(at(0.5)),
    p95: round(at(0.95)),
    p99: round(at(0.99)),
    max: round(sorted[sorted.length - 1]!),
    mean: round(values.reduce((a, b) => a + b, 0) / values.length),
  };
}

export interface SecondSample {
  second: number;
  completed: number;
  p50: number;
  p99: number;
}

/** Latency over time as an SVG: p50 and p99 per second (left axis, ms) and completions per second (right axis). */
export function latencySvg(title: string, samples: SecondSample[]): string {
  const w = 900;
  const h = 360;
  const pad = 50;
  const maxS = Math.max(1, ...samples.map((s) => s.second));
  const maxMs = Math.max(1, ...samples.map((s) => s.p99));
  const maxRate = Math.max(1, ...samples.map((s) => s.completed));
  const x = (s: number) => pad + ((w - 2 * pad) * s) / maxS;
  const y = (v: number, max: number) => h - pad - ((h - 2 * pad) * v) / max;
  const line = (pick: (s: SecondSample) => number, max: number) => samples.map((s, i) => `${i ? 'L' : 'M'}${x(s.second).toFixed(1)},${y(pick(s), max).toFixed(1)}`).join(' ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad}" y="20" font-size="14">${title}</text>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#333"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#333"/>
<text x="${w / 2}" y="${h - 15}">seconds</text>
<text x="5" y="${pad - 8}">ms (max ${maxMs.toFixed(1)})</text><text x="${w - pad - 120}" y="${pad - 8}" fill="#2a9d8f">completed/s (max ${maxRate})</text>
<path d="${line((s) => s.completed, maxRate)}" fill="none" stroke="#2a9d8f" stroke-width="1.5"/>
<path d="${line((s) => s.p50, maxMs)}" fill="none" stroke="#264653" stroke-width="1.5"/>
<path d="${line((s) => s.p99, maxMs)}" fill="none" stroke="#e76f51" stroke-width="1.5"/>
<text x="${pad + 10}" y="${pad + 15}" fill="#264653">p50</text><text x="${pad + 50}" y="${pad + 15}" fill="#e76f51">p99</text>
</svg>\n`;
}
