# syntax=docker/dockerfile:1
# The tts worker alone: libs/common and services/tts, nothing of the other services.
#   docker build -f deploy/docker/tts.Dockerfile -t parley/tts .                   # + Piper, "joe"
#   docker build -f deploy/docker/tts.Dockerfile --build-arg EXTRAS= -t parley/tts:cloud .
# EXTRAS=local (the default) adds Piper (GPL-3.0) and its voice; the cloud image has neither
# and speaks through the cloud providers only.
# tests/deploy runs the install step below, as written, in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=local
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/parley/bin:$PATH
RUN python -m venv /opt/parley
WORKDIR /src
COPY libs/common libs/common
COPY services/tts services/tts
RUN pip install ./libs/common "./services/tts${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley
COPY --from=build /opt/parley /opt/parley
COPY deploy/docker/healthcheck.py /usr/local/lib/parley/healthcheck.py
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PARLEY_MODEL_CACHE=/home/parley/.cache/parley/models \
    TTS_HTTP_HOST=0.0.0.0 \
    TTS_HTTP_PORT=9103
USER 10001:10001
WORKDIR /home/parley
EXPOSE 9103
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/lib/parley/healthcheck.py", "TTS"]
CMD ["python", "-m", "parley_tts"]
