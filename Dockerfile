# One image for every danvan process: `danvan api` (the default), `danvan worker`, `danvan migrate`, ...
# docker-compose.yml builds it once and runs it as the api, the (scalable) workers and the one-shot migration.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself, installed in place (editable) so that the data folders next to the code
# (plan/, policy/) are found relative to the modules; the console script `danvan` lands in /usr/local/bin.
COPY . .
RUN pip install --no-deps -e . \
    && rm -rf build

# An unprivileged user; DANVAN_HOME is its home and the only place it writes.
RUN groupadd --system --gid 10001 danvan \
    && useradd --system --uid 10001 --gid danvan --home-dir /var/lib/danvan --create-home \
        --shell /usr/sbin/nologin danvan
ENV DANVAN_HOME=/var/lib/danvan \
    DANVAN_API_HOST=0.0.0.0 \
    DANVAN_API_PORT=8000
USER 10001:10001

EXPOSE 8000
CMD ["danvan", "api"]
