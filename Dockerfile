# syntax=docker/dockerfile:1
# Neuroglass server image.
#   CPU (default):  docker build -t neuroglass .
#   NVIDIA GPU:     docker build --build-arg JAX_EXTRA=cuda13 -t neuroglass:gpu .
#   Ray sweeps:     docker build --build-arg EXTRAS=ray -t neuroglass:ray .   (the app, and a cluster's nodes)
FROM python:3.11-slim

# Empty -> plain CPU `jax` from pyproject.toml; e.g. `cuda13` -> jax[cuda13] in the same pin range.
ARG JAX_EXTRA=""
# The project's optional extras to install (comma-separated, from pyproject.toml), e.g. `ray`.
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEUROGLASS_DATABASE_URL=sqlite+aiosqlite:////data/neuroglass.sqlite \
    NEUROGLASS_COMPILE_CACHE_DIR=/cache/jax

# Node/npm only for installing the front-end packages from the committed lock file.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 neuroglass \
 && useradd --system --uid 10001 --gid neuroglass --create-home --home-dir /home/neuroglass \
        --shell /usr/sbin/nologin neuroglass \
 && mkdir -p /data /cache/jax \
 && chown -R neuroglass:neuroglass /data /cache

WORKDIR /app

# Heavy runtime dependencies (jax, jaxlib, those of EXTRAS, ...) in their own layer, redone only when
# pyproject.toml changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e.strip() for e in os.environ.get('EXTRAS', '').split(',') if e.strip()]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .

# Front-end packages: only once package.json (and its package-lock.json) is committed.
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund; fi

RUN if [ -n "${EXTRAS}" ]; then pip install ".[${EXTRAS}]"; else pip install .; fi \
 && if [ -n "${JAX_EXTRA}" ]; then pip install "jax[${JAX_EXTRA}]>=0.10,<0.11"; fi

USER neuroglass

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Run from /app so the source tree (with static/ and templates/) is what gets imported.
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8000"]
