/* brig test guest: serial output, a minimal virtio-mmio (v2) virtio-blk driver, power-off.
 *
 * Reads its kernel command line (from the zero page, or hvm_start_info under PVH) for:
 *   virtio_mmio.device=<size>@<base>:<irq>   where to find the disk (first one with DeviceID 2)
 *   expect-ro                                expect writes to fail (disk attached read-only)
 *   exit=N                                   power off with status N after the checks pass
 * Host prepares the disk: sector 0 starts with "BRIGDISK". The guest writes a pattern to
 * sector 2, reads it back, and reports. Power-off: outb N -> port 0xF4 (brig's exit port;
 * QEMU's isa-debug-exit at the same port exits with (N << 1) | 1). Failure statuses: 10+. */
#include <stdint.h>

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putch(char c) { while (!(inb(0x3FD) & 0x20)) { } outb(0x3F8, (uint8_t)c); }
static void puts_(const char *s) { while (*s) putch(*s++); }
static void puthex(uint64_t v) {
    puts_("0x");
    for (int i = 60; i >= 0; i -= 4) putch("0123456789abcdef"[(v >> i) & 15]);
}
static void __attribute__((noreturn)) poweroff(uint8_t status) {
    outb(0xF4, status);
    for (;;) __asm__ volatile("cli; hlt");
}
static void __attribute__((noreturn)) fail(const char *what, uint8_t code) {
    puts_("brig-guest: FAIL "); puts_(what); puts_("\n");
    poweroff(code);
}

void *memset(void *d, int c, unsigned long n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }

/* ---- command line ---- */
static const char *cmdline;
static const char *find(const char *key) {
    for (const char *p = cmdline; p && *p; p++) {
        if (p != cmdline && p[-1] != ' ') continue;
        const char *a = p, *b = key;
        while (*b && *a == *b) { a++; b++; }
        if (!*b) return a;
    }
    return 0;
}
static uint64_t parse_num(const char **s) {
    uint64_t v = 0; const char *p = *s; int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) { base = 16; p += 2; }
    for (;; p++) {
        int d;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (base == 16 && *p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
        else if (base == 16 && *p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
        else break;
        v = v * base + d;
    }
    *s = p;
    return v;
}

/* ---- virtio-mmio ---- */
static volatile uint8_t *mmio;
static uint32_t rd(uint32_t off) { return *(volatile uint32_t *)(mmio + off); }
static void wr(uint32_t off, uint32_t v) { *(volatile uint32_t *)(mmio + off) = v; }

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

static int find_blk(void) {
    for (const char *p = cmdline; (p = find("virtio_mmio.device=")) != 0; cmdline = p) {
        const char *s = p;
        parse_num(&s); if (*s == 'K' || *s == 'k') s++;
        if (*s++ != '@') fail("bad virtio_mmio.device entry", 10);
        mmio = (volatile uint8_t *)(uintptr_t)parse_num(&s);
        if (rd(0) == 0x74726976 && rd(4) == 2 && rd(8) == 2) return 1;
    }
    return 0;
}

void guest_main(uint64_t boot, int pvh) {
    /* Zero page: cmd_line_ptr at 0x228. hvm_start_info: cmdline_paddr at 24. */
    cmdline = pvh ? (const char *)(uintptr_t)*(uint64_t *)(uintptr_t)(boot + 24)
                  : (const char *)(uintptr_t)*(uint32_t *)(uintptr_t)(boot + 0x228);
    puts_(pvh ? "brig-guest: 64-bit long mode (PVH entry)\n" : "brig-guest: 64-bit long mode (64-bit entry)\n");
    puts_("brig-guest: cmdline: "); puts_(cmdline ? cmdline : "(none)"); puts_("\n");
    const char *full = cmdline;
    int expect_ro = find("expect-ro") != 0;
    const char *ex = find("exit=");
    uint8_t exit_status = ex ? (uint8_t)parse_num(&ex) : 0;
    if (!find_blk()) fail("no virtio-blk device on the command line", 11);
    cmdline = full;
    puts_("brig-guest: virtio-blk at "); puthex((uint64_t)(uintptr_t)mmio); puts_("\n");

    wr(0x70, 0); wr(0x70, 1); wr(0x70, 3);                  /* reset, ACKNOWLEDGE, DRIVER */
    wr(0x14, 1);
    if (!(rd(0x10) & 1)) fail("VIRTIO_F_VERSION_1 not offered", 12);
    wr(0x24, 0); wr(0x20, 0); wr(0x24, 1); wr(0x20, 1);
    wr(0x70, 3 | 8);
    if (!(rd(0x70) & 8)) fail("FEATURES_OK refused", 12);
    wr(0x30, 0);
    if (rd(0x34) < QSIZE) fail("queue too small", 12);
    wr(0x38, QSIZE);
    wr(0x80, (uint32_t)(uintptr_t)q.d); wr(0x84, 0);
    wr(0x90, (uint32_t)(uintptr_t)&q.avail); wr(0x94, 0);
    wr(0xA0, (uint32_t)(uintptr_t)&q.used); wr(0xA4, 0);
    wr(0x44, 1);
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
