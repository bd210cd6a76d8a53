# One image for every editqueue process: worker, emulator, CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY worker worker
COPY producer producer
COPY emulator emulator
COPY examples examples
RUN pip install --no-cache-dir . && useradd --create-home editqueue
USER editqueue
ENTRYPOINT ["editqueue"]
CMD ["worker", "--concurrency", "8"]
