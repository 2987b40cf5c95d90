# rfm-stream worker image.
#   docker build -t rfm-stream .
#   docker run --rm rfm-stream --help          (entrypoint is the `rfm-stream` CLI)
#   docker run --rm -e RFM_KAFKA_BOOTSTRAP=... -e RFM_REDIS_URL=... rfm-stream   (runs `worker`)
# Every setting comes from an RFM_* environment variable (see schemas/settings.py).
# Pinned to a patch release and a Debian release, so a rebuild doesn't move under us;
# pin the digest too where your registry policy asks (docker buildx imagetools inspect).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The worker's HTTP API listens on the container's interface (its default, 127.0.0.1, would
# be unreachable from outside the container); publish it on the host's loopback
# (docker run -p 127.0.0.1:8080:8080) and set RFM_HTTP_TOKEN before exposing it further.
ENV RFM_HTTP_HOST=0.0.0.0

# Install the project with every dependency at the version in constraints.txt (all ship
# binary wheels for amd64 and arm64, so no compiler is needed), then drop the sources: the
# image runs the installed package.
WORKDIR /build
COPY pyproject.toml README.md constraints.txt ./
COPY schemas/ schemas/
COPY segments/ segments/
COPY state/ state/
COPY stream/ stream/
RUN pip install --constraint constraints.txt . \
    && cd / \
    && rm -rf /build

# Non-root user. faust keeps its data directory (rfm-stream-data/) in the working
# directory, so the working directory is the user's own home.
RUN groupadd --system --gid 10001 rfm \
    && useradd --system --uid 10001 --gid rfm --create-home --home-dir /home/rfm rfm
WORKDIR /home/rfm
USER rfm

ENTRYPOINT ["rfm-stream"]
CMD ["worker"]
