"""The jobs' state in Redis: one hash per job, its input and result, and per-key accounting.

Keys (fixed with the chart, docs/api.md):

- ``docsum:job:<id>``      hash: owner, state, times (ms since the epoch), pages, attempts, error
- ``docsum:input:<id>``    the uploaded document, deleted when the job ends
- ``docsum:result:<id>``   the response body (JSON), kept ``ttl`` seconds after the end
- ``docsum:ops:<owner>``   sorted set of the key's jobs by creation time (the listing)
- ``docsum:quota:<owner>`` hash: ``pending`` jobs and stored ``bytes`` (inputs + results)
- ``docsum:sizes:<owner>`` hash: each job's bytes counted in ``bytes``
- ``docsum:expiry:<owner>`` sorted set: when each ended job's keys expire, to give its bytes
  back (``reap``, run by each submit and listing)
- ``docsum:idem:<owner>:<sha256 of Idempotency-Key>`` hash: the job and its request's digest

Every change of state is one Lua script, so two workers racing on a reclaimed job, or a
cancel racing a completion, end a job once: :data:`FINISH` counts the ``completions``. The
scripts name keys they derive (one Redis, not a cluster).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

STREAM = "docsum:jobs"
GROUP = "workers"
DONE_CHANNEL = "docsum:done"
ENDED = frozenset({"succeeded", "failed", "cancelled"})
#: Bytes of the input sent to Redis per command: the upload is never copied whole.
CHUNK_BYTES = 1024 * 1024
#: Seconds an input being uploaded lives before its job is created (an upload cut short).
UPLOAD_TTL_S = 3600


def redis_key(kind: str, ident: str) -> str:
    """A Redis key: ``kind`` is job, input, result (by job id), ops or quota (by owner), or
    idem (owner:key), spelled as the Lua scripts below spell them."""
    return f"docsum:{kind}:{ident}"


_LIB = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ended(state)
  return state == 'succeeded' or state == 'failed' or state == 'cancelled'
end
-- End a job: 1 if this call ended it, 0 if it had ended already, -1 if it is gone.
local function finish(id, state, reason, err, result)
  local job = 'docsum:job:' .. id
  local cur = redis.call('HGET', job, 'state')
  if not cur then return -1 end
  if ended(cur) then return 0 end
  local h = redis.call('HMGET', job, 'owner', 'ttl', 'idem')
  local owner, ttl, idem = h[1], tonumber(h[2]), h[3]
  local now = now_ms()
  local rbytes = string.len(result)
  if rbytes > 0 then redis.call('SET', 'docsum:result:' .. id, result, 'EX', ttl) end
  redis.call('DEL', 'docsum:input:' .. id)
  redis.call('HSET', job, 'state', state, 'reason', reason, 'finished', now,
             'result_bytes', rbytes)
  if err ~= '' then redis.call('HSET', job, 'error', err) end
  redis.call('HINCRBY', job, 'completions', 1)
  redis.call('EXPIRE', job, ttl)
  local sizes = 'docsum:sizes:' .. owner
  local before = tonumber(redis.call('HGET', sizes, id)) or 0
  redis.call('HINCRBY', 'docsum:quota:' .. owner, 'pending', -1)
  redis.call('HINCRBY', 'docsum:quota:' .. owner, 'bytes', rbytes - before)
  redis.call('HSET', sizes, id, rbytes)
  redis.call('ZADD', 'docsum:expiry:' .. owner, now + ttl * 1000, id)
  if idem and idem ~= '' then redis.call('EXPIRE', idem, ttl) end
  redis.call('PUBLISH', 'docsum:done', id)
  return 1
end
-- Forget what an owner's ended jobs counted once their keys have expired.
local function reap(owner)
  local exp = 'docsum:expiry:' .. owner
  local ids = redis.call('ZRANGEBYSCORE', exp, '-inf', now_ms(), 'LIMIT', 0, 1000)
  for _, id in ipairs(ids) do
    local b = tonumber(redis.call('HGET', 'docsum:sizes:' .. owner, id)) or 0
    redis.call('HINCRBY', 'docsum:quota:' .. owner, 'bytes', 0 - b)
    redis.call('HDEL', 'docsum:sizes:' .. owner, id)
    redis.call('ZREM', exp, id)
    redis.call('ZREM', 'docsum:ops:' .. owner, id)
  end
end
"""

