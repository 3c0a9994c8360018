/* rte_hash on NAT's lookup: N 5-tuple keys (16 bytes: proto, two addresses, two ports) ->
 * session index, looked up in bursts of 32 in random order with rte_hash_lookup_bulk_data
 * (CRC32 hash, prefetching inside), then each hit's 64-byte session record is read, as NAT
 * does. Prints ns and cycles per lookup. The same work with pollfwd's own index is
 * `nat_bench index N` (appliance/examples/nat_bench.rs). Run under the busy lock, --no-pci:
 *
 *   rte_hash_cmp N -- EAL args                        (see bench/nat.sh)
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <rte_eal.h>
#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

struct key { uint32_t laddr, raddr; uint16_t lport, rport; uint8_t proto, pad[3]; };
struct session { uint32_t w[16]; };

static uint64_t cpu_ns(void) {
    struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

int main(int argc, char **argv) {
    int r = rte_eal_init(argc, argv);
    if (r < 0) { fprintf(stderr, "EAL init failed\n"); return 1; }
    argc -= r; argv += r;
    uint32_t n = argc > 1 ? (uint32_t)atol(argv[1]) : 1u << 20;
    struct rte_hash_parameters p = {
        .name = "nat_cmp", .entries = n, .key_len = sizeof(struct key),
        .hash_func = rte_hash_crc, .hash_func_init_val = 0, .socket_id = 0,
    };
    struct rte_hash *h = rte_hash_create(&p);
    struct key *keys = rte_zmalloc(NULL, sizeof(struct key) * n, 64);
    struct session *sess = rte_zmalloc(NULL, sizeof(struct session) * n, 64);
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    if (!h || !keys || !sess || !order) { fprintf(stderr, "alloc failed\n"); return 1; }
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = (struct key){ .laddr = 0x0a080000u | (i % 4096), .raddr = 0xc0000201u,
            .lport = (uint16_t)(1024 + i / 4096), .rport = 9, .proto = 17 };
        sess[i].w[0] = i;
        if (rte_hash_add_key_data(h, &keys[i], (void *)(uintptr_t)i) < 0) {
            fprintf(stderr, "add %u failed (table full)\n", i); return 1;
        }
        order[i] = i;
    }
    uint64_t x = 7;
    for (uint32_t i = n - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint32_t j = x % (i + 1), t = order[i]; order[i] = order[j]; order[j] = t;
    }
    uint32_t passes = n >= 4000000 ? 1 : 4000000 / n + 1;
    const void *kp[32]; void *data[32]; uint64_t sum = 0, hits = 0;
    uint64_t t0 = cpu_ns(), c0 = rte_rdtsc();
    for (uint32_t ps = 0; ps < passes; ps++) {
        for (uint32_t i = 0; i + 32 <= n; i += 32) {
            for (int k = 0; k < 32; k++) kp[k] = &keys[order[i + k]];
            uint64_t mask = 0;
            hits += rte_hash_lookup_bulk_data(h, kp, 32, &mask, data);
            for (int k = 0; k < 32; k++) sum += sess[(uintptr_t)data[k]].w[0];
        }
    }
    uint64_t ns = cpu_ns() - t0;
    (void)c0;
    uint64_t lookups = (uint64_t)passes * (n / 32 * 32);
    double ghz = (double)rte_get_tsc_hz() / 1e9;
    printf("rte_hash      %8u entries: %6.1f ns/lookup %6.1f cycles/lookup  (hits %lu/%lu, %lu)\n",
        n, (double)ns / lookups, (double)ns / lookups * ghz, hits, lookups, sum & 1);
    rte_hash_free(h);
    rte_eal_cleanup();
    return 0;
}
