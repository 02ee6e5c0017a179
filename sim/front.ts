/**
 * A relay in front of the simulator's Deno.serve (opt-in `rawSockets`): it
 * owns the client's TCP (or TLS) connection, so a `reset` fault can close it
 * before a single byte of the answer went out, which Deno.serve alone cannot.
 */

interface Link {
  client: Deno.Conn;
  upstream: Deno.Conn;
}

export interface Front {
  /** The port clients connect to. */
  port: number;
  /** Closes the client connection behind an upstream port (the request's remote port). */
  drop(upstreamPort: number): boolean;
  close(): Promise<void>;
}

export interface FrontOptions {
  hostname: string;
  port: number;
  /** The simulator's own listener on 127.0.0.1. */
  target: number;
  tls?: { cert: string; key: string };
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

export function startFront(options: FrontOptions): Front {
  const listener = options.tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.tls.cert,
      key: options.tls.key,
      alpnProtocols: ["http/1.1"],
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  const links = new Map<number, Link>();
  const relays = new Set<Promise<void>>();

  const relay = async (client: Deno.Conn) => {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({
        hostname: "127.0.0.1",
        port: options.target,
      });
    } catch {
      closeQuietly(client);
      return;
    }
    const key = (upstream.localAddr as Deno.NetAddr).port;
    links.set(key, { client, upstream });
    await Promise.allSettled([
      client.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(client.writable),
    ]);
    links.delete(key);
    closeQuietly(client);
    closeQuietly(upstream);
  };

  const accepting = (async () => {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // listener closed
      }
      const p = relay(client).catch(() => {});
      relays.add(p);
      p.finally(() => relays.delete(p));
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    drop(upstreamPort) {
      const link = links.get(upstreamPort);
      if (!link) return false;
      links.delete(upstreamPort);
      closeQuietly(link.client);
      closeQuietly(link.upstream);
      return true;
    },
    async close() {
      listener.close();
      await accepting;
      for (const link of links.values()) {
        closeQuietly(link.client);
        closeQuietly(link.upstream);
      }
      await Promise.allSettled([...relays]);
    },
  };
}
