# The docker profile (configs/env/docker.yaml): SpectraMind V50 on python:3.12-slim, installed offline
# from a prepared context with every file checked against its hash. From the repository root:
#   python -m bundler docker-context --torch-index https://download.pytorch.org/whl/cpu
#                                        # dist/docker/: wheels/ + hash-pinned requirements.txt
#   docker build -t spectramind-v50 .
#   docker run --rm spectramind-v50      # spectramind test env=docker target=kaggle-cp312
# With --torch-index the image has torch's CPU build (the lock's version, +cpu), pinned by the sha256
# that index published when the context was made (requirements.txt says so); without it torch is
# left out and the payload runs only with predict.mode=fallback.
# tests/test_docker.py runs this file's install RUN and ENTRYPOINT + CMD in a fresh Python 3.12 venv.

# The base, pinned by digest. Taken from public Dockerfiles pinning python:3.12-slim, not confirmed
# against Docker Hub from here: refresh with `docker buildx imagetools inspect python:3.12-slim`,
# or pass --build-arg PYTHON_IMAGE=python:3.12-slim@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.12-slim@sha256:2fe5997d249a808b8eeea52c58a1dbffbba28754dc11699ef5c029f2d818ce79
FROM ${PYTHON_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Offline and hash-checked: only the context's files, each pinned by sha256 (the project wheel too).
# The context is mounted for this step only, so no wheel stays in a layer.
RUN --mount=type=bind,source=dist/docker,target=/context \
    python -m pip install --no-cache-dir --no-index --find-links /context/wheels \
        --require-hashes --requirement /context/requirements.txt

# A non-root user owns the profile's output folder; the input folder is mounted read-only at run time.
RUN useradd --create-home --uid 10001 --user-group spectramind \
    && mkdir -p /data /outputs \
    && chown spectramind:spectramind /outputs

WORKDIR /opt/spectramind
COPY configs/ configs/
USER 10001:10001

HEALTHCHECK --interval=5m --timeout=2m CMD ["spectramind", "test", "env=docker", "target=kaggle-cp312"]
ENTRYPOINT ["spectramind"]
CMD ["test", "env=docker", "target=kaggle-cp312"]
