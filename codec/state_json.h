/* state_json.h -- the engine's running test state as JSON (what the
 * rollout job and the holdback watch keep between ticks in the database).
 *
 *   {"looks": n, "p_abs": p, "abs_low": l, "abs_high": h
 *    [, "p_rel": p, "rel_low": l, "rel_high": h]}
 *
 * A non-finite number is written as null and read back as its "no look
 * yet" value (p 1, bounds -inf/+inf: stats_msprt_state_init()), so an
 * interval open on one side survives the round trip.
 */
#ifndef CODEC_STATE_JSON_H
#define CODEC_STATE_JSON_H

#include <stdbool.h>

#include <jansson.h>

#include "codec/field.h" /* codec_real_or_null, codec_num_or */
#include "stats/msprt.h"


/* The state as an object (the relative interval too when 'rel'). New
 * reference. */
json_t *codec_msprt_state_json(const struct stats_msprt_state *st, bool rel);
/* The state read from o (written by codec_msprt_state_json(); absent
 * members, or o not an object: their "no look yet" values). */
void codec_msprt_state_read(const json_t *o, struct stats_msprt_state *st);

#endif /* CODEC_STATE_JSON_H */
