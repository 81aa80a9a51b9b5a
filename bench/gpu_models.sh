#!/usr/bin/env bash
# bench.models on a GPU host that has torch but no registry (and no aiortc or av):
# the diffusion pipeline alone (--pipeline-only), sd-turbo's architecture with random
# weights (the same work per frame as the real model), with and without torch.compile.
#
#   bench/gpu_models.sh prepare    # here, with a registry: wheels into .gpu-wheels/
#   bench/gpu_models.sh run        # there (the device tool: carry .gpu-wheels), ~8 min
#
# Prints one JSON line per case; each names the card.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu-wheels
PY=${PYTHON:-python3}
case "${1:-}" in
  prepare)
    # Pure-Python wheels and manylinux ones for the host's CPython (3.10 to 3.12).
    for v in 3.10 3.11 3.12; do
      $PY -m pip download --quiet --dest "$WHEELS" --only-binary=:all: \
        --python-version "$v" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        diffusers transformers pydantic "huggingface_hub" safetensors tokenizers regex \
        pyyaml tqdm filelock fsspec requests packaging
    done
    du -sh "$WHEELS"
    ;;
  run)
    $PY -c 'import torch; assert torch.cuda.is_available(), "no GPU"; print(torch.__version__, torch.cuda.get_device_name(0))'
    $PY -m pip install --quiet --no-index --find-links "$WHEELS" diffusers transformers pydantic
    export PYTHONPATH="$PWD/src:$PWD:$PWD/examples/tether-diffusion/src"
    common=(--pipeline-only --case diffusion --shape sd-turbo --device cuda --size 512
      --model-dir /tmp/tether-sd-turbo-random)
    timeout 240 $PY bench/models.py "${common[@]}" --seconds 30 --steps 2 || echo '{"error": "eager run failed"}'
    timeout 100 $PY bench/models.py "${common[@]}" --seconds 20 --steps 1 || echo '{"error": "1-step run failed"}'
    timeout 200 $PY bench/models.py "${common[@]}" --seconds 20 --steps 2 --compile || echo '{"error": "compiled run failed"}'
    ;;
  *)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
