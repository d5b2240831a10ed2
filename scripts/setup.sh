#!/usr/bin/env bash
# Sets up jaxconv in ./.venv on a Debian/Ubuntu machine that has only Python.
#   bash scripts/setup.sh                  the library, its CLI and the Fashion-MNIST data
#   bash scripts/setup.sh --dev            the same plus the test, lint and docs tools, and Debian's
#                                          chromium (the docs' browser check)
#   bash scripts/setup.sh --cuda13         jax for NVIDIA GPUs with CUDA 13 (also --cuda12, --tpu);
#                                          combinable: bash scripts/setup.sh --cuda13 --dev
# Safe to run again: it reuses what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

wanted=()
for arg in "$@"; do
  case "$arg" in
    --dev) wanted+=(dev) ;;
    --cuda13) wanted+=(cuda13) ;;
    --cuda12) wanted+=(cuda12) ;;
    --tpu) wanted+=(tpu) ;;
    *) echo "setup: unknown option $arg (use --dev, --cuda13, --cuda12, --tpu)" >&2; exit 2 ;;
  esac
done
accelerators=$(printf '%s\n' "${wanted[@]:-}" | grep -c -E '^(cuda13|cuda12|tpu)$' || true)
if [ "$accelerators" -gt 1 ]; then
  echo "setup: choose one of --cuda13, --cuda12, --tpu" >&2
  exit 2
fi
extras=""
if [ "${#wanted[@]}" -gt 0 ]; then extras="[$(IFS=,; echo "${wanted[*]}")]"; fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo"; fi
apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ -z "$apt_updated" ]; then $sudo_cmd apt-get update -qq && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x .venv/bin/python ]; then
  # Debian's python3 ships venv/ensurepip in a separate package.
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    py=$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install python3-venv "$py-venv" || apt_install python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"

# Fashion-MNIST: Debian/Ubuntu package where available; otherwise jaxconv downloads it on first use.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  apt_install dataset-fashion-mnist \
    || echo "setup: dataset-fashion-mnist not installed; 'jaxconv train' will download the data or take --data-dir"
fi
# The docs' browser check (scripts/check_docs_in_browser.py) renders pages in a real headless browser.
if [[ " ${wanted[*]:-} " == *" dev "* ]] && ! command -v chromium >/dev/null 2>&1 \
   && ! command -v chromium-browser >/dev/null 2>&1; then
  apt_install chromium || echo "setup: chromium not installed; the docs' browser check and its tests will skip"
fi
if [[ " ${wanted[*]:-} " == *" dev "* ]] && [ ! -d /usr/share/fonts/truetype/wqy ]; then
  apt_install fonts-wqy-zenhei || echo "setup: no CJK font; the screenshots show the book's Chinese title as boxes"
fi
echo "setup: ready (.venv/bin/jaxconv)"
