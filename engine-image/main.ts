// A stand-in for the Pipedreamer engine, for trying pdwatch on kind or k0s before you
// have the real engine image. It honours the engine's contract (pdwatch's REFERENCE §2):
//
//   deno run main.ts --workflow /app/workflow/workflow.yaml --port 8080
//   [--secrets /app/secrets]   (the real engine reads /app/secrets; tests point elsewhere)
//   [--hostname 0.0.0.0]       (the address it listens on)
//
// reads workflow.yaml (YAML 1.2), prints the engine's start-up lines in the engine's
// order, compiles the DAG (Kahn's algorithm, the ready queue kept sorted) and exits when
// `edges` is not an array, warns about a `config.timeout` it cannot read, then resolves
// the secrets in /app/secrets and loads every node module (so a node's top-level output or
// exception comes after the DAG lines), and serves GET /health and POST /run.
//
// What it does not know of the real engine, it keeps simple and says so: a node with one
// predecessor gets that node's result as input, a node with several gets an object keyed
// by their names; ctx.fetch(service, path) calls http://<service><path> (no gateway, no
// auth injected).

import { parse } from "npm:yaml@2.8.1";

type Json = unknown;
type NodeRun = (ctx: Context, input: Json) => Promise<Json> | Json;
interface Context {
  fetch(service: string, path: string, init?: RequestInit): Promise<Response>;
  log: Record<"info" | "warn" | "error" | "debug", (...args: unknown[]) => void>;
  config: Record<string, unknown>;
  secrets: Record<string, unknown>;
}

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(name);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1] : fallback;
}

/** Stages of the DAG: Kahn's algorithm with the ready queue kept sorted. */
export function kahn(names: string[], edges: unknown[]): string[][] {
  const incoming = new Map(names.map((n) => [n, 0]));
  const following = new Map(names.map((n): [string, string[]] => [n, []]));
  for (const edge of edges) {
    if (typeof edge !== "object" || edge === null) continue;
    const { from, to } = edge as { from?: unknown; to?: unknown };
    const source = String(from), target = String(to);
    if (following.has(source) && incoming.has(target)) {
      following.get(source)!.push(target);
      incoming.set(target, incoming.get(target)! + 1);
    }
  }
  let ready = names.filter((n) => incoming.get(n) === 0).sort();
  const stages: string[][] = [];
  while (ready.length > 0) {
    stages.push(ready);
    const next: string[] = [];
    for (const n of ready) {
      for (const m of following.get(n)!) {
        incoming.set(m, incoming.get(m)! - 1);
        if (incoming.get(m) === 0) next.push(m);
      }
    }
    ready = next.sort();
  }
  return stages;
}

/** Every file of the secrets directory: JSON when it parses to an object, else
 * `{ value: "<trimmed text>" }`. */
async function readSecrets(dir: string): Promise<Record<string, unknown>> {
  const secrets: Record<string, unknown> = {};
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".")) continue; // the Secret volume's ..data links
      const text = await Deno.readTextFile(`${dir}/${entry.name}`);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      secrets[entry.name] = typeof value === "object" && value !== null && !Array.isArray(value)
        ? value
        : { value: text.trim() };
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return secrets;
}

function timeoutMs(value: unknown): number {
  if (value === undefined || value === null) return 30_000;
  const match = /^(\d+)(s|m)$/.exec(String(value));
  if (!match) {
    console.log(
      `Invalid timeout format "${value}" — expected "<number>s" or "<number>m". ` +
        "Using default 30s.",
    );
    return 30_000;
  }
  return Number(match[1]) * (match[2] === "m" ? 60_000 : 1_000);
}

const workflowPath = option("--workflow", "/app/workflow/workflow.yaml");
const port = Number(option("--port", "8080"));
// In a pod, every address of the pod; pdwatch's node without a network namespace gives
// each pod its own loopback address instead.
const hostname = option("--hostname", "0.0.0.0");
const root = workflowPath.slice(0, workflowPath.lastIndexOf("/") + 1) || "./";

