# etcdpp in a container, on Debian 12 (bookworm).
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short HEAD) -t etcdpp .
#   docker run -d --name etcdpp -p 2379:2379 -v etcdpp-data:/var/lib/etcdpp etcdpp
#   etcdctl --endpoints=127.0.0.1:2379 put foo bar
#
# Arguments after the image name are etcdpp flags, and every flag can be set
# with -e ETCD_<FLAG>=value. The build stage makes the Debian package
# (cmake/Packaging.cmake) and the runtime stage installs it, so the image gets
# exactly the shared libraries the package declares, and nothing to build with.

FROM debian:bookworm AS build
# The same packages scripts/install-deps.sh gives a developer machine. Some
# (etcd-server) would start a service when installed: policy-rc.d forbids it.
COPY scripts/install-deps.sh /usr/local/sbin/etcdpp-install-deps
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && etcdpp-install-deps && rm -rf /var/lib/apt/lists/*
COPY . /src
# .git is not copied (.dockerignore): the commit comes in as a build argument.
ARG GIT_COMMIT=unknown
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DETCDPP_BUILD_TESTS=OFF \
          -DETCDPP_GIT_COMMIT=${GIT_COMMIT} \
 && ninja -C /build etcdpp etcdppctl etcdpp-bench \
 && cd /build && cpack -G DEB

FROM debian:bookworm-slim
COPY --from=build /build/etcdpp_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/etcdpp_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/etcdpp_*.deb \
 && useradd --system --home-dir /var/lib/etcdpp --shell /usr/sbin/nologin etcdpp \
 && install -d -m 0700 -o etcdpp -g etcdpp /var/lib/etcdpp
# Listen on every interface of the container; advertise what a client on the
# host reaches through -p. A member of a multi-host cluster sets its own
# ETCD_ADVERTISE_CLIENT_URLS, ETCD_INITIAL_ADVERTISE_PEER_URLS and ETCD_INITIAL_CLUSTER.
ENV ETCD_NAME=default \
    ETCD_DATA_DIR=/var/lib/etcdpp/default \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380 \
    ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:2380
USER etcdpp
VOLUME /var/lib/etcdpp
EXPOSE 2379 2380
ENTRYPOINT ["/usr/bin/etcdpp"]
