"""The shipped nginx configuration (deploy/nginx) run by Debian's nginx in front of tests."""

import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_helpers import REPO, free_port, require_binary
from waiting import wait_for

NGINX_CONF = REPO / "deploy" / "nginx" / "fraud-detection.conf"
SHIPPED_UPSTREAM = "    server app:5000;\n"
SHIPPED_LISTEN = "    listen 8080;\n"


def localized_nginx_conf(upstreams: list[str], port: int, work: Path) -> str:
    """A whole nginx.conf: the shipped server block, pointed at `upstreams`, on `port`."""
    server_block = NGINX_CONF.read_text()
    assert SHIPPED_UPSTREAM in server_block and SHIPPED_LISTEN in server_block
    servers = "".join(f"    server {upstream};\n" for upstream in upstreams)
    server_block = server_block.replace(SHIPPED_UPSTREAM, servers)
    server_block = server_block.replace(SHIPPED_LISTEN, f"    listen 127.0.0.1:{port};\n")
    temp = "".join(
        f"    {kind}_temp_path {work / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temp}{server_block}\n}}\n"
    )


@contextmanager
def running_nginx(upstreams: list[str]) -> Iterator[str]:
    """Debian's nginx with the shipped configuration in front of `upstreams`; yields its URL."""
    binary = require_binary("nginx", packages="nginx")
    with tempfile.TemporaryDirectory(prefix="nginx-test-") as tmp:
        work = Path(tmp)
        # Run as root, nginx's workers are `nobody`: they must reach their temp folders here.
        work.chmod(0o755)
        port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(localized_nginx_conf(upstreams, port, work))
        process = subprocess.Popen(
            [binary, "-c", str(conf), "-e", str(work / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: process.poll() is not None or _listening(port),
                timeout=30,
                what=f"nginx on {port}",
            )
            assert process.poll() is None, (work / "error.log").read_text()
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
