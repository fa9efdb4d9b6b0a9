# The controller image: `actsearch-ctl operator`, and in the chart also the bundled MLflow server,
# the bucket hook and `helm test` (one image to pull besides the trainer's).
# Build from the repository root:
#   docker build --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index> -t actsearch:0.1.0 .
#
# torch is a core dependency (the search policy is a small torch network, run on CPU here). With
# TORCH_INDEX_URL set to PyTorch's CPU wheel index, the builder takes the CPU wheels first (a few
# hundred MB instead of the ~5 GB CUDA build); their versions (2.14.1+cpu) satisfy the package's
# pins, so pip keeps them. Without it, the default index's (CUDA) build is installed.
# The final stage copies only the virtual environment: no pip cache, no compiler, no sources.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /app/venv
COPY pyproject.toml constraints.txt README.md ./
COPY orchestrator ./orchestrator
# psycopg2-binary: the MLflow server's PostgreSQL driver (chart: mlflow.backendStore.type postgresql)
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        /app/venv/bin/pip install --index-url "$TORCH_INDEX_URL" torch==2.14.1 torchvision==0.29.1; \
    fi \
 && /app/venv/bin/pip install -c constraints.txt . psycopg2-binary==2.9.13 \
 && /app/venv/bin/python -c "import torch, orchestrator.cli, mlflow, psycopg2, flask_wtf"

FROM ${PYTHON_IMAGE}
ARG GIT_SHA=""
RUN useradd --create-home --uid 10001 --user-group actsearch
COPY --from=build /app/venv /app/venv
ENV PATH=/app/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ACTSEARCH_GIT_SHA=${GIT_SHA} \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /home/actsearch
ENTRYPOINT ["actsearch-ctl"]
CMD ["--help"]
