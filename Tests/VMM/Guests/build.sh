#!/bin/sh
# Builds one of brig's freestanding test guests: build.sh OUT_ELF [SOURCE.c] (default blk-guest.c)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/blk-guest.elf}
src=${2:-blk-guest.c}
gcc -m64 -O2 -ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static -mno-red-zone \
    -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
    -Wall -Werror -Wl,-T,"$here/guest.ld" -Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
    -I"$here" -o "$out" "$here/start.S" "$here/$src"
