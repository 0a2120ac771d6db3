import type { Context } from "pipedreamer";

export default async function run(ctx: Context, input: { name?: string }) {
  const name = input.name ?? "world";
  ctx.log.info(`greeting ${name}`);
  return { message: `Hello, ${name}!` };
}
