# One image for every editqueue process: worker, emulator, CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY worker worker
COPY producer producer
COPY emulator emulator
COPY examples examples
# /cache is the workers' blob-cache volume (EDITQUEUE_BLOB_CACHE_DIR): a new named volume copies
# this directory's owner, so the non-root worker can write it.
RUN pip install --no-cache-dir '.[otel,flower]' && useradd --create-home editqueue \
    && mkdir -p /cache && chown editqueue:editqueue /cache
USER editqueue
ENTRYPOINT ["editqueue"]
CMD ["worker"]
