import type { Commit } from "./lib/github.ts";

export default async function run(
  _ctx: unknown,
  input: { repository: string; commits: Commit[] },
) {
  const lines = input.commits.map((c) => `${c.sha} ${c.message}`);
  return { summary: `${input.repository}: ${lines.length} commit(s)`, lines };
}
