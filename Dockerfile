# The billing daemon. Build: docker build -t canton-billing .
FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 billing
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline pipeline
COPY projections projections
COPY commands commands
COPY data data
RUN pip install --no-cache-dir '.[kafka]'
USER billing
ENV ROCKSDB_PATH=/var/lib/billing BILLING_DATA_DIR=/app/data
VOLUME ["/var/lib/billing"]
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD billing tail --from 0 --json > /dev/null || exit 1
ENTRYPOINT ["billing"]
CMD ["start"]
