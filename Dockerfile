# smsc-sim as a CI service container.
#
#   docker build -t smsc-sim .
#   docker run --rm -p 2775-2777:2775-2777 -p 8775:8775 -e SMSC_SIM_API_TOKEN=secret smsc-sim
#
# Configured by environment variables (see docs/ci.md): SMSC_SIM_SCENARIO,
# SMSC_SIM_ACCOUNTS, SMSC_SIM_API_TOKEN, SMSC_SIM_SEED, SMSC_SIM_TRACE,
# SMSC_SIM_<INSTANCE>_ENDPOINT, SMSC_SIM_API, SMSC_SIM_API_ALLOWED_HOSTS, SMSC_SIM_CONFIG,
# and for one process of a cluster shared through Redis SMSC_SIM_CLUSTER_STORE and SMSC_SIM_INSTANCES.

# -- build: a wheel of the project (the scenarios go inside it) -------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.cfg setup.py MANIFEST.in README.md ./
COPY smsc_sim ./smsc_sim
COPY twisted ./twisted
COPY scenarios ./scenarios
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- run ------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# the plugin cache is written here, as root, once: at run time the non-root user
# could not write it and twistd would log "Unable to write to plugin cache"
# txredisapi (the redis extra, one module) so that the image can run one process of a cluster
# shared through Redis (SMSC_SIM_CLUSTER_STORE, examples/compose/cluster.yaml); never loaded otherwise
RUN pip install --no-cache-dir /wheels/*.whl "txredisapi>=1.4.10" \
    && rm -rf /wheels \
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))" \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent smsc

USER 10001:10001
WORKDIR /tmp

# every listener (SMPP and the API) on all interfaces of the container; set
# SMSC_SIM_API_TOKEN, or the API logs a warning: anyone who reaches it controls the simulator
ENV SMSC_SIM_LISTEN_HOST=0.0.0.0
# the API answers only loopback names, IP addresses and these Host names (its guard against DNS
# rebinding): the service names a CI job reaches it by (docs/ci.md); add yours, comma-separated
ENV SMSC_SIM_API_ALLOWED_HOSTS=smsc-sim,smsc
# SMPP1 and SMPP2 (cluster NA), SMPP0, the control API
EXPOSE 2775 2776 2777 8775

# readiness: every listener is open and, in a cluster shared through Redis, Redis answers (503
# while it does not); the token, if any, comes from the environment
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; t = os.environ.get('SMSC_SIM_API_TOKEN'); r = u.Request(os.environ.get('SMSC_SIM_HEALTH_URL', 'http://127.0.0.1:8775/api/v1/health/ready'), headers={'Authorization': 'Bearer ' + t} if t else {}); u.urlopen(r, timeout=2)"]

# twistd in the foreground, no pid file (the container is the process), logs on stdout;
# SIGTERM (docker stop) unbinds every session before exiting
ENTRYPOINT ["twistd", "--nodaemon", "--pidfile=", "--logfile=-", "smsc-sim"]
CMD []
