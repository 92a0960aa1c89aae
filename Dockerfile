# fairgate's container images, built from the repository root. docker-compose.yml
# builds the two it needs; by hand:
#
#   docker build --target runtime -t fairgate:dev .
#       fairgate-sidecar, fairgate-mock and fairgate-loadgen (release) on Debian slim
#   docker build --target wasm -t fairgate-filter:dev .
#       the filter alone, as /plugin.wasm in an otherwise empty image: the OCI "compat"
#       layout Istio's WasmPlugin pulls (deploy/wasm-image/Dockerfile packages a
#       filter built outside Docker the same way)
#   docker build --target wasm-export -t fairgate-filter-export:dev .
#       copies the filter into the volume Envoy mounts (docker-compose.yml)
#
# Plain Dockerfile syntax (no BuildKit-only flags), so docker-compose v1's builder
# works too. RUST_VERSION: any toolchain at or above the workspace's rust-version.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS source
WORKDIR /src
RUN rustup target add wasm32-wasip1
COPY . .

FROM source AS build
RUN cargo build --release --locked \
        --bin fairgate-sidecar --bin fairgate-mock --bin fairgate-loadgen \
 && mkdir -p /out \
 && cp target/release/fairgate-sidecar target/release/fairgate-mock \
       target/release/fairgate-loadgen /out/

FROM source AS wasm-build
RUN cargo build --release --locked -p fairgate-filter --target wasm32-wasip1 \
 && cp target/wasm32-wasip1/release/fairgate_filter.wasm /plugin.wasm

FROM scratch AS wasm
COPY --from=wasm-build /plugin.wasm /plugin.wasm

FROM busybox:1.36 AS wasm-export
COPY --from=wasm-build /plugin.wasm /fairgate_filter.wasm
CMD ["cp", "/fairgate_filter.wasm", "/wasm/fairgate_filter.wasm"]

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# curl: health checks in docker-compose.yml. The sidecar loads libnvidia-ml.so.1 at
# run time: on a GPU host run it with the NVIDIA container runtime (--gpus all);
# without one, `--source sim`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /opt/fairgate fairgate \
 && mkdir -p /opt/fairgate && chown fairgate /opt/fairgate
COPY --from=build /out/ /usr/local/bin/
WORKDIR /opt/fairgate
USER 10001
CMD ["fairgate-sidecar", "--help"]
