import type { Context } from "pipedreamer";

export default async function run(
  _ctx: Context,
  input: { total: number; down: { url: string; status: number }[] },
) {
  if (input.down.length === 0) {
    return { text: `✅ all ${input.total} endpoint(s) up` };
  }
  const lines = input.down.map((d) => `• ${d.url} (status ${d.status || "no answer"})`);
  return { text: [`⚠️ ${input.down.length} of ${input.total} endpoint(s) unreachable`, ...lines].join("\n") };
}
