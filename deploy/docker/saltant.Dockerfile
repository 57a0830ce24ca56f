# saltant: the one binary (every service, chosen by the command) with the shared libraries
# it links (glibc's name resolution needs them), CA certificates and a static busybox as
# /bin (healthchecks use `wget`, test tasks `sh`). Built by deploy/images from a context it
# assembles; nothing is pulled.
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /var/lib/saltant && chmod 1777 /tmp && chown 10001:10001 /var/lib/saltant
ENV PATH=/usr/local/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    SALTANT_LOG_FORMAT=json
# Non-root by default. An executor that uses the host's Docker socket runs as root or with
# the socket's group (docs/operations.md); the other services need no privilege.
USER 10001:10001
WORKDIR /var/lib/saltant
ENTRYPOINT ["/usr/local/bin/saltant"]
CMD ["--help"]
