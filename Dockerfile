# syntax=docker/dockerfile:1
# Breeze image: `docker build -t breeze .`
#
# Base: node:22-alpine. package.json declares engines ">=20.10 <25", so Node 20, 22 and 24 all
# qualify; 22 is the maintained LTS line with the longest overlap with that range (Node 20 reached
# end of life in April 2026), and some dependencies (cookie 2.x via fastify) already declare
# Node >= 22. Alpine keeps the image small; Breeze has no native addons, so musl is not a concern.
# Pin a digest (node:22-alpine@sha256:...) in your release pipeline for reproducible builds.

ARG NODE_IMAGE=node:22-alpine

# ---- build: compile TypeScript to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; we build explicitly below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production node_modules only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY protos ./protos
# Non-root, numeric so the kubelet can verify runAsNonRoot (the chart also sets runAsUser 65532).
USER 65532:65532
# Webhooks (HTTPS) and health/metrics (HTTP).
EXPOSE 9443 8080
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--mode", "cluster"]
