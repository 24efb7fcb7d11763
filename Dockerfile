# syntax=docker/dockerfile:1
# One image for every pushbench role in a cluster (deploy/k8s/): the load generator
# (`pushbench run --shard I/N`, `pushbench merge`) and the server (`feed-server`).
#
#   docker build -t pushbench:latest .
#
# (the tag deploy/k8s/ runs; docs/distributed.md: pushing it to a registry, or loading it into
# kind/minikube). Redis and nginx come from their own images (redis:7, nginx:1.27).

# --- build -----------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
# plotters (the report's charts) links the system fontconfig and freetype through pkg-config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libfontconfig1-dev libfreetype-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo reads every member's manifest, and the binaries embed files from
# outside their crates (scenarios/reference.toml, deploy/nginx/pushbench.conf.template).
COPY . .
# Cache mounts keep the registry and the build between image builds; the binaries are copied
# out of the cached target folder, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pushbench -p feed-server \
    && install -D -m 0755 target/release/pushbench target/release/feed-server -t /out/

# --- run -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: https:// and wss:// targets. libfontconfig1, libfreetype6 and DejaVu: the
# report's charts (plotters renders its text with the system fonts; without a font the charts
# come out without titles and labels). tar: `kubectl cp` of the results needs it in the
# container (bookworm-slim has it; named so it stays).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates libfontconfig1 libfreetype6 fonts-dejavu-core tar \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/pushbench /out/feed-server /usr/local/bin/
COPY scenarios/ /opt/pushbench/scenarios/
# Not root. The Kubernetes pods set fsGroup 10001 so this user can write the results volume.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent pushbench \
    && install -d -o pushbench -g pushbench /results
USER 10001:10001
WORKDIR /opt/pushbench
# feed-server's default port in deploy/k8s (`--listen 0.0.0.0:8080`).
EXPOSE 8080
CMD ["pushbench", "--help"]
