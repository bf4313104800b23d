/* brig test guest: serial output, a minimal virtio-mmio (v2) virtio-blk driver, power-off.
 *
 * Reads its kernel command line (from the zero page, or hvm_start_info under PVH) for:
 *   virtio_mmio.device=<size>@<base>:<irq>   where to find the disk (first one with DeviceID 2)
 *   expect-ro                                expect writes to fail (disk attached read-only)
 *   exit=N                                   power off with status N after the checks pass
 * Host prepares the disk: sector 0 starts with "BRIGDISK". The guest writes a pattern to
 * sector 2, reads it back, and reports. Power-off: outb N -> port 0xF4 (brig's exit port;
 * QEMU's isa-debug-exit at the same port exits with (N << 1) | 1). Failure statuses: 10+. */
#include "guest.h"

#define QSIZE 8
struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
static struct {
    struct desc d[QSIZE];                                   /* 16-byte aligned */
    struct { uint16_t flags, idx, ring[QSIZE], used_event; } avail __attribute__((aligned(2)));
    struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; uint16_t avail_event; } used __attribute__((aligned(4)));
} q __attribute__((aligned(4096)));
static struct { uint32_t type, reserved; uint64_t sector; } hdr;
static uint8_t data[512] __attribute__((aligned(512)));
static volatile uint8_t status;
static uint16_t last_used;

static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, int device_writes) {
    hdr.type = type; hdr.reserved = 0; hdr.sector = sector; status = 0xFF;
    /* header -> [data ->] status; no zero-length data descriptor (e.g. for FLUSH). */
    q.d[0] = (struct desc){ (uint64_t)(uintptr_t)&hdr, 16, 1, (uint16_t)(len ? 1 : 2) };
    q.d[1] = (struct desc){ (uint64_t)(uintptr_t)data, len, (uint16_t)(1 | (device_writes ? 2 : 0)), 2 };
    q.d[2] = (struct desc){ (uint64_t)(uintptr_t)&status, 1, 2, 0 };
    q.avail.ring[q.avail.idx % QSIZE] = 0;
    __asm__ volatile("" ::: "memory");
    q.avail.idx++;
    __asm__ volatile("mfence" ::: "memory");
    wr(0x50, 0);                                            /* QueueNotify */
    for (uint32_t spin = 0; *(volatile uint16_t *)&q.used.idx == last_used; spin++)
        if (spin > 100000000u) fail("request timed out", 19);
    last_used++;
    wr(0x64, rd(0x60));                                     /* InterruptACK */
    return status;
}

void guest_main(uint64_t boot, int pvh) {
    guest_start(boot, pvh);
    int expect_ro = find("expect-ro") != 0;
    const char *ex = find("exit=");
    uint8_t exit_status = ex ? (uint8_t)parse_num(&ex) : 0;
    if (!find_virtio(2)) fail("no virtio-blk device on the command line", 11);
    puts_("brig-guest: virtio-blk at "); puthex((uint64_t)(uintptr_t)mmio); puts_("\n");

    virtio_negotiate();
    virtio_queue(0, QSIZE, q.d, &q.avail, &q.used);
    wr(0x70, 3 | 8 | 4);                                    /* DRIVER_OK */
    uint64_t capacity = rd(0x100) | (uint64_t)rd(0x104) << 32;
    puts_("brig-guest: capacity "); puthex(capacity); puts_(" sectors\n");
    if (capacity < 4) fail("disk too small", 13);

    if (request(0, 0, 512, 1) != 0) fail("read sector 0", 14);
    const char *magic = "BRIGDISK";
    for (int i = 0; i < 8; i++) if (data[i] != (uint8_t)magic[i]) fail("sector 0 magic", 15);
    puts_("brig-guest: read sector 0 ok\n");

    for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 13 + 7);
    uint8_t w = request(1, 2, 512, 0);
    if (expect_ro) {
        if (w != 1) fail("write to a read-only disk did not fail", 16);
        puts_("brig-guest: write refused (read-only) ok\n");
    } else {
        if (w != 0) fail("write sector 2", 16);
        memset(data, 0, sizeof data);
        if (request(0, 2, 512, 1) != 0) fail("read back sector 2", 17);
        for (int i = 0; i < 512; i++) if (data[i] != (uint8_t)(i * 13 + 7)) fail("sector 2 data mismatch", 18);
        if (request(4, 0, 0, 0) != 0) fail("flush", 18);
        puts_("brig-guest: write/read-back sector 2 ok\n");
    }
    puts_("brig-guest: virtio-blk ok, powering off\n");
    poweroff(exit_status);
}
