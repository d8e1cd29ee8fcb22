# zstream service image: `zstream serve`, non-root, health-checked on /healthz (liveness).
#
#   docker build -t zstream:0.1.0 .                                 # CPU torch (default, small)
#   docker build --build-arg VARIANT=cuda -t zstream:0.1.0-cuda .   # CUDA torch (NVIDIA container runtime)
#
# Configuration: mount a TOML file and pass `--config FILE`, and/or set ZSTREAM_* environment
# variables (see docs/configuration.md). The image sets no ZSTREAM_* variable itself, so a
# mounted file is never silently overridden.

ARG PYTHON_VERSION=3.11
# cpu | cuda: which torch build goes into the image.
ARG VARIANT=cpu

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- build stages: a virtualenv holding torch, then zstream and its dependencies -----------
FROM base AS venv
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./

# The CPU wheel comes from the PyTorch CPU index; PyPI's default torch wheel is the CUDA build.
FROM venv AS torch-cpu
RUN pip install -c constraints.txt --index-url https://download.pytorch.org/whl/cpu torch

FROM venv AS torch-cuda
RUN pip install -c constraints.txt torch

FROM torch-${VARIANT} AS builder
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install -c constraints.txt .

# --- runtime: the virtualenv only, run as an unprivileged user ----------------------------
FROM base AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="zstream" \
      org.opencontainers.image.description="Streaming NMF redshifts: Kafka in, redshifts, source/false and blend decisions out" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      io.zstream.variant="${VARIANT}"
RUN groupadd --system --gid 10001 zstream \
    && useradd --system --uid 10001 --gid zstream --home-dir /var/lib/zstream --create-home \
       --shell /usr/sbin/nologin zstream
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Archive and basis versions live here unless the configuration says otherwise.
WORKDIR /var/lib/zstream
USER 10001:10001
EXPOSE 9108
# Healthy = the consume loop made progress within liveness_timeout_s (a stuck loop turns unhealthy;
# a replica waiting for Kafka stays healthy but not ready, see /readyz). The port follows
# ZSTREAM_METRICS_PORT when set; keep the metrics host reachable on loopback (0.0.0.0 or 127.0.0.1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ZSTREAM_METRICS_PORT', '9108') + '/healthz', timeout=4)"]
ENTRYPOINT ["zstream", "serve"]
