// Shared helper: imported by probe-endpoints.ts, not a node itself.
// It must still be deployed, or the import fails in the pod.
export async function timedFetch(
  ctx: { fetch: typeof fetch },
  url: string,
  timeoutMs: number,
): Promise<{ url: string; ok: boolean; status: number; ms: number }> {
  const started = Date.now();
  try {
    const response = await ctx.fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { url, ok: response.ok, status: response.status, ms: Date.now() - started };
  } catch (_error) {
    return { url, ok: false, status: 0, ms: Date.now() - started };
  }
}
