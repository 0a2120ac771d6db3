// A stand-in for the Pipedreamer engine, for trying pdwatch on kind or k0s before you
// have the real engine image. It honours the engine's contract (README.md, "Writing a workflow"):
//
//   deno run main.ts --workflow /app/workflow/workflow.yaml --port 8080
//   [--secrets /app/secrets]   (the real engine reads /app/secrets; tests point elsewhere)
//   [--hostname 0.0.0.0]       (the address it listens on)
//   [--flavor tentacular]      (the Tentacular engine's banner, /health?detail=1,
//                               /webhook/<provider>, ctx.dependency; pdwatch's node
//                               passes it for a tentacular-engine image)
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
  dependency(name: string): Record<string, unknown>;
  log: Record<"info" | "warn" | "error" | "debug", (...args: unknown[]) => void>;
  config: Record<string, unknown>;
  secrets: Record<string, unknown>;
}

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(name);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1] : fallback;
}

/** Stages of the DAG as the engine compiles them: Kahn's algorithm taking the smallest
 * ready node each time (the ready list re-sorted as nodes join it); a node's stage is its
 * longest path from a root, and inside a stage nodes keep that topological order. */
export function kahn(names: string[], edges: unknown[]): string[][] {
  const incoming = new Map(names.map((n) => [n, 0]));
  const following = new Map(names.map((n): [string, string[]] => [n, []]));
  const preceding = new Map(names.map((n): [string, string[]] => [n, []]));
  for (const edge of edges) {
    if (typeof edge !== "object" || edge === null) continue;
    const { from, to } = edge as { from?: unknown; to?: unknown };
    const source = String(from), target = String(to);
    if (following.has(source) && incoming.has(target)) {
      following.get(source)!.push(target);
      preceding.get(target)!.push(source);
      incoming.set(target, incoming.get(target)! + 1);
    }
  }
  const ready = names.filter((n) => incoming.get(n) === 0).sort();
  const depth = new Map<string, number>();
  const stages: string[][] = [];
  while (ready.length > 0) {
    const n = ready.shift()!;
    const d = 1 + Math.max(-1, ...preceding.get(n)!.map((p) => depth.get(p)!));
    depth.set(n, d);
    if (d === stages.length) stages.push([]);
    stages[d].push(n);
    for (const m of following.get(n)!) {
      incoming.set(m, incoming.get(m)! - 1);
      if (incoming.get(m) === 0) {
        ready.push(m);
        ready.sort();
      }
    }
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
const tentacular = option("--flavor", "pipedreamer") === "tentacular";
// The workflow's directory, as a URL: a relative --workflow is read from where it runs
const root = new URL(".", new URL(workflowPath, `file://${Deno.cwd()}/`));

interface Trigger {
  type?: string;
  name?: string;
  provider?: string;
  event?: string;
  actions?: string[];
  subject?: string;
}

interface Loaded {
  name: string;
  triggers: Trigger[];
  dependencies: Record<string, Record<string, unknown>>;
  edges: { from?: string; to?: string }[];
  stages: string[][];
  config: Record<string, unknown>;
  timeout: number;
  retries: number;
  secrets: Record<string, unknown>;
  runs: Map<string, NodeRun>;
}

/** The engine's start-up: the workflow compiled, the secrets read, every node loaded. */
async function load(): Promise<Loaded> {
  console.log(tentacular ? "Tentacular Engine starting..." : "Pipedreamer Engine starting...");
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
  const config = (typeof spec.config === "object" && spec.config !== null
    ? spec.config
    : {}) as Record<string, unknown>;
  const timeout = timeoutMs(config.timeout);
  const retries = Number.isInteger(config.retries) ? Number(config.retries) : 0;
  const secrets = await readSecrets(option("--secrets", "/app/secrets"));
  const runs = new Map<string, NodeRun>();
  for (const [name, node] of Object.entries(nodes)) {
    const url = new URL(String(node?.path ?? ""), root);
    if (!url.pathname.startsWith(root.pathname)) {
      throw new Error(`Node path "${node?.path}" resolves outside workflow directory`);
    }
    const module = await import(url.href);
    if (typeof module.default !== "function") {
      throw new Error(
        `Node at "${node?.path}" must export a default async function. Got: ${typeof module.default}`,
      );
    }
    runs.set(name, module.default as NodeRun);
  }
  const triggers = (Array.isArray(spec.triggers) ? spec.triggers : []) as Trigger[];
  const contract = (spec.contract ?? {}) as { dependencies?: Record<string, unknown> };
  const dependencies = (contract.dependencies ?? {}) as Record<string, Record<string, unknown>>;
  if (tentacular) webhookStartup(triggers, secrets);
  return {
    name: String(spec.name),
    triggers,
    dependencies,
    edges,
    stages,
    config,
    timeout,
    retries,
    secrets,
    runs,
  };
}

/** The Tentacular engine's webhook checks at start-up: every webhook trigger needs a
 * provider; whether a signing secret was found is said. */
function webhookStartup(triggers: Trigger[], secrets: Record<string, unknown>): void {
  const hooks = triggers.filter((t) => t?.type === "webhook");
  if (hooks.length === 0) return;
  if (hooks.some((t) => !t.provider)) {
    throw new Error(
      "Webhook trigger configuration error: All webhook triggers must have a provider " +
        "(e.g. 'github')",
    );
  }
  if (webhookSecret(secrets)) {
    console.log("  Webhook secret: configured");
  } else {
    console.error(
      "  WARNING: Webhook trigger configured but no webhook secret found. Set " +
        "secrets.github.webhook_secret or WEBHOOK_SECRET env var. Signature validation will " +
        "be SKIPPED — do not use in production.",
    );
  }
}

function webhookSecret(secrets: Record<string, unknown>): string | undefined {
  const github = secrets.github as Record<string, unknown> | undefined;
  if (typeof github?.webhook_secret === "string") return github.webhook_secret;
  return Deno.env.get("WEBHOOK_SECRET") ?? undefined;
}

let loaded: Loaded;
try {
  loaded = await load();
} catch (err) {
  // the engine's words for any start-up failure, then exit 1
  console.error("Engine failed to start:", err);
  Deno.exit(1);
}
const { name: workflowName, triggers, dependencies, edges, stages, config, timeout, retries } =
  loaded;
const { secrets, runs } = loaded;

// --- telemetry (the Tentacular engine's basic sink: a ring of the last 1000 events) ------
interface TelemetryEvent {
  type: string;
  timestamp: number;
  metadata?: Record<string, unknown>;
}
const started = Date.now();
const events: TelemetryEvent[] = [];
let totalEvents = 0, errorCount = 0, inFlight = 0, lastRunFailed = false;
let lastError: string | undefined, lastErrorAt: number | undefined;
function record(type: string, metadata?: Record<string, unknown>): void {
  totalEvents++;
  const event: TelemetryEvent = { type, timestamp: Date.now(), ...(metadata ? { metadata } : {}) };
  events.push(event);
  if (events.length > 1000) events.shift();
  if (type === "node-error") {
    errorCount++;
    lastError = String(metadata?.error);
    lastErrorAt = event.timestamp;
  }
}
record("engine-start", { workflow: workflowName });
function snapshot() {
  return {
    totalEvents,
    errorCount,
    errorRate: totalEvents ? errorCount / totalEvents : 0,
    uptimeMs: Date.now() - started,
    lastError,
    lastErrorAt,
    recentEvents: events,
    status: "ok",
    lastRunFailed,
    inFlight,
  };
}

const DEFAULT_PORTS: Record<string, number> = { https: 443, postgresql: 5432, nats: 4222 };

/** ctx.dependency(name) as the Tentacular engine resolves it from the contract. */
function dependencyFor(name: string): Record<string, unknown> {
  const dep = dependencies[name];
  if (!dep || typeof dep !== "object") {
    throw new Error(
      `Dependency "${name}" not declared in contract. Add it to workflow.yaml contract.dependencies.`,
    );
  }
  const protocol = String(dep.protocol ?? "");
  const host = String(dep.host ?? "");
  const port = typeof dep.port === "number" ? dep.port : DEFAULT_PORTS[protocol] ?? 443;
  const auth = (dep.auth ?? {}) as { type?: string; secret?: string };
  const [service, key] = String(auth.secret ?? "").split(".");
  const own = secrets[service] as Record<string, unknown> | undefined;
  const out: Record<string, unknown> = {
    protocol,
    host,
    port,
    authType: auth.type,
    secret: auth.secret ? own?.[key] : undefined,
    database: dep.database,
    user: dep.user,
    subject: dep.subject,
    container: dep.container,
  };
  if (protocol === "https") {
    out.fetch = (path: string, init?: RequestInit) =>
      fetch(`https://${host}:${port}${path}`, init);
  }
  return out;
}

function contextFor(node: string): Context {
  const say = (level: string, out: (...args: unknown[]) => void) => (...args: unknown[]) =>
    out(`[${node}] ${level}`, ...args);
  return {
    fetch(service, path, init) {
      // The engine's (legacy) rule: a full URL as given, else the service's public API.
      const url = path.startsWith("http") ? path : `https://api.${service}.com${path}`;
      const headers = new Headers(init?.headers);
      const own = secrets[service] as Record<string, unknown> | undefined;
      if (own?.token) headers.set("Authorization", `Bearer ${own.token}`);
      if (own?.api_key) headers.set("X-API-Key", String(own.api_key));
      return fetch(url, { ...init, headers });
    },
    log: {
      info: say("INFO", console.log),
      debug: say("DEBUG", console.log),
      warn: say("WARN", console.error),
      error: say("ERROR", console.error),
    },
    dependency: dependencyFor,
    config,
    secrets,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One node: each attempt with its own timeout (the node's promise is not cancelled),
 * `retries` more attempts after 100 ms × 2^attempt; the last attempt's error stands. */
async function runNode(name: string, input: Json): Promise<Json> {
  for (let attempt = 0;; attempt++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(() => runs.get(name)!(contextFor(name), input)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Node "${name}" timed out after ${timeout}ms`)),
            timeout,
          );
        }),
      ]);
    } catch (err) {
      if (attempt >= retries) throw err;
      await sleep(100 * 2 ** attempt);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface Timing {
  startedAt: number;
  completedAt: number;
  durationMs: number;
}

/** The engine's execution result: stages one after the other, a stage's nodes together;
 * a stage with a failed node is the last to run. */
async function runWorkflow(body: Json) {
  const outputs: Record<string, Json> = {};
  const errors: Record<string, string> = {};
  const nodeTimings: Record<string, Timing> = {};
  const startedAt = Date.now();
  const inputOf = (name: string): Json => {
    const from = edges.filter((e) => String(e.to) === name).map((e) => String(e.from));
    if (from.length === 0) return body;
    if (from.length === 1) return outputs[from[0]];
    return Object.fromEntries(from.map((f) => [f, outputs[f]]));
  };
  for (const stage of stages) {
    await Promise.all(stage.map(async (name) => {
      const began = Date.now();
      record("node-start", { node: name });
      try {
        outputs[name] = await runNode(name, inputOf(name));
      } catch (err) {
        errors[name] = err instanceof Error ? err.message : String(err);
        record("node-error", { node: name, error: errors[name] });
        // The answer keeps the message (the engine's contract); the log gets the stack,
        // as ctx.log.error would print it, so where it was thrown can be read.
        console.error(`[${name}] ERROR`, err);
      }
      const ended = Date.now();
      if (!(name in errors)) record("node-complete", { node: name, durationMs: ended - began });
      nodeTimings[name] = { startedAt: began, completedAt: ended, durationMs: ended - began };
    }));
    if (Object.keys(errors).length > 0) break;
  }
  const completedAt = Date.now();
  return {
    success: Object.keys(errors).length === 0,
    outputs,
    errors,
    timing: { startedAt, completedAt, durationMs: completedAt - startedAt, nodeTimings },
  };
}

const line = (route: string, what: string) => console.log(`  ${route.padEnd(23)}— ${what}`);
const hasWebhook = triggers.some((t) => t?.type === "webhook");
const queues = triggers.filter((t) => t?.type === "queue");

Deno.serve({
  port,
  hostname,
  onListen() {
    console.log(`Workflow server listening on http://localhost:${port}`);
    if (!tentacular) {
      console.log("  POST /run    — trigger workflow execution");
      console.log("  GET  /health — health check");
      return;
    }
    line("POST /run", "trigger workflow execution");
    line("GET  /health", "health check");
    line("GET  /health?detail=1", "telemetry snapshot");
    if (hasWebhook) line("POST /webhook/github", "GitHub webhook receiver");
    if (queues.length > 0) natsStartup();
  },
}, async (request) => {
  const url = new URL(request.url);
  const { pathname } = url;
  const json = (status: number, value: Json, indent?: number) =>
    new Response(JSON.stringify(value, null, indent), {
      status,
      headers: { "content-type": "application/json" },
    });
  if (pathname === "/health") {
    if (tentacular && url.searchParams.get("detail") === "1") return json(200, snapshot(), 2);
    return json(200, { status: "ok" });
  }
  const hook = /^\/webhook\/([a-z][a-z0-9-]*)$/.exec(pathname);
  if (tentacular && hook && request.method === "POST") return await webhook(hook[1], request, json);
  if (pathname !== "/run" || (request.method !== "POST" && request.method !== "GET")) {
    return new Response("Not Found", { status: 404 });
  }
  let body: Json = {};
  if (request.method === "POST") {
    try {
      body = JSON.parse(await request.text()); // an empty or invalid body is {}
    } catch {
      body = {};
    }
  }
  inFlight++;
  record("request-in", { path: "/run" });
  try {
    const result = await runWorkflow(body);
    lastRunFailed = !result.success;
    return json(result.success ? 200 : 500, result, 2);
  } catch (err) {
    return json(500, { error: err instanceof Error ? err.message : String(err) });
  } finally {
    inFlight--;
    record("request-out", { path: "/run" });
  }
});

/** What the engine's NATS triggers would need, said; the stand-in has no NATS client, so
 * a queue trigger never fires here, and it says so rather than pretend. */
function natsStartup(): void {
  if (!config.nats_url) {
    console.warn("Queue triggers defined but config.nats_url is not set — skipping NATS setup");
    return;
  }
  const nats = secrets.nats as Record<string, unknown> | undefined;
  if (!nats?.token) {
    console.warn("Queue triggers defined but secrets.nats.token is not set — skipping NATS setup");
    return;
  }
  console.error(
    "Failed to start NATS triggers: pdwatch's stand-in engine has no NATS client; queue " +
      `triggers (${queues.map((q) => q.subject).join(", ")}) do not fire here`,
  );
}

async function hmacHex(secret: string, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** POST /webhook/<provider>: GitHub only, the signature checked when a secret is set, the
 * first matching trigger answered at once and the workflow run after. */
async function webhook(
  provider: string,
  request: Request,
  json: (status: number, value: Json, indent?: number) => Response,
): Promise<Response> {
  const hooks = triggers.filter((t) => t?.type === "webhook");
  if (hooks.length === 0) return json(404, { error: "No webhook triggers configured" });
  if (provider !== "github") return json(400, { error: `Unknown webhook provider: ${provider}` });
  const raw = new Uint8Array(await request.arrayBuffer());
  const secret = webhookSecret(secrets);
  if (secret) {
    const given = request.headers.get("X-Hub-Signature-256") ?? "";
    if (!sameText(given, `sha256=${await hmacHex(secret, raw)}`)) {
      console.warn("Webhook signature validation failed");
      return json(401, { error: "Invalid signature" });
    }
  }
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    return json(400, { error: "Invalid JSON payload" });
  }
  const event = request.headers.get("X-GitHub-Event") ?? "";
  const action = typeof payload?.action === "string" ? payload.action : undefined;
  const match = hooks.find((t) =>
    (!t.provider || t.provider === "github") && (!t.event || t.event === event) &&
    (!t.actions?.length || action === undefined || t.actions.includes(action))
  );
  if (!match) return json(200, { ok: true, matched: false });
  const delivery = request.headers.get("X-GitHub-Delivery") ?? "unknown";
  const input = {
    ...payload,
    _webhook: {
      provider: "github",
      event,
      action,
      delivery_id: delivery,
      trigger: match.name ?? match.event ?? "webhook",
    },
  };
  runWorkflow(input).then((result) => {
    lastRunFailed = !result.success;
  });
  return json(200, { ok: true, matched: true, delivery_id: delivery });
}

// SIGTERM or SIGINT: the Tentacular engine says so and exits 0.
if (tentacular) {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      console.log("Shutting down...");
      Deno.exit(0);
    });
  }
}
