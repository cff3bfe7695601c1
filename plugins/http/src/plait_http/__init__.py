"""plait-http: HTTP requests, streamed downloads and a polling trigger for Plait (httpx).

The public names are the task and trigger types, their outputs and option models, and the
outbound guard's error.
"""

from plait_http._guard import DENIED_HOSTNAMES, DENIED_NETWORKS, HostNotAllowed
from plait_http._options import (
    BasicAuth,
    BearerAuth,
    HttpOptions,
    LoggingType,
    ProxyOptions,
    SslOptions,
    TimeoutOptions,
)
from plait_http._tasks import Download, DownloadOutput, Request, RequestOutput
from plait_http._trigger import Trigger
from plait_http._version import __version__

__all__ = [
    "DENIED_HOSTNAMES",
    "DENIED_NETWORKS",
    "BasicAuth",
    "BearerAuth",
    "Download",
    "DownloadOutput",
    "HostNotAllowed",
    "HttpOptions",
    "LoggingType",
    "ProxyOptions",
    "Request",
    "RequestOutput",
    "SslOptions",
    "TimeoutOptions",
    "Trigger",
    "__version__",
]
