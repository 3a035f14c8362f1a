# syntax=docker/dockerfile:1
# genesys-cloud-exporter: the release binary alone on distroless cc (glibc, libgcc and the CA certificates, no shell),
# running as the image's non-root user 65532 (the Helm chart's runAsUser).
#   docker build -t genesys-cloud-exporter --build-arg GIT_REVISION=$(git rev-parse --short HEAD) .

# The toolchain the project is built and tested with (Cargo.toml's rust-version is the minimum).
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# .git is not in the build context (.dockerignore); build.rs takes the revision from here instead.
ARG GIT_REVISION=unknown
ENV GIT_REVISION=${GIT_REVISION}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin genesys-cloud-exporter \
    && install -D -m 0755 target/release/genesys-cloud-exporter /out/genesys-cloud-exporter

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/genesys-cloud-exporter /usr/local/bin/genesys-cloud-exporter
USER 65532:65532
EXPOSE 9888
ENTRYPOINT ["/usr/local/bin/genesys-cloud-exporter"]
CMD ["run"]
