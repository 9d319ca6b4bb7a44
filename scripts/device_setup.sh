# Sourced by the scripts/device_*.sh scripts on a lent GPU machine: the data folder, the output folders, the
# wheels the machine lacks (from .whl/, no index: it has no internet), and the card's name and versions.
set -uo pipefail
DATA=${DATA:-.carry/measles-study}
OUT=${OUT:-/tmp/out}
W=/tmp/work
mkdir -p "$W" "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$W/gpu.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" | tee -a "$W/gpu.txt"