console.log("Pipedreamer Engine starting...");
const spec = parse(await Deno.readTextFile(workflowPath)) as Record<string, unknown>;
if (typeof spec !== "object" || spec === null) throw new Error("Workflow spec must be a mapping");
console.log(`Workflow: ${spec.name} v${spec.version}`);
const nodes = (typeof spec.nodes === "object" && spec.nodes !== null ? spec.nodes : {}) as Record<
  string,
  { path?: string }
>;
if (!Array.isArray(spec.edges)) {
  throw new Error('Workflow spec missing required field: "edges" (must be an array)');
}
const edges = spec.edges as { from?: string; to?: string }[];
const stages = kahn(Object.keys(nodes), edges);
console.log(`DAG compiled: ${stages.length} stage(s), ${Object.keys(nodes).length} node(s)`);
stages.forEach((stage, i) => console.log(`  Stage ${i + 1}: [${stage.join(", ")}]`));
const config = (typeof spec.config === "object" && spec.config !== null ? spec.config : {}) as Record<
  string,
  unknown
>;
const timeout = timeoutMs(config.timeout);
const retries = Number.isInteger(config.retries) ? Number(config.retries) : 0;

const secrets = await readSecrets(option("--secrets", "/app/secrets"));
const runs = new Map<string, NodeRun>();
for (const [name, node] of Object.entries(nodes)) {
  const path = String(node?.path ?? "").replace(/^\.\//, "");
  const module = await import(new URL(path, new URL(root, "file:///").href).href);
  runs.set(name, module.default as NodeRun);
}

function contextFor(node: string): Context {
  const say = (level: string) => (...args: unknown[]) =>
    console.log(`[${node}]${level === "info" ? "" : ` ${level}:`}`, ...args);
  return {
    fetch: (service, path, init) => fetch(`http://${service}${path}`, init),
    log: { info: say("info"), warn: say("warn"), error: say("error"), debug: say("debug") },
    config,
    secrets,
  };
}

async function runNode(name: string, input: Json): Promise<Json> {
  for (let attempt = 0;; attempt++) {
    try {
      return await runs.get(name)!(contextFor(name), input);
    } catch (err) {
      if (attempt >= retries) throw err;
    }
  }
}

async function runWorkflow(body: Json): Promise<Json> {
  const results = new Map<string, Json>();
  const before = (n: string) => edges.filter((e) => e.to === n).map((e) => String(e.from));
  let last: string[] = [];
  for (const stage of stages) {
    await Promise.all(stage.map(async (name) => {
      const from = before(name);
      const input = from.length === 0
        ? body
        : from.length === 1
        ? results.get(from[0])
        : Object.fromEntries(from.map((f) => [f, results.get(f)]));
      results.set(name, await runNode(name, input));
    }));
    last = stage;
  }
  return last.length === 1
    ? results.get(last[0])
    : Object.fromEntries(last.map((n) => [n, results.get(n)]));
}

function json(status: number, value: Json): Response {
  return new Response(JSON.stringify(value ?? null), {
    status,
    headers: { "content-type": "application/json" },
  });
}

Deno.serve({
  port,
  hostname,
  onListen() {
    console.log(`Workflow server listening on http://localhost:${port}`);
    console.log("  POST /run    — trigger workflow execution");
    console.log("  GET  /health — health check");
  },
}, async (request) => {
  const { pathname } = new URL(request.url);
  if (request.method === "GET" && pathname === "/health") return json(200, { status: "ok" });
  if (request.method !== "POST" || pathname !== "/run") return json(404, { error: "not found" });
  const text = await request.text();
  let body: Json = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    return json(400, { error: "the body is not JSON" });
  }
  const started = Date.now();
  let timer: number | undefined;
  try {
    const result = await Promise.race([
      runWorkflow(body),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms`)), timeout);
      }),
    ]);
    console.log(`POST /run: ok in ${Date.now() - started} ms`);
    return json(200, result);
  } catch (err) {
    console.log(`POST /run: failed in ${Date.now() - started} ms: ${err}`);
    return json(500, { error: String(err) });
  } finally {
    clearTimeout(timer);
  }
});
