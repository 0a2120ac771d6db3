import type { Commit } from "./lib/github.ts";

// The slug comes from jsr:@std/text, which a Tentacular cluster serves through its module
// proxy (the import map routes jsr: there). Where no proxy answers (pdwatch's embedded
// cluster, kind without `tntc cluster install`) the node says so and slugs by itself.
async function slugger(ctx: any): Promise<(text: string) => string> {
  try {
    const text = await import("jsr:@std/text@1.0.0");
    return text.toKebabCase;
  } catch (error) {
    ctx.log.warn(`jsr:@std/text@1.0.0 is not available here (${(error as Error).message})`);
    return (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  }
}

export default async function run(
  ctx: any,
  input: { repository: string; commits: Commit[] },
) {
  const slug = await slugger(ctx);
  const lines = input.commits.map((c) => `${c.sha} ${c.message}`);
  return { summary: `${input.repository}: ${lines.length} commit(s)`, slug: slug(input.repository), lines };
}
