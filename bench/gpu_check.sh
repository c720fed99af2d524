#!/usr/bin/env bash
# GPU check: selfsup on wgpu (Vulkan on the NVIDIA driver) and on cuda (cubecl-cuda through
# the driver's libcuda and NVRTC), against PyTorch CUDA, every workload of `cargo xtask bench`;
# then `selfsup info`, the golden file and a short pretrain on cuda.
#
# Prepared here with `bash bench/gpu_prepare.sh`; run on the GPU machine from the repository
# root with OUT set (the device tool sets it), carrying .devbin and .gl:
#   bash bench/gpu_check.sh            # ≈ 6–8 min; JSON lines and logs in $OUT
# Nothing is downloaded there. The figures go to bench/RESULTS.md by hand, with the machine,
# the commit and the PyTorch version this prints.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/check.log"; }

# Loaders and drivers.
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
ldconfig
nvidia-smi -L | tee -a "$OUT/check.log"
nvidia-smi --query-gpu=driver_version --format=csv,noheader | tee -a "$OUT/check.log"
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl

# cubecl-cuda: libcuda comes with the driver; NVRTC and the CUDA headers it compiles against
# come from the machine's PyTorch (NVIDIA's wheels in site-packages) unless a toolkit exists.
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
nvrtc=$(find "$site/nvidia" /usr/local/cuda* -name 'libnvrtc.so*' 2>/dev/null | grep -v builtins | sort | tail -1)
if [ -n "$nvrtc" ]; then
  mkdir -p /tmp/cuda-lib
  ln -sf "$nvrtc" /tmp/cuda-lib/libnvrtc.so
  export LD_LIBRARY_PATH="/tmp/cuda-lib:$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -z "${CUDA_PATH:-}" ] && [ ! -d /usr/local/cuda ]; then
  # One include folder gathering every wheel's headers (cuda_fp16.h, cuda_bf16.h, cccl …).
  mkdir -p /tmp/cuda/include
  for inc in "$site"/nvidia/*/include "$site"/nvidia/*/*/include; do
    [ -d "$inc" ] && cp -rsn "$inc"/. /tmp/cuda/include/ 2>/dev/null
  done
  export CUDA_PATH=/tmp/cuda
fi
log "nvrtc: ${nvrtc:-none found}; CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/check.log"

export PYTHONPATH=$PWD/.devbin/py PYTHONUNBUFFERED=1
[ -d .devbin/cache ] && export SELFSUP_CACHE=$PWD/.devbin/cache
for bin in selfsup-bench selfsup; do
  gunzip -c ".devbin/$bin.gz" > "/tmp/$bin" && chmod +x "/tmp/$bin"
done
B=/tmp/selfsup-bench S=/tmp/selfsup

log "selfsup info"
timeout 120 $S info 2>&1 | tee -a "$OUT/check.log"

# The workloads of `cargo xtask bench`: each process stops iterating after 15 s of timed work.
workloads="nt-xent-256 nt-xent-2048 triplet-batch-hard-256 barlow-twins-256 vicreg-256
  nt-xent-16384 nt-xent-16384-chunked knn-10k-60k simclr-step simclr-resnet18-step"
run() { # run IMPL TIMEOUT CMD…
  local impl=$1 limit=$2; shift 2
  timeout "$limit" "$@" >> "$OUT/$impl.jsonl" 2>> "$OUT/$impl.err" \
    || echo "{\"workload\":\"$w\",\"impl\":\"$impl\",\"failed\":$?}" >> "$OUT/$impl.jsonl"
  tail -n 1 "$OUT/$impl.jsonl" | cut -c1-240
}
for w in $workloads; do
  log "$w"
  run pytorch-cuda 120 python3 bench/reference/bench.py $w --device cuda --warmup 3 --iters 20 --budget-s 15
  for backend in cuda wgpu; do
    run $backend 120 $B $w --backend $backend --warmup 3 --iters 20 --budget-s 15
  done
done
# One epoch of 60k + kNN, when the data came along (gpu_prepare copies it).
w=simclr-epoch-knn
if [ -d .devbin/cache/data/fashion-mnist ]; then
  log "$w"
  run pytorch-cuda 240 python3 bench/reference/bench.py $w --device cuda --warmup 0 --iters 1
  run cuda 240 $B $w --backend cuda --warmup 0 --iters 1
else
  log "$w skipped: no .devbin/cache/data/fashion-mnist"
fi

# Correctness on cuda: the golden file and a short training run on the embedded data.
log "golden on cuda"
for g in .devbin/losses.json crates/selfsup-golden/tests/fixtures/*.json; do
  [ -f "$g" ] && timeout 180 $S golden "$g" --backends cuda,wgpu 2>&1 | tail -n 3 | tee -a "$OUT/check.log"
done
log "pretrain on cuda (1 epoch, embedded Fashion-MNIST)"
timeout 240 $S pretrain --backend cuda --epochs 1 --out /tmp/gpu-run 2>&1 | tail -n 8 | tee -a "$OUT/check.log"
cp /tmp/gpu-run/summary.json "$OUT/cuda-summary.json" 2>/dev/null
tail -n 5 "$OUT"/*.err 2>/dev/null | cut -c1-300
