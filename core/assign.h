/* assign.h -- deterministic assignment of a unit to an arm. Pure.
 *
 * Hash version 1 (published in the README with test vectors; never changed
 * in place -- a new algorithm gets a new version):
 *
 *   seed(p, salt, v) = XXH3_64bits( "arbiter.v1" || p || u32le(len(salt))
 *                                   || salt || u32le(v) )
 *       p is one byte: 'L' layer, 'C' coverage, 'A' arm
 *   h(p)             = XXH3_64bits_withSeed(unit bytes, len, seed(p, ...))
 *   position(p)      = ((h >> 32) * 1000000) >> 32        in [0, 1000000)
 *
 *   layer:    salt = layer name, v = 0; the unit is in this experiment's
 *             slice iff layer_lo <= position('L') < layer_hi
 *   coverage: salt = experiment salt, v = bucket_version; included iff
 *             position('C') < coverage
 *   arm:      salt = experiment salt, v = bucket_version; arms are laid out
 *             on [0, 1000000) in declaration order with the control arm
 *             moved to the end; the unit gets the arm whose interval holds
 *             position('A') ("bucket" in every answer).
 *
 * Putting control last makes a canary ramp monotone: raising the weight
 * of the last non-control arm (taking it from control) only moves units
 * from control into that arm, and raising coverage never moves an included
 * unit.
 */
#ifndef CORE_ASSIGN_H
#define CORE_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/experiment.h"
#include "lib/status.h"

#define CORE_HASH_VERSION 1

/* A request attribute; values are strings (JSON numbers and booleans are
 * passed in their JSON text form: "42", "true"). */
struct core_attr {
    const char *key;
    const char *value;
};

/* Reasons, stable words in every answer. */
#define CORE_REASON_HASHED "hashed"
#define CORE_REASON_FORCED "forced"
#define CORE_REASON_STICKY "sticky"
#define CORE_REASON_TARGETING "targeting"
#define CORE_REASON_COVERAGE "coverage"
#define CORE_REASON_LAYER "layer"
#define CORE_REASON_DRAFT "draft"
#define CORE_REASON_PAUSED "paused"
#define CORE_REASON_STOPPED "stopped"
#define CORE_REASON_PROMOTED "promoted"       /* serves the winner to all */
#define CORE_REASON_ROLLED_BACK "rolled_back" /* serves control to all */

struct core_assignment {
    size_t arm;          /* index into e->arms */
    bool in_experiment;  /* counted as an exposure */
    const char *reason;  /* one of CORE_REASON_* (static) */
    uint32_t bucket;     /* position('A') in [0, 1000000) */
    double propensity;   /* P(this arm | unit is eligible) at this moment */
};

/* The three steps of hash v1, exposed so that a caller can precompute a
 * seed per experiment and so that tests can print every intermediate
 * value: core_hash_position(p, salt, v, unit, len) ==
 * core_hash_to_position(core_hash_unit(core_hash_seed(p, salt,
 * strlen(salt), v), unit, len)). */
uint64_t core_hash_seed(char purpose, const char *salt, size_t salt_len,
                        uint32_t version);
uint64_t core_hash_unit(uint64_t seed, const char *unit, size_t unit_len);
uint32_t core_hash_to_position(uint64_t h);

/* position(p) for one unit; exposed for tests and clients. */
uint32_t core_hash_position(char purpose, const char *salt, uint32_t version,
                            const char *unit, size_t unit_len);

/* Derive e's three hash v1 seeds (arm, coverage, layer) once and keep
 * them in e, so that core_assign() hashes only the unit. Call again after
 * changing e's salt, key, layer or bucket_version (or set e->seeded to
 * false). The answers are the same with or without it. */
void core_assign_prepare(struct core_experiment *e);

/* Assign 'unit' (UTF-8, 1..CORE_UNIT_MAX bytes) for experiment e.
 * Order: not running -> control (reason draft/paused/stopped);
 * forced unit -> its arm (in_experiment false: QA traffic is not analysed);
 * targeting fails -> control; outside the layer slice -> control;
 * outside coverage -> control; else the hashed arm. 'bucket' is
 * position('A') in every answer; 'propensity' is the arm's weight for a
 * hashed answer and 1 for every other reason (the arm is then certain).
 * Sticky answers are the caller's business (the store is outside core).
 * AB_EINVAL: empty or too long unit. '*out' is written only on AB_OK. */
ab_status core_assign(const struct core_experiment *e, const char *unit,
                      size_t unit_len, const struct core_attr *attrs,
                      size_t n_attrs, struct core_assignment *out);

/* The arm whose interval holds 'bucket' under e's current weights. */
size_t core_arm_for_bucket(const struct core_experiment *e, uint32_t bucket);

/* Targeting: true when every rule of e matches attrs. A missing attribute
 * matches no rule, not even ne / not_in (see core/targeting.c); a
 * non-numeric value never matches lt/le/gt/ge, an unparsable version
 * never matches semver_*. When attrs repeat a key, the first counts. */
bool core_targeting_match(const struct core_experiment *e,
                          const struct core_attr *attrs, size_t n_attrs);

/* One rule against attrs (same semantics). */
bool core_rule_match(const struct core_rule *r, const struct core_attr *attrs,
                     size_t n_attrs);

/* Semver parse and compare (semver.org 2.0.0 precedence). A leading 'v'
 * and missing minor/patch ("1.2") are accepted. */
ab_status core_semver_parse(const char *s, struct core_semver *out);
int core_semver_cmp(const struct core_semver *a, const struct core_semver *b);

#endif /* CORE_ASSIGN_H */
