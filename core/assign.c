/* assign.c -- deterministic assignment of a unit to an arm (hash v1).
 *
 * Hash version 1, exactly as published in docs/hashing.md:
 *
 *   seed(p, salt, v) = XXH3_64bits( "arbiter.v1" || p || u32le(len(salt))
 *                                   || salt || u32le(v) )
 *   h(p)             = XXH3_64bits_withSeed(unit bytes, len, seed(p, ...))
 *   position(p)      = ((h >> 32) * 1000000) >> 32      in [0, 1000000)
 *
 *   seed input, byte by byte:
 *   +------------+---+-----------+----------------+-----------+
 *   | arbiter.v1 | p | len(salt) | salt (UTF-8)   | v         |
 *   | 10 bytes   | 1 | u32 LE    | len(salt) bytes| u32 LE    |
 *   +------------+---+-----------+----------------+-----------+
 *
 * The length prefix makes the concatenation unambiguous; the purpose byte
 * p ('L' layer, 'C' coverage, 'A' arm) gives the layer, coverage and arm
 * decisions independent hash functions of the same unit. position() maps
 * the top 32 bits onto [0, 10^6) by multiply-shift (Lemire, "Fast Random
 * Integer Generation in an Interval", ACM TOMACS 29(1), 2019), which has
 * no modulo bias beyond 1 part in 2^32 / 10^6 ~ 4295 per bucket.
 * XXH3: Collet, xxHash (https://github.com/Cyan4973/xxHash), libxxhash.
 *
 * Arm layout on [0, 10^6): the non-control arms in declaration order, then
 * the control arm; arm i holds [sum of earlier weights, + weight_i). With
 * control last, moving weight from control to the last non-control arm
 * (a canary ramp) only grows that arm's interval into control's, so units
 * move from control to the canary and never elsewhere. Coverage includes
 * a unit iff position('C') < coverage: raising coverage only adds units.
 * Overall design: Kohavi, Tang and Xu, "Trustworthy Online Controlled
 * Experiments", Cambridge 2020, ch. 4 (randomization unit, hashing) and
 * Tang et al., "Overlapping Experiment Infrastructure", KDD 2010 (layers).
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <string.h>

#include "core/assign.h"

#define SEED_PREFIX "arbiter.v1"
#define SEED_PREFIX_LEN 10
#define SEED_BUF 512 /* one-shot seed input up to this size */

static void
u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)((v >> 24) & 0xff);
}

uint64_t
core_hash_seed(char purpose, const char *salt, size_t salt_len,
               uint32_t version)
{
    unsigned char head[SEED_PREFIX_LEN + 1 + 4], tail[4];
    memcpy(head, SEED_PREFIX, SEED_PREFIX_LEN);
    head[SEED_PREFIX_LEN] = (unsigned char)purpose;
    /* salts are bounded by the parser (64 bytes); clamp for the format */
    uint32_t n = salt_len > UINT32_MAX ? UINT32_MAX : (uint32_t)salt_len;
    u32le(head + SEED_PREFIX_LEN + 1, n);
    u32le(tail, version);

    if (sizeof(head) + n + sizeof(tail) <= SEED_BUF) {
        unsigned char buf[SEED_BUF];
        memcpy(buf, head, sizeof(head));
        if (n > 0)
            memcpy(buf + sizeof(head), salt, n);
        memcpy(buf + sizeof(head) + n, tail, sizeof(tail));
        return XXH3_64bits(buf, sizeof(head) + n + sizeof(tail));
    }
    /* long salt: the streaming API gives the same digest */
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, head, sizeof(head));
    XXH3_64bits_update(&st, salt, n);
    XXH3_64bits_update(&st, tail, sizeof(tail));
    return XXH3_64bits_digest(&st);
}

uint64_t
core_hash_unit(uint64_t seed, const char *unit, size_t unit_len)
{
    return XXH3_64bits_withSeed(unit, unit_len, seed);
}

uint32_t
core_hash_to_position(uint64_t h)
{
    return (uint32_t)(((h >> 32) * (uint64_t)CORE_SCALE) >> 32);
}

uint32_t
core_hash_position(char purpose, const char *salt, uint32_t version,
                   const char *unit, size_t unit_len)
{
    uint64_t seed = core_hash_seed(purpose, salt, strlen(salt), version);
    return core_hash_to_position(core_hash_unit(seed, unit, unit_len));
}

size_t
core_arm_for_bucket(const struct core_experiment *e, uint32_t bucket)
{
    uint64_t end = 0;
    for (size_t i = 0; i < e->n_arms; i++) {
        if (i == e->control)
            continue;
        end += e->arms[i].weight;
        if (bucket < end)
            return i;
    }
    return e->control;
}

