#!/usr/bin/env bash
# Run here, where pip reaches the registry, before tools/gpu_check.sh runs on a GPU host that
# has no network: puts wheels of snakemake (the version pyproject.toml pins), its dependencies
# and setuptools (to install this project there) for that host's Python into .gpu-wheels/,
# which git ignores and the device tool carries (carry: [".gpu-wheels"]). Fails if the wheels
# and the checkout together pass GPU_CHECK_MAX_MIB (default 60; the device tool takes 64 MiB).
#
#   tools/gpu_check_prepare.sh
#   GPU_CHECK_PYTHON_VERSION   the GPU host's Python (default: 3.12, the lent H200's)
#   GPU_CHECK_WHEELS           the folder (default: .gpu-wheels)
#   PYTHON                     the interpreter whose pip downloads (default: .venv/bin/python)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
python=${PYTHON:-.venv/bin/python}
target=${GPU_CHECK_PYTHON_VERSION:-3.12}
wheels=${GPU_CHECK_WHEELS:-.gpu-wheels}
max_mib=${GPU_CHECK_MAX_MIB:-60}

requirements=$("$python" -c 'import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))
pins = project["project"]["optional-dependencies"]["workflow"]
print(next(r for r in pins if r.startswith("snakemake")))
print(*project["build-system"]["requires"], sep="\n")' pyproject.toml)
mapfile -t requirements <<<"$requirements"
echo "gpu_check_prepare: ${requirements[*]} for Python $target (x86-64) into $wheels"

rm -rf "$wheels"
mkdir -p "$wheels"
pure=$(mktemp -d)
trap 'rm -rf "$pure"' EXIT
# Some dependencies publish only a source archive (connection_pool): build every wheel of the
# closure here and keep the pure-Python ones, which install on any Python 3.
"$python" -m pip wheel -q --wheel-dir "$pure" "${requirements[@]}"
cp "$pure"/*-none-any.whl "$wheels"/
# The rest as the GPU host's binaries; the pure wheels above fill in what has no binary.
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_12 \
  manylinux2010 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
"$python" -m pip download -q --only-binary=:all: --python-version "$target" --implementation cp \
  "${platforms[@]}" --platform any --find-links "$wheels" --dest "$wheels" "${requirements[@]}"
# a pure wheel the GPU host resolves differently is not needed there; keep one version of each
"$python" - "$wheels" <<'EOF'
import collections, re, sys
from pathlib import Path

found = collections.defaultdict(list)
for wheel in Path(sys.argv[1]).glob("*.whl"):
    found[re.sub(r"[-_.]+", "_", wheel.name.split("-")[0]).lower()].append(wheel.name)
twice = {name: files for name, files in found.items() if len(files) > 1}
if twice:
    sys.exit(f"gpu_check_prepare: two versions of {twice}: pip would refuse them, delete one")
EOF

wheel_bytes=$(du -sb "$wheels" | cut -f1)
# what the device tool sends beside the carried folder: tracked and untracked-not-ignored files
tree_bytes=$("$python" -c 'import os, subprocess
listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"],
                        capture_output=True, check=True).stdout.split(b"\0")
print(sum(os.path.getsize(f) for f in listed if f and os.path.isfile(f)))')
total_mib=$(((wheel_bytes + tree_bytes) / 1048576))
count=$(find "$wheels" -name '*.whl' | wc -l)
echo "gpu_check_prepare: $count wheels, $((wheel_bytes / 1048576)) MiB; with the checkout ${total_mib} MiB"
if ((total_mib > max_mib)); then
  echo "gpu_check_prepare: ${total_mib} MiB is over ${max_mib} MiB: remove what the device run does not need" >&2
  exit 1
fi
echo "gpu_check_prepare: now on the GPU host: tools/gpu_check.sh OUTPUT_DIR (carry $wheels)"
