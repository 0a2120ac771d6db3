import type { Context } from "pipedreamer";

type Probe = { url: string; ok: boolean; status: number; ms: number };

export default async function run(_ctx: Context, input: { results: Probe[] }) {
  const down = input.results.filter((r) => !r.ok);
  return { total: input.results.length, down };
}
