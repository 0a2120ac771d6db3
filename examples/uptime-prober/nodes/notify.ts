import type { Context } from "pipedreamer";

export default async function run(ctx: Context, input: { text: string }) {
  const webhook = (ctx.secrets.slack as { webhook_url?: string } | undefined)?.webhook_url;
  if (!webhook) {
    ctx.log.info(`[notify] no Slack webhook configured; report was:\n${input.text}`);
    return { sent: false };
  }
  await fetch(webhook, { method: "POST", body: JSON.stringify({ text: input.text }) });
  return { sent: true };
}
