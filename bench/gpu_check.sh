# GPU check: selfsup (wgpu on the GPU through Vulkan) against PyTorch CUDA, same workloads.
#
# Run on a machine with an NVIDIA GPU from the repository root, with:
#   .devbin/selfsup-bench.gz  a stripped, gzipped release build of selfsup-bench with
#                             --no-default-features --features selfsup-backend/flex,selfsup-backend/wgpu
#   .devbin/py/               lightly, pytorch_metric_learning, hydra, omegaconf, antlr4 (pure Python,
#                             copied from the bench venv) when the machine's Python lacks them
#   .gl/*.deb                 libvulkan1 & co. (apt-get download) when it lacks a Vulkan loader
#   OUT                       a folder for the JSON lines
# The figures of 2026-11-28 are in bench/RESULTS.md.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
nvidia-smi -L
ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export PYTHONPATH=$PWD/.devbin/py PYTHONUNBUFFERED=1
gunzip -c .devbin/selfsup-bench.gz > /tmp/selfsup-bench && chmod +x /tmp/selfsup-bench; B=/tmp/selfsup-bench
for w in nt-xent-256 nt-xent-2048 triplet-batch-hard-256 barlow-twins-256 vicreg-256 nt-xent-16384 nt-xent-16384-chunked simclr-step; do
  timeout 100 $B --backend wgpu $w --warmup 3 --iters 20 --budget-s 15 >> $OUT/wgpu.jsonl 2>> $OUT/wgpu.err || echo "{\"workload\":\"$w\",\"impl\":\"wgpu\",\"failed\":$?}" >> $OUT/wgpu.jsonl
  timeout 100 python3 bench/reference/bench.py $w --device cuda --warmup 3 --iters 20 --budget-s 15 >> $OUT/cuda.jsonl 2>> $OUT/cuda.err || echo "{\"workload\":\"$w\",\"impl\":\"cuda\",\"failed\":$?}" >> $OUT/cuda.jsonl
  tail -c 300 $OUT/wgpu.jsonl; tail -c 300 $OUT/cuda.jsonl
done
tail -n 5 $OUT/wgpu.err $OUT/cuda.err
