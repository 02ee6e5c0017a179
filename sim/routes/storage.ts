/**
 * Storage status and content (SEMANTICS §6): the storages of a node with
 * their usage (which grows as volumes such as backup archives appear), and
 * volume listings with PVE's fields per content type.
 */
import { bool, int, type Route, type SimRequest, str } from "../router.ts";
import {
  type Cluster,
  SimError,
  type StorageDef,
  type Volume,
} from "../state.ts";

/** The storages configured for a node, in storage.cfg order. */
export function storagesOf(c: Cluster, node: string): StorageDef[] {
  return c.storages.filter((s) => !s.nodes || s.nodes.includes(node));
}

/** Status fields of a storage on a node (`active` needs `enabled`). */
export function storageStatus(
  c: Cluster,
  s: StorageDef,
  node: string,
): Record<string, unknown> {
  const e: Record<string, unknown> = {
    type: s.type,
    content: s.content.join(","),
    active: s.enabled && !s.offline ? 1 : 0,
    enabled: s.enabled ? 1 : 0,
    shared: s.shared ? 1 : 0,
  };
  if (s.enabled && !s.offline) {
    const used = c.storageUsed(s, node);
    e.total = s.total;
    e.used = used;
    e.avail = Math.max(0, s.total - used);
  }
  return e;
}

/** Content listing order of PVE's directory plugin. */
const CONTENT_ORDER = [
  "images",
  "rootdir",
  "vztmpl",
  "iso",
  "backup",
  "snippets",
  "import",
];

/** A volume as `GET .../storage/{storage}/content` lists it. */
export function contentEntry(c: Cluster, v: Volume): Record<string, unknown> {
  const e: Record<string, unknown> = {
    volid: v.volid,
    content: v.content,
    format: v.format,
    size: v.size,
  };
  if (v.content === "images" || v.content === "rootdir") {
    const owner = v.vmid === undefined ? undefined : c.guests.get(v.vmid);
    e.content = owner?.type === "lxc" ? "rootdir" : "images";
    e.vmid = v.vmid;
    e.used = v.size;
    const base = /^[^:]+:(base-\d+-disk-\d+)\//.exec(v.volid);
    if (base) e.parent = base[1];
  } else {
    e.ctime = v.ctime;
  }
  if (v.content === "backup") {
    if (v.vmid !== undefined) e.vmid = v.vmid;
    if (v.subtype) e.subtype = v.subtype;
    if (v.notes !== undefined) e.notes = v.notes;
    if (v.protected) e.protected = 1;
  }
  return e;
}

function storageOn(req: SimRequest): { s: StorageDef; node: string } {
  const node = str(req, "node")!;
  const id = str(req, "storage")!;
  const s = req.cluster.storage(id, node);
  return { s, node };
}

export const STORAGE_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/nodes/{node}/storage",
    handler: (req) => {
      const c = req.cluster;
      const node = str(req, "node")!;
      const only = str(req, "storage");
      const want = str(req, "content")?.split(/[,;\s]+/).filter(Boolean);
      const enabledOnly = bool(req, "enabled") ?? false;
      const list = storagesOf(c, node);
      if (only !== undefined && !list.some((s) => s.storage === only)) {
        throw SimError.param({ storage: "No such storage." });
      }
      return list
        .filter((s) => only === undefined || s.storage === only)
        .filter((s) => !want || want.some((t) => s.content.includes(t)))
        .filter((s) => !enabledOnly || s.enabled)
        .map((s) => {
          const e: Record<string, unknown> = {
            storage: s.storage,
            ...storageStatus(c, s, node),
          };
          if (typeof e.total === "number" && e.total > 0) {
            e.used_fraction = (e.used as number) / e.total;
          }
          return e;
        });
    },
  },
  {
    method: "GET",
    path: "/nodes/{node}/storage/{storage}/status",
    handler: (req) => {
      const { s, node } = storageOn(req);
      return storageStatus(req.cluster, s, node);
    },
  },
  {
    method: "GET",
    path: "/nodes/{node}/storage/{storage}/content",
    handler: (req) => {
      const c = req.cluster;
      const { s, node } = storageOn(req);
      if (!s.enabled) {
        throw new SimError(500, `storage '${s.storage}' is not available`);
      }
      if (s.offline) {
        // PVE::Storage::activate_storage, when the backend does not answer.
        throw new SimError(500, `storage '${s.storage}' is not online`);
      }
      const content = str(req, "content");
      const vmid = int(req, "vmid");
      return c.volumesOn(s, node)
        .map((v) => contentEntry(c, v))
        .filter((e) => content === undefined || e.content === content)
        .filter((e) => vmid === undefined || e.vmid === vmid)
        .sort((a, b) =>
          CONTENT_ORDER.indexOf(String(a.content)) -
            CONTENT_ORDER.indexOf(String(b.content)) ||
          String(a.volid).localeCompare(String(b.volid))
        );
    },
  },
];
