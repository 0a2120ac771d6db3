import { mark } from "./lib/status.ts";

export default async function run(_ctx: unknown, input: { checks?: Record<string, string> }) {
  const checks = input.checks ?? { api: "ok", queue: "warn", "café": "down" };
  return { lines: Object.entries(checks).map(([name, state]) => `${mark(state)} ${name}`) };
}
