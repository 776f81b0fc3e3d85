#!/usr/bin/env bash
# Build web/gemm/gemm.wasm (simd128) and web/gemm/gemm_relaxed.wasm (relaxed-SIMD FMA), each
# also as *_shared.wasm on a shared memory, from web/gemm/gemm.c and conv_ops.c with Debian's
# clang + lld. Installs them with apt if missing.
#
# Usage: scripts/build_gemm.sh [--check]
#   --check  only rebuild into a temp dir and fail (exit 1) if the committed .wasm files differ;
#            exit 3 when this machine's clang is not the one that built them (the modules keep
#            their "producers" section, which names the compiler), as bytes then differ anyway.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
srcs=("$root/web/gemm/gemm.c" "$root/web/gemm/conv_ops.c")
out="$root/web/gemm"
check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

# Debian's default clang (14 on bookworm): one compiler everywhere keeps the output
# byte-identical, which `--check` relies on.
if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
  echo "build_gemm: installing clang and lld with apt" >&2
  sudo=""
  if [[ "$(id -u)" != "0" ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang lld >/dev/null
fi
cc=clang

# No libc, no entry point, no data section and no stack use: the module imports the host's
# memory (Pyodide's heap) and must not own any part of it.
flags=(--target=wasm32 -msimd128 -O3 -nostdlib -ffreestanding -fno-builtin -Wall -Wextra -Werror
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-debug -Wl,-z,stack-size=0)

# The *_shared variants import a shared memory (threads: web/gemm/threads.js runs them in a
# pool of workers over one SharedArrayBuffer); an import's "shared" flag must match the memory.
shared=(-matomics -mbulk-memory -Wl,--shared-memory -Wl,--max-memory=4294967296)
modules=(gemm.wasm gemm_relaxed.wasm gemm_shared.wasm gemm_relaxed_shared.wasm)

"$cc" "${flags[@]}" -o "$out/gemm.wasm" "${srcs[@]}"
"$cc" "${flags[@]}" "${shared[@]}" -o "$out/gemm_shared.wasm" "${srcs[@]}"
"$cc" "${flags[@]}" -mrelaxed-simd -DGEMM_RELAXED -o "$out/gemm_relaxed.wasm.tmp" "${srcs[@]}"
"$cc" "${flags[@]}" "${shared[@]}" -mrelaxed-simd -DGEMM_RELAXED \
  -o "$out/gemm_relaxed_shared.wasm.tmp" "${srcs[@]}"
# clang 14 emits the pre-standard relaxed FMA opcode (0xfd 0xaf 0x01, "f32x4.fma"), which
# engines no longer accept. Decode every instruction of the code section and rewrite exactly
# those to the standard f32x4.relaxed_madd (0xfd 0x85 0x02): same length; gemm.c passes the
# operands in the order the standard opcode reads them (x*y + z).
# Any opcode the decoder does not know fails the build rather than risk a wrong patch.
patch_relaxed() {
python3 - "$1" "$2" <<'PY'
import sys

data = bytearray(open(sys.argv[1], "rb").read())


def leb(pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def skip_memarg(pos):
    return leb(leb(pos)[1])[1]


def decode(pos, end):
    patched = 0
    while pos < end:
        op = data[pos]
        pos += 1
        if op in (0x02, 0x03, 0x04):  # block/loop/if: block type
            pos = pos + 1 if data[pos] == 0x40 or data[pos] >= 0x6F else leb(pos)[1]
        elif op in (0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x41, 0x42):
            pos = leb(pos)[1]
        elif op == 0x0E:  # br_table
            count, pos = leb(pos)
            for _ in range(count + 1):
                pos = leb(pos)[1]
        elif op == 0x11:  # call_indirect
            pos = leb(leb(pos)[1])[1]
        elif 0x28 <= op <= 0x3E:
            pos = skip_memarg(pos)
        elif op in (0x3F, 0x40):
            pos += 1
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op == 0xFC:
            sub, pos = leb(pos)
            if sub == 10:
                pos += 2
            elif sub == 11:
                pos += 1
            elif sub > 7:
                sys.exit(f"build_gemm: unknown 0xfc {sub} at {pos}")
        elif op == 0xFD:
            start = pos
            sub, pos = leb(pos)
            if sub <= 11 or sub in (92, 93):
                pos = skip_memarg(pos)
            elif sub in (12, 13):
                pos += 16
            elif 21 <= sub <= 34:
                pos += 1
            elif 84 <= sub <= 91:
                pos = skip_memarg(pos) + 1
            elif sub == 0xAF and pos - start == 2:  # pre-standard f32x4.fma
                data[start : start + 2] = bytes([0x85, 0x02])
                patched += 1
            elif sub > 0x113:  # 0x100..0x113: standard relaxed SIMD, no immediates
                sys.exit(f"build_gemm: unexpected SIMD opcode {sub} at {pos}")
        elif op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B) or 0x45 <= op <= 0xC4:
            pass
        else:
            sys.exit(f"build_gemm: unknown opcode {op:#x} at {pos - 1}")
    return patched


assert data[:8] == b"\0asm\x01\0\0\0", "not a wasm module"
pos, patched = 8, 0
while pos < len(data):
    section = data[pos]
    size, body = leb(pos + 1)
    if section == 10:  # code
        count, p = leb(body)
        for _ in range(count):
            fsize, fstart = leb(p)
            groups, q = leb(fstart)
            for _ in range(groups):
                q = leb(q)[1] + 1  # count, value type
            patched += decode(q, fstart + fsize)
            p = fstart + fsize
    pos = body + size
open(sys.argv[2], "wb").write(data)
print(f"build_gemm: relaxed module has {patched} pre-standard FMA opcodes rewritten")
PY
}
for f in gemm_relaxed gemm_relaxed_shared; do
  patch_relaxed "$out/$f.wasm.tmp" "$out/$f.wasm"
  rm -f "$out/$f.wasm.tmp"
done
for f in "${modules[@]}"; do chmod 644 "$out/$f"; done

if [[ "$check" == 1 ]]; then
  producer() { grep -a -o 'clang version [0-9][0-9.]*' "$1" | head -n 1 || true; }
  committed="$(producer "$root/web/gemm/gemm.wasm")"
  local_cc="$(producer "$out/gemm.wasm")"
  if [[ "$committed" != "$local_cc" ]]; then
    echo "build_gemm: committed .wasm built with '$committed', this machine has '$local_cc'" >&2
    exit 3
  fi
  for f in "${modules[@]}"; do
    if ! cmp -s "$out/$f" "$root/web/gemm/$f"; then
      echo "build_gemm: web/gemm/$f is stale (rebuild with scripts/build_gemm.sh)" >&2
      exit 1
    fi
  done
  echo "build_gemm: committed .wasm files are up to date"
else
  echo "build_gemm: built ${modules[*]} in web/gemm with $($cc --version | head -n 1)"
fi
