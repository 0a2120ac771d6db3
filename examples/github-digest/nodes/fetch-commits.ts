import { recentCommits } from "./lib/github.ts";

export default async function run(ctx: any, input: { repository?: string }) {
  const repository = input.repository ?? (ctx.config.repository as string);
  ctx.log.info(`fetching the commits of ${repository}`);
  return { repository, commits: await recentCommits(ctx, repository) };
}