#: ARGV: id, owner, idempotency key ('' none), digest, max pending, max bytes, ttl, fields JSON.
SUBMIT = (
    _LIB
    + """
local id, owner, idem, digest = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max_pending, max_bytes, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local f = cjson.decode(ARGV[8])
reap(owner)
if idem ~= '' then
  local prev = redis.call('HMGET', idem, 'id', 'digest')
  if prev[1] and redis.call('EXISTS', 'docsum:job:' .. prev[1]) == 1 then
    redis.call('DEL', 'docsum:input:' .. id)
    if prev[2] == digest then return {'same', prev[1]} end
    return {'conflict', prev[1]}
  end
end
local quota = 'docsum:quota:' .. owner
local q = redis.call('HMGET', quota, 'pending', 'bytes')
local pending, bytes = tonumber(q[1]) or 0, tonumber(q[2]) or 0
if pending + 1 > max_pending then
  redis.call('DEL', 'docsum:input:' .. id)
  return {'pending', tostring(pending)}
end
if bytes + f.input_bytes > max_bytes then
  redis.call('DEL', 'docsum:input:' .. id)
  return {'bytes', tostring(bytes)}
end
if redis.call('STRLEN', 'docsum:input:' .. id) ~= f.input_bytes then
  return {'noinput', ''}
end
redis.call('PERSIST', 'docsum:input:' .. id)
local now = now_ms()
local job = 'docsum:job:' .. id
redis.call('HSET', job, 'id', id, 'owner', owner, 'state', 'queued', 'created', now,
  'ttl', ttl, 'attempts', 0, 'pages_done', 0, 'pages_total', f.pages_total, 'kind', f.kind,
  'filename', f.filename, 'params', f.params, 'pins', f.pins, 'input_bytes', f.input_bytes,
  'digest', digest, 'idem', idem, 'completions', 0)
redis.call('HINCRBY', quota, 'pending', 1)
redis.call('HINCRBY', quota, 'bytes', f.input_bytes)
redis.call('HSET', 'docsum:sizes:' .. owner, id, f.input_bytes)
redis.call('ZADD', 'docsum:ops:' .. owner, now, id)
if idem ~= '' then
  redis.call('DEL', idem)
  redis.call('HSET', idem, 'id', id, 'digest', digest)
end
local entry = redis.call('XADD', 'docsum:jobs', '*', 'id', id)
redis.call('HSET', job, 'entry', entry)
return {'ok', id}
"""
)

#: A worker takes a job. ARGV: id, consumer, max attempts, entry, dead-letter error JSON.
START = (
    _LIB
    + """
local id = ARGV[1]
local job = 'docsum:job:' .. id
local st = redis.call('HGET', job, 'state')
if not st then return {'gone', ''} end
if ended(st) then return {'ended', st} end
local attempts = redis.call('HINCRBY', job, 'attempts', 1)
if attempts > tonumber(ARGV[3]) then
  local err = redis.call('HGET', job, 'last_error') or ARGV[5]
  finish(id, 'failed', 'dead_letter', err, '')
  return {'dead', err}
end
redis.call('HSET', job, 'state', 'running', 'worker', ARGV[2], 'entry', ARGV[4],
           'pages_done', 0)
redis.call('HSETNX', job, 'started', now_ms())
return {'run', tostring(attempts)}
"""
)

#: ARGV: id, state, reason, error JSON ('' none), result JSON ('' none).
FINISH = _LIB + "return finish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"

#: The running worker's progress. ARGV: id, consumer, pages done, pages total → the state.
PROGRESS = """
local job = 'docsum:job:' .. ARGV[1]
local h = redis.call('HMGET', job, 'state', 'worker')
if not h[1] then return '' end
if h[1] == 'running' and h[2] == ARGV[2] then
  redis.call('HSET', job, 'pages_done', ARGV[3], 'pages_total', ARGV[4])
end
return h[1]
"""

