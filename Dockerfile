# yzpay: one image with all four binaries (yzpay, gateway, tradefetcher,
# notifier). No ENTRYPOINT: choose the binary with the command, e.g.
#   docker run --rm -p 8080:8080 yzpay yzpay serve --sandbox
#   docker run --rm --env-file .env yzpay gateway
# docker-compose.yml runs each service from this image.

FROM golang:1.26 AS build
WORKDIR /src
# The workspace and every module's go.mod (and go.sum, where there is one)
# first, so that dependencies are downloaded in a layer that survives source
# changes.
COPY go.work go.work.sum ./
COPY shared/go.* shared/
COPY migrations/go.* migrations/
COPY services/gateway/go.* services/gateway/
COPY services/tradefetcher/go.* services/tradefetcher/
COPY services/notifier/go.* services/notifier/
COPY cmd/yzpay/go.* cmd/yzpay/
RUN go mod download
# Only the sources: no envrc, data/ or bin/ from the build context.
COPY shared/ shared/
COPY migrations/ migrations/
COPY services/ services/
COPY cmd/ cmd/
ARG VERSION=dev
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/root/.cache/go-build \
    LDFLAGS="-s -w -X github.com/yzpay/yzpay/cmd/yzpay/app.Version=${VERSION}" && \
    go build -trimpath -ldflags "$LDFLAGS" -o /out/yzpay ./cmd/yzpay && \
    go build -trimpath -ldflags "$LDFLAGS" -o /out/gateway ./services/gateway/cmd/gateway && \
    go build -trimpath -ldflags "$LDFLAGS" -o /out/tradefetcher ./services/tradefetcher/cmd/tradefetcher && \
    go build -trimpath -ldflags "$LDFLAGS" -o /out/notifier ./services/notifier/cmd/notifier

FROM alpine:3.22
# Static binaries; alpine brings the CA bundle (TLS to Youzan and to https
# merchant endpoints is verified) and busybox wget for health checks.
RUN addgroup -S -g 10001 yzpay && adduser -S -D -H -u 10001 -G yzpay yzpay && \
    mkdir -p /var/lib/yzpay && chown yzpay:yzpay /var/lib/yzpay
COPY --from=build /out/ /usr/local/bin/
# `yzpay serve` keeps DATA_DIR (./data) here when it runs without NATS_URL
# and DATABASE_URL.
WORKDIR /var/lib/yzpay
USER 10001:10001
# gateway (and yzpay serve); tradefetcher and notifier METRICS_ADDR defaults.
EXPOSE 8080 9100 9101 9102
CMD ["yzpay", "help"]
