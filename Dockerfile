# syntax=docker/dockerfile:1
# One image for every omopfed role: the trust worker (`trust worker`), the hub reducer (`hub reducer`),
# the submit/status CLI (`hub submit ...`) and the one-shot trust database set-up (omopfed-trust-init).
#
#   docker build -t omopfed:0.1.0 .
#   docker run --rm omopfed:0.1.0 --help
#
# Two stages: the build stage installs the package and its wheels into a virtualenv; the runtime stage gets
# only that virtualenv, no pip, no compilers, no source tree, and runs as an unprivileged user. The base is
# pinned to an exact patch release; pin its digest as well (python:3.12.11-slim-bookworm@sha256:...) when
# your registry policy requires it.
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/omopfed
WORKDIR /src
COPY pyproject.toml README.md ./
COPY omop ./omop
COPY trust_worker ./trust_worker
COPY hub_broker ./hub_broker
COPY omopfed ./omopfed
# Only binary wheels: if a dependency ever needs a compiler, the build fails here instead of pulling one in.
RUN /opt/omopfed/bin/pip install --only-binary=:all: --no-binary=omop-federation . \
 && /opt/omopfed/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="omop-federation" \
      org.opencontainers.image.description="Federated cohort analytics over OMOP CDM PostgreSQL databases"
# The runtime needs no package manager front-end of Python's either.
RUN python -m pip uninstall --yes pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 omopfed \
 && useradd --system --uid 10001 --gid omopfed --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin omopfed \
 && install -d -o omopfed -g omopfed -m 0755 /var/lib/omopfed \
 && install -d -o omopfed -g omopfed -m 0700 /var/lib/omopfed/state
COPY --from=build /opt/omopfed /opt/omopfed
COPY --chmod=0755 deploy/trust-init.sh /usr/local/bin/omopfed-trust-init
ENV PATH=/opt/omopfed/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Compose runs the containers as the owner of the secret files (user: ${OMOPFED_UID}:${OMOPFED_GID}); this
# is the default for `docker run`. Nothing here needs root, so no uid is privileged.
USER 10001:10001
WORKDIR /var/lib/omopfed
ENTRYPOINT ["omopfed"]
CMD ["--help"]
