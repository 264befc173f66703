/* tool_hash.c -- driver for tests/oracle/test_hash_vectors.py: prints every
 * intermediate value of hash v1 (core/assign.c) for inputs read from
 * stdin, so that an independent implementation (Python xxhash.xxh3_64)
 * can be compared with ours byte for byte.
 *
 * Input, one line per case (hex keeps any bytes, UTF-8 or not, exact):
 *   purpose \t hex(salt) \t version \t hex(unit)
 * Output, one line per case:
 *   hex64(seed) \t hex64(h) \t position \t arm
 * where arm is the arm of the sample layout of docs/hashing.md (arms
 * "control" 50 % (control), "a" 30 %, "b" 20 %: a = [0, 300000),
 * b = [300000, 500000), control = [500000, 1000000)) for that position.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assign.h"

static int
unhex(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (char)v;
    }
    *len = n / 2;
    return 0;
}

int
main(void)
{
    struct core_arm arms[3] = {
        { "control", "", 500000, true },
        { "a", "", 300000, false },
        { "b", "", 200000, false },
    };
    struct core_experiment e;
    memset(&e, 0, sizeof(e));
    e.arms = arms;
    e.n_arms = 3;
    e.control = 0;

    char line[4096];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *f[4];
        char *save = NULL;
        size_t nf = 0;
        line[strcspn(line, "\n")] = '\0';
        for (char *t = strtok_r(line, "\t", &save); t != NULL && nf < 4;
             t = strtok_r(NULL, "\t", &save))
            f[nf++] = t;
        /* an empty salt is an empty field: strtok_r skips it */
        if (nf == 3) {
            f[3] = f[2];
            f[2] = f[1];
            f[1] = "";
            nf = 4;
        }
        if (nf != 4 || strlen(f[0]) != 1) {
            fprintf(stderr, "tool_hash: bad line\n");
            return 2;
        }
        char salt[1024], unit[1024];
        size_t salt_len, unit_len;
        if (unhex(f[1], strlen(f[1]), salt, sizeof(salt), &salt_len) != 0 ||
            unhex(f[3], strlen(f[3]), unit, sizeof(unit), &unit_len) != 0) {
            fprintf(stderr, "tool_hash: bad hex\n");
            return 2;
        }
        uint32_t version = (uint32_t)strtoul(f[2], NULL, 10);
        uint64_t seed = core_hash_seed(f[0][0], salt, salt_len, version);
        uint64_t h = core_hash_unit(seed, unit, unit_len);
        uint32_t pos = core_hash_to_position(h);
        printf("%016llx\t%016llx\t%u\t%s\n", (unsigned long long)seed,
               (unsigned long long)h, (unsigned)pos,
               arms[core_arm_for_bucket(&e, pos)].name);
    }
    return 0;
}
