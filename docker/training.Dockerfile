# Training: the Kedro pipeline. torch is the CPU build from the wheelhouse (+cpu exists nowhere else), never a CUDA one.
# checkov:skip=CKV_DOCKER_2:a batch job (train, export, register, exit): there is no server to health-check
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE} AS build
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
    && update-ca-certificates && rm -rf /var/lib/apt/lists/*
COPY build/wheelhouse/ /wheels/
COPY app/training/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --progress-bar off --find-links /wheels "torch==2.13.0+cpu" \
    && /opt/venv/bin/pip install --progress-bar off --find-links /wheels -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall --yes kedro-telemetry \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mnist
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app/__init__.py app/__init__.py
COPY app/mnist app/mnist
COPY app/training app/training
# kedro installs kedro-telemetry, which sends usage data unless told not to: it is removed above, and told not to.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MPLCONFIGDIR=/tmp \
    KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
USER 10001:10001
# The model store and the MNIST cache are volumes: /models and /data.
ENTRYPOINT ["python3", "-m", "app.training", "--model-dir", "/models", "--data-dir", "/data"]
