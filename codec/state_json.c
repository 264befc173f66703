/* state_json.c -- the running test state as JSON (see state_json.h). */
#include "codec/state_json.h"

#include <math.h>

json_t *
codec_msprt_state_json(const struct stats_msprt_state *st, bool rel)
{
    json_t *o = json_pack("{s:I,s:o,s:o,s:o}", "looks",
                          (json_int_t)st->n_looks, "p_abs",
                          codec_real_or_null(st->p_abs), "abs_low",
                          codec_real_or_null(st->abs_low), "abs_high",
                          codec_real_or_null(st->abs_high));
    if (rel) {
        json_object_set_new(o, "p_rel", codec_real_or_null(st->p_rel));
        json_object_set_new(o, "rel_low", codec_real_or_null(st->rel_low));
        json_object_set_new(o, "rel_high", codec_real_or_null(st->rel_high));
    }
    return o;
}

void
codec_msprt_state_read(const json_t *o, struct stats_msprt_state *st)
{
    stats_msprt_state_init(st);
    if (!json_is_object(o))
        return;
    st->n_looks = (uint64_t)codec_num_or(json_object_get(o, "looks"), 0);
    st->p_abs = codec_num_or(json_object_get(o, "p_abs"), 1);
    st->abs_low = codec_num_or(json_object_get(o, "abs_low"), -INFINITY);
    st->abs_high = codec_num_or(json_object_get(o, "abs_high"), INFINITY);
    st->p_rel = codec_num_or(json_object_get(o, "p_rel"), 1);
    st->rel_low = codec_num_or(json_object_get(o, "rel_low"), -INFINITY);
    st->rel_high = codec_num_or(json_object_get(o, "rel_high"), INFINITY);
}