#: A failed attempt to try again later. ARGV: id, last error JSON → attempts so far.
RETRY = """
local job = 'docsum:job:' .. ARGV[1]
local st = redis.call('HGET', job, 'state')
if st ~= 'running' then return -1 end
redis.call('HSET', job, 'state', 'queued', 'last_error', ARGV[2])
return tonumber(redis.call('HGET', job, 'attempts'))
"""

#: A worker stopping hands its job back at once: a new entry, the attempt not counted.
#: ARGV: id, old entry.
HAND_BACK = """
local job = 'docsum:job:' .. ARGV[1]
redis.call('XACK', 'docsum:jobs', 'workers', ARGV[2])
redis.call('XDEL', 'docsum:jobs', ARGV[2])
if redis.call('HGET', job, 'state') ~= 'running' then return 0 end
redis.call('HSET', job, 'state', 'queued')
redis.call('HINCRBY', job, 'attempts', -1)
local entry = redis.call('XADD', 'docsum:jobs', '*', 'id', ARGV[1])
redis.call('HSET', job, 'entry', entry)
return 1
"""

#: ARGV: id, owner, error JSON → 1 cancelled now, 0 ended already, -1 not the owner's.
CANCEL = (
    _LIB
    + """
local owner = redis.call('HGET', 'docsum:job:' .. ARGV[1], 'owner')
if owner ~= ARGV[2] then return -1 end
return finish(ARGV[1], 'cancelled', 'cancelled', ARGV[3], '')
"""
)

#: ARGV: id, owner, error JSON → 1 deleted, -1 not the owner's.
DELETE = (
    _LIB
    + """
local id, owner = ARGV[1], ARGV[2]
local job = 'docsum:job:' .. id
if redis.call('HGET', job, 'owner') ~= owner then return -1 end
finish(id, 'cancelled', 'deleted', ARGV[3], '')
local idem = redis.call('HGET', job, 'idem')
if idem and idem ~= '' then redis.call('DEL', idem) end
local b = tonumber(redis.call('HGET', 'docsum:sizes:' .. owner, id)) or 0
redis.call('HINCRBY', 'docsum:quota:' .. owner, 'bytes', 0 - b)
redis.call('HDEL', 'docsum:sizes:' .. owner, id)
redis.call('ZREM', 'docsum:expiry:' .. owner, id)
redis.call('ZREM', 'docsum:ops:' .. owner, id)
redis.call('DEL', job, 'docsum:result:' .. id, 'docsum:input:' .. id)
return 1
"""
)

#: ARGV: owner. Expired jobs forgotten (before a listing).
REAP = _LIB + "reap(ARGV[1]) return 1"


def connect(url: str, password_file: Path | None = None) -> Redis:
    """A client of the Redis at ``url``, with the password read from ``password_file``."""
    password = password_file.read_text().strip() if password_file is not None else None
    return Redis.from_url(
        url,
        password=password,
        socket_connect_timeout=2.0,
        health_check_interval=10,
        max_connections=256,
    )


@dataclass(frozen=True)
class Refused:
    """A submission over a limit (``limit`` names it) or an idempotency conflict."""

    limit: str
    current: int


@dataclass(frozen=True)
class Submitted:
    job_id: str
    new: bool  # False: an earlier submission with the same Idempotency-Key and body


