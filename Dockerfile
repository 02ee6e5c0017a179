# proxmox-mcp: a distroless, non-root image that runs with explicit Deno permissions and a
# read-only root file system. stdio by default; MCP_TRANSPORT=http serves /mcp and /sse on 8000.
#   docker build -t proxmox-mcp .
#   docker run -i --rm --read-only --env-file proxmox.env proxmox-mcp
# Narrow the network grant by replacing the command:
#   docker run -i --rm --read-only --env-file proxmox.env proxmox-mcp \
#     --allow-net=pve.example.com:8006 src/main.ts
ARG DENO_VERSION=2.9.6

# Build: resolve and cache every module (npm packages included) from the lock file.
FROM denoland/deno:debian-${DENO_VERSION} AS build
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1
WORKDIR /app
COPY deno.json deno.lock ./
COPY src/ src/
RUN ["deno", "install", "--frozen", "--entrypoint", "src/main.ts"]
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
CMD ["--allow-net", "src/main.ts"]
