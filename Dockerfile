# syntax=docker/dockerfile:1
#
# erpgate's image: the gateway binary, static (CGO_ENABLED=0), on distroless
# static (CA certificates and time zones, no shell), run as nonroot (65532).
#
#   docker build -t erpgate/gateway:0.1.0 .
#   docker run --rm --read-only --tmpfs /config --tmpfs /tmp -v erpgate-data:/data \
#     -p 8080:8080 erpgate/gateway:0.1.0
#
# The root file system can be read-only: the gateway writes only under
#   /data    XDG_DATA_HOME: Caddy's data (certificates, the internal CA,
#            locks) and the embedded NATS file store when ERP_NATS_URL is
#            empty; a volume, so that certificates survive a restart
#   /config  XDG_CONFIG_HOME: Caddy's autosave.json; a tmpfs is enough
#   /tmp     temporary files (the base image's, world-writable); a tmpfs
# The default command runs deploy/Caddyfile (the compose deployment's);
# mount another at /etc/erpgate/Caddyfile or pass --config.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway && \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck
# Caddy's directories, owned by nonroot, so that a fresh volume mounted on
# them starts with that owner
RUN mkdir -p /out/data /out/config

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/bin/gateway
COPY --from=build /out/healthcheck /usr/bin/healthcheck
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/config /config
COPY deploy/Caddyfile /etc/erpgate/Caddyfile
ENV XDG_DATA_HOME=/data \
    XDG_CONFIG_HOME=/config \
    HOME=/data \
    TMPDIR=/tmp \
    ERP_LISTEN=:8080
USER 65532:65532
EXPOSE 8080 9180
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/bin/healthcheck", "http://127.0.0.1:8080/health/live"]
ENTRYPOINT ["/usr/bin/gateway"]
CMD ["run", "--config", "/etc/erpgate/Caddyfile", "--adapter", "caddyfile"]
