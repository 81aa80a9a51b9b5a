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
# What the GPU image lacks (it has torch, transformers, huggingface_hub, safetensors,
# tokenizers, numpy, pillow): diffusers and pydantic, as CPython 3.12 wheels, no deps.
NEEDS=(diffusers==0.42.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 importlib-metadata==10.2.0)
case "${1:-}" in
  prepare)
    $PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" "${NEEDS[@]}"
    du -sh "$WHEELS"
    ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$WHEELS"/*.whl
    PY=python3
    export PYTHONPATH="/tmp/site:$PWD/src:$PWD:$PWD/examples/tether-diffusion/src"
    export PYTHONUNBUFFERED=1
    $PY -c 'import torch; assert torch.cuda.is_available(), "no GPU"; print(torch.__version__, torch.cuda.get_device_name(0))'
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
