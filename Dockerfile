# riverrun image: the CLI with every dependency, the gateway extra included (faust-streaming), so
# one image runs `riverrun run`, `riverrun gateway`, `riverrun produce` and `riverrun topics`.
# bytewax 0.21 needs Python <= 3.12.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY riverrun ./riverrun
RUN pip install --no-cache-dir ".[gateway]" && useradd --create-home riverrun && mkdir -p /state && chown riverrun /state
USER riverrun
# [metrics] port of `riverrun run` (bind 0.0.0.0 in a container: RIVERRUN_METRICS__ADDRESS) and
# [gateway] port of `riverrun gateway` (RIVERRUN_GATEWAY__ADDRESS).
EXPOSE 9464 8080
ENTRYPOINT ["riverrun"]
CMD ["--help"]
