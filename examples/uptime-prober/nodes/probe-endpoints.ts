import type { Context } from "pipedreamer";
import { timedFetch } from "./lib/http.ts";

export default async function run(ctx: Context, _input: unknown) {
  const endpoints = (ctx.config.endpoints as string[]) ?? [];
  ctx.log.info(`[probe-endpoints] Probing ${endpoints.length} endpoints`);
  const results = await Promise.all(endpoints.map((url) => timedFetch(url, 5000)));
  return { results };
}
