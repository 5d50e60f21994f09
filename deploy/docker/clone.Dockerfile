# syntax=docker/dockerfile:1
# The voice-cloning service alone: libs/common and services/clone, nothing of the other
# services.
#   docker build -f deploy/docker/clone.Dockerfile -t parley/clone .
# tests/deploy runs the install step below, as written, in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/parley/bin:$PATH
RUN python -m venv /opt/parley
WORKDIR /src
COPY libs/common libs/common
COPY services/clone services/clone
RUN pip install ./libs/common ./services/clone

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley
COPY --from=build /opt/parley /opt/parley
COPY deploy/docker/healthcheck.py /usr/local/lib/parley/healthcheck.py
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    CLONE_HTTP_HOST=0.0.0.0 \
    CLONE_HTTP_PORT=9104
USER 10001:10001
WORKDIR /home/parley
EXPOSE 9104
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/parley/healthcheck.py", "CLONE"]
CMD ["python", "-m", "parley_clone"]
