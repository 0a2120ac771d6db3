// Shared helper: imported by probe-endpoints.ts, not a node itself.
// It must still be deployed, or the import fails in the pod.
// Plain URLs go through Deno's global fetch; ctx.fetch(service, path) is for services
// whose credentials the engine injects from the secrets.
export async function timedFetch(
  url: string,
  timeoutMs: number,
): Promise<{ url: string; ok: boolean; status: number; ms: number }> {
  const started = Date.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { url, ok: response.ok, status: response.status, ms: Date.now() - started };
  } catch (_error) {
    return { url, ok: false, status: 0, ms: Date.now() - started };
  }
}
