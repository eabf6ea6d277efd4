# citystream worker image: the same package and SQL migrations as the embedded mode.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /opt/citystream
COPY pyproject.toml README.md ./
COPY citystream ./citystream
COPY streams ./streams
COPY models ./models
COPY sinks ./sinks
COPY replay ./replay
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/citystream citystream \
    && mkdir -p /var/lib/citystream && chown citystream /var/lib/citystream
USER citystream
EXPOSE 9464
ENTRYPOINT ["citystream"]
CMD ["worker", "--role", "all"]
