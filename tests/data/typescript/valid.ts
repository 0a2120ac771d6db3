// Constructs real node files use: none of them may be taken for a syntax error.
import type { Context } from "../engine/types.ts";
import { sleep } from "./lib/util.ts";

interface Probe<T = unknown> {
  url: string;
  ok?: boolean;
  data?: T;
}

enum Level {
  Info = "info",
  Warn = "warn",
}

type Result = Record<string, Probe[]>;

const retries = 3 as const;
const config = { timeoutMs: 5_000, headers: { "x-id": `${Date.now()}` } } satisfies Record<string, unknown>;

export default async function run(ctx: Context, input: { endpoints?: string[] }): Promise<Result> {
  const endpoints = input.endpoints ?? (ctx.config.endpoints as string[]) ?? [];
  const out: Result = {};
  for (const url of endpoints) {
    let attempt = 0;
    while (attempt++ < retries) {
      try {
        const res = await ctx.fetch("http", url, { method: "GET" });
        out[url] = [{ url, ok: res?.ok === true }];
        break;
      } catch (err: unknown) {
        ctx.log.warn(`probe ${url} failed: ${(err as Error).message}`);
        await sleep(2 ** attempt * 100);
      }
    }
  }
  const level: Level = Object.values(out).flat().every((p) => p.ok) ? Level.Info : Level.Warn;
  ctx.log[level]?.(`probed ${endpoints.length} endpoint(s) 🚀`);
  return out;
}

export class Cache<K, V> {
  #items = new Map<K, V>();
  get(key: K): V | undefined {
    return this.#items.get(key);
  }
}
