/** The value at quantile `p` (0..1) of ascending `sorted`; 0 when there is none. The latency figures of `steady` and `saturate` all use it, so that they compare. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
