/**
 * createServer(): an McpServer with the selected tools. One wrapper registers
 * every tool, so logging, timing and error handling cannot be bypassed.
 */
import {
  type InputRequiredResult,
  McpServer,
  type ServerContext,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { type Config, VERSION } from "./config.ts";
import { logger } from "./log.ts";
import { callSignal, type PveClient } from "./proxmox/client.ts";
import { PveError, ToolError } from "./proxmox/errors.ts";
import {
  compactStandardSchema,
  taskFollower,
  type ToolContext,
  type ToolDef,
} from "./tools/define.ts";
import { selectTools } from "./tools/mod.ts";
import { canElicit, confirmGate } from "./safety/confirm.ts";

const log = logger("tool");

export const INSTRUCTIONS =
  "Proxmox VE cluster tools. Guests are addressed by vmid alone: the node is found automatically. " +
  "Every tool that starts a Proxmox task also takes wait (boolean, default true) and timeout_s (seconds; the default suits the task): " +
  "it waits for the task, reporting progress, and returns its result; wait=false, or a task still running at timeout_s, " +
  "returns the UPID to follow with proxmox_get_task.";

export interface ServerDeps {
  config: Config;
  pve: PveClient;
}

type CallResult = {
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};

/** Runs one tool call: the single path every call takes. */
export async function callTool(
  tool: ToolDef,
  args: Record<string, unknown>,
  deps: ServerDeps,
  ctx: ServerContext,
  client: { canAsk: () => boolean } = { canAsk: () => false },
): Promise<CallResult | InputRequiredResult> {
  const started = performance.now();
  const token = ctx.mcpReq._meta?.progressToken;
  const progress: ToolContext["progress"] = async (message, p, total) => {
    if (token === undefined) return;
    await ctx.mcpReq.notify({
      method: "notifications/progress",
      params: { progressToken: token, progress: p ?? 0, total, message },
    }).catch(() => {});
  };
  const toolCtx: ToolContext = {
    pve: deps.pve,
    config: deps.config,
    signal: ctx.mcpReq.signal,
    progress,
    task: taskFollower(deps.pve, ctx.mcpReq.signal, progress),
  };
  try {
    const gate = await callSignal.run(ctx.mcpReq.signal, () =>
      confirmGate({
        mode: deps.config.confirm ?? "auto",
        tool: {
          name: tool.name,
          title: tool.title,
          destructive: tool.annotations.destructiveHint,
        },
        args,
        pve: deps.pve,
        ctx,
        clientCanAsk: client.canAsk(),
      }));
    if (gate.kind === "ask") {
      log.info(`${tool.name} asks the human to confirm`);
      return gate.result;
    }
    if (gate.kind === "refuse") {
      log.info(`${tool.name} not done: ${gate.outcome}`);
      return {
        content: [{ type: "text", text: gate.text }],
        isError: true,
      };
    }
    const out = await callSignal.run(
      ctx.mcpReq.signal,
      () => tool.run(args, toolCtx),
    );
    const structured = JSON.parse(JSON.stringify(out)) as Record<
      string,
      unknown
    >;
    log.info(`${tool.name} ok ${Math.round(performance.now() - started)}ms`);
    return {
      content: [{ type: "text", text: JSON.stringify(structured) }],
      structuredContent: structured,
    };
  } catch (e) {
    const ms = Math.round(performance.now() - started);
    let text: string;
    if (e instanceof ToolError) {
      text = e.detail ? `${e.message}\n${JSON.stringify(e.detail)}` : e.message;
    } else if (e instanceof PveError) {
      text = e.message;
      if (
        e.kind === "uncertain" ||
        (e.kind === "badResponse" && e.method !== "GET")
      ) {
        // A write whose answer never came (or came garbled): say what
        // Proxmox did, if its task list shows it.
        const { explainUncertain } = await import("./proxmox/api/recent.ts");
        const seen = await explainUncertain(
          deps.pve,
          e,
          Date.now() - (performance.now() - started),
        );
        if (seen) text += `. ${seen}`;
      }
    } else {
      log.error(`${tool.name} failed unexpectedly`, {
        error: (e as Error)?.message,
        stack: (e as Error)?.stack,
      });
      text = `Internal error in ${tool.name}: ${
        (e as Error)?.message ?? String(e)
      }`;
    }
    log.info(`${tool.name} error ${ms}ms: ${text.split("\n")[0]}`);
    return { content: [{ type: "text", text }], isError: true };
  }
}

type Registration = {
  title: string;
  description: string;
  inputSchema: z.ZodType<Record<string, unknown>>;
  outputSchema: z.ZodType;
  annotations: ToolDef["annotations"];
};
const registrations = new WeakMap<ToolDef, Registration>();

/**
 * What registerTool needs, built once per tool: the HTTP transport creates a
 * server per request, so this must not rebuild schemas every time.
 */
function registration(tool: ToolDef): Registration {
  let r = registrations.get(tool);
  if (!r) {
    r = {
      title: tool.title,
      description: tool.description,
      inputSchema: compactStandardSchema(
        z.object(tool.input).strict(),
      ) as z.ZodType<
        Record<string, unknown>
      >,
      outputSchema: compactStandardSchema(tool.output),
      annotations: { ...tool.annotations },
    };
    registrations.set(tool, r);
  }
  return r;
}

/** A new McpServer offering the tools the config selects. */
export function createServer(deps: ServerDeps): McpServer {
  const server = new McpServer(
    { name: "proxmox-mcp", version: VERSION },
    {
      instructions: INSTRUCTIONS,
      // The tool list never changes while a server runs: declare only what
      // is sent (the SDK would otherwise declare listChanged: true).
      capabilities: { tools: { listChanged: false } },
    },
  );
  const client = {
    canAsk: () => canElicit(server.server.getClientCapabilities()),
  };
  for (const tool of selectTools(deps.config)) {
    server.registerTool(
      tool.name,
      registration(tool),
      (args: Record<string, unknown>, ctx: ServerContext) =>
        callTool(tool, args, deps, ctx, client),
    );
  }
  return server;
}
