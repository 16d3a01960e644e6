"""A local Redis server for ``docsum up`` and the tests: Debian's, unpacked into .tools/redis
by ``make redis`` (scripts/install_redis.sh), persisting every write to its append-only file."""

from __future__ import annotations

from pathlib import Path

#: Where ``make redis`` puts it (relative to the repository root).
REDIS_SERVER = Path(".tools/redis/bin/redis-server")
INSTALL_HINT = "make redis (Debian's redis-server unpacked into .tools/redis, no root)"


def server_command(binary: Path, port: int, data_dir: Path) -> list[str]:
    """``redis-server`` on 127.0.0.1:``port`` keeping its data in ``data_dir``: the AOF on
    (fsync every second: a crash of the process loses nothing written, one of the machine at
    most the last second), no RDB snapshots, in the foreground."""
    return [
        str(binary),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--loglevel", "warning",
    ]  # fmt: skip
