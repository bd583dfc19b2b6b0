# syntax=docker/dockerfile:1
# Trellis kernel image: one image, three roles (TRELLIS_ROLE=all|api|worker). See docs/operations.md.

# --- builder: compiles isolated-vm's native addon and the console, installs the workspaces ---
FROM node:20-bookworm-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY plugin-sdk/package.json plugin-sdk/
COPY sandbox/package.json sandbox/
COPY migrations/package.json migrations/
COPY core/package.json core/
COPY marketplace/package.json marketplace/
COPY plugins/ plugins/
COPY platform/package.json platform/
COPY console/package.json console/
# isolated-vm builds here, against this Node line; the runtime stage copies the result.
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npm rebuild isolated-vm --foreground-scripts
COPY . .
RUN npm run build -w @trellis/console \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm install --no-save --no-audit --no-fund tsx

# --- runtime: Node 20 on Debian slim, no compiler, a non-root user ---
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    TRELLIS_DATA_DIR=/var/lib/trellis \
    NODE_OPTIONS=--no-node-snapshot
RUN groupadd --system --gid 10001 trellis \
 && useradd --system --uid 10001 --gid trellis --home-dir /app --shell /usr/sbin/nologin trellis \
 && mkdir -p /var/lib/trellis && chown trellis:trellis /var/lib/trellis
WORKDIR /app
COPY --from=builder --chown=trellis:trellis /app /app
USER 10001:10001
EXPOSE 3000
# SIGTERM drains (docs/operations.md): in-flight requests and running jobs finish within TRELLIS_DRAIN_TIMEOUT.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--no-node-snapshot", "--import", "tsx", "platform/src/cli.ts"]
CMD ["start"]
