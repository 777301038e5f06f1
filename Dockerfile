# syntax=docker/dockerfile:1
# Build stage: durable-rules compiles a C extension, so the compiler stays here.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY adapters ./adapters
COPY rules ./rules
RUN python -m venv /opt/miaopi && /opt/miaopi/bin/pip install --no-cache-dir .

# Runtime stage: no compiler, no source tree; the rules and mock personas ship in the package.
FROM python:3.11-slim
# The certificate PDF is printed with Debian's CJK font (Chinese and Latin glyphs in one file).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 miaopi
COPY --from=build /opt/miaopi /opt/miaopi
ENV PATH=/opt/miaopi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MIAOPI_DATABASE_URL=sqlite:////var/lib/miaopi/miaopi.db \
    MIAOPI_ENVIRONMENT=production
RUN mkdir -p /var/lib/miaopi && chown miaopi /var/lib/miaopi
USER miaopi
WORKDIR /var/lib/miaopi
VOLUME /var/lib/miaopi
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# Production mode: it refuses to start without MIAOPI_DATA_KEY (a key generated into the volume
# would sit beside the data it protects). Run with -e MIAOPI_DATA_KEY=$(miaopi keys generate).
CMD ["miaopi", "serve", "--host", "0.0.0.0", "--port", "8000"]
