# ruff: noqa
"""Names vulture cannot see used: ``vulture services scripts/vulture_whitelist.py`` is clean.

Each is used by a framework or by name, not by a call in services/. Add a name here only with
its reason; anything else vulture reports is dead code to delete.
"""

# pydantic: class configuration, validators, and fields only serialized.
model_config  # BaseModel / BaseSettings configuration
_._lengths_in_order  # SummarizerSettings' model_validator
_._ports_differ  # ServiceSettings' model_validator
_._http_url  # BackendSpec's field_validator
request_id  # ErrorDetail field (the JSON error body)
timings_ms  # DocumentSummary field (the JSON answer)

# Routes registered by decorators, apps built by uvicorn's factory string.
livez  # health router
readyz  # health router
summarize_document  # gateway route
summarize_document_async  # gateway route (operations.py)
get_operation  # gateway route (operations.py)
list_operations  # gateway route (operations.py)
cancel_operation  # gateway route (operations.py)
delete_operation  # gateway route (operations.py)
build_app  # `docsum serve` / uvicorn factory
_.openapi  # FastAPI's OpenAPI hook, replaced on the app

# Protocols called by libraries: asyncio, httptools, prometheus_client, torch.
_.data_received  # asyncio.Protocol
_.eof_received  # asyncio.Protocol
_.on_header  # httptools parser callback
_.on_headers_complete  # httptools parser callback
_.on_body  # httptools parser callback
_.on_message_complete  # httptools parser callback
_.collect  # prometheus_client custom collector
_.forward  # torch.nn.Module

# Library settings assigned as attributes.
_.disabled  # logging.Logger
_.MAX_IMAGE_PIXELS  # PIL.Image's decompression-bomb limit
_.intra_op_num_threads  # onnxruntime.SessionOptions
_.log_severity_level  # onnxruntime.SessionOptions

# Looked up by name.
_.receipt  # corpus line kinds: getattr(self, kind)
_.numbers  # corpus line kinds
_.typographic  # corpus line kinds
NotFound  # errors: the HTTP mapping takes the class of a router's bare 404
MethodNotAllowed  # errors: ... and of its bare 405

# Used outside services/ only (benchmarks, tests).
wait_ready  # bench/*.py
hash_key  # tests write key files with it
_.depth  # DynamicBatcher.depth, read by tests
