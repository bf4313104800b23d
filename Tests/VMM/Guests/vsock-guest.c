/* brig test guest: a minimal polled virtio-vsock driver (virtio-mmio v2, device ID 19).
 *
 * Listens on port 1024: accepts the host's REQUEST and echoes every RW back prefixed with
 * "echo: ". Also connects to host CID 2 port 1025, sends "hello from guest <cid>\n" and
 * closes that connection. Powers off with exit=N (default 0) once the host has shut the
 * port-1024 connection down and the outgoing connection is done. Failure statuses: 10+. */
#include "guest.h"

#define QSIZE 8
#define BUFSZ 2048
struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vq {
    struct desc d[QSIZE];
    struct { uint16_t flags, idx, ring[QSIZE], used_event; } avail __attribute__((aligned(2)));
    struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; uint16_t avail_event; } used __attribute__((aligned(4)));
    uint16_t last_used;
} __attribute__((aligned(4096)));
static struct vq rxq, txq, evq;
static uint8_t rxbuf[QSIZE][BUFSZ];
static uint8_t txbuf[BUFSZ];

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

static uint64_t cid;
static uint32_t fwd_in;                                     /* bytes received on the 1024 connection */

static void post_rx(uint16_t i) {
    rxq.d[i] = (struct desc){ (uint64_t)(uintptr_t)rxbuf[i], BUFSZ, 2, 0 };
    rxq.avail.ring[rxq.avail.idx % QSIZE] = i;
    __asm__ volatile("" ::: "memory");
    rxq.avail.idx++;
    __asm__ volatile("mfence" ::: "memory");
    wr(0x50, 0);
}

static void send(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags, const uint8_t *data, uint32_t len) {
    struct hdr *h = (struct hdr *)txbuf;
    if (len > BUFSZ - sizeof *h) fail("tx payload too large", 20);
    *h = (struct hdr){ cid, 2, src_port, dst_port, len, 1, op, flags, 65536, fwd_in };
    memcpy(txbuf + sizeof *h, data, len);
    txq.d[0] = (struct desc){ (uint64_t)(uintptr_t)txbuf, (uint32_t)sizeof *h + len, 0, 0 };
    txq.avail.ring[txq.avail.idx % QSIZE] = 0;
    __asm__ volatile("" ::: "memory");
    txq.avail.idx++;
    __asm__ volatile("mfence" ::: "memory");
    wr(0x50, 1);
    for (uint32_t spin = 0; *(volatile uint16_t *)&txq.used.idx == txq.last_used; spin++)
        if (spin > 100000000u) fail("tx timed out", 21);
    txq.last_used++;
}

/* Waits for the next rx packet; returns its buffer index. */
static uint16_t recv(void) {
    while (*(volatile uint16_t *)&rxq.used.idx == rxq.last_used) __asm__ volatile("pause");
    __asm__ volatile("" ::: "memory");
    uint16_t id = (uint16_t)rxq.used.ring[rxq.last_used % QSIZE].id;
    if (rxq.used.ring[rxq.last_used % QSIZE].len < sizeof(struct hdr)) fail("short rx packet", 22);
    rxq.last_used++;
    wr(0x64, rd(0x60));                                     /* InterruptACK */
    return id;
}

void guest_main(uint64_t boot, int pvh) {
    guest_start(boot, pvh);
    const char *ex = find("exit=");
    uint8_t exit_status = ex ? (uint8_t)parse_num(&ex) : 0;
    if (!find_virtio(19)) fail("no virtio-vsock device on the command line", 11);
    virtio_negotiate();
    virtio_queue(0, QSIZE, rxq.d, &rxq.avail, &rxq.used);
    virtio_queue(1, QSIZE, txq.d, &txq.avail, &txq.used);
    virtio_queue(2, QSIZE, evq.d, &evq.avail, &evq.used);
    wr(0x70, 3 | 8 | 4);                                    /* DRIVER_OK */
    cid = rd(0x100) | (uint64_t)rd(0x104) << 32;
    puts_("brig-guest: virtio-vsock cid "); puthex(cid); puts_("\n");
    for (uint16_t i = 0; i < QSIZE; i++) post_rx(i);

    const uint32_t out_port = 5000;
    send(out_port, 1025, REQUEST, 0, 0, 0);
    int out_done = 0, out_est = 0, in_done = 0;
    uint32_t in_peer = 0;
    while (!(out_done && in_done)) {
        uint16_t i = recv();
        struct hdr h = *(struct hdr *)rxbuf[i];
        const uint8_t *payload = rxbuf[i] + sizeof h;
        if (h.dst_cid != cid || h.src_cid != 2 || h.type != 1) fail("bad rx header", 23);
        if (h.dst_port == out_port && h.src_port == 1025) {
            if (h.op == RESPONSE) {
                out_est = 1;
                char msg[] = "hello from guest 0x0\n";
                msg[19] = "0123456789abcdef"[cid & 15];
                send(out_port, 1025, RW, 0, (const uint8_t *)msg, sizeof msg - 1);
                send(out_port, 1025, SHUTDOWN, 3, 0, 0);
                puts_("brig-guest: guest-initiated connection to 1025 sent its line\n");
            } else if (h.op == RST) {
                if (!out_est) fail("connect to host port 1025 refused", 24);
                out_done = 1;                               /* RST confirms our close */
            }
        } else if (h.dst_port == 1024) {
            switch (h.op) {
            case REQUEST:
                in_peer = h.src_port;
                send(1024, in_peer, RESPONSE, 0, 0, 0);
                puts_("brig-guest: accepted host connection on 1024\n");
                break;
            case RW: {
                uint8_t out[BUFSZ];
                const char *pre = "echo: ";
                uint32_t n = 0;
                while (pre[n]) { out[n] = (uint8_t)pre[n]; n++; }
                uint32_t len = h.len > BUFSZ - 64 ? BUFSZ - 64 : h.len;
                memcpy(out + n, payload, len);
                fwd_in += h.len;
                send(1024, h.src_port, RW, 0, out, n + len);
                break;
            }
            case CREDIT_REQUEST: send(1024, h.src_port, CREDIT_UPDATE, 0, 0, 0); break;
            case SHUTDOWN:
                send(1024, h.src_port, RST, 0, 0, 0);
                puts_("brig-guest: host closed port 1024\n");
                in_done = 1;
                break;
            case RST: in_done = 1; break;
            default: break;
            }
        } else if (h.op != RST) {
            send(h.dst_port, h.src_port, RST, 0, 0, 0);
        }
        post_rx(i);
    }
    puts_("brig-guest: virtio-vsock ok, powering off\n");
    poweroff(exit_status);
}
