// A helper imported by a node: it is deployed with the nodes (every .ts below nodes/).
export interface Commit {
  sha: string;
  message: string;
}

export async function recentCommits(ctx: any, repository: string): Promise<Commit[]> {
  const res = await ctx.fetch("github", `/repos/${repository}/commits?per_page=10`);
  const body = (await res.json()) as Array<{ sha: string; commit: { message: string } }>;
  return body.map((c) => ({ sha: c.sha.slice(0, 7), message: c.commit.message.split("\n")[0] }));
}
