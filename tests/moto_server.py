"""moto's S3 server on loopback, in a child process, for the tests outside the S3 plugin.

One place for what the blueprint harness and the end-to-end S3 tests both need: dummy
credentials of the standard AWS chain (nothing of the developer's ~/.aws is read), and a real
HTTP endpoint whose memory is not this process's (the plugin's own tests keep theirs, with a
seeding channel, in plugins/s3/tests).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

#: The environment every S3 client of the session reads (the standard AWS chain).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAPLAITTESTSDUMMY0",
    "AWS_SECRET_ACCESS_KEY": "plait-tests-dummy-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/plait-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/plait-tests/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}

_MOTO = textwrap.dedent(
    """
    import logging, sys
    logging.disable(logging.CRITICAL)
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.stop()
    """
)


@contextmanager
def moto_s3(env: Mapping[str, str] = AWS_ENV) -> Iterator[str]:
    """The endpoint URL of a fresh moto server, with ``env`` (by default ``AWS_ENV``) set and
    the profile, endpoint and session token variables unset while it runs."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        server = subprocess.Popen(
            [sys.executable, "-c", _MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            port = server.stdout.readline().strip()
            assert port.isdigit(), f"moto server did not start: {port!r}"
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()
