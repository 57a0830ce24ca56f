# saltant-host: one executor host in one privileged container, with its own Docker Engine
# (dockerd, containerd, runc) next to saltant, for benchmarks and tests of several
# executor hosts on one machine. `docker run --privileged saltant-host executor …`:
# the entry point starts the engine, loads any image tarballs in /images, then runs
# saltant with the given arguments. Nothing is pulled.
# Where the Docker daemon itself runs without some capability (ours lacks
# CAP_SYS_RESOURCE, so `--privileged` fails with "unable to apply caps"), this works:
#   --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
#   --security-opt apparmor=unconfined --security-opt systempaths=unconfined
#   -v /sys/fs/cgroup:/sys/fs/cgroup
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /var/lib/docker /var/run /var/log /images && chmod 1777 /tmp
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    SALTANT_LOG_FORMAT=json \
    SALTANT_EXECUTOR__DOCKER__NETWORK=none
VOLUME /var/lib/docker
ENTRYPOINT ["/usr/bin/docker-init", "--", "/usr/local/bin/saltant-host"]
CMD ["executor"]
