"""How long loading Docker's default seccomp profile takes in a fresh skiff-runtime process.

    .venv/bin/python bench/seccomp_load.py [runs]

Each run is a new interpreter (the runtime starts per operation) that imports the
OCI spec types (paid by every runtime operation anyway, reported apart) and
skiff's seccomp modules, converts Docker's profile, parses it as OCI, builds the
filter and loads it into a forked child. Prints the median of each phase in ms,
and for comparison the cost of `import pyseccomp` in a fresh interpreter.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

PROFILE = "/work/shared/specs/docker-default-seccomp.json"

ONE_RUN = """
import json, os, time
tp = time.perf_counter()
from skiff.oci.runtime_spec import Seccomp
from skiff.oci.spec_reader import Reader
t0 = time.perf_counter()
from skiff.runtime.seccomp import build_filter
from skiff.runtime.seccomp_docker import docker_profile_to_oci, native_arch
t1 = time.perf_counter()
with open(PROFILE) as f:
    profile = json.load(f)
t2 = time.perf_counter()
oci = docker_profile_to_oci(profile, ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"], native_arch())
spec = Seccomp(Reader(oci, "linux.seccomp"))
t3 = time.perf_counter()
filt = build_filter(spec)
t4 = time.perf_counter()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    a = time.perf_counter()
    filt.load()
    os.write(w, str(time.perf_counter() - a).encode())
    os._exit(0)
os.close(w)
load = float(os.read(r, 100))
os.waitpid(pid, 0)
filt.release()
ms = lambda s: round(s * 1000, 2)
print(json.dumps({"import spec": ms(t0 - tp), "import seccomp": ms(t1 - t0), "read json": ms(t2 - t1), "convert+parse": ms(t3 - t2),
                  "build": ms(t4 - t3), "load": ms(load), "seccomp total": ms(t4 - t0 + load)}))
"""


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    code = ONE_RUN.replace("PROFILE", repr(PROFILE))
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(runs)
    ]
    for key in results[0]:
        print(f"{key:>14}: {statistics.median(r[key] for r in results):7.2f} ms (median of {runs})")
    probe = "import time; t = time.perf_counter(); import pyseccomp; print((time.perf_counter() - t) * 1000)"
    took = [
        float(
            subprocess.run(
                [sys.executable, "-c", probe], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(runs)
    ]
    print(f"{'import pyseccomp':>14}: {statistics.median(took):7.2f} ms (median, for comparison)")


if __name__ == "__main__":
    main()
