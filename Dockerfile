# syntax=docker/dockerfile:1
# penumbra: multi-stage build. Build with dev dependencies, run with production ones only,
# on Node 24 LTS, as a non-root user.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PENUMBRA_CONFIG=/etc/penumbra/penumbra.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
COPY config/example.yaml /etc/penumbra/penumbra.yaml
# A numeric UID:GID (the image's `node` user, 1000:1000): kubelet can only verify
# `runAsNonRoot: true` against a number, and refuses to start a container whose USER is a name.
USER 1000:1000
EXPOSE 8080 9901
# /healthz answers 200 while the process serves. The admin port must be reachable from inside
# the container (admin.host 127.0.0.1 is fine: the probe runs in the same network namespace).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/penumbra/penumbra.yaml"]
