/* Shared helpers of brig's freestanding test guests: serial, power-off, command line, virtio-mmio registers. */
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


/* Points mmio at the first virtio_mmio.device= entry of the command line with this DeviceID. */
static int find_virtio(uint32_t device_id) {
    const char *saved = cmdline;
    for (const char *p = cmdline; (p = find("virtio_mmio.device=")) != 0; cmdline = p) {
        const char *s = p;
        parse_num(&s); if (*s == 'K' || *s == 'k') s++;
        if (*s++ != '@') fail("bad virtio_mmio.device entry", 10);
        mmio = (volatile uint8_t *)(uintptr_t)parse_num(&s);
        if (rd(0) == 0x74726976 && rd(4) == 2 && rd(8) == device_id) { cmdline = saved; return 1; }
    }
    cmdline = saved;
    return 0;
}

/* Reads the command line pointer (zero page, or hvm_start_info under PVH) and announces the mode. */
static void guest_start(uint64_t boot, int pvh) {
    cmdline = pvh ? (const char *)(uintptr_t)*(uint64_t *)(uintptr_t)(boot + 24)
                  : (const char *)(uintptr_t)*(uint32_t *)(uintptr_t)(boot + 0x228);
    puts_(pvh ? "brig-guest: 64-bit long mode (PVH entry)\n" : "brig-guest: 64-bit long mode (64-bit entry)\n");
    puts_("brig-guest: cmdline: "); puts_(cmdline ? cmdline : "(none)"); puts_("\n");
}

/* Virtio 1.x handshake up to FEATURES_OK (VERSION_1 only). */
static void virtio_negotiate(void) {
    wr(0x70, 0); wr(0x70, 1); wr(0x70, 3);                  /* reset, ACKNOWLEDGE, DRIVER */
    wr(0x14, 1);
    if (!(rd(0x10) & 1)) fail("VIRTIO_F_VERSION_1 not offered", 12);
    wr(0x24, 0); wr(0x20, 0); wr(0x24, 1); wr(0x20, 1);
    wr(0x70, 3 | 8);
    if (!(rd(0x70) & 8)) fail("FEATURES_OK refused", 12);
}

/* Sets up queue `sel` with `n` entries at the given rings and marks it ready. */
static void virtio_queue(uint32_t sel, uint32_t n, const void *d, const void *avail, const void *used) {
    wr(0x30, sel);
    if (rd(0x34) < n) fail("queue too small", 12);
    wr(0x38, n);
    wr(0x80, (uint32_t)(uintptr_t)d); wr(0x84, 0);
    wr(0x90, (uint32_t)(uintptr_t)avail); wr(0x94, 0);
    wr(0xA0, (uint32_t)(uintptr_t)used); wr(0xA4, 0);
    wr(0x44, 1);
}
