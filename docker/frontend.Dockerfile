# The frontend: Streamlit and the drawing canvas; talks to the backend over HTTP only.
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE} AS build
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
    && update-ca-certificates && rm -rf /var/lib/apt/lists/*
COPY app/frontend/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --progress-bar off -r /tmp/requirements.txt \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/pip /opt/venv/lib/python3*/site-packages/setuptools

FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mnist
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app/__init__.py app/__init__.py
COPY app/frontend app/frontend
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 10001:10001
# The port is MNIST_PORT (compose sets it from mnist_stack_frontend_port); 8501 without it.
EXPOSE 8501
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('MNIST_PORT', '8501'), timeout=2)"]
CMD ["python3", "-m", "app.frontend"]
