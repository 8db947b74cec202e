# returnhook: one image for every role (worker, topics apply, settings publish, demo-receiver).
# The subcommand is the container's command; `docker-compose.yml` shows each role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system returnhook \
    && useradd --system --gid returnhook --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin returnhook

# Build from a throw-away source dir so the runtime dir holds only what the process reads.
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY models ./models
RUN pip install --no-cache-dir . && rm -rf /tmp/src

# The working dir belongs to the service user: faust keeps its data dir here.
WORKDIR /app
RUN chown returnhook:returnhook /app
# Topic names are read from ./topics.yaml at run time (never baked into code or compose).
COPY topics.yaml ./

USER returnhook
# 6066: the worker's web (faust) port; 8080: the demo receiver.
EXPOSE 6066 8080
ENTRYPOINT ["returnhook"]
CMD ["worker"]
