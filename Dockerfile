# riverrun image: the CLI with every dependency (bytewax 0.21 needs Python <= 3.12).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY riverrun ./riverrun
RUN pip install --no-cache-dir . && useradd --create-home riverrun && mkdir -p /state && chown riverrun /state
USER riverrun
ENTRYPOINT ["riverrun"]
CMD ["--help"]