/* Forced units are sorted by unit in byte order (memcmp, then length). */
static int
unit_cmp(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c != 0)
        return c;
    return (la > lb) - (la < lb);
}

static const struct core_forced *
forced_find(const struct core_experiment *e, const char *unit, size_t len)
{
    size_t lo = 0, hi = e->n_forced;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = unit_cmp(unit, len, e->forced[mid].unit);
        if (c == 0)
            return &e->forced[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void
answer(struct core_assignment *a, size_t arm, bool in, const char *reason,
       uint32_t bucket, double propensity)
{
    a->arm = arm;
    a->in_experiment = in;
    a->reason = reason;
    a->bucket = bucket;
    a->propensity = propensity;
}

void
core_assign_prepare(struct core_experiment *e)
{
    const char *salt = e->salt != NULL ? e->salt : e->key;
    size_t salt_len = strlen(salt);
    e->seed_arm = core_hash_seed('A', salt, salt_len, e->bucket_version);
    e->seed_coverage = core_hash_seed('C', salt, salt_len, e->bucket_version);
    e->seed_layer =
        e->layer != NULL ? core_hash_seed('L', e->layer, strlen(e->layer), 0)
                         : 0;
    e->seeded = true;
}

ab_status
core_assign(const struct core_experiment *e, const char *unit,
            size_t unit_len, const struct core_attr *attrs, size_t n_attrs,
            struct core_assignment *out)
{
    if (e == NULL || unit == NULL || unit_len == 0 ||
        unit_len > CORE_UNIT_MAX || e->n_arms == 0 || e->control >= e->n_arms)
        return AB_EINVAL;
    const char *salt = e->salt != NULL ? e->salt : e->key;
    size_t salt_len = e->seeded ? 0 : strlen(salt);
    uint64_t seed_arm =
        e->seeded ? e->seed_arm
                  : core_hash_seed('A', salt, salt_len, e->bucket_version);
    uint32_t bucket =
        core_hash_to_position(core_hash_unit(seed_arm, unit, unit_len));
    struct core_assignment a;

    /* A finished rollout serves one arm to every unit. */
    if (e->state == CORE_STATE_PROMOTED || e->state == CORE_STATE_ROLLED_BACK) {
        size_t served = e->served_arm < e->n_arms ? e->served_arm : e->control;
        answer(&a, served, false,
               e->state == CORE_STATE_PROMOTED ? CORE_REASON_PROMOTED
                                               : CORE_REASON_ROLLED_BACK,
               bucket, 1.0);
        goto done;
    }
    /* Units that are not randomized get control with certainty. */
    if (e->state != CORE_STATE_RUNNING) {
        const char *why = e->state == CORE_STATE_DRAFT    ? CORE_REASON_DRAFT
                          : e->state == CORE_STATE_PAUSED ? CORE_REASON_PAUSED
                                                          : CORE_REASON_STOPPED;
        answer(&a, e->control, false, why, bucket, 1.0);
        goto done;
    }
    const struct core_forced *f = forced_find(e, unit, unit_len);
    if (f != NULL) {
        answer(&a, f->arm, false, CORE_REASON_FORCED, bucket, 1.0);
        goto done;
    }
    if (!core_targeting_match(e, attrs, n_attrs)) {
        answer(&a, e->control, false, CORE_REASON_TARGETING, bucket, 1.0);
        goto done;
    }
    if (e->layer != NULL) {
        uint64_t seed =
            e->seeded ? e->seed_layer
                      : core_hash_seed('L', e->layer, strlen(e->layer), 0);
        uint32_t lp =
            core_hash_to_position(core_hash_unit(seed, unit, unit_len));
        if (lp < e->layer_lo || lp >= e->layer_hi) {
            answer(&a, e->control, false, CORE_REASON_LAYER, bucket, 1.0);
            goto done;
        }
    }
    if (e->coverage < CORE_SCALE) {
        uint64_t seed =
            e->seeded ? e->seed_coverage
                      : core_hash_seed('C', salt, salt_len, e->bucket_version);
        uint32_t cp =
            core_hash_to_position(core_hash_unit(seed, unit, unit_len));
        if (cp >= e->coverage) {
            answer(&a, e->control, false, CORE_REASON_COVERAGE, bucket, 1.0);
            goto done;
        }
    }
    size_t arm = core_arm_for_bucket(e, bucket);
    answer(&a, arm, true, CORE_REASON_HASHED, bucket,
           (double)e->arms[arm].weight / (double)CORE_SCALE);
done:
    *out = a;
    return AB_OK;
}
