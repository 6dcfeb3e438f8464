#!/bin/sh
# rensa's wgpu benchmarks on a GPU machine without cargo or network, from the bundle that
# `cargo xtask gpu-bundle` packs into .gpu/ (and the Vulkan loader's packages into .gl/ with
# --vulkan-loader). Run in the repository root: `sh xtask/gpu/run.sh [STEP...]`, where the steps
# are torch, recurrent, attention, vae, hred and word2vec (default: all, in that order), so that
# the work can be split between two commands.
#
# Writes under $OUT (default target/gpu-out): BENCHMARKS-gpu.md, the benches' records (sections
# to copy into BENCHMARKS.md); NAME.log, each bench's output (its figures as it goes, so a bench
# cut short still shows what it measured); torch.log, PyTorch's recurrent layers alone;
# results.tar, the examples' results.json files; gpu.txt, the GPU's name.
#
# Every bench has a time limit, so that a slow one leaves the others their share; the limits sum
# to about nine minutes. RENSA_GPU_TIME scales them (percent, default 100).
set -u
OUT=${OUT:-target/gpu-out}
SCALE=${RENSA_GPU_TIME:-100}
mkdir -p "$OUT"
start=$(date +%s)

# The Vulkan loader, where the machine has NVIDIA's driver but no loader.
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
if [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"; fi
{ nvidia-smi -L 2>&1 || echo "no nvidia-smi: no NVIDIA GPU"; } | tee "$OUT/gpu.txt"

B=target/gpu-bundle
[ -f .gpu/bundle.tar.xz ] || { echo "no .gpu/bundle.tar.xz: run cargo xtask gpu-bundle first"; exit 1; }
sum=$(md5sum <.gpu/bundle.tar.xz)
if [ "$(cat "$B/.bundle-sum" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$B"
  mkdir -p "$B"
  tar -xJf .gpu/bundle.tar.xz -C "$B" || exit 1
  echo "$sum" >"$B/.bundle-sum"
fi
export RENSA_DATA="$PWD/$B/data"

limit() { echo $(( $1 * SCALE / 100 )); }

# bench LIMIT NAME ARGS...: `xtask bench ARGS` on wgpu with the carried binaries, for at most
# LIMIT seconds (its child processes too).
bench() {
  l=$(limit "$1"); name=$2; shift 2
  echo "== $name: $* (limit $l s; started at $(( $(date +%s) - start )) s)"
  timeout -k 5 "$l" "$B/bin/xtask" bench --backend wgpu --prebuilt "$B/bin" \
    --record-to "$OUT/BENCHMARKS-gpu.md" "$@" >"$OUT/$name.log" 2>&1
  echo "exit $?"
  tail -n 20 "$OUT/$name.log"
}

steps=${*:-torch recurrent attention vae hred word2vec}
for step in $steps; do
  case $step in
    torch)
      # PyTorch's layers alone (the recurrent bench runs them again after its own rows): their
      # figures come back even if that bench runs out of time.
      specs=""
      for c in LSTM GRU SimpleRNN; do
        specs="$specs $c:16,24,1,10:20 $c:64,64,128,256:9 $c:128,100,512,1024:5"
      done
      echo "== torch: recurrent layers"
      # shellcheck disable=SC2086
      timeout -k 5 "$(limit 60)" python3 xtask/peers/torch_recurrent.py $specs >"$OUT/torch.log" 2>&1
      echo "exit $?"
      cat "$OUT/torch.log"
      ;;
    recurrent) bench 170 recurrent recurrent --peers ;;
    attention) bench 100 attention attention-speed ;;
    vae) bench 80 vae vae --epochs 2 --seeds 1 ;;
    hred) bench 100 hred hred --epochs 1 ;;
    word2vec) bench 90 word2vec word2vec-tensor --epochs 1 ;;
    *) echo "unknown step $step (torch, recurrent, attention, vae, hred, word2vec)"; exit 2 ;;
  esac
done

find target -path 'target/bench-*' -name results.json | tar -cf "$OUT/results.tar" -T -
echo "done in $(( $(date +%s) - start )) s; records in $OUT/BENCHMARKS-gpu.md"
