# The demo image: the static demo agent (demo/*.c) as
# /usr/local/bin/perstack, on nothing else.  Built by
# scripts/build-demo-image.sh with build/demo as the context (it holds only
# the compiled binary, named "perstack", and demo/perstack.toml).
#
# No USER: the module chooses the user of every container.  Containers run
# with a read-only root and tmpfs (or a volume) at /tmp and /workspace.

FROM scratch

LABEL org.opencontainers.image.title="perstack-demo" \
      org.opencontainers.image.description="A stand-in for the Perstack runtime: prints its stdout event protocol, scenario chosen by expert name"

COPY perstack /usr/local/bin/perstack

# the experts' configuration, where perstack_config looks by default
COPY perstack.toml /etc/perstack/perstack.toml

ENV PATH=/usr/local/bin

WORKDIR /workspace

CMD ["perstack", "run", "demo", "hello from the demo image"]
