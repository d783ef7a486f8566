# syntax=docker/dockerfile:1
#
# Strait image: one static binary on distroless, non-root.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t strait .
# (or `make docker`).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-buildvcs=false

# Module download first, so source edits reuse this layer and the module cache.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/strait ./cmd/strait

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strait /strait
USER 65532:65532
# 18000: xDS (gRPC ADS); 9901: admin (/healthz, /readyz, /metrics, /debug/...).
EXPOSE 18000 9901
ENTRYPOINT ["/strait"]
