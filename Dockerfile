# proxmox-mcp: a distroless, non-root image that runs with explicit Deno permissions and a
# read-only root file system. stdio by default; MCP_TRANSPORT=http serves /mcp and /sse on 8000.
#   docker build -t proxmox-mcp .
#   docker run -i --rm --read-only --env-file proxmox.env proxmox-mcp
# It runs the bundle (`deno task bundle`: dist/bundle/main.js, a first tool answer in about 70 %
# of the time the sources take). Narrow the network grant by replacing the command:
#   docker run -i --rm --read-only --env-file proxmox.env proxmox-mcp \
#     --no-config --unstable-no-legacy-abort --v8-flags=--min-semi-space-size=16 \
#     --allow-net=pve.example.com:8006 dist/bundle/main.js
# (`--allow-net=... src/main.ts` runs the sources, as before.)
ARG DENO_VERSION=2.9.6

# Build: resolve and cache every module (npm packages included) from the lock file.
FROM denoland/deno:debian-${DENO_VERSION} AS build
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1
WORKDIR /app
COPY deno.json deno.lock ./
COPY src/ src/
COPY sim/ sim/
COPY scripts/bundle.ts scripts/
RUN ["deno", "install", "--frozen", "--entrypoint", "src/main.ts"]
# The bundle the image runs (esbuild, pinned by this Deno release, comes from npm).
RUN ["deno", "run", "--no-prompt", "--allow-read", "--allow-write=dist", "--allow-run", "scripts/bundle.ts"]
# One session against the demo cluster fills V8's code cache for the bundle (opening, a first
# call, then the SDK): the flags must be the run's own, or V8 refuses the cache.
RUN printf '%s\n' \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"build","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' \
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"proxmox_list_nodes","arguments":{}}}' \
    '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"proxmox_start_vm","arguments":{"vmid":100,"dry_run":true}}}' \
  | deno run --cached-only --no-prompt -A --no-config --unstable-no-legacy-abort \
    --v8-flags=--min-semi-space-size=16 dist/bundle/main.js --demo > /dev/null
# The app runs from node_modules/ and the compiled-module cache; npm's download cache can go.
RUN ["rm", "-rf", "/deno-dir/npm"]

FROM denoland/deno:bin-${DENO_VERSION} AS deno

# Run: glibc and CA certificates only; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
# The official MCP registry checks this label against server.json's name.
LABEL io.modelcontextprotocol.server.name="io.github.proxmox-mcp/proxmox-mcp"
COPY --from=deno /deno /usr/local/bin/deno
COPY --from=build /deno-dir /deno-dir
COPY --from=build /app /app
WORKDIR /app
# Nothing is written at run time: the module cache is read-only and complete (--cached-only).
ENV DENO_DIR=/deno-dir \
    DENO_NO_UPDATE_CHECK=1 \
    MCP_HOST=0.0.0.0 \
    MCP_PORT=8000
USER 65532:65532
EXPOSE 8000
STOPSIGNAL SIGTERM
# A PROXMOX_CA_FILE must live under /etc/proxmox-mcp (mount it read-only there).
ENTRYPOINT ["/usr/local/bin/deno", "run", "--cached-only", "--no-prompt", \
  "--allow-env=PROXMOX_*,MCP_*,LOG_LEVEL", \
  "--allow-read=/etc/proxmox-mcp"]
# The bundle's flags (scripts/bundle.ts, bundleRunFlags): no config, deno.json's unstable
# feature, V8's young generation.
CMD ["--no-config", "--unstable-no-legacy-abort", "--v8-flags=--min-semi-space-size=16", \
  "--allow-net", "dist/bundle/main.js"]
