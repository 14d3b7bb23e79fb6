# pipeline-cli as a container image, built without Rust on the host:
#
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#                -t registry.example.com/pipeline-cli:0.1.0 .
#   docker run --rm registry.example.com/pipeline-cli:0.1.0 --version
#
# The name and tag are those deploy/kubernetes/*.yaml run (the tag is
# Cargo.toml's version); the manifests start /usr/local/bin/pipeline-cli as
# user 65532, which this image is. Files the run reads or writes (config,
# state file, dead-letter file) are mounted; the metrics server must listen on
# the pod's address: --metrics-host 0.0.0.0.

# Build stage: the release binary, from Cargo.lock's exact dependencies.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# `--version` names the git revision; the build context has no .git.
ARG REVISION=unknown
ENV PIPELINE_GIT_REVISION=${REVISION}
RUN cargo build --release --locked

# Runtime stage: glibc, libgcc, CA certificates and the binary; no shell,
# no package manager, no compiler.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pipeline-cli" \
      org.opencontainers.image.description="ETL from CSV, NDJSON or Elasticsearch/OpenSearch into JSON lines or MySQL/MariaDB, with Prometheus metrics" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.ref.name="registry.example.com/pipeline-cli:0.1.0"
COPY --from=build /src/target/release/pipeline-cli /usr/local/bin/pipeline-cli
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/pipeline-cli"]
CMD ["--help"]
