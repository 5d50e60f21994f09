# syntax=docker/dockerfile:1
# The gateway alone: libs/common, the call page (clients/) and services/gateway.
#   docker build -f deploy/docker/gateway.Dockerfile -t parley/gateway .
# It listens on 0.0.0.0, so it refuses to start without PARLEY_JWT_SECRET (or
# PARLEY_JWT_PUBLIC_KEY / PARLEY_JWT_JWKS_FILE). tests/deploy runs the install step below, as
# written, in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/parley/bin:$PATH
RUN python -m venv /opt/parley
WORKDIR /src
COPY libs/common libs/common
COPY clients clients
COPY services/gateway services/gateway
RUN pip install ./libs/common ./clients ./services/gateway

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley
COPY --from=build /opt/parley /opt/parley
COPY deploy/docker/healthcheck.py /usr/local/lib/parley/healthcheck.py
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    GATEWAY_HTTP_HOST=0.0.0.0 \
    GATEWAY_HTTP_PORT=8000
USER 10001:10001
WORKDIR /home/parley
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/parley/healthcheck.py", "GATEWAY"]
CMD ["python", "-m", "parley_gateway"]