def error_json(code: str, message: str, **details: Any) -> str:
    return json.dumps({"code": code, "message": message, **details}, ensure_ascii=False)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobStore:
    """The jobs' state, shared by the gateway (submit, read, cancel, delete) and the workers
    (start, progress, finish)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._submit = redis.register_script(SUBMIT)
        self._start = redis.register_script(START)
        self._finish = redis.register_script(FINISH)
        self._progress = redis.register_script(PROGRESS)
        self._retry = redis.register_script(RETRY)
        self._hand_back = redis.register_script(HAND_BACK)
        self._cancel = redis.register_script(CANCEL)
        self._delete = redis.register_script(DELETE)
        self._reap = redis.register_script(REAP)

    # --- the gateway ------------------------------------------------------------------------

    async def upload(self, job_id: str, data: bytes | memoryview) -> None:
        """Write a job's input in chunks (it lives ``UPLOAD_TTL_S`` until the job exists)."""
        key = redis_key("input", job_id)
        view = memoryview(data)
        await self.redis.delete(key)
        for start in range(0, len(view), CHUNK_BYTES):
            await self.redis.append(key, view[start : start + CHUNK_BYTES].tobytes())
        await self.redis.expire(key, UPLOAD_TTL_S)

    async def submit(
        self,
        job_id: str,
        owner: str,
        fields: dict[str, Any],
        *,
        digest: str,
        idempotency_key: str,
        max_pending: int,
        max_bytes: int,
        ttl_s: int,
    ) -> Submitted | Refused:
        """Create the job and queue it, unless a limit or an earlier submission says no."""
        idem = redis_key("idem", f"{owner}:{idempotency_key}") if idempotency_key else ""
        args: list[str | int] = [job_id, owner, idem, digest, max_pending, max_bytes, ttl_s]
        args.append(json.dumps(fields))
        verdict, value = (_str(v) for v in await self._submit(args=args))
        if verdict == "ok":
            return Submitted(value, True)
        if verdict == "same":
            return Submitted(value, False)
        if verdict == "noinput":
            raise RuntimeError(f"job {job_id}: its input is not in the store")
        return Refused(verdict, 0 if verdict == "conflict" else int(value))

    async def job(self, job_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(redis_key("job", job_id))  # type: ignore[misc]
        return {_str(k): _str(v) for k, v in raw.items()} if raw else None

    async def result(self, job_id: str) -> bytes | None:
        value = await self.redis.get(redis_key("result", job_id))
        return bytes(value) if value is not None else None

    async def cancel(self, job_id: str, owner: str) -> int:
        err = error_json("cancelled", "the operation was cancelled by its caller")
        return int(await self._cancel(args=[job_id, owner, err]))

    async def delete(self, job_id: str, owner: str) -> bool:
        err = error_json("cancelled", "the operation was deleted by its caller")
        return int(await self._delete(args=[job_id, owner, err])) == 1

    async def listing(self, owner: str, after: str | None, count: int) -> list[str]:
        """The owner's job ids, newest first, after job ``after`` (None: from the newest)."""
        await self._reap(args=[owner])
        key = redis_key("ops", owner)
        start = 0
        if after is not None:
            rank = await self.redis.zrevrank(key, after)
            if rank is None:
                return []
            start = rank + 1
        return [_str(v) for v in await self.redis.zrevrange(key, start, start + count - 1)]

    async def quota(self, owner: str) -> tuple[int, int]:
        """The owner's pending jobs and stored bytes."""
        quota = redis_key("quota", owner)
        pending, stored = await self.redis.hmget(quota, ["pending", "bytes"])  # type: ignore[misc]
        return int(pending or 0), int(stored or 0)

    # --- the workers ------------------------------------------------------------------------

    async def input(self, job_id: str) -> bytes | None:
        value = await self.redis.get(redis_key("input", job_id))
        return bytes(value) if value is not None else None

    async def start(
        self, job_id: str, consumer: str, max_attempts: int, entry: str
    ) -> tuple[str, str]:
        """("run", attempt), ("ended", state), ("gone", "") or ("dead", error JSON)."""
        dead = error_json(
            "dead_letter",
            f"the job was taken {max_attempts} times and never finished (its workers "
            "stopped mid-job)",
        )
        args: list[str | int] = [job_id, consumer, max_attempts, entry, dead]
        verdict, value = (_str(v) for v in await self._start(args=args))
        return verdict, value

    async def progress(self, job_id: str, consumer: str, done: int, total: int) -> str:
        """Record pages done; the job's state ("" if it is gone)."""
        return _str(await self._progress(args=[job_id, consumer, done, total]))

    async def finish(
        self, job_id: str, state: str, reason: str = "", error: str = "", result: str = ""
    ) -> int:
        """End the job: 1 if this call ended it, 0 if it had ended, -1 if it is gone."""
        return int(await self._finish(args=[job_id, state, reason, error, result]))

    async def retry(self, job_id: str, error: str) -> int:
        """Back to the queue after a failed attempt (taken again after the visibility
        timeout): the attempts so far, -1 if the job is no longer running."""
        return int(await self._retry(args=[job_id, error]))

    async def hand_back(self, job_id: str, entry: str) -> bool:
        return int(await self._hand_back(args=[job_id, entry])) == 1


def now_ms() -> int:
    return int(time.time() * 1000)
