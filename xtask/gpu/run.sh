#!/bin/sh
# rensa's wgpu benchmarks on a GPU machine without cargo or network, from the bundle that
# `cargo xtask gpu-bundle` packs into .gpu/ (and the Vulkan loader's packages into .gl/ with
# --vulkan-loader): `sh xtask/gpu/run.sh [STEP...]`, where the steps are torch, recurrent,
# attention, vae, hred and word2vec (default: all, in that order), so that the work can be split
# between two commands.
#
# Writes under $OUT (default target/gpu-out), at most eight files: BENCHMARKS-gpu.md, the benches'
# records (sections to copy into BENCHMARKS.md); NAME.log, each bench's output (its figures as it
# goes, so a bench cut short still shows what it measured); torch.log, PyTorch's recurrent layers
# alone; results.tar, the examples' results.json files. The GPU's name goes to the standard
# output, and every record names the adapter wgpu picked.
#
# Every bench has a time limit, so that a slow one leaves the others their share; with all steps
# the limits sum to under eight minutes. RENSA_GPU_TIME scales them (percent, default 100).
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-target/gpu-out}
SCALE=${RENSA_GPU_TIME:-100}
steps=${*:-torch recurrent attention vae hred word2vec}
for step in $steps; do
  case $step in
    torch | recurrent | attention | vae | hred | word2vec) ;;
    *) echo "unknown step $step (torch, recurrent, attention, vae, hred, word2vec)"; exit 2 ;;
  esac
done
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
nvidia-smi -L 2>&1 || echo "no nvidia-smi: no NVIDIA GPU"

# The bundle, unpacked once (again only when it changed).
B=target/gpu-bundle
[ -f .gpu/bundle.tar.xz ] || { echo "no .gpu/bundle.tar.xz: run cargo xtask gpu-bundle first"; exit 1; }
sum=$(md5sum <.gpu/bundle.tar.xz)
if [ "$(cat "$B/.bundle-sum" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$B"
  mkdir -p "$B"
  if command -v xz >/dev/null; then
    tar -xJf .gpu/bundle.tar.xz -C "$B" || exit 1
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      .gpu/bundle.tar.xz "$B" || exit 1
  fi
  echo "$sum" >"$B/.bundle-sum"
fi
export RENSA_DATA="$PWD/$B/data"

# limit SECONDS: scaled by RENSA_GPU_TIME, at least 1 (`timeout 0` would mean no limit).
limit() {
  l=$(( $1 * SCALE / 100 ))
  if [ "$l" -lt 1 ]; then l=1; fi
  echo "$l"
}

# bench LIMIT NAME ARGS...: `xtask bench ARGS` on wgpu with the carried binaries, for at most
# LIMIT seconds (its child processes too: timeout signals its whole process group).
bench() {
  l=$(limit "$1"); name=$2; shift 2
  echo "== $name: $* (limit $l s; started at $(( $(date +%s) - start )) s)"
  timeout -k 5 "$l" "$B/bin/xtask" bench --backend wgpu --prebuilt "$B/bin" \
    --record-to "$OUT/BENCHMARKS-gpu.md" "$@" >"$OUT/$name.log" 2>&1
  echo "exit $?"
  tail -n 20 "$OUT/$name.log"
}

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
      timeout -k 5 "$(limit 45)" python3 xtask/peers/torch_recurrent.py $specs >"$OUT/torch.log" 2>&1
      echo "exit $?"
      cat "$OUT/torch.log"
      ;;
    recurrent) bench 140 recurrent recurrent --peers ;;
    attention) bench 80 attention attention-speed ;;
    # three epochs: the median epoch is not the first, which compiles the shaders
    vae) bench 70 vae vae --epochs 3 --seeds 1 ;;
    hred) bench 70 hred hred --epochs 1 ;;
    word2vec) bench 60 word2vec word2vec-tensor --epochs 1 ;;
  esac
done

find target -path 'target/bench-*' -name results.json | tar -cf "$OUT/results.tar" -T -
echo "done in $(( $(date +%s) - start )) s; records in $OUT/BENCHMARKS-gpu.md"
