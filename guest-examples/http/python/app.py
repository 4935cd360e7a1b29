"""An HTTP handler in Python: componentize-py makes it a component in the
`wasi:http/proxy` world, which exports `wasi:http/incoming-handler`. The host
calls `handle` once per request."""

import json

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>live-wasm</title></head>
<body>
<h1>Hello from Python</h1>
<p>Edit app.py, save: this page reloads.</p>
</body>
</html>
"""


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = request.method()
        path = (request.path_with_query() or "/").split("?")[0]
        if isinstance(method, Method_Get) and path == "/":
            respond(response_out, 200, "text/html; charset=utf-8", PAGE)
        elif isinstance(method, Method_Get) and path == "/api/hello":
            message = json.dumps({"message": "Hello from Python"})
            respond(response_out, 200, "application/json", message)
        elif isinstance(method, Method_Post) and path == "/echo":
            respond(response_out, 200, "text/plain; charset=utf-8", read_body(request))
        elif isinstance(method, Method_Get) and path == "/panic":
            raise RuntimeError(f"you asked for it: {path}")
        else:
            respond(response_out, 404, "text/plain; charset=utf-8", f"not found: {path}\n")


def respond(out: ResponseOutparam, status: int, content_type: str, body: str | bytes) -> None:
    """Sends `body` with `status` and a `content-type` header."""
    response = OutgoingResponse(Fields.from_list([("content-type", content_type.encode())]))
    response.set_status_code(status)
    outgoing = response.body()
    ResponseOutparam.set(out, Ok(response))
    data = body.encode() if isinstance(body, str) else body
    with outgoing.write() as stream:
        # At most 4096 bytes a call.
        for start in range(0, len(data), 4096):
            stream.blocking_write_and_flush(data[start : start + 4096])
    OutgoingBody.finish(outgoing, None)


def read_body(request: IncomingRequest) -> bytes:
    """The request's body."""
    chunks = []
    with request.consume() as incoming:
        with incoming.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(64 * 1024))
                except Err as err:
                    if isinstance(err.value, StreamError_Closed):
                        break
                    raise
    return b"".join(chunks)
