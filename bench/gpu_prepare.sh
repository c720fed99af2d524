#!/usr/bin/env bash
# Builds here what bench/gpu_check.sh needs on the GPU machine (nothing can be downloaded
# there), into .devbin/ and .gl/ (both ignored by git; name them in the device tool's `carry`).
#
#   bash bench/gpu_prepare.sh            # ≈ 25 min on 2 cores the first time (release, 3 backends)
#
# .devbin/selfsup-bench.gz   release selfsup-bench, flex + wgpu + cuda (autotune + fusion)
# .devbin/selfsup.gz         release selfsup CLI, same features (info, golden, a short pretrain)
# .devbin/py/                lightly, pytorch-metric-learning & co. (pure Python) for the reference
# .devbin/cache/data/        Fashion-MNIST (the epoch workload), when `cargo xtask setup data` has it
# .devbin/losses.json       ../shared/golden/losses.json
# .gl/*.deb                  the Vulkan/EGL loaders (the machine may lack them)
set -euo pipefail
cd "$(dirname "$0")/.."
export SELFSUP_CACHE="${SELFSUP_CACHE:-$HOME/.cache/selfsup}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SELFSUP_CACHE/target}"
grep -qx '/.devbin/' .git/info/exclude 2>/dev/null || echo /.devbin/ >> .git/info/exclude
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >> .git/info/exclude
mkdir -p .devbin .gl

features=selfsup-backend/flex,selfsup-backend/wgpu,selfsup-backend/cuda
cargo build --release -p selfsup-bench -p selfsup-cli --no-default-features --features "$features"
for bin in selfsup-bench selfsup; do
  strip -o ".devbin/$bin" "$CARGO_TARGET_DIR/release/$bin"
  gzip -9f ".devbin/$bin"
done

# The reference's pure-Python packages, from the bench venv `cargo xtask setup bench` made.
venv="$SELFSUP_CACHE/bench-venv"
if [ -d "$venv" ]; then
  site=$(echo "$venv"/lib/python3*/site-packages)
  rm -rf .devbin/py && mkdir -p .devbin/py
  for p in lightly pytorch_metric_learning hydra omegaconf antlr4 lightly_utils; do
    for d in "$site/$p" "$site"/"$p"-*.dist-info; do
      [ -e "$d" ] && cp -r "$d" .devbin/py/
    done
  done
else
  echo "gpu_prepare: no $venv (run cargo xtask setup bench); the PyTorch side will need lightly there" >&2
fi

# Fashion-MNIST for the one-epoch workload (≈ 30 MB gzipped), when provisioned.
if [ -d "$SELFSUP_CACHE/data/fashion-mnist" ]; then
  mkdir -p .devbin/cache/data
  cp -r "$SELFSUP_CACHE/data/fashion-mnist" .devbin/cache/data/
fi

# The shared golden file (outside the checkout, so it does not travel by itself).
[ -f ../shared/golden/losses.json ] && cp ../shared/golden/losses.json .devbin/

# Vulkan and EGL loaders (the device tool's recipe).
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .devbin .gl
echo "gpu_prepare: ready; on the device: bash bench/gpu_check.sh (carry .devbin and .gl)"
