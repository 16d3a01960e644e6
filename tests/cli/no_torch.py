"""Run ``docsum`` in a fresh interpreter where torch and the other model libraries cannot be
imported, as in an install of ``docsum[client]`` alone, and check none was."""

from __future__ import annotations

import subprocess
import sys

from tests.support.commands import run

#: What a client install does not have: the models' libraries.
MODEL_LIBRARIES = ("torch", "numpy", "cv2", "transformers", "tokenizers", "PIL", "onnxruntime")

_RUN = f"""
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {MODEL_LIBRARIES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
from docsum.cli import main

code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {MODEL_LIBRARIES!r})
if loaded:
    sys.exit(f"model libraries imported: {{loaded}}")
sys.exit(code)
"""


def docsum_without_torch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``docsum *args`` from the repository root with the model libraries out of reach; its
    exit code and output."""
    return run([sys.executable, "-c", _RUN, *args], timeout_s=timeout, env=env)
