# syntax=docker/dockerfile:1
# The llm worker alone: libs/common and services/llm, nothing of the other services.
#   docker build -f deploy/docker/llm.Dockerfile -t parley/llm .                   # + llama.cpp, Gemma
#   docker build -f deploy/docker/llm.Dockerfile --build-arg EXTRAS= -t parley/llm:cloud .
# EXTRAS=local (the default) compiles llama-cpp-python in the build stage, whose compilers never
# reach the final image; the cloud image has no llama.cpp and compiles nothing.
# tests/deploy runs the install step below, as written, in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=local
# A portable build (x86-64-v3: AVX2/FMA) instead of -march=native, which would tie the image
# to the CPU that built it; llama.cpp's own thread pool instead of OpenMP, so the final image
# needs no libgomp; and not the multimodal library, which the bindings never load.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/parley/bin:$PATH \
    CMAKE_ARGS=${LLAMA_CMAKE_ARGS}
# The compilers come from the pinned base image's Debian release and live in this stage only.
# hadolint ignore=DL3008
RUN if [ -n "$EXTRAS" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/parley
WORKDIR /src
COPY libs/common libs/common
COPY services/llm services/llm
RUN pip install ./libs/common "./services/llm${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley
COPY --from=build /opt/parley /opt/parley
COPY deploy/docker/healthcheck.py /usr/local/lib/parley/healthcheck.py
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PARLEY_MODEL_CACHE=/home/parley/.cache/parley/models \
    LLM_HTTP_HOST=0.0.0.0 \
    LLM_HTTP_PORT=9102
USER 10001:10001
WORKDIR /home/parley
EXPOSE 9102
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/lib/parley/healthcheck.py", "LLM"]
CMD ["python", "-m", "parley_llm"]
