/** Route declarations for the simulator: what every routes file exports. */
import type { Cluster } from "./state.ts";
import { SimError } from "./state.ts";

export type ParamValue = string | string[] | number | boolean;

export interface SimRequest {
  method: string;
  /** Concrete path without /api2/json. */
  path: string;
  /** Query, body and path parameters merged. */
  params: Record<string, ParamValue>;
  /** `root@pam` or `root@pam!tokenid`. */
  user: string;
  /** Whether the caller used a token (root-only options never match one). */
  isToken: boolean;
  cluster: Cluster;
}

export type Handler = (req: SimRequest) => unknown | Promise<unknown>;

export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  handler: Handler;
}

export interface MatchedRoute {
  route: Route;
  pathParams: Record<string, string>;
}

/** Matches concrete paths against route templates. */
export class Router {
  #byLength = new Map<number, { route: Route; parts: string[] }[]>();

  constructor(routes: Route[]) {
    for (const route of routes) {
      const parts = route.path.split("/").slice(1);
      const list = this.#byLength.get(parts.length) ?? [];
      list.push({ route, parts });
      this.#byLength.set(parts.length, list);
    }
    // Literal segments beat parameters.
    for (const list of this.#byLength.values()) {
      list.sort((a, b) => score(b.parts) - score(a.parts));
    }
  }

  match(method: string, path: string): MatchedRoute | null {
    const segs = path.split("/").slice(1);
    for (const { route, parts } of this.#byLength.get(segs.length) ?? []) {
      if (route.method !== method) continue;
      const pathParams: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        if (p.startsWith("{")) {
          pathParams[p.slice(1, -1)] = decodeURIComponent(segs[i]);
        } else if (p !== segs[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return { route, pathParams };
    }
    return null;
  }
}

function score(parts: string[]): number {
  return parts.filter((p) => !p.startsWith("{")).length;
}

// Parameter readers with PVE's wording for the simple cases.
export function str(req: SimRequest, name: string): string | undefined {
  const v = req.params[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(",") : String(v);
}

export function need(req: SimRequest, name: string): string {
  const v = str(req, name);
  if (v === undefined) {
    throw SimError.param({
      [name]: "property is missing and it is not optional",
    });
  }
  return v;
}

export function int(req: SimRequest, name: string): number | undefined {
  const v = str(req, name);
  if (v === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(v)) {
    throw SimError.param({
      [name]: `type check ('integer') failed - got '${v}'`,
    });
  }
  return parseInt(v, 10);
}

export function bool(req: SimRequest, name: string): boolean | undefined {
  const v = req.params[name];
  if (v === undefined) return undefined;
  if (v === true || v === "1" || v === 1) return true;
  if (v === false || v === "0" || v === 0) return false;
  throw SimError.param({
    [name]: `type check ('boolean') failed - got '${v}'`,
  });
}

export const TOTAL: unique symbol = Symbol("total");

/** A handler's answer with PVE's top-level `total` beside `data`. */
export function withTotal<T extends object>(data: T, total: number): T {
  return Object.assign(data, { [TOTAL]: total });
}
