console.log("report node loaded 📝");

export default async function run(_ctx: unknown, input: { lines: string[] }) {
  return { report: ["Status — 日本語 ok", ...input.lines].join("\n") };
}
