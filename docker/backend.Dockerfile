# The backend: FastAPI + ONNX Runtime, the model baked in. No torch, no build tools in the final stage.
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE} AS build
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates binutils \
    && update-ca-certificates && rm -rf /var/lib/apt/lists/*
COPY app/backend/requirements.txt /tmp/requirements.txt
# Left out of the final venv: packaging tools, tests, onnxruntime's C library and offline tools (the Python
# binding is self-contained: it does not link libonnxruntime.so), simdjson's C++ sources and its library's debug
# symbols (7.5 MB, 0.6 MB without them). Only that library is stripped: the wheels' vendored libraries (numpy's
# OpenBLAS) were rewritten by patchelf, and strip leaves them unloadable. `cd`, not WORKDIR: the path has a glob.
# hadolint ignore=DL3003
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --progress-bar off -r /tmp/requirements.txt \
    && cd /opt/venv/lib/python3*/site-packages \
    && rm -rf pip setuptools pkg_resources _distutils_hack distutils-precedence.pth numpy/tests numpy/*/tests \
        onnxruntime/capi/libonnxruntime.so* onnxruntime/transformers onnxruntime/quantization onnxruntime/tools \
        simdjson/*.cpp simdjson/*.h simdjson/*.pyx simdjson/*.pxd \
    && strip --strip-unneeded csimdjson*.so \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
    && python3 -m compileall -q -j0 --invalidation-mode unchecked-hash /opt/venv/lib

FROM ${BASE_IMAGE}
# /var/lib/mnist: the feedback database's folder, where compose mounts the volume feedback-data (owned by the app).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
        /usr/lib/python3.11/test /usr/lib/python3.11/idlelib /usr/lib/python3.11/ensurepip \
        /usr/lib/python3.11/lib2to3 /usr/lib/python3.11/tkinter /usr/lib/python3.11/turtledemo \
        /usr/lib/python3.11/pydoc_data \
    && find /usr/lib/python3.11 -name __pycache__ -prune -exec rm -rf {} + \
    && python3 -m compileall -q -j0 --invalidation-mode unchecked-hash /usr/lib/python3.11 \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mnist \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/mnist
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app/__init__.py app/__init__.py
COPY app/mnist app/mnist
COPY app/backend app/backend
# Bytecode compiled here, once (unchecked-hash: valid whatever the files' times): a replica that compiled its imports
# at every start took 1-2 s longer to become ready, and each health check's Python 0.3 s longer.
RUN python3 -m compileall -q -j0 --invalidation-mode unchecked-hash /app/app
# MODEL_DIR: the model store, relative to the build context (models/, or build/release-models/ for CI releases).
ARG MODEL_DIR=models
ARG MODEL_VERSION
COPY ${MODEL_DIR}/${MODEL_VERSION}/model.onnx ${MODEL_DIR}/${MODEL_VERSION}/metadata.json /app/models/${MODEL_VERSION}/
RUN echo "${MODEL_VERSION}" > /app/models/current
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MNIST_MODEL_DIR=/app/models PROMETHEUS_MULTIPROC_DIR=/tmp/metrics HOME=/tmp
USER 10001:10001
# The port is MNIST_PORT (compose sets it from mnist_stack_backend_port); 8000 without it.
EXPOSE 8000
# Every 2 s: a deploy waits for Docker to call a new replica healthy before the old ones leave.
HEALTHCHECK --interval=2s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('MNIST_PORT', '8000'), timeout=2)"]
CMD ["python3", "-m", "app.backend"]
