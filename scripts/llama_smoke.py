"""Runs one llama.cpp computation on a tiny random model in a child process; exit 0 if it survived.

setup.sh uses it to fall back to the portable build when the chosen CPU kernels crash on this machine.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
out = llm.create_completion("hello world", max_tokens=8, temperature=0)
assert out["choices"][0]["text"] is not None
"""


def main() -> int:
    from promptkit.backends import make_tiny_gguf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "smoke.gguf"
        make_tiny_gguf(path)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300
        )
    if proc.returncode != 0:
        print(f"llama.cpp smoke test failed (exit {proc.returncode}): {proc.stderr[-400:]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
