# syntax=docker/dockerfile:1
# Skiff container image: a static binary on distroless, running as non-root.
#
#   docker build -t skiff .
#   docker run -p 9092:9092 -v skiff-data:/var/lib/skiff skiff
#
# Configure with SKIFF_* variables (see README) or Kafka settings in a
# server.properties mounted at $SKIFF_CONFIG.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The image carries cluster support (etcd), for docker-compose.cluster.yml
# too; SKIFF_BUILD_TAGS="" builds the leaner single-node binary.
ARG SKIFF_BUILD_TAGS=etcd
RUN CGO_ENABLED=0 go build -tags "$SKIFF_BUILD_TAGS" -trimpath -ldflags="-s -w" -o /out/skiff ./cmd/skiff \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/skiff /usr/local/bin/skiff
# Owned by the nonroot user (65532) so that a fresh named volume mounted
# here is writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/skiff
ENV SKIFF_LISTEN=0.0.0.0:9092 \
	SKIFF_ADVERTISE=localhost:9092 \
	SKIFF_DATA_DIR=/var/lib/skiff \
	SKIFF_HTTP_LISTEN=0.0.0.0:9644 \
	SKIFF_LOG_LEVEL=info \
	SKIFF_LOG_FORMAT=json
USER nonroot:nonroot
# 9644: /metrics, /healthz, /readyz
EXPOSE 9092 9644
VOLUME ["/var/lib/skiff"]
# No shell in the image: the binary checks itself with an ApiVersions call.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
	CMD ["/usr/local/bin/skiff", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/skiff"]
